using System.Security.Cryptography;
using System.Text;
using HardenImage.Common;

namespace HardenImage.Build;

/// <summary>
/// The secret that seals derived cache entries (unpacked-tree manifests, build records) so that whoever can write
/// HARDEN_CACHE — a CI cache restored from another run, another user — cannot forge one (threat T: cache
/// poisoning). It never lives in the cache: it comes from <c>HARDEN_CACHE_KEY</c> (a CI secret) or from a
/// per-user file created on first use (<see cref="HardenPaths.CacheKeyFile"/>, mode 0600). An entry sealed with
/// another key is not an error: it is reported, derived again from the verified .deb and sealed with ours.
/// </summary>
public sealed class CacheKey
{
    public const string EnvironmentVariable = "HARDEN_CACHE_KEY";
    private const int MinimumSecretLength = 32;
    private readonly byte[] _key;

    private CacheKey(byte[] key, string origin)
    {
        _key = key;
        Origin = origin;
    }

    /// <summary>Where the key came from (the variable's name or the file's path; never the key itself).</summary>
    public string Origin { get; }

    /// <summary>A key from a secret string (tests, or a caller that has its own secret store).</summary>
    public static CacheKey FromSecret(string secret, string origin = "caller")
    {
        if (secret.Length < MinimumSecretLength)
            throw new HardenException($"{origin}: the cache key must be at least {MinimumSecretLength} characters (generate one with 'openssl rand -hex 32').");
        return new CacheKey(SHA256.HashData(Encoding.UTF8.GetBytes("harden-cache-key\n" + secret)), origin);
    }

    /// <summary>HARDEN_CACHE_KEY when set, else the per-user key file (created when missing).</summary>
    public static CacheKey Load(string cacheRoot)
    {
        var fromEnv = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(fromEnv)) return FromSecret(fromEnv, EnvironmentVariable);
        var file = HardenPaths.CacheKeyFile();
        var root = Path.GetFullPath(cacheRoot).TrimEnd('/') + "/";
        if (Path.GetFullPath(file).StartsWith(root, StringComparison.Ordinal))
            throw new HardenException($"{file}: the cache key file is inside the cache ({cacheRoot}), where a cache writer could read or replace it. " +
                                      $"Set {EnvironmentVariable} or move HARDEN_CACHE elsewhere.");
        if (!File.Exists(file)) CreateKeyFile(file);
        string text;
        try { text = File.ReadAllText(file).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HardenException($"{file}: cannot read the cache key ({e.Message}). Fix its permissions, delete it (a new one is made), or set {EnvironmentVariable}.");
        }
        if (text.Length < MinimumSecretLength)
            throw new HardenException($"{file}: not a cache key (expected at least {MinimumSecretLength} characters). Delete it and a new one is made, or set {EnvironmentVariable}.");
        return FromSecret(text, file);
    }

    private static void CreateKeyFile(string file)
    {
        var secret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)) + "\n";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            // CreateNew: two builds starting at once must not each write a different key; the loser reads the winner's.
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using var fs = new FileStream(file, options);
            fs.Write(Encoding.ASCII.GetBytes(secret));
            fs.Flush(flushToDisk: true);
        }
        catch (IOException) when (File.Exists(file)) { }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HardenException($"{file}: cannot create the cache key ({e.Message}). Set {EnvironmentVariable} (e.g. from a CI secret) or make the directory writable.");
        }
    }

    /// <summary>HMAC-SHA256 of <paramref name="parts"/> (length-prefixed, so no two part lists collide) for one purpose.</summary>
    public string Seal(string purpose, params string[] parts)
    {
        using var h = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _key);
        foreach (var p in parts.Prepend(purpose))
        {
            var bytes = Encoding.UTF8.GetBytes(p);
            h.AppendData(BitConverter.GetBytes(bytes.Length));
            h.AppendData(bytes);
        }
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    /// <summary>True when <paramref name="seal"/> is this key's seal of the parts (constant-time comparison).</summary>
    public bool Verify(string seal, string purpose, params string[] parts)
    {
        var expected = Encoding.ASCII.GetBytes(Seal(purpose, parts));
        var actual = Encoding.ASCII.GetBytes(seal);
        return CryptographicOperations.FixedTimeEquals(expected, actual);
    }
}
