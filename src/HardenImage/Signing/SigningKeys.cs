using HardenImage.Common;

namespace HardenImage.Signing;

/// <summary>The key a sign run uses, and whether it is the development key generated beside the artifacts.</summary>
/// <param name="Reference">A key file path or awskms:// reference.</param>
/// <param name="Generated">The development key pair written by this run (said loudly by the caller), else null.</param>
/// <param name="GeneratedWithEmptyPassword">True when <paramref name="Generated"/> is encrypted with the empty password.</param>
public sealed record SigningKeyChoice(string Reference, bool IsDevelopmentKey, GeneratedKeyPair? Generated, bool GeneratedWithEmptyPassword)
{
    /// <summary>How the key is named in "signed with …": a KMS reference as given, a file by its full path.</summary>
    public string Display => Reference.StartsWith("awskms://", StringComparison.Ordinal) ? Reference : Path.GetFullPath(Reference);
}

/// <summary>
/// Which key <c>harden sign</c> and <c>harden model sign</c> sign with: --key, else HARDEN_SIGNING_KEY, else the
/// development key ARTIFACTS/keys/cosign.key, generated on first use (threat R: the caller says so loudly).
/// </summary>
public static class SigningKeys
{
    /// <summary>The development key of the default artifacts directory.</summary>
    public const string DefaultKey = "artifacts/keys/cosign.key";

    /// <summary>--key, else HARDEN_SIGNING_KEY, else the development key; an empty option or variable is unset.</summary>
    public static string ResolveReference(string? option, Func<string, string?>? environment, string developmentKey) =>
        EnvironmentSetting.Given(option) ?? EnvironmentSetting.Get("HARDEN_SIGNING_KEY", environment) ?? developmentKey;

    /// <summary>Resolves the key for <paramref name="artifactsDir"/>; generates the development key there when it is the one chosen and missing.</summary>
    public static SigningKeyChoice Choose(string? option, string artifactsDir)
    {
        // The development key lives with the artifacts it signs (artifacts/keys/cosign.key by default).
        var developmentKey = Path.Combine(artifactsDir, "keys", KeyPairGenerator.PrivateKeyFileName);
        var reference = ResolveReference(option, null, developmentKey);
        GeneratedKeyPair? generated = null;
        var emptyPassword = false;
        if (EnvironmentSetting.Given(option) == null && reference == developmentKey && !File.Exists(developmentKey))
        {
            var password = Environment.GetEnvironmentVariable(KeyPasswordSource.HardenVariable)
                           ?? Environment.GetEnvironmentVariable(KeyPasswordSource.CosignVariable) ?? "";
            generated = new KeyPairGenerator().WriteTo(Path.GetDirectoryName(Path.GetFullPath(developmentKey))!, password, overwrite: false);
            emptyPassword = password.Length == 0;
        }
        return new SigningKeyChoice(reference, reference == developmentKey || reference == DefaultKey, generated, emptyPassword);
    }

    /// <summary>For the generated default key an unset password means the empty one; other keys prompt or fail.</summary>
    public static KeyPasswordSource PasswordsFor(bool isDevelopmentKey)
    {
        if (isDevelopmentKey && Environment.GetEnvironmentVariable(KeyPasswordSource.HardenVariable) == null
            && Environment.GetEnvironmentVariable(KeyPasswordSource.CosignVariable) == null)
            return new KeyPasswordSource(name => name == KeyPasswordSource.HardenVariable ? "" : null, null, interactive: false);
        return KeyPasswordSource.FromEnvironmentOrTerminal();
    }

    /// <summary>The signer for a chosen key (KMS keys through <paramref name="kms"/>); dispose it when it is IDisposable.</summary>
    public static Task<ISigner> OpenAsync(SigningKeyChoice key, AwsKmsOptions kms, CancellationToken ct) =>
        new SignerFactory(PasswordsFor(key.IsDevelopmentKey), kms).FromReferenceAsync(key.Reference, ct);
}
