using System.Security.Cryptography;
using HardenImage.Common;

namespace HardenImage.Signing;

/// <summary>Turns a key reference (a key file path or <c>awskms://...</c>) into an <see cref="ISigner"/>.</summary>
public sealed class SignerFactory
{
    private readonly KeyPasswordSource _passwords;
    private readonly AwsKmsOptions _kmsOptions;

    public SignerFactory(KeyPasswordSource passwords, AwsKmsOptions? kmsOptions = null)
    {
        _passwords = passwords;
        _kmsOptions = kmsOptions ?? new AwsKmsOptions();
    }

    public async Task<ISigner> FromReferenceAsync(string reference, CancellationToken ct = default)
    {
        if (string.IsNullOrWhiteSpace(reference))
            throw new HardenException("no signing key given. Pass --key <cosign.key|awskms:///...> or run 'harden keygen'.");
        if (AwsKmsKeyReference.IsKmsReference(reference))
            return await AwsKmsSigner.CreateAsync(AwsKmsKeyReference.Parse(reference), _kmsOptions, ct);
        if (reference.Contains("://", StringComparison.Ordinal))
            throw new HardenException($"key reference '{reference}': only key files and awskms:// are supported.");
        if (!File.Exists(reference))
            throw new HardenException($"signing key file '{reference}' does not exist. Create one with 'harden keygen' or pass --key.");
        var text = System.Text.Encoding.UTF8.GetString(BoundedFile.ReadAllBytes(reference, InputLimits.MaxKeyringBytes, "key file"));
        return new EcdsaFileSigner(PemKeys.LoadPrivateKey(text, () => _passwords.GetPassword(reference), reference));
    }

    /// <summary>
    /// The verification key for a reference: a PEM <c>PUBLIC KEY</c> file, a private key file (its public half;
    /// may ask for the password), or <c>awskms://...</c> (GetPublicKey). The caller disposes the key.
    /// </summary>
    public async Task<ECDsa> PublicKeyFromReferenceAsync(string reference, CancellationToken ct = default)
    {
        if (!AwsKmsKeyReference.IsKmsReference(reference) && File.Exists(reference))
        {
            var text = System.Text.Encoding.UTF8.GetString(BoundedFile.ReadAllBytes(reference, InputLimits.MaxKeyringBytes, "key file"));
            if (text.Contains("-----BEGIN PUBLIC KEY-----", StringComparison.Ordinal)) return PemKeys.ReadPublicKey(text, reference);
        }
        var signer = await FromReferenceAsync(reference, ct);
        try { return PemKeys.ReadPublicKey(signer.PublicKeySpki, reference); }
        finally { (signer as IDisposable)?.Dispose(); }
    }
}
