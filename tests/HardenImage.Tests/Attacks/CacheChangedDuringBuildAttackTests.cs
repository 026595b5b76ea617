using HardenImage.Build;
using HardenImage.Cache;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Tests.Build;
using HardenImage.Tests.Cache;
using HardenImage.Tests.Fixtures;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// The cache changes under a running build (a shared CI cache): <c>harden cache prune</c> removes entries, another
/// writer replaces a file harden verified. Every build gives the images of an undisturbed build or stops with one
/// clear line, and the build after is clean — never another image, a crash, a hang or a cache that poisons the next
/// build.
/// </summary>
[Trait("Category", "Integration")]
public sealed class CacheChangedDuringBuildAttackTests : IAsyncLifetime
{
    private readonly ImageSetWorkspace _w = new();
    private List<(string, string)> _clean = null!;

    public async Task InitializeAsync()
    {
        await _w.LockAsync();
        _clean = Digests((await _w.BuildAsync()).Manifest);
    }

    public Task DisposeAsync()
    {
        _w.Dispose();
        return Task.CompletedTask;
    }

    private static List<(string, string)> Digests(BuildManifest m) => m.Images.Select(i => (i.Name, i.Index)).Order().ToList();

    [Fact]
    public async Task PruneOfEverything_InALoop_WhileBuildsRun_GivesTheSameImagesOrOneClearLine_AndTheNextBuildIsClean()
    {
        var pruneFailures = new List<string>();
        var same = 0;
        var stopped = new List<string>();
        var runs = await Race.RunAsync(_ =>
        {
            var r = CachePruner.Execute(CachePruner.Plan(CacheInventory.Read(_w.Cache), new PruneOptions(TimeSpan.Zero, 0), DateTimeOffset.UtcNow), _w.Combine("no.key"));
            pruneFailures.AddRange(r.Failures.Select(f => $"{f.Path}: {f.Error}"));
            Thread.Sleep(Random.Shared.Next(0, 400)); // lands anywhere in a build: before, during and after its fetch
        }, async () =>
        {
            try
            {
                await _w.LockAsync().WaitAsync(TimeSpan.FromMinutes(2)); // proves the lock: index data and InRelease files from the cache
                var built = await _w.BuildAsync(null, null, force: same % 2 == 0).WaitAsync(TimeSpan.FromMinutes(2));
                Assert.Equal(_clean, Digests(built.Manifest));
                same++;
            }
            catch (HardenException e)
            {
                Assert.DoesNotContain('\n', e.Message.Trim());
                stopped.Add(e.Message);
            }
        }, TimeSpan.FromSeconds(20));

        Assert.True(runs > 20, $"prune ran only {runs} times");
        Console.WriteLine($"prune runs {runs}, same images {same}, stopped {stopped.Count}: {string.Join(" | ", stopped.Select(m => m[..Math.Min(60, m.Length)]).Distinct())}");
        Assert.True(same > 0, "no build finished while prune ran: " + string.Join(" | ", stopped.Distinct()));
        // Every stop is a documented one: a .deb removed between its fetch and its unpack, an index right after its download.
        Assert.All(stopped, m => Assert.Matches("run the build again|Run again", m));
        // The storm left nothing that poisons the next build: undisturbed, it gives the same images.
        var after = await _w.BuildAsync(null, null, force: true);
        Assert.Equal(_clean, Digests(after.Manifest));
        Assert.Equal(_clean, Digests((await _w.BuildAsync()).Manifest));
    }

    [Fact]
    public async Task DebReplacedInTheCache_AfterTheFetchVerifiedIt_BeforeItIsUnpacked_NeverReachesAnImage()
    {
        // The fetch verifies each cached .deb by its path; the build unpacks it later. The attacker's base-files: same
        // name, version and architecture, one file more, renamed over the verified one in between.
        using var evil = new AptRepositoryFixture();
        evil.Add(new FakePackage("base-files", "13.8", "amd64").Essential()
            .WithFile("/etc/os-release", "PRETTY_NAME=\"Fixture GNU/Linux\"\nID=debian\nVERSION_ID=\"13\"\n")
            .WithFile("/usr/bin/backdoor", "evil", (UnixFileMode)Convert.ToInt32("755", 8))).Publish();
        var lockFile = LockFile.Load(_w.LockPath);
        var baseFiles = lockFile.Images.SelectMany(i => i.Architectures).Where(a => a.Architecture == "amd64")
            .SelectMany(a => a.Packages).First(p => p.Name == "base-files");
        var cached = Path.Combine(_w.Cache, "debs", "sha256", baseFiles.Sha256);
        foreach (var p in Directory.GetFiles(Path.Combine(_w.Cache, "unpacked-v4"))) File.Delete(p); // the build must read the .debs

        BuildOutcome? swapped = null;
        HardenException? refused = null;
        try
        {
            swapped = await _w.BuildAsync(_ =>
            {
                File.Copy(evil.DebPath("base-files"), cached + ".planted");
                File.Move(cached + ".planted", cached, overwrite: true);
                return Task.CompletedTask;
            }, unpackWhileFetching: false, force: true);
        }
        catch (HardenException e) { refused = e; }

        if (swapped != null) Assert.Equal(_clean, Digests(swapped.Manifest));
        else Assert.Contains("is not the .deb the fetch verified", refused!.Message);
        // Nothing of it was sealed into the cache either: the next undisturbed build is the clean one.
        File.Delete(cached);
        Assert.Equal(_clean, Digests((await _w.BuildAsync(null, null, force: true)).Manifest));
    }

    [Fact]
    public async Task UsesRecordedByABuild_TouchOnlyTheCache_NeverTheArtifacts_NorChangeTheImages()
    {
        // LastUse sets modification times on every cache read: it must never reach an output (an OCI blob, build.json)
        // nor make a build other than up to date, or other images.
        foreach (var f in Directory.EnumerateFiles(_w.Cache, "*", SearchOption.AllDirectories)) CacheTree.Age(f, TimeSpan.FromDays(3));
        var artifacts = CacheTree.Snapshot(_w.Artifacts);

        var upToDate = await _w.BuildAsync();

        Assert.True(upToDate.UpToDate);
        Assert.Equal(_clean, Digests(upToDate.Manifest));
        Assert.Equal(artifacts, CacheTree.Snapshot(_w.Artifacts));
        Assert.Contains(Directory.EnumerateFiles(_w.Cache, "*", SearchOption.AllDirectories), f => DateTime.UtcNow - File.GetLastWriteTimeUtc(f) < TimeSpan.FromHours(1));
    }
}
