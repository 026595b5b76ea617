using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using HardenImage.Common;
using Org.BouncyCastle.Crypto.Generators;

namespace HardenImage.Signing;

/// <summary>scrypt cost parameters of an encrypted key file.</summary>
public sealed record ScryptParameters(int N, int R, int P)
{
    /// <summary>What cosign writes today (N=65536, r=8, p=1).</summary>
    public static ScryptParameters Default { get; } = new(65536, 8, 1);
}

/// <summary>
/// cosign's encrypted private key file: PEM <c>ENCRYPTED SIGSTORE PRIVATE KEY</c> (older cosign:
/// <c>ENCRYPTED COSIGN PRIVATE KEY</c>) whose body is JSON
/// <c>{"kdf":{"name":"scrypt","params":{"N","r","p"},"salt"},"cipher":{"name":"nacl/secretbox","nonce"},"ciphertext"}</c>;
/// the plaintext is a PKCS#8 DER private key. The password-derived key keeps a stolen key file useless
/// without its password (threat: Information disclosure / Spoofing).
/// </summary>
public static class CosignKeyFile
{
    public const string SigstoreLabel = "ENCRYPTED SIGSTORE PRIVATE KEY";
    public const string CosignLabel = "ENCRYPTED COSIGN PRIVATE KEY";

    // Refuse absurd costs from a hostile file before scrypt allocates 128*r*N bytes (threat: Denial of service).
    private const long MaxScryptMemory = 1L << 30;

    public static bool IsEncryptedKey(string pemText) =>
        pemText.Contains("-----BEGIN " + SigstoreLabel + "-----", StringComparison.Ordinal)
        || pemText.Contains("-----BEGIN " + CosignLabel + "-----", StringComparison.Ordinal);

    /// <summary>Encrypts a PKCS#8 DER key under <paramref name="password"/>; returns the PEM text (SIGSTORE label).</summary>
    public static string Encrypt(ReadOnlySpan<byte> pkcs8, string password, ScryptParameters? kdf = null)
    {
        kdf ??= ScryptParameters.Default;
        var salt = RandomNumberGenerator.GetBytes(32);
        var nonce = RandomNumberGenerator.GetBytes(NaclSecretBox.NonceSize);
        var key = DeriveKey(password, salt, kdf);
        var box = NaclSecretBox.Seal(key, nonce, pkcs8);
        CryptographicOperations.ZeroMemory(key);

        // Field order matches cosign's own files.
        var body = new JsonObject
        {
            ["kdf"] = new JsonObject
            {
                ["name"] = "scrypt",
                ["params"] = new JsonObject { ["N"] = kdf.N, ["r"] = kdf.R, ["p"] = kdf.P },
                ["salt"] = Convert.ToBase64String(salt),
            },
            ["cipher"] = new JsonObject { ["name"] = "nacl/secretbox", ["nonce"] = Convert.ToBase64String(nonce) },
            ["ciphertext"] = Convert.ToBase64String(box),
        };
        var json = Encoding.UTF8.GetBytes(body.ToJsonString());
        return new string(PemEncoding.Write(SigstoreLabel, json)) + "\n";
    }

    /// <summary>
    /// Decrypts the key file text and returns the PKCS#8 DER. <paramref name="source"/> names the file in errors.
    /// A wrong password and a tampered file look the same (the MAC fails) and give one clear error.
    /// </summary>
    public static byte[] Decrypt(string pemText, string password, string source)
    {
        var body = ReadPemBody(pemText, source);
        JsonNode? root;
        try { root = JsonNode.Parse(body); }
        catch (JsonException e) { throw new HardenException($"{source}: the encrypted key body is not JSON ({e.Message}).", inner: e); }

        var kdfName = (string?)root?["kdf"]?["name"];
        var cipherName = (string?)root?["cipher"]?["name"];
        if (kdfName != "scrypt")
            throw new HardenException($"{source}: key derivation '{kdfName}' is not supported (only scrypt, as cosign writes).");
        if (cipherName != "nacl/secretbox")
            throw new HardenException($"{source}: cipher '{cipherName}' is not supported (only nacl/secretbox, as cosign writes).");

        var p = root!["kdf"]!["params"];
        var kdf = new ScryptParameters(Int(p?["N"], source, "kdf.params.N"), Int(p?["r"], source, "kdf.params.r"), Int(p?["p"], source, "kdf.params.p"));
        if (kdf.N < 2 || (kdf.N & (kdf.N - 1)) != 0 || kdf.R < 1 || kdf.P < 1 || 128L * kdf.R * kdf.N * kdf.P > MaxScryptMemory)
            throw new HardenException($"{source}: scrypt parameters N={kdf.N} r={kdf.R} p={kdf.P} are invalid or too costly.");

        var salt = B64(root["kdf"]!["salt"], source, "kdf.salt");
        var nonce = B64(root["cipher"]!["nonce"], source, "cipher.nonce");
        var box = B64(root["ciphertext"], source, "ciphertext");
        if (nonce.Length != NaclSecretBox.NonceSize)
            throw new HardenException($"{source}: cipher.nonce must be {NaclSecretBox.NonceSize} bytes, found {nonce.Length}.");

        var key = DeriveKey(password, salt, kdf);
        var plain = NaclSecretBox.Open(key, nonce, box);
        CryptographicOperations.ZeroMemory(key);
        return plain ?? throw new HardenException(
            $"{source}: wrong password for this key (or the key file was altered). Set HARDEN_KEY_PASSWORD (or COSIGN_PASSWORD) to the key's password.");
    }

    private static byte[] DeriveKey(string password, byte[] salt, ScryptParameters kdf) =>
        SCrypt.Generate(Encoding.UTF8.GetBytes(password), salt, kdf.N, kdf.R, kdf.P, NaclSecretBox.KeySize);

    private static byte[] ReadPemBody(string pemText, string source)
    {
        foreach (var label in new[] { SigstoreLabel, CosignLabel })
        {
            var begin = pemText.IndexOf("-----BEGIN " + label + "-----", StringComparison.Ordinal);
            if (begin < 0) continue;
            var fields = PemEncoding.Find(pemText.AsSpan(begin));
            var base64 = pemText.AsSpan(begin)[fields.Base64Data];
            return Convert.FromBase64String(new string(base64));
        }
        throw new HardenException($"{source}: no '{SigstoreLabel}' or '{CosignLabel}' PEM block found.");
    }

    private static int Int(JsonNode? node, string source, string field)
    {
        try { return node?.GetValue<int>() ?? throw new HardenException($"{source}: field {field} is missing."); }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        { throw new HardenException($"{source}: field {field} is not an integer.", inner: e); }
    }

    private static byte[] B64(JsonNode? node, string source, string field)
    {
        var text = (string?)node ?? throw new HardenException($"{source}: field {field} is missing.");
        try { return Convert.FromBase64String(text); }
        catch (FormatException e) { throw new HardenException($"{source}: field {field} is not base64.", inner: e); }
    }
}
