using HardenImage.Cache;
using HardenImage.Tests.Build;

namespace HardenImage.Tests.Cache;

/// <summary>
/// The byte-code cache (bytecode-v2: a sealed index per compile and its pack) under <c>harden cache prune</c>, with
/// Debian's real CPython from <see cref="ByteCodeRepository"/>: a warm build's cache hits count as uses, and a pruned
/// entry is compiled again to the same bytes.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ByteCodeCachePruneTests(ByteCodeRepository repository) : IClassFixture<ByteCodeRepository>, IDisposable
{
    private readonly ByteCodeImages _w = new(repository);

    public void Dispose() => _w.Dispose();

    private PrunePlan Plan(TimeSpan unusedFor) =>
        CachePruner.Plan(CacheInventory.Read(_w.Cache), new PruneOptions(unusedFor), DateTimeOffset.UtcNow);

    [Fact]
    public async Task ByteCodeCacheHits_AreRecordedAsUses_AndAPrunedEntry_IsCompiledAgain_ToTheSameImages()
    {
        var (clean, _) = await _w.BuildAsync();
        foreach (var f in Directory.EnumerateFiles(_w.Cache, "*", SearchOption.AllDirectories)) CacheTree.Age(f, TimeSpan.FromDays(3));

        var (_, warm) = await _w.BuildAsync(force: true);
        Assert.Equal(0, warm.ByteCodeCompilers.Sum(c => c.CompiledCount));
        var entries = Plan(TimeSpan.FromDays(1)).Inventory.Entries.Where(e => e.Part == CacheLayout.ByteCode).ToList();
        Assert.NotEmpty(entries);
        Assert.All(entries, e => Assert.Equal(2, e.Files.Count)); // the index and its pack
        Assert.All(entries.SelectMany(e => e.Files), f => Assert.True(DateTimeOffset.UtcNow - f.Stat.LastWrite < TimeSpan.FromHours(1), f.Path));
        Assert.DoesNotContain(Plan(TimeSpan.FromDays(1)).Removals, r => r.Entry.Part == CacheLayout.ByteCode);

        foreach (var f in entries.SelectMany(e => e.Files)) CacheTree.Age(Path.Combine(_w.Cache, f.Path), TimeSpan.FromDays(40));
        var result = CachePruner.Execute(Plan(PruneOptions.DefaultUnusedFor), _w.Combine("no.key"));
        Assert.Equal(entries.Count, result.Removed.Count(r => r.Entry.Part == CacheLayout.ByteCode));

        var (again, recompiled) = await _w.BuildAsync(force: true);
        Assert.True(recompiled.ByteCodeCompilers.Sum(c => c.CompiledCount) > 100);
        Assert.Equal(clean.Manifest.Images.Select(i => (i.Name, i.Index)), again.Manifest.Images.Select(i => (i.Name, i.Index)));
    }
}
