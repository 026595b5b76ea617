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
        var text = CacheAuthenticationKey.RequireSecret(Encoding.UTF8.GetBytes(secret), origin);
        return new CacheKey(SHA256.HashData(Encoding.UTF8.GetBytes("harden-cache-key\n" + Encoding.UTF8.GetString(text))), origin);
    }

    /// <summary>HARDEN_CACHE_KEY when set, else the per-user key file (created when missing).</summary>
    public static CacheKey Load(string cacheRoot) =>
        Load(cacheRoot, HardenPaths.CacheKeyFile(), Environment.GetEnvironmentVariable(EnvironmentVariable));

    /// <summary><see cref="Load(string)"/> with the key file and the environment value given (tests). The secret is
    /// found where <see cref="CacheAuthenticationKey"/> finds it (one key, one set of checks for both).</summary>
    public static CacheKey Load(string cacheRoot, string keyFile, string? fromEnv)
    {
        var (secret, origin) = CacheAuthenticationKey.LoadSecret(cacheRoot, keyFile, fromEnv);
        return FromSecret(Encoding.UTF8.GetString(secret), origin);
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
