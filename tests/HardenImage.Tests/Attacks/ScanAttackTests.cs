using System.Text;
using HardenImage.Common;
using HardenImage.Scan;
using HardenImage.Tests.Infrastructure;
using HardenImage.Tests.Scan;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// Whoever writes the scan cache (a CI cache restored from another run) must not be able to decide which advisories
/// the gate sees. The parsed advisory index is derived data: its SHA-256 trailer is no seal, a forger recomputes it.
/// </summary>
public sealed class ScanAttackTests
{
    private static readonly CacheAuthenticationKey Key = new(Encoding.UTF8.GetBytes("scan-attack-tests-key-0123456789"));

    [Fact]
    public void ForgedAdvisoryIndex_WithAValidChecksum_ThatDropsAnAdvisory_IsNotTrusted_ButRebuilt()
    {
        using var cache = new TempDir("hi-attack-idx");
        using var db = new TempDir("hi-attack-db");
        File.Copy(ScanFixtures.Data("vulndb", "debian", "anchore-vunnel-fixtures", "debian.json"), db.Combine("debian.json"));
        var store = new AdvisoryIndexStore(cache.Path, Key);
        var honest = store.LoadOrBuild(db.Path);
        Assert.NotEmpty(honest.Lookup("Debian:12", "sope"));

        // The forger knows the public data, hence its digest; they write an index of the same digest without the
        // advisories of 'sope' — checksum and format are right, only our key is missing.
        var kept = honest.All.Where(r => r.Package != "sope").ToList();
        var forged = AdvisoryIndex.Create(kept, honest.DataDigest, honest.Sources).Serialize();
        File.WriteAllBytes(store.CachePathFor(honest.DataDigest), forged);

        var again = new AdvisoryIndexStore(cache.Path, Key).LoadOrBuild(db.Path);
        Assert.NotEmpty(again.Lookup("Debian:12", "sope"));

        // Also with a MAC of the forger's own key appended: rebuilt, and the reason is said.
        var attacker = new CacheAuthenticationKey(Encoding.UTF8.GetBytes("the attacker's key, not this machine's"));
        File.WriteAllBytes(store.CachePathFor(honest.DataDigest), [.. forged, .. attacker.Mac(forged)]);
        var third = new AdvisoryIndexStore(cache.Path, Key);
        Assert.NotEmpty(third.LoadOrBuild(db.Path).Lookup("Debian:12", "sope"));
        Assert.False(third.LastWasCacheHit);
        Assert.Contains("does not authenticate", third.LastRejected);

        // The rebuilt entry is ours again: the next scan is a cache hit with the advisory in it.
        var fourth = new AdvisoryIndexStore(cache.Path, Key);
        Assert.NotEmpty(fourth.LoadOrBuild(db.Path).Lookup("Debian:12", "sope"));
        Assert.True(fourth.LastWasCacheHit);
    }

    [Fact]
    public async Task AdvisoryIndexCache_PlantedFifo_DoesNotHangTheScan()
    {
        using var cache = new TempDir("hi-attack-idx");
        using var db = new TempDir("hi-attack-db");
        File.Copy(ScanFixtures.Data("vulndb", "debian", "anchore-vunnel-fixtures", "debian.json"), db.Combine("debian.json"));
        var store = new AdvisoryIndexStore(cache.Path, Key);
        var path = store.CachePathFor(AdvisoryIndexStore.ComputeDataDigest(db.Path));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        RequiredService.RunOk("mkfifo", [path]);

        // A hang ends in a TimeoutException instead of blocking the test run.
        var index = await Task.Run(() => store.LoadOrBuild(db.Path)).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.NotEmpty(index.Lookup("Debian:12", "sope"));
        Assert.Contains("not a regular file", store.LastRejected);
    }
}

/// <summary>`scan --db URL`: only what the URL served is advisory data, not what else lies in its cache directory.</summary>
public sealed class AdvisoryDownloadAttackTests
{
    private const string Served = """{"id":"PYSEC-SERVED-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"torch"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"9.0"}]}]}]}""";
    private const string Planted = """{"id":"PLANTED-1","modified":"2030-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"torch"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"0.1"}]}]}]}""";

    [Fact]
    public async Task FilePlantedBesideADownloadedFeed_IsNotAdvisoryData()
    {
        using var cache = new TempDir("hi-attack-dl");
        using var server = new HardenImage.Tests.Registry.LoopbackHttpServer(ctx => ctx.RespondAsync(200, Encoding.UTF8.GetBytes(Served), "application/json"));
        var url = $"http://{server.Authority}/feeds/advisories.json";
        var downloads = Path.Combine(cache.Path, "advisory-downloads", Sha256Hex.Of(Encoding.UTF8.GetBytes(url))[..16]);
        Directory.CreateDirectory(downloads);
        File.WriteAllText(Path.Combine(downloads, "planted.json"), Planted);

        using var http = AdvisoryFeedUpdater.CreateHttpClient();
        var path = await new AdvisoryDataLocator(http, cache.Path).ResolveAsync(url);
        var index = AdvisoryIndexStore.Build(path);

        Assert.Equal(["PYSEC-SERVED-1"], index.Lookup("PyPI", "torch").Select(r => r.Id));
    }
}
