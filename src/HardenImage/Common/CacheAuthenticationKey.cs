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

    /// <summary>The one length rule for the cache secret (both this key and <c>Build.CacheKey</c> obey it).</summary>
    public const int MinimumSecretCharacters = 32;

    public CacheAuthenticationKey(ReadOnlySpan<byte> secret)
    {
        RequireSecret(secret, "the cache key");
        // Domain-separated, so the same secret used elsewhere does not yield the same MACs.
        _key = HMACSHA256.HashData(secret, "hardenimage cache v1"u8);
    }

    /// <summary>HARDEN_CACHE_KEY, else the per-user key file (created when missing). Refuses a key file inside the cache.</summary>
    public static CacheAuthenticationKey Load(string cacheRoot) =>
        Load(cacheRoot, DefaultKeyPath(), Environment.GetEnvironmentVariable(EnvironmentVariable));

    /// <summary><see cref="Load(string)"/> with the key file and the environment value given (tests).</summary>
    public static CacheAuthenticationKey Load(string cacheRoot, string keyFile, string? fromEnv) =>
        new(LoadSecret(cacheRoot, keyFile, fromEnv).Secret);

    /// <summary>
    /// The one place the cache secret is found (HMACs of parsed indices here, seals of unpacked trees and build
    /// records in <c>Build.CacheKey</c>): <paramref name="fromEnv"/> when set, else the key file, created 0600 when
    /// missing. Refused: a key file inside the cache — compared by real path, so a symlinked cache root or config
    /// directory cannot hide it — and a key file that others may read or write (threat I/T: whoever can read the
    /// key can forge every derived cache entry).
    /// </summary>
    public static (byte[] Secret, string Origin) LoadSecret(string cacheRoot, string keyFile, string? fromEnv)
    {
        if (!string.IsNullOrEmpty(fromEnv)) return (RequireSecret(Encoding.UTF8.GetBytes(fromEnv), EnvironmentVariable), EnvironmentVariable);
        var full = Path.GetFullPath(keyFile);
        if (IsInside(full, cacheRoot) || IsInside(RealPath(full), RealPath(Path.GetFullPath(cacheRoot))))
            throw new HardenException($"cache key file {full} lies inside the cache {cacheRoot}: a cache writer could read it. Set {EnvironmentVariable} or move XDG_CONFIG_HOME out of the cache.");
        if (!File.Exists(full))
        {
            var tmp = AtomicFile.TempPathFor(full);
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(full)!);
                var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
                if (!OperatingSystem.IsWindows()) create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                using (var fs = new FileStream(tmp, create))
                    fs.Write(Encoding.ASCII.GetBytes(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)) + "\n"));
                // Two processes creating it at once: the first rename wins, the other reads the winner's key.
                try { File.Move(tmp, full, overwrite: false); } catch (IOException) when (File.Exists(full)) { }
            }
            catch (Exception e) when (e is UnauthorizedAccessException || e is IOException && !File.Exists(full))
            {
                throw new HardenException($"cannot create the cache key {full}: {e.Message}. Set {EnvironmentVariable} (e.g. from a CI secret) or make the directory writable.", inner: e);
            }
            finally { AtomicFile.TryDelete(tmp); }
        }
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(full) & OthersMayTouch) != 0)
            throw new HardenException($"cache key file {full} may be read or written by other users (mode {Convert.ToString((int)File.GetUnixFileMode(full), 8)}): " +
                                      $"whoever reads it can forge cache entries. Run 'chmod 600 {full}' (or delete it: a new one is made), or set {EnvironmentVariable}.");
        byte[] bytes;
        try { bytes = BoundedFile.ReadAllBytes(full, MaxKeyFileBytes, "cache key file"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HardenException($"cannot read the cache key {full}: {e.Message}. Set {EnvironmentVariable} instead.", inner: e);
        }
        return (RequireSecret(bytes, full), full);
    }

    /// <summary>
    /// The secret as UTF-8 text without surrounding white space, at least <see cref="MinimumSecretCharacters"/>
    /// characters; else one message naming where it came from (never the secret). A key that <c>lock</c> accepts
    /// is one <c>build</c> accepts.
    /// </summary>
    public static byte[] RequireSecret(ReadOnlySpan<byte> secret, string origin)
    {
        string text;
        try { text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(secret).Trim(); }
        catch (DecoderFallbackException) { text = ""; }
        if (text.Length < MinimumSecretCharacters)
            throw new HardenException($"{origin}: not a usable cache key (it must be text of at least {MinimumSecretCharacters} characters). " +
                                      $"Set {EnvironmentVariable} to one (e.g. 'openssl rand -hex 32'), or delete the key file and a new one is made.");
        return Encoding.UTF8.GetBytes(text);
    }

    private const long MaxKeyFileBytes = 4096;
    private const UnixFileMode OthersMayTouch = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    private static bool IsInside(string path, string root) =>
        path.StartsWith(Path.GetFullPath(root).TrimEnd('/') + "/", StringComparison.Ordinal);

    /// <summary>The real path (symlinks resolved) of the longest existing prefix of <paramref name="full"/>, plus the rest.</summary>
    internal static string RealPath(string full)
    {
        var rest = new Stack<string>();
        var at = full.TrimEnd('/');
        while (at.Length > 0 && !Directory.Exists(at) && !File.Exists(at))
        {
            rest.Push(Path.GetFileName(at));
            at = Path.GetDirectoryName(at) ?? "";
        }
        if (at.Length == 0) return full;
        var real = RealPathOfExisting(at);
        return rest.Count == 0 ? real : Path.Combine([real, .. rest]);
    }

    private static string RealPathOfExisting(string path)
    {
        // Resolve every component, as realpath(3) does: a symlink may sit at any level.
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var current = "/";
        for (int i = 0, hops = 0; i < parts.Length; i++)
        {
            var next = Path.Combine(current, parts[i]);
            var link = new FileInfo(next).LinkTarget;
            if (link != null && hops++ < 40)
            {
                var target = Path.GetFullPath(link, current);
                var remaining = parts.Skip(i + 1);
                parts = [.. target.Split('/', StringSplitOptions.RemoveEmptyEntries), .. remaining];
                current = "/";
                i = -1;
                continue;
            }
            current = next;
        }
        return current;
    }

    public static string DefaultKeyPath()
    {
        // XDG: a relative XDG_CONFIG_HOME is invalid and ignored (it would put the key in the working directory).
        var xdg = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME");
        var dir = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config");
        return Path.Combine(dir, "hardenimage", "cache.key");
    }

    public byte[] Mac(ReadOnlySpan<byte> data) => HMACSHA256.HashData(_key, data);

    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> mac) =>
        mac.Length == 32 && CryptographicOperations.FixedTimeEquals(Mac(data), mac);
}
