using System.Security.Cryptography;

namespace HardenImage.Signing;

/// <summary>
/// Something that signs with an ECDSA P-256 key: a key file in memory or a key that never leaves AWS KMS.
/// Signatures are ASN.1 DER over SHA-256 of the bytes, the form cosign, Kyverno and openssl verify.
/// </summary>
public interface ISigner
{
    /// <summary>An identifier for the key (the KMS key ARN), or null for a local key; for reports only.</summary>
    string? KeyId { get; }

    /// <summary>The public key as SubjectPublicKeyInfo DER.</summary>
    byte[] PublicKeySpki { get; }

    /// <summary>Signs <paramref name="data"/>: ECDSA P-256 over SHA-256(data), DER-encoded.</summary>
    Task<byte[]> SignAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default);
}

/// <summary>Signs with a P-256 key held in this process (from a cosign key file or PEM).</summary>
public sealed class EcdsaFileSigner : ISigner, IDisposable
{
    private readonly ECDsa _key;

    /// <summary>Takes ownership of <paramref name="key"/>.</summary>
    public EcdsaFileSigner(ECDsa key, string? keyId = null)
    {
        _key = key;
        KeyId = keyId;
        PublicKeySpki = key.ExportSubjectPublicKeyInfo();
    }

    public string? KeyId { get; }

    public byte[] PublicKeySpki { get; }

    public Task<byte[]> SignAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default) =>
        Task.FromResult(_key.SignData(data.Span, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));

    public void Dispose() => _key.Dispose();
}
