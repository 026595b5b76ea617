using HardenImage.Cache;
using HardenImage.Common;

namespace HardenImage.Tests.Cache;

/// <summary>
/// What <c>harden cache prune</c> removes, on a cache of real files in harden's formats: entries unused for the age
/// (whole: a pointer with its file list and pack, an index with its pack), then the least recently used over
/// --max-size, older formats whatever their age, content files nothing names by their own age, stale temp files.
/// </summary>
public sealed class CachePruneTests : IDisposable
{
    private static readonly TimeSpan Days40 = TimeSpan.FromDays(40), Days5 = TimeSpan.FromDays(5);
    private readonly CacheTree _t = new();

    public void Dispose() => _t.Dispose();

    private PruneResult Prune(TimeSpan? unusedFor = null, long? maxBytes = null)
    {
        var plan = CachePruner.Plan(CacheInventory.Read(_t.Root), new PruneOptions(unusedFor ?? PruneOptions.DefaultUnusedFor, maxBytes), DateTimeOffset.UtcNow);
        return CachePruner.Execute(plan);
    }

    [Fact]
    public void EntriesUnusedForTheAge_Go_WholeAndTogether_RecentOnesStay()
    {
        var oldDeb = _t.Deb(Days40);
        var newDeb = _t.Deb(Days5);
        var oldTree = _t.Unpacked(Days40);
        var newTree = _t.Unpacked(Days5);
        var oldByteCode = _t.ByteCode(Days40);
        var newByteCode = _t.ByteCode(Days5);
        var old = new[] { _t.Build(Days40), _t.Index(Days40), _t.Proof(Days40), _t.Wheel(Days40) };
        var recent = new[] { _t.Build(Days5), _t.Index(Days5), _t.Proof(Days5), _t.Wheel(Days5) };

        var result = Prune();

        Assert.Empty(result.Failures);
        foreach (var gone in old.Concat(oldTree).Concat(oldByteCode).Append(oldDeb)) Assert.False(File.Exists(gone), gone);
        foreach (var kept in recent.Concat(newTree).Concat(newByteCode).Append(newDeb)) Assert.True(File.Exists(kept), kept);
        // The pointer, its file list and its pack are one entry; an index and its pack another.
        var tree = Assert.Single(result.Removed, r => r.Entry.Part == CacheLayout.Unpacked);
        Assert.Equal(3, tree.Entry.Files.Count);
        Assert.Equal(2, Assert.Single(result.Removed, r => r.Entry.Part == CacheLayout.ByteCode).Entry.Files.Count);
        Assert.Equal(result.Removed.Sum(r => r.FreedBytes), result.FreedBytes);
        // The interpreter's directory it emptied goes; the directories a build writes into stay.
        Assert.True(Directory.Exists(_t.Path("content/sha256")));
        Assert.True(Directory.Exists(_t.Path("debs/sha256")));
    }

    [Fact]
    public void AnEntryIsAsRecentAsItsPointer_SoAPointerUsedLately_KeepsItsOldListAndPack()
    {
        // Every use reads the pointer and refreshes it with the rest; the list and pack may lag by up to an hour.
        var tree = _t.Unpacked(Days40);
        CacheTree.Age(tree[0], Days5);
        Prune();
        Assert.All(tree, f => Assert.True(File.Exists(f), f));
    }

    [Fact]
    public void ContentNothingNames_GoesByItsOwnAge_AndAPackTwoListsName_StaysWhileOneStays()
    {
        var oldOrphan = _t.Orphan(Days40);
        var newOrphan = _t.Orphan(Days5);
        // Two .debs whose files are the same bytes: one pack, named by both lists.
        var bytes = CacheTree.Random();
        var oldTree = _t.Unpacked(Days40, bytes);
        var newTree = _t.Unpacked(Days5, bytes);
        Assert.Equal(oldTree[2], newTree[2]);

        Prune();

        Assert.False(File.Exists(oldOrphan));
        Assert.True(File.Exists(newOrphan));
        Assert.False(File.Exists(oldTree[0]));
        Assert.False(File.Exists(oldTree[1]));
        Assert.True(File.Exists(newTree[2]), "a pack a surviving list names was removed with the other list");
    }

    [Fact]
    public void MaxSize_RemovesTheLeastRecentlyUsed_UntilTheCacheIsNoLarger()
    {
        var debs = Enumerable.Range(1, 5).Select(d => _t.Deb(TimeSpan.FromDays(d))).ToList(); // debs[4] least recently used
        var result = Prune(maxBytes: 3L * CacheTree.FileBytes);
        Assert.Equal([true, true, true, false, false], debs.Select(File.Exists));
        Assert.All(result.Removed, r => Assert.Contains("least recently used", r.Reason));
        Assert.Equal(2L * CacheTree.FileBytes, result.FreedBytes);
    }

    [Fact]
    public void MaxSize_TakesEntriesWhole_AndAfterTheAgeRule()
    {
        var old = _t.Deb(Days40);
        var tree = _t.Unpacked(TimeSpan.FromDays(10)); // three files
        var deb = _t.Deb(TimeSpan.FromDays(2));
        // 40 days: by age. Then the tree (pointer and list a block each, a 100 KiB pack) and a .deb remain, 208 KiB:
        // under 150 KiB the tree goes whole, not just its pack, and the more recent .deb stays.
        var result = Prune(maxBytes: 150 * 1024);
        Assert.False(File.Exists(old));
        Assert.All(tree, f => Assert.False(File.Exists(f), f));
        Assert.True(File.Exists(deb));
        Assert.Contains(result.Removed, r => r.Reason.StartsWith("unused for", StringComparison.Ordinal));
    }

    [Fact]
    public void OlderFormats_AreRemovedWhole_WhateverTheirAge()
    {
        var v3 = _t.Old("unpacked-v3", TimeSpan.Zero);
        var v1 = _t.Old("bytecode-v1", TimeSpan.Zero);
        Directory.CreateDirectory(_t.Path("unpacked-v2"));
        var deb = _t.Deb(TimeSpan.Zero);

        var result = Prune();

        Assert.False(File.Exists(v3));
        Assert.False(File.Exists(v1));
        foreach (var part in new[] { "unpacked-v3", "bytecode-v1", "unpacked-v2" }) Assert.False(Directory.Exists(_t.Path(part)), part);
        Assert.True(File.Exists(deb));
        Assert.All(result.Removed, r => Assert.Equal(EntryRule.OldFormat, r.Entry.Rule));
    }

    [Fact]
    public void UnusedForZero_RemovesEveryEntry_AndKeepsTheDirectoriesABuildWritesInto()
    {
        _t.Deb(TimeSpan.Zero);
        _t.Unpacked(TimeSpan.Zero);
        _t.ByteCode(TimeSpan.Zero);
        _t.Build(TimeSpan.Zero);
        _t.Index(TimeSpan.Zero);
        _t.Wheel(TimeSpan.Zero);
        var fixedDirs = CacheLayout.FixedDirectories.Where(d => Directory.Exists(_t.Path(d))).ToList();

        Prune(TimeSpan.Zero);

        Assert.Empty(Directory.EnumerateFiles(_t.Root, "*", SearchOption.AllDirectories));
        Assert.Equal(11, fixedDirs.Count); // all but indices/apt-proofs
        Assert.All(fixedDirs, d => Assert.True(Directory.Exists(_t.Path(d)), d));
        Assert.False(Directory.Exists(_t.Path("bytecode-v2/" + new string('1', 64))), "the emptied interpreter directory stays");
    }

    [Fact]
    public void TempFiles_OfKilledWriters_GoOnceStale_ButNotWhileAWriterHoldsThem_NorWhenFresh()
    {
        var stale = _t.Temp("content/sha256", TimeSpan.FromMinutes(5));
        var held = _t.Temp("debs/sha256", TimeSpan.FromMinutes(5));
        var fresh = _t.Temp("debs/sha256", TimeSpan.Zero);
        using (new FileStream(held, FileMode.Open, FileAccess.ReadWrite, FileShare.None)) // how every writer holds its temp file
        {
            var result = Prune(TimeSpan.Zero);
            Assert.Contains(result.Kept, k => k.Path.EndsWith(Path.GetFileName(held), StringComparison.Ordinal));
        }
        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(held));
        Assert.True(File.Exists(fresh), "a temp file being written this minute was removed");
    }

    [Fact]
    public void AnEntryUsedWhilePruneRan_IsKept()
    {
        var tree = _t.Unpacked(Days40);
        var plan = CachePruner.Plan(CacheInventory.Read(_t.Root), PruneOptions.Default, DateTimeOffset.UtcNow);
        Assert.Single(plan.Removals);
        // A build reads the pack after prune looked: the use refreshes its time (Common/Storage/LastUse).
        HardenImage.Common.Storage.LastUse.Refresh(tree[2]);

        var result = CachePruner.Execute(plan);

        Assert.Empty(result.Removed);
        Assert.All(tree, f => Assert.True(File.Exists(f), f));
        Assert.Contains(result.Kept, k => k.Why.Contains("used while prune ran"));
    }

    [Fact]
    public void Summary_CountsEntriesBytesAndWhatPruneWouldRemove_PerPart()
    {
        _t.Deb(Days40);
        _t.Deb(Days5);
        _t.Unpacked(Days40);
        _t.Old("unpacked-v3", Days5);

        var rows = CacheSummary.Of(CachePruner.Plan(CacheInventory.Read(_t.Root), PruneOptions.Default, DateTimeOffset.UtcNow));

        var debs = rows.Single(r => r.Part == CacheLayout.Debs);
        Assert.Equal((2, 2L * CacheTree.FileBytes, 1, (long)CacheTree.FileBytes), (debs.Entries, debs.Bytes, debs.PruneEntries, debs.PruneBytes));
        Assert.True(debs.OldestLastUse < debs.NewestLastUse);
        var tree = rows.Single(r => r.Part == CacheLayout.Unpacked);
        Assert.Equal((1, 1), (tree.Entries, tree.PruneEntries));
        Assert.Equal(0, rows.Single(r => r.Part == CacheLayout.Content).Entries); // the list and pack belong to the tree
        var old = rows.Single(r => r.Part == "unpacked-v3");
        Assert.True(old.OldFormat);
        Assert.Equal(1, old.PruneEntries);
        Assert.Equal(0, rows.Single(r => r.Part == CacheLayout.Wheels).Entries);
    }

    [Theory]
    [InlineData("30d", 30 * 24 * 60)]
    [InlineData("12h", 12 * 60)]
    [InlineData("90m", 90)]
    [InlineData("0", 0)]
    public void UnusedFor_Accepts_DaysHoursMinutes_AndZero(string text, int minutes) =>
        Assert.Equal(TimeSpan.FromMinutes(minutes), PruneOptions.ParseAge(text));

    [Theory]
    [InlineData("10GB", 10_000_000_000)]
    [InlineData("500MB", 500_000_000)]
    [InlineData("1.5TB", 1_500_000_000_000)]
    [InlineData("8GiB", 8L << 30)]
    [InlineData("100kb", 100_000)]
    [InlineData("4096B", 4096)]
    [InlineData("0", 0)]
    public void MaxSize_Accepts_DecimalAndBinaryUnits(string text, long bytes) =>
        Assert.Equal(bytes, PruneOptions.ParseSize(text));

    [Theory]
    [InlineData("10")]
    [InlineData("4096")]
    public void MaxSize_BareNumber_IsRefused_NotTakenAsBytes(string text)
    {
        // ccache reads "--max-size 10" as 10 GB; taken as 10 bytes here it would prune almost everything.
        var e = Assert.Throws<HardenException>(() => PruneOptions.ParseSize(text));
        Assert.Contains("give a unit", e.Message);
    }
}
