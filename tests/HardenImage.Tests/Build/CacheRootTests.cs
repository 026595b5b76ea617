using HardenImage.Build;
using Xunit;

namespace HardenImage.Tests.Build;

/// <summary>Every command finds the cache the same way (HardenPaths is the one resolution; prune inspects what builds write).</summary>
public class CacheRootTests
{
    [Fact]
    public void CacheRoot_PrefersHardenCacheThenXdgThenHome()
    {
        Assert.Equal("/c", HardenPaths.CacheRoot(n => n switch { "HARDEN_CACHE" => "/c", "XDG_CACHE_HOME" => "/x", _ => "/h" }));
        Assert.Equal("/x/hardenimage", HardenPaths.CacheRoot(n => n switch { "XDG_CACHE_HOME" => "/x", "HOME" => "/h", _ => null }));
        Assert.Equal("/h/.cache/hardenimage", HardenPaths.CacheRoot(n => n == "HOME" ? "/h" : null));
    }

    [Fact]
    public void RelativeXdgCacheHome_IsIgnored_NotACacheInTheWorkingDirectory()
    {
        // The XDG spec: relative paths in these variables are invalid. Taken, the cache would follow the working directory.
        Assert.Equal("/h/.cache/hardenimage", HardenPaths.CacheRoot(n => n switch { "XDG_CACHE_HOME" => "rel/cache", "HOME" => "/h", _ => null }));
    }

    [Fact]
    public void RelativeHardenCache_IsMadeAbsolute_AndBlankIsUnset()
    {
        Assert.Equal(Path.GetFullPath("here/cache"), HardenPaths.CacheRoot(n => n == "HARDEN_CACHE" ? "here/cache" : n == "HOME" ? "/h" : null));
        Assert.Equal("/h/.cache/hardenimage", HardenPaths.CacheRoot(n => n == "HARDEN_CACHE" ? "  " : n == "HOME" ? "/h" : null));
    }
}
