using System.Security.Cryptography;
using System.Text;
using HardenImage.Cache;
using HardenImage.Tests.Cache;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// An attacker's review of <c>harden cache</c> / <c>harden cache prune</c>: option values that overflow, a cache a
/// writer of it made deep or wide enough to exhaust the process (stack, descriptors, memory), each a test named for
/// the danger. The cache may be shared or restored from elsewhere: nothing in it may crash prune or make it stop
/// half-way without a line saying why.
/// </summary>
public sealed class CachePruneAttackTests : IDisposable
{
    private readonly CacheTree _t = new();

    public void Dispose() => _t.Dispose();

    private static (int Code, string Stderr) Cli(params string[] args) => CachePruneSafetyTests.Cli(args);

    [Theory]
    [InlineData("999999d")]
    [InlineData("800000d")]
    public void UnusedFor_ReachingBackBeforeTheYearOne_IsNoBug_NothingIsThatOld_NothingRemoved(string age)
    {
        // 999999d passes the parser (6 digits) but now - 2,738 years is before DateTimeOffset.MinValue: it was an
        // ArgumentOutOfRangeException, exit 70 and a crash file for a value the help text allows.
        var deb = _t.Deb(TimeSpan.FromDays(4000));

        var prune = Cli("cache", "prune", "--cache", _t.Root, "--unused-for", age);
        var info = Cli("cache", "--cache", _t.Root, "--unused-for", age);

        Assert.True(prune.Code == 0, prune.Stderr);
        Assert.True(info.Code == 0, info.Stderr);
        Assert.True(File.Exists(deb), "an entry used 11 years ago is not unused for 2,738 years");
    }

    [Fact]
    public void DeepNestOfDirectoriesNamedLikeHardens_IsNotWalkedPastTheDepthHardenUses_AndPruneStillRuns()
    {
        // A writer of the cache nests "aa/aa/aa/…" (two hex digits: a name harden gives directories) 1,000 deep with a
        // stale entry at the bottom. Walked, such a nest held a descriptor per level and a path per directory
        // (quadratic): at 20,000 levels 2.4 GB and 'Too many open files'; deeper, the stack.
        var deep = Path.Combine([_t.Path("bytecode-v2"), .. Enumerable.Repeat("aa", 1000)]);
        Directory.CreateDirectory(deep);
        var bottom = Path.Combine(deep, new string('c', 64));
        File.WriteAllBytes(bottom, [1]);
        CacheTree.Age(bottom, TimeSpan.FromDays(400));
        var deb = _t.Deb(TimeSpan.FromDays(400));

        var inventory = CacheInventory.Read(_t.Root);
        var result = CachePruner.Execute(CachePruner.Plan(inventory, PruneOptions.Default, DateTimeOffset.UtcNow), _t.Outside("no.key"));

        Assert.All(inventory.Directories, d => Assert.True(d.Count(c => c == '/') < CacheLayout.MaxDirectoryDepth, d));
        Assert.Contains(inventory.Left, l => l.Path == "bytecode-v2/aa/aa/aa" && l.Why.Contains("deeper than any harden makes"));
        Assert.Empty(result.Failures);
        Assert.False(File.Exists(deb));
        Assert.True(File.Exists(bottom), "what lies below the depth harden uses is not harden's: left where it is");
    }

    [Theory]
    [InlineData("cache", "prune")]
    [InlineData("cache")]
    public void EmptyCacheOption_IsOneLineNamingIt_Exit2_NotABug(params string[] command)
    {
        // --cache "$CACHE" with CACHE unset: Path.GetFullPath("") threw ArgumentException, exit 70 and a crash file.
        var (code, stderr) = Cli([.. command, "--cache", "", "--unused-for", "0"]);

        Assert.Equal(2, code);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: --cache '': expected a directory", line);
    }

    [Fact]
    public void OneHugeFileList_NamedByThousandsOfForgedPointers_IsReadOnce_NotOncePerPointer()
    {
        // Prune holds no key, so it groups by what pointers say unverified. A writer of the cache plants one file list
        // of the largest size read (64 MiB of valid JSON, its "pack" at the very end) and pointers of 130 bytes naming it:
        // each pointer made prune parse the whole list again, 8 s per 300 pointers, hours for 100,000 — cache and prune
        // hung. Each list is read once now, whatever names it.
        var list = new string('1', 64);
        var json = "{\"x\":\"" + new string('a', (int)CacheInventory.MaxFileListBytes - 200) + "\",\"pack\":\"" + new string('b', 64) + "\"}";
        _t.Write("content/sha256/" + list, Encoding.ASCII.GetBytes(json), TimeSpan.FromDays(400));
        for (var i = 0; i < 600; i++)
            _t.Write($"unpacked-v4/{i:x64}", Encoding.ASCII.GetBytes($"{list} {new string('5', 64)}\n"), TimeSpan.FromDays(400));

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var inventory = CacheInventory.Read(_t.Root);
        clock.Stop();

        Assert.Equal(600, inventory.Entries.Count(e => e.Part == CacheLayout.Unpacked && e.Files.Count == 2));
        // Read once: well under a second here; read per pointer it was 16 s (600 × 64 MiB of JSON).
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"grouping 600 pointers to one list took {clock.Elapsed.TotalSeconds:0.0} s");
    }

    [Fact]
    public void TwoPrunesAtOnce_TheSecondFindsDirectoriesTheFirstRemoved_ReportsNoFailure()
    {
        // Two CI jobs prune one shared cache: the first removes the interpreter directories it emptied, and the second,
        // planned from the same listing, took each for a directory swapped for a symlink — hundreds of 'could not remove'
        // lines and exit 1 for a cache that was pruned exactly as asked.
        var indexes = Enumerable.Range(0, 20).Select(_ => _t.ByteCode(TimeSpan.FromDays(40), Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)))[0]).ToList();
        _t.Deb(TimeSpan.FromDays(40));
        var first = CachePruner.Plan(CacheInventory.Read(_t.Root), PruneOptions.Default, DateTimeOffset.UtcNow);
        var second = CachePruner.Plan(CacheInventory.Read(_t.Root), PruneOptions.Default, DateTimeOffset.UtcNow);

        Assert.Empty(CachePruner.Execute(first, _t.Outside("no.key")).Failures);
        var late = CachePruner.Execute(second, _t.Outside("no.key"));

        Assert.Empty(late.Failures);
        Assert.All(indexes, i => Assert.False(File.Exists(i), i));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_t.Path("bytecode-v2")));
    }
}
