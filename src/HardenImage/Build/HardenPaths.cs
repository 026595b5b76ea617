using HardenImage.Common;

namespace HardenImage.Build;

/// <summary>Where things live by default: the cache (HARDEN_CACHE) and the artifacts directory.</summary>
public static class HardenPaths
{
    /// <summary>The --cache option when given (made absolute), else <see cref="CacheRoot()"/>: the one resolution every command uses.</summary>
    public static string CacheRoot(string? option) => option != null ? Path.GetFullPath(option) : CacheRoot();

    /// <summary>HARDEN_CACHE, else $XDG_CACHE_HOME/hardenimage, else ~/.cache/hardenimage.</summary>
    public static string CacheRoot()
    {
        var explicitCache = Environment.GetEnvironmentVariable("HARDEN_CACHE");
        if (!string.IsNullOrEmpty(explicitCache)) return Path.GetFullPath(explicitCache);
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var baseDir = !string.IsNullOrEmpty(xdg) ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(baseDir, "hardenimage");
    }

    /// <summary>
    /// The per-user secret that seals cache entries (see <see cref="CacheKey"/>): $XDG_CONFIG_HOME/hardenimage/cache.key,
    /// else ~/.config/hardenimage/cache.key. Deliberately outside the cache, which may be shared or restored.
    /// </summary>
    public static string CacheKeyFile() => CacheAuthenticationKey.DefaultKeyPath();
}
