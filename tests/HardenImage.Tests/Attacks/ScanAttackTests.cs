using System.Text;
using HardenImage.Common;
using HardenImage.Scan;
using HardenImage.Tests.Infrastructure;
using HardenImage.Tests.Sbom;
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

    [Trait("Category", "Integration")]
    [Fact]
    public void ForgedAdvisoryIndex_IsReportedByTheScanCommand_AsAWarningNamingTheEntry()
    {
        using var dir = new TempDir("hi-attack-scancli");
        var layout = HardenImage.Oci.OciLayout.OpenOrCreate(dir.Combine("artifacts", "oci"));
        var digest = new TestImage().OsRelease().Package("libc6", "2.41-10", source: "glibc").WriteTo(layout);
        var build = new { images = new[] { new { name = "base", index = "sha256:" + new string('0', 64), architectures = new[] { new { architecture = "amd64", manifest = digest, config = "sha256:" + new string('1', 64), layers = Array.Empty<string>() } } } } };
        File.WriteAllText(dir.Combine("artifacts", "build.json"), System.Text.Json.JsonSerializer.Serialize(build));
        var lockPath = ScanFixtures.WriteLock(dir.Combine("images.lock.json"), "base", TestImage.Locked("libc6", "2.41-10", "glibc", "2.41-10"));
        var policy = dir.Combine("lenient.yaml");
        File.WriteAllText(policy, "failOnFixable: []\nmaxUnfixed: {}\n");
        string[] scan = ["scan", "--layout", dir.Combine("artifacts", "oci"), "--lock", lockPath, "--out", dir.Combine("artifacts"),
            "--db", ScanFixtures.RealDb, "--cache", dir.Combine("cache"), "--policy", policy];
        var env = new Dictionary<string, string> { [CacheAuthenticationKey.EnvironmentVariable] = "scan-cli-attack-key-0123456789abcdef" };

        var first = HardenImage.Tests.Cli.BadInputTests.Harden(dir.Path, scan, env);
        Assert.True(first.Code == 0, first.StdOut + first.StdErr);
        Assert.DoesNotContain("was not trusted", first.StdOut);
        var entry = Assert.Single(Directory.GetFiles(dir.Combine("cache", "advisory-index")));
        // The cache writer replaces the entry (no key, so no valid MAC): the scan rebuilds it and says so.
        File.WriteAllBytes(entry, [.. File.ReadAllBytes(entry)[..^1], 0]);
        var second = HardenImage.Tests.Cli.BadInputTests.Harden(dir.Path, scan, env);
        Assert.True(second.Code == 0, second.StdOut + second.StdErr);
        // Console output may wrap at any width: compare without white space.
        static string Flat(string s) => System.Text.RegularExpressions.Regex.Replace(s, @"\s+", "");
        Assert.Contains(Flat($"warning: the cached advisory index {entry} was not trusted (does not authenticate with this machine's cache key"), Flat(second.StdOut));
        Assert.Contains(Flat("rebuilt it from " + ScanFixtures.RealDb), Flat(second.StdOut));
        var third = HardenImage.Tests.Cli.BadInputTests.Harden(dir.Path, scan, env);
        Assert.DoesNotContain("was not trusted", third.StdOut);
        Assert.Contains("cached index", third.StdOut);
    }

    [Trait("Category", "Integration")]
    [Theory]
    [InlineData("zero-symlink")]
    [InlineData("fifo")]
    [InlineData("symlink-out")]
    [InlineData("dir-symlink-out")]
    [InlineData("oversized")]
    public async Task AdvisoryData_WithAnEndlessOrForeignFile_IsRefusedNamingIt_NotHashedForEver(string planted)
    {
        using var cache = new TempDir("hi-attack-idx");
        using var db = new TempDir("hi-attack-db");
        using var outside = new TempDir("hi-attack-outside");
        File.Copy(ScanFixtures.Data("vulndb", "debian", "anchore-vunnel-fixtures", "debian.json"), db.Combine("debian.json"));
        var store = new AdvisoryIndexStore(cache.Path, Key);
        var honest = store.LoadOrBuild(db.Path);
        var entry = store.CachePathFor(honest.DataDigest);
        var entryBytes = File.ReadAllBytes(entry);
        // A symlink to a regular file inside the data is data like any other.
        File.CreateSymbolicLink(db.Combine("alias.json"), "debian.json");
        Assert.StartsWith("sha256:", AdvisoryIndexStore.ComputeDataDigest(db.Path));
        File.Delete(db.Combine("alias.json"));

        var bad = db.Combine("zz.json");
        string reason;
        switch (planted)
        {
            case "zero-symlink": File.CreateSymbolicLink(bad, "/dev/zero"); reason = "a symlink in the advisory data"; break;
            case "fifo": RequiredService.RunOk("mkfifo", [bad]); reason = "not a regular file (a FIFO"; break;
            case "symlink-out":
                File.WriteAllText(outside.Combine("other.json"), "[]");
                File.CreateSymbolicLink(bad, outside.Combine("other.json")); reason = "that leaves it"; break;
            case "dir-symlink-out":
                RequiredService.RunOk("mkfifo", [outside.Combine("pipe.json")]);
                Directory.CreateSymbolicLink(bad, outside.Path); reason = "names a directory"; break;
            default:
                using (var fs = File.Create(bad)) fs.SetLength(InputLimits.MaxAdvisoryFileBytes + 1); // sparse: no disk used
                reason = "advisory file"; break;
        }

        // A hang ends in a TimeoutException instead of blocking the test run.
        var e = await Assert.ThrowsAsync<HardenException>(() => Task.Run(() => new AdvisoryIndexStore(cache.Path, Key).LoadOrBuild(db.Path)).WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.StartsWith(bad, e.Message);
        Assert.Contains(reason, e.Message);
        if (planted == "oversized") Assert.Contains("larger than", e.Message);
        // The index built from the honest data is still there, unchanged.
        Assert.Equal(entryBytes, File.ReadAllBytes(entry));
    }

    [Trait("Category", "Integration")]
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
[Trait("Category", "Integration")]
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
