using HardenImage.Build;
using HardenImage.Common;

namespace HardenImage.Tests.Build;

/// <summary>The secret that seals cache entries: strong enough, never inside the cache, and seals that cannot be spliced.</summary>
public sealed class CacheKeyTests
{
    private static readonly CacheKey Key = CacheKey.FromSecret(new string('s', 32), "test");

    [Fact]
    public void ShortSecret_IsRefused_WithHowToMakeOne()
    {
        var e = Assert.Throws<HardenException>(() => CacheKey.FromSecret("password", CacheKey.EnvironmentVariable));
        Assert.Equal("HARDEN_CACHE_KEY: not a usable cache key (it must be text of at least 32 characters). Set HARDEN_CACHE_KEY to one (e.g. 'openssl rand -hex 32'), or delete the key file and a new one is made.", e.Message);
    }

    [Fact]
    public void KeyFileInsideTheCache_IsRefused()
    {
        // A cache rooted above the key file would let a cache writer read or replace the key.
        var keyDir = Path.GetDirectoryName(Path.GetDirectoryName(HardenPaths.CacheKeyFile()))!;
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(CacheKey.EnvironmentVariable)))
            Assert.Fail("HARDEN_CACHE_KEY is set in the test environment; unset it to test the key file");
        var e = Assert.Throws<HardenException>(() => CacheKey.Load(keyDir));
        Assert.Contains("lies inside the cache", e.Message);
    }

    [Fact]
    public void Seal_BindsPurposeAndEveryPart_AndPartsCannotBeSpliced()
    {
        var seal = Key.Seal("unpacked-tree-v3", "deb", "manifest");
        Assert.True(Key.Verify(seal, "unpacked-tree-v3", "deb", "manifest"));
        Assert.False(Key.Verify(seal, "build-record-v1", "deb", "manifest"));
        Assert.False(Key.Verify(seal, "unpacked-tree-v3", "deb", "other"));
        Assert.False(Key.Verify(seal, "unpacked-tree-v3", "de", "bmanifest"));
        Assert.False(CacheKey.FromSecret(new string('t', 32)).Verify(seal, "unpacked-tree-v3", "deb", "manifest"));
        Assert.False(Key.Verify("not hex", "unpacked-tree-v3", "deb", "manifest"));
    }
}
