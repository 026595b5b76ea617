using HardenImage.Build;
using HardenImage.Cache;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Tests.Build;

namespace HardenImage.Tests.Cache;

/// <summary>
/// Builds through the library (the hermetic signed repository of <see cref="ImageSetWorkspace"/>) around
/// <c>harden cache prune</c>: every entry a build uses has its last use recorded, so prune keeps it; whatever prune
/// removed — also from under a build that already read the pointer — is derived or downloaded again, and verified,
/// and the images are bit for bit those of a clean build, or the build stops with a clear line. Never another image.
/// </summary>
[Trait("Category", "Integration")]
public sealed class BuildAfterPruneTests : IAsyncLifetime
{
    private readonly ImageSetWorkspace _w = new();
    private BuildManifest _clean = null!;

    public async Task InitializeAsync()
    {
        await _w.LockAsync();
        _clean = (await _w.BuildAsync()).Manifest;
    }

    public Task DisposeAsync()
    {
        _w.Dispose();
        return Task.CompletedTask;
    }

    private static IEnumerable<(string, string)> Digests(BuildManifest m) => m.Images.Select(i => (i.Name, i.Index));

    private string[] Files(string relative) => Directory.GetFiles(Path.Combine(_w.Cache, relative));

    /// <summary>The packs the cached file lists name (what a pointer's entry holds besides its pointer and list).</summary>
    private List<string> Packs() => Files("unpacked-v4").Select(p =>
        {
            var list = File.ReadAllText(p).Split(' ')[0];
            using var s = File.OpenRead(Path.Combine(_w.Cache, "content", "sha256", list));
            return PackageUnpacker.PackNamedBy(s);
        }).OfType<string>().Distinct().Select(p => Path.Combine(_w.Cache, "content", "sha256", p)).ToList();

    private PruneResult Prune(TimeSpan unusedFor) =>
        CachePruner.Execute(CachePruner.Plan(CacheInventory.Read(_w.Cache), new PruneOptions(unusedFor), DateTimeOffset.UtcNow), _w.Combine("no.key"));

    [Fact]
    public void EveryFileABuildWrites_IsInAPartPruneKnows_UnderANameItGives()
    {
        // A new cache format or file name must be taught to CacheLayout (and the old name listed as old): otherwise
        // prune would leave it for ever, or never remove the format it replaced.
        var inventory = CacheInventory.Read(_w.Cache);
        Assert.True(inventory.IsCache);
        Assert.Empty(inventory.Left);
        Assert.All(Directory.GetFileSystemEntries(_w.Cache), e => Assert.Contains(Path.GetFileName(e), CacheLayout.CurrentParts));
        Assert.Contains(inventory.Entries, e => e.Part == CacheLayout.Unpacked && e.Files.Count == 3);
        Assert.DoesNotContain(inventory.Entries, e => e.Rule != EntryRule.ByLastUse);
    }

    [Fact]
    public async Task ABuild_RecordsTheLastUseOfEveryEntryItUses_SoPruneKeepsThem()
    {
        foreach (var f in Directory.EnumerateFiles(_w.Cache, "*", SearchOption.AllDirectories)) CacheTree.Age(f, TimeSpan.FromDays(3));

        var upToDate = await _w.BuildAsync();
        Assert.True(upToDate.UpToDate);
        var rebuilt = await _w.BuildAsync(null, null, force: true);
        Assert.Equal(Digests(_clean), Digests(rebuilt.Manifest));

        var plan = CachePruner.Plan(CacheInventory.Read(_w.Cache), new PruneOptions(TimeSpan.FromDays(1)), DateTimeOffset.UtcNow);
        // What the builds used: every .deb (verified by the fetch), every unpacked tree whole, the build records.
        var used = new[] { CacheLayout.Debs, CacheLayout.Unpacked, CacheLayout.Builds };
        Assert.DoesNotContain(plan.Removals, r => used.Contains(r.Entry.Part));
        Assert.All(plan.Inventory.Entries.Where(e => e.Part == CacheLayout.Unpacked), e =>
            Assert.All(e.Files, f => Assert.True(DateTimeOffset.UtcNow - f.Stat.LastWrite < TimeSpan.FromHours(1), f.Path)));
        // Only the lock's index data was not used by these builds (they prove nothing): that is what would go.
        Assert.All(plan.Removals, r => Assert.Equal(CacheLayout.Indices, r.Entry.Part));
    }

    [Fact]
    public async Task EntriesWhoseTimeCannotBeSet_AReadOnlyCache_StillBuild_UpToDate()
    {
        // Recording a use is best effort: a cache restored read-only, or another user's, must still serve builds.
        Assert.True(Environment.UserName == "root", "this test makes cache files immutable (chattr +i), which needs root; run the integration tests as root (README)");
        var used = Files("debs/sha256").Concat(Files("builds-v1")).ToList();
        foreach (var f in used) CacheTree.Age(f, TimeSpan.FromDays(3));
        var before = used.ToDictionary(f => f, File.GetLastWriteTimeUtc);
        var locks = used.Select(CacheTree.Undeletable).ToList();
        try
        {
            var again = await _w.BuildAsync();
            Assert.True(again.UpToDate);
            Assert.Equal(Digests(_clean), Digests(again.Manifest));
            Assert.All(used, f => Assert.Equal(before[f], File.GetLastWriteTimeUtc(f)));
        }
        finally
        {
            foreach (var l in locks) l.Dispose();
        }
    }

    [Fact]
    public async Task PackPrunedUnderAKeptPointer_TheNextBuildUnpacksAgain_AndTheImagesAreTheSame()
    {
        var packs = Packs();
        Assert.NotEmpty(packs);
        foreach (var p in packs) File.Delete(p);

        var rebuilt = await _w.BuildAsync(null, null, force: true);

        Assert.Equal(Digests(_clean), Digests(rebuilt.Manifest));
        Assert.All(packs, p => Assert.True(File.Exists(p), p));
    }

    [Fact]
    public async Task DebPruned_IsDownloadedAndVerifiedAgain_AndTheImagesAreTheSame()
    {
        var debs = Files("debs/sha256");
        foreach (var d in debs) File.Delete(d);
        // And the unpacked trees, so the build must read the .debs it downloads again.
        foreach (var p in Files("unpacked-v4")) File.Delete(p);

        var rebuilt = await _w.BuildAsync(null, null, force: true);

        Assert.Equal(Digests(_clean), Digests(rebuilt.Manifest));
        Assert.All(debs, d => Assert.Equal(Path.GetFileName(d), Sha256Hex.OfFile(d)));
    }

    [Fact]
    public async Task PruneOfEverything_ThenABuild_GivesTheSameImages()
    {
        var result = Prune(TimeSpan.Zero);
        Assert.Empty(result.Failures);
        Assert.Empty(Directory.EnumerateFiles(_w.Cache, "*", SearchOption.AllDirectories));

        await _w.LockAsync(); // the index data a proof needs comes back from the repository, verified
        var rebuilt = await _w.BuildAsync(null, null, force: true);

        Assert.Equal(Digests(_clean), Digests(rebuilt.Manifest));
    }

    [Fact]
    public async Task PackPrunedAfterTheBuildReadItsPointer_IsDerivedAgainByTheRepairPass_NotAWrongImage()
    {
        // The race, made deterministic: the build reads every pointer (and registers each pack) while the .debs
        // arrive; then prune removes the packs; then the layers read their files.
        var rebuilt = await _w.BuildAsync(async builder =>
        {
            await builder.AbandonUnpackingAsync(); // every early unpack has read its pointer
            foreach (var p in Packs()) File.Delete(p);
        }, force: true);

        Assert.Equal(Digests(_clean), Digests(rebuilt.Manifest));
        Assert.Contains(rebuilt.CacheRepairs, r => r.Contains("is missing") && r.Contains("unpacked the package again"));
    }

    [Fact]
    public async Task DebPrunedAfterTheFetchVerifiedIt_BeforeItWasUnpacked_IsAClearError_AndTheArtifactsStay()
    {
        foreach (var p in Files("unpacked-v4")) File.Delete(p); // nothing cached: the build must read the .debs
        var buildJson = File.ReadAllText(Path.Combine(_w.Artifacts, "build.json"));

        var e = await Assert.ThrowsAsync<HardenException>(() => _w.BuildAsync(_ =>
        {
            foreach (var d in Files("debs/sha256")) File.Delete(d); // prune --unused-for 0 between the fetch and the unpack
            return Task.CompletedTask;
        }, unpackWhileFetching: false, force: true));

        Assert.Contains("left the cache while this build ran", e.Message);
        Assert.Contains("run the build again", e.Message);
        Assert.Equal(buildJson, File.ReadAllText(Path.Combine(_w.Artifacts, "build.json")));
    }
}
