using HardenImage.Common;

namespace HardenImage.Build;

/// <summary>Where things live by default: the cache (HARDEN_CACHE) and the artifacts directory.</summary>
public static class HardenPaths
{
    /// <summary>The --cache option when given (made absolute), else <see cref="CacheRoot()"/>: the one resolution every command uses.</summary>
    public static string CacheRoot(string? option) =>
        option == null ? CacheRoot()
        // Path.GetFullPath("") throws ArgumentException (exit 70, a crash file) for what is a bad value.
        : string.IsNullOrWhiteSpace(option) ? throw new HardenException($"--cache '{option}': expected a directory (harden's cache); leave --cache out to use HARDEN_CACHE or the default.")
        : Path.GetFullPath(option);

    /// <summary>HARDEN_CACHE, else $XDG_CACHE_HOME/hardenimage, else ~/.cache/hardenimage.</summary>
    public static string CacheRoot() => CacheRoot(Environment.GetEnvironmentVariable);

    /// <summary>
    /// <see cref="CacheRoot()"/> with the environment given (tests). A relative XDG_CACHE_HOME is invalid by the XDG
    /// spec and ignored, as for the key's XDG_CONFIG_HOME: it would put the cache wherever the command happens to run.
    /// </summary>
    public static string CacheRoot(Func<string, string?> environment)
    {
        var explicitCache = environment("HARDEN_CACHE");
        if (!string.IsNullOrWhiteSpace(explicitCache)) return Path.GetFullPath(explicitCache);
        var xdg = environment("XDG_CACHE_HOME");
        if (!string.IsNullOrWhiteSpace(xdg) && Path.IsPathRooted(xdg)) return Path.Combine(xdg, "hardenimage");
        var home = environment("HOME");
        if (string.IsNullOrWhiteSpace(home)) home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(home, ".cache", "hardenimage");
    }

    /// <summary>
    /// The per-user secret that seals cache entries (see <see cref="CacheKey"/>): $XDG_CONFIG_HOME/hardenimage/cache.key,
    /// else ~/.config/hardenimage/cache.key. Deliberately outside the cache, which may be shared or restored.
    /// </summary>
    public static string CacheKeyFile() => CacheAuthenticationKey.DefaultKeyPath();
}
