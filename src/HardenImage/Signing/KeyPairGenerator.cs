using System.Security.Cryptography;
using HardenImage.Common;

namespace HardenImage.Signing;

/// <summary>Where a generated key pair was written.</summary>
public sealed record GeneratedKeyPair(string PrivateKeyPath, string PublicKeyPath, string PublicKeyPem);

/// <summary>
/// Generates an ECDSA P-256 key pair as cosign does: <c>cosign.key</c> (encrypted, scrypt N=65536) and
/// <c>cosign.pub</c> (SPKI PEM). Refuses to overwrite an existing key unless asked, because replacing a signing key
/// silently orphans every signature made with it (threat: Repudiation / Denial of service).
/// </summary>
public sealed class KeyPairGenerator
{
    public const string PrivateKeyFileName = "cosign.key";
    public const string PublicKeyFileName = "cosign.pub";

    private readonly ScryptParameters _kdf;

    public KeyPairGenerator(ScryptParameters? kdf = null) => _kdf = kdf ?? ScryptParameters.Default;

    /// <summary>Returns (encrypted private key PEM, public key PEM) without touching the disk.</summary>
    public (string PrivateKeyPem, string PublicKeyPem) Generate(string password)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var pkcs8 = key.ExportPkcs8PrivateKey();
        try
        {
            return (CosignKeyFile.Encrypt(pkcs8, password, _kdf), PemKeys.PublicKeyPem(key.ExportSubjectPublicKeyInfo()));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    public GeneratedKeyPair WriteTo(string directory, string password, bool overwrite)
    {
        var privatePath = Path.GetFullPath(Path.Combine(directory, PrivateKeyFileName));
        var publicPath = Path.GetFullPath(Path.Combine(directory, PublicKeyFileName));
        if (!overwrite)
        {
            foreach (var p in new[] { privatePath, publicPath })
                if (File.Exists(p))
                    throw new HardenException($"{p} already exists; not overwriting a signing key. Pass --force to replace it "
                        + "(signatures made with the old key will no longer verify with the new cosign.pub).");
        }
        var (privatePem, publicPem) = Generate(password);
        Directory.CreateDirectory(Path.GetDirectoryName(privatePath)!);
        AtomicFile.WriteAllText(privatePath, privatePem);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(privatePath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        AtomicFile.WriteAllText(publicPath, publicPem);
        return new GeneratedKeyPair(privatePath, publicPath, publicPem);
    }
}
