using System.Security.Cryptography;
using HardenImage.Common;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.Pkcs;

namespace HardenImage.Signing;

/// <summary>
/// Reading and writing the key encodings signing uses: PKCS#8 (v1 and RFC 5958 v2), SEC1 <c>EC PRIVATE KEY</c>,
/// SPKI <c>PUBLIC KEY</c>, and cosign's encrypted file. Only ECDSA P-256 keys are accepted for signing, so a
/// verifier (cosign, Kyverno) never meets an algorithm it was not configured for (threat: Spoofing through
/// algorithm confusion).
/// </summary>
public static class PemKeys
{
    private const string EcPublicKeyOid = "1.2.840.10045.2.1";
    private const string P256Oid = "1.2.840.10045.3.1.7";

    /// <summary>
    /// Loads an ECDSA P-256 private key from PEM text: cosign encrypted (password asked through
    /// <paramref name="password"/>, only then), <c>PRIVATE KEY</c> or <c>EC PRIVATE KEY</c>.
    /// </summary>
    public static ECDsa LoadPrivateKey(string pemText, Func<string> password, string source)
    {
        if (CosignKeyFile.IsEncryptedKey(pemText))
        {
            var der = CosignKeyFile.Decrypt(pemText, password(), source);
            try { return ImportPkcs8(der, source); }
            finally { CryptographicOperations.ZeroMemory(der); }
        }
        if (pemText.Contains("-----BEGIN PRIVATE KEY-----", StringComparison.Ordinal))
        {
            var der = PemBody(pemText, "PRIVATE KEY", source);
            try { return ImportPkcs8(der, source); }
            finally { CryptographicOperations.ZeroMemory(der); }
        }
        if (pemText.Contains("-----BEGIN EC PRIVATE KEY-----", StringComparison.Ordinal))
        {
            var ec = ECDsa.Create();
            try { ec.ImportECPrivateKey(PemBody(pemText, "EC PRIVATE KEY", source), out _); }
            catch (CryptographicException e)
            {
                ec.Dispose();
                throw new HardenException($"{source}: the EC PRIVATE KEY block is not a valid SEC1 key ({e.Message}).", inner: e);
            }
            return RequireP256(ec, source);
        }
        throw new HardenException($"{source}: no private key found. Expected a cosign key file ('{CosignKeyFile.SigstoreLabel}'), "
            + "a PEM 'PRIVATE KEY' (PKCS#8) or 'EC PRIVATE KEY' (SEC1). Generate one with 'harden keygen'.");
    }

    /// <summary>Names the algorithm of a PKCS#8 key (EC P-256, RSA, Ed25519, or the OID); accepts PKCS#8 v1 and v2.</summary>
    public static string DescribePkcs8(ReadOnlySpan<byte> der)
    {
        var info = PrivateKeyInfo.GetInstance(Asn1Object.FromByteArray(der.ToArray()));
        var oid = info.PrivateKeyAlgorithm.Algorithm.Id;
        return oid switch
        {
            EcPublicKeyOid => info.PrivateKeyAlgorithm.Parameters is DerObjectIdentifier curve && curve.Id == P256Oid ? "ECDSA P-256" : "ECDSA (other curve)",
            "1.2.840.113549.1.1.1" => "RSA",
            "1.3.101.112" => "Ed25519",
            _ => oid,
        };
    }

    /// <summary>Imports a PKCS#8 DER key (v1 or v2) as ECDSA P-256; other algorithms are refused clearly.</summary>
    public static ECDsa ImportPkcs8(ReadOnlySpan<byte> der, string source)
    {
        PrivateKeyInfo info;
        try { info = PrivateKeyInfo.GetInstance(Asn1Object.FromByteArray(der.ToArray())); }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidCastException)
        { throw new HardenException($"{source}: the private key is not PKCS#8 DER ({e.Message}).", inner: e); }

        if (info.PrivateKeyAlgorithm.Algorithm.Id != EcPublicKeyOid)
            throw new HardenException($"{source}: the key is {DescribePkcs8(der)}; HardenImage signs with ECDSA P-256 only. "
                + "Generate a key with 'harden keygen' (or 'cosign generate-key-pair').");

        // .NET reads PKCS#8 v1; a v2 key (RFC 5958, with [1] publicKey) is re-encoded without the public key.
        var v1 = new PrivateKeyInfo(info.PrivateKeyAlgorithm, info.ParsePrivateKey(), info.Attributes).GetDerEncoded();
        var ec = ECDsa.Create();
        try { ec.ImportPkcs8PrivateKey(v1, out _); }
        catch (CryptographicException e)
        {
            ec.Dispose();
            throw new HardenException($"{source}: the EC private key could not be read ({e.Message}).", inner: e);
        }
        finally { CryptographicOperations.ZeroMemory(v1); }
        return RequireP256(ec, source);
    }

    /// <summary>Reads a PEM <c>PUBLIC KEY</c> (SPKI) as an ECDSA P-256 key.</summary>
    public static ECDsa ReadPublicKey(string pemText, string source)
    {
        var ec = ECDsa.Create();
        try
        {
            ec.ImportSubjectPublicKeyInfo(PemBody(pemText, "PUBLIC KEY", source), out _);
        }
        catch (CryptographicException e)
        {
            ec.Dispose();
            throw new HardenException($"{source}: not an ECDSA public key (SPKI PEM 'PUBLIC KEY'): {e.Message}", inner: e);
        }
        return RequireP256(ec, source);
    }

    /// <summary>Reads an ECDSA P-256 public key from SPKI DER.</summary>
    public static ECDsa ReadPublicKey(ReadOnlySpan<byte> spki, string source)
    {
        var ec = ECDsa.Create();
        try { ec.ImportSubjectPublicKeyInfo(spki, out _); }
        catch (CryptographicException e)
        {
            ec.Dispose();
            throw new HardenException($"{source}: not an ECDSA public key (SPKI DER): {e.Message}", inner: e);
        }
        return RequireP256(ec, source);
    }

    public static string PublicKeyPem(ReadOnlySpan<byte> spki) => new string(PemEncoding.Write("PUBLIC KEY", spki)) + "\n";

    private static byte[] PemBody(string pemText, string label, string source)
    {
        var begin = pemText.IndexOf("-----BEGIN " + label + "-----", StringComparison.Ordinal);
        if (begin < 0) throw new HardenException($"{source}: no PEM '{label}' block found.");
        if (!PemEncoding.TryFind(pemText.AsSpan(begin), out var fields))
            throw new HardenException($"{source}: the PEM '{label}' block is malformed.");
        return Convert.FromBase64String(new string(pemText.AsSpan(begin)[fields.Base64Data]));
    }

    private static ECDsa RequireP256(ECDsa ec, string source)
    {
        var curve = ec.ExportParameters(false).Curve;
        if (curve.Oid?.Value != P256Oid && curve.Oid?.FriendlyName is not ("nistP256" or "ECDSA_P256"))
        {
            ec.Dispose();
            throw new HardenException($"{source}: the key is not on curve P-256; cosign-compatible signing uses ECDSA P-256.");
        }
        return ec;
    }
}
