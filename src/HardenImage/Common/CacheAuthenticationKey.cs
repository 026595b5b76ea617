using System.Security.Cryptography;
using System.Text;

namespace HardenImage.Common;

/// <summary>
/// The secret that authenticates derived cache entries (HMAC-SHA256). It is never stored in the cache: a CI cache
/// is shared and restored from other runs, so whoever can write the cache must not be able to forge an entry.
/// Taken from <c>HARDEN_CACHE_KEY</c> (CI: a masked secret variable), else from a per-user key file outside the cache
/// (<c>$XDG_CONFIG_HOME/hardenimage/cache.key</c> or <c>~/.config/hardenimage/cache.key</c>, created 0600 on first use).
/// A fresh machine has a fresh key, so a restored cache's derived entries are re-derived once — never trusted.
/// </summary>
public sealed class CacheAuthenticationKey
{
    public const string EnvironmentVariable = "HARDEN_CACHE_KEY";
    private readonly byte[] _key;

    public CacheAuthenticationKey(ReadOnlySpan<byte> secret)
    {
        if (secret.Length < 16) throw new HardenException($"the cache key must have at least 16 bytes ({EnvironmentVariable} or the key file); generate one with 'openssl rand -hex 32'.");
        // Domain-separated, so the same secret used elsewhere does not yield the same MACs.
        _key = HMACSHA256.HashData(secret, "hardenimage cache v1"u8);
    }

    /// <summary>HARDEN_CACHE_KEY, else the per-user key file (created when missing). Refuses a key file inside the cache.</summary>
    public static CacheAuthenticationKey Load(string cacheRoot) =>
        Load(cacheRoot, DefaultKeyPath(), Environment.GetEnvironmentVariable(EnvironmentVariable));

    /// <summary><see cref="Load(string)"/> with the key file and the environment value given (tests).</summary>
    public static CacheAuthenticationKey Load(string cacheRoot, string keyFile, string? fromEnv)
    {
        if (!string.IsNullOrEmpty(fromEnv)) return new CacheAuthenticationKey(Encoding.UTF8.GetBytes(fromEnv));
        var full = Path.GetFullPath(keyFile);
        var root = Path.GetFullPath(cacheRoot).TrimEnd('/') + "/";
        if (full.StartsWith(root, StringComparison.Ordinal))
            throw new HardenException($"cache key file {full} lies inside the cache {cacheRoot}: a cache writer could read it. Set {EnvironmentVariable} or move XDG_CONFIG_HOME out of the cache.");
        if (!File.Exists(full))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            var tmp = AtomicFile.TempPathFor(full);
            try
            {
                var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
                if (!OperatingSystem.IsWindows()) create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                using (var fs = new FileStream(tmp, create))
                    fs.Write(Encoding.ASCII.GetBytes(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)) + "\n"));
                // Two processes creating it at once: the first rename wins, the other reads the winner's key.
                try { File.Move(tmp, full, overwrite: false); } catch (IOException) when (File.Exists(full)) { }
            }
            finally { AtomicFile.TryDelete(tmp); }
        }
        byte[] bytes;
        try { bytes = File.ReadAllBytes(full); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HardenException($"cannot read the cache key {full}: {e.Message}. Set {EnvironmentVariable} instead.", inner: e);
        }
        return new CacheAuthenticationKey(bytes.AsSpan().TrimEnd("\n"u8));
    }

    public static string DefaultKeyPath()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME");
        var dir = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config");
        return Path.Combine(dir, "hardenimage", "cache.key");
    }

    public byte[] Mac(ReadOnlySpan<byte> data) => HMACSHA256.HashData(_key, data);

    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> mac) =>
        mac.Length == 32 && CryptographicOperations.FixedTimeEquals(Mac(data), mac);
}
