using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Macs;
using Org.BouncyCastle.Crypto.Parameters;

namespace HardenImage.Signing;

/// <summary>
/// NaCl <c>crypto_secretbox</c> (XSalsa20-Poly1305), the cipher cosign key files use ("nacl/secretbox").
/// Composition per the NaCl spec: the first 32 bytes of the XSalsa20 keystream are the one-time Poly1305 key,
/// the rest encrypts the message; output is the 16-byte tag followed by the ciphertext (Go's secretbox layout).
/// The tag is checked before anything is decrypted (threat: Tampering of the key file).
/// </summary>
public static class NaclSecretBox
{
    public const int KeySize = 32;
    public const int NonceSize = 24;
    public const int TagSize = 16;

    public static byte[] Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext)
    {
        var cipher = NewCipher(key, nonce, out var macKey);
        var output = new byte[TagSize + plaintext.Length];
        cipher.ProcessBytes(plaintext.ToArray(), 0, plaintext.Length, output, TagSize);
        var tag = Poly1305Tag(macKey, output.AsSpan(TagSize));
        tag.CopyTo(output, 0);
        CryptographicOperations.ZeroMemory(macKey);
        return output;
    }

    /// <summary>Returns the plaintext, or null when the tag does not verify (wrong key or altered box).</summary>
    public static byte[]? Open(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> box)
    {
        if (box.Length < TagSize) return null;
        var cipher = NewCipher(key, nonce, out var macKey);
        var expected = Poly1305Tag(macKey, box[TagSize..]);
        CryptographicOperations.ZeroMemory(macKey);
        if (!CryptographicOperations.FixedTimeEquals(expected, box[..TagSize])) return null;
        var ciphertext = box[TagSize..].ToArray();
        var plaintext = new byte[ciphertext.Length];
        cipher.ProcessBytes(ciphertext, 0, ciphertext.Length, plaintext, 0);
        return plaintext;
    }

    private static XSalsa20Engine NewCipher(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, out byte[] macKey)
    {
        if (key.Length != KeySize) throw new ArgumentException($"secretbox key must be {KeySize} bytes", nameof(key));
        if (nonce.Length != NonceSize) throw new ArgumentException($"secretbox nonce must be {NonceSize} bytes", nameof(nonce));
        var engine = new XSalsa20Engine();
        engine.Init(true, new ParametersWithIV(new KeyParameter(key.ToArray()), nonce.ToArray()));
        macKey = new byte[32];
        engine.ProcessBytes(new byte[32], 0, 32, macKey, 0);
        return engine;
    }

    private static byte[] Poly1305Tag(byte[] macKey, ReadOnlySpan<byte> message)
    {
        var mac = new Poly1305();
        mac.Init(new KeyParameter(macKey));
        mac.BlockUpdate(message);
        var tag = new byte[TagSize];
        mac.DoFinal(tag, 0);
        return tag;
    }
}
