using System.Runtime.InteropServices;
using HardenImage.Cache;
using HardenImage.Cli;
using HardenImage.Cli.Commands;
using Spectre.Console.Cli;

namespace HardenImage.Tests.Cache;

/// <summary>
/// <c>harden cache prune</c> deletes in a directory others may write (a shared or restored CI cache), so each way it
/// could be turned against files outside the cache, hang, stop half-way or delete by mistake is a test here
/// (threat T and D in docs/threat-model.md).
/// </summary>
public sealed class CachePruneSafetyTests : IDisposable
{
    private readonly CacheTree _t = new();

    public void Dispose() => _t.Dispose();

    /// <summary>Runs <c>harden</c> in this process with the cache commands; the exit code and what went to stderr.</summary>
    internal static (int Code, string Stderr) Cli(params string[] args)
    {
        var app = new CommandApp();
        app.Configure(c =>
        {
            CliHost.Configure(c);
            c.AddCacheCommands();
        });
        var stderr = new StringWriter();
        return (CliHost.Run(app, args, stderr), stderr.ToString());
    }

    private PruneResult PruneEverything(string? keyFile = null) =>
        CachePruner.Execute(CachePruner.Plan(CacheInventory.Read(_t.Root), new PruneOptions(TimeSpan.Zero), DateTimeOffset.UtcNow), keyFile ?? _t.Outside("no.key"));

    /// <summary>A directory outside the cache with a file under every name prune would delete if it went there.</summary>
    private string Victim(string name, params string[] names)
    {
        var dir = _t.Outside(name);
        foreach (var n in names)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(dir, n))!);
            File.WriteAllText(Path.Combine(dir, n), "the user's own file\n");
        }
        return dir;
    }

    [Fact]
    public void SymlinkPlantedForAPart_DebsToAnOutsideDirectory_OnlyTheLinkGoes_NothingThereIsDeleted()
    {
        var deb = new string('d', 64);
        var etc = Victim("etc", "sha256/" + deb, "passwd");
        _t.Orphan(TimeSpan.FromDays(40)); // a real part, so this is a cache
        Directory.CreateSymbolicLink(_t.Path("debs"), etc);

        PruneEverything();

        Assert.True(File.Exists(Path.Combine(etc, "sha256", deb)), "a file outside the cache was deleted through the debs -> link");
        Assert.True(File.Exists(Path.Combine(etc, "passwd")));
        Assert.False(File.Exists(_t.Path("debs")) || Directory.Exists(_t.Path("debs")), "the planted link itself stays");
    }

    [Fact]
    public void SymlinkPlantedForAContentFile_ToAFileInTheHome_OnlyTheLinkGoes_TheFileStays()
    {
        var home = Victim("home", "notes.txt");
        var link = _t.Path("content/sha256/" + new string('e', 64));
        _t.Orphan(TimeSpan.FromDays(40));
        File.CreateSymbolicLink(link, Path.Combine(home, "notes.txt"));
        CacheTree.Age(link, TimeSpan.FromDays(40)); // the link's own time; the target's stays

        var result = CachePruner.Execute(CachePruner.Plan(CacheInventory.Read(_t.Root), PruneOptions.Default, DateTimeOffset.UtcNow), _t.Outside("no.key"));

        Assert.Empty(result.Failures);
        Assert.Equal("the user's own file\n", File.ReadAllText(Path.Combine(home, "notes.txt")));
        Assert.Null(new FileInfo(link).LinkTarget);
        Assert.False(File.Exists(link));
    }

    [Fact]
    public void SymlinkPlantedForADirectoryInsideAPart_IsNotDescended_OnlyTheLinkGoes()
    {
        var name = new string('f', 64);
        var elsewhere = Victim("elsewhere", name);
        _t.Deb(TimeSpan.FromDays(40));
        Directory.CreateDirectory(_t.Path("content"));
        Directory.CreateSymbolicLink(_t.Path("content/sha256"), elsewhere);

        PruneEverything();

        Assert.True(File.Exists(Path.Combine(elsewhere, name)), "a file was deleted through content/sha256 -> elsewhere");
        Assert.False(Directory.Exists(_t.Path("content/sha256")));
    }

    [Fact]
    public void DirectorySwappedForASymlinkAfterPruneLooked_IsNotGoneThrough()
    {
        // Between the walk and the removal a writer of the cache swaps content/sha256 for a link to a directory of
        // the user's holding files of the very names prune chose: the removal must not follow it.
        var orphan = _t.Orphan(TimeSpan.FromDays(40));
        var plan = CachePruner.Plan(CacheInventory.Read(_t.Root), PruneOptions.Default, DateTimeOffset.UtcNow);
        var victim = Victim("victim", Path.GetFileName(orphan));
        Directory.Move(_t.Path("content/sha256"), _t.Path("content/moved"));
        Directory.CreateSymbolicLink(_t.Path("content/sha256"), victim);

        var result = CachePruner.Execute(plan, _t.Outside("no.key"));

        Assert.True(File.Exists(Path.Combine(victim, Path.GetFileName(orphan))), "a file outside the cache was deleted through a swapped-in link");
        var failure = Assert.Single(result.Failures);
        Assert.Equal("content/sha256", failure.Path);
        Assert.Contains("no longer a directory harden made", failure.Error);
    }

    [Fact]
    public void DirectoryHoldingNoneOfHardensParts_ASomeonesHome_IsRefused_Exit2_InOneLine_NothingDeleted()
    {
        // HARDEN_CACHE=$HOME by mistake: it has a "wheels" directory (a generic name) with a file named by a digest.
        var home = _t.Outside("home");
        Directory.CreateDirectory(Path.Combine(home, "wheels"));
        File.WriteAllText(Path.Combine(home, "wheels", new string('a', 64)), "a download of the user's");
        Directory.CreateDirectory(Path.Combine(home, "Documents"));
        File.WriteAllText(Path.Combine(home, "Documents", "thesis.tex"), "\\section{}");
        File.WriteAllText(Path.Combine(home, ".bashrc"), "export PS1=$");
        foreach (var f in Directory.EnumerateFileSystemEntries(home, "*", SearchOption.AllDirectories)) CacheTree.Age(f, TimeSpan.FromDays(400));
        var before = CacheTree.Snapshot(home);

        var (code, stderr) = Cli("cache", "prune", "--cache", home, "--unused-for", "0");

        Assert.Equal(ExitCodes.BadInput, code);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: {home} holds none of harden's cache directories", line);
        Assert.Contains("nothing was removed", line);
        Assert.Equal(before, CacheTree.Snapshot(home));
    }

    [Fact]
    public void UnknownTopLevelEntries_AndFilesHardenDoesNotName_AreLeftAndListed()
    {
        _t.Deb(TimeSpan.FromDays(40));
        var notes = _t.Write("notes.txt", [1], TimeSpan.FromDays(400));
        var mine = _t.Write("mine/keep.bin", [1], TimeSpan.FromDays(400));
        var wheel = _t.Write("wheels/mypkg-0.1-py3-none-any.whl", [1], TimeSpan.FromDays(400));
        var readme = _t.Write("content/sha256/README", [1], TimeSpan.FromDays(400));
        var sub = _t.Write("debs/mine/" + new string('a', 64), [1], TimeSpan.FromDays(400));

        var inventory = CacheInventory.Read(_t.Root);
        CachePruner.Execute(CachePruner.Plan(inventory, new PruneOptions(TimeSpan.Zero), DateTimeOffset.UtcNow), _t.Outside("no.key"));

        foreach (var f in new[] { notes, mine, wheel, readme, sub }) Assert.True(File.Exists(f), f);
        Assert.Equal(["content/sha256/README", "debs/mine", "mine", "notes.txt", "wheels/mypkg-0.1-py3-none-any.whl"],
            inventory.Left.Select(l => l.Path).Order(StringComparer.Ordinal));
        Assert.Contains("not part of harden's cache", inventory.Left.Single(l => l.Path == "notes.txt").Why);
        Assert.Empty(Directory.EnumerateFiles(_t.Path("debs/sha256")));
    }

    [Fact]
    public async Task PlantedFifo_UnderHardensNames_IsNeverOpened_NorBlocksPrune_AndIsLeft()
    {
        // A FIFO as a .deb, as a pointer, as the file list a pointer names and as a pack an index names: opening any
        // of them for reading would block prune for ever.
        var list = new string('c', 64);
        var fifos = new[]
        {
            _t.Path("debs/sha256/" + new string('a', 64)), _t.Path("unpacked-v4/" + new string('b', 64)),
            _t.Path("content/sha256/" + list), _t.Path("content/sha256/" + new string('d', 64)),
        };
        foreach (var f in fifos) CacheTree.Fifo(f);
        _t.Write("unpacked-v4/" + new string('e', 64), System.Text.Encoding.ASCII.GetBytes($"{list} {new string('5', 64)}\n"), TimeSpan.FromDays(40));
        _t.Write($"bytecode-v2/{new string('1', 64)}/{new string('d', 64)}.index",
            System.Text.Encoding.ASCII.GetBytes($"{new string('a', 64)} {new string('b', 64)} {new string('d', 64)} 0 10\n"), TimeSpan.FromDays(40));

        var run = Task.Run(() => (Inventory: CacheInventory.Read(_t.Root), Result: PruneEverything()));
        var finished = await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(30))) == run;
        if (!finished) foreach (var f in fifos) UnblockReader(f);
        Assert.True(finished, "prune blocked on a FIFO planted in the cache");

        var (inventory, result) = await run;
        foreach (var f in fifos) Assert.True(File.Exists(f), f);
        Assert.Equal(4, inventory.Left.Count(l => l.Why.Contains("never opened")));
        Assert.Empty(result.Failures);
    }

    /// <summary>Opens a FIFO for writing without waiting: a reader blocked on it gets end of file.</summary>
    private static void UnblockReader(string fifo)
    {
        var fd = open(fifo, 1 | 0x800); // O_WRONLY | O_NONBLOCK
        if (fd >= 0) close(fd);
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int open(string path, int flags);

    [DllImport("libc")]
    private static extern int close(int fd);

    [Fact]
    public void FileThatCannotBeRemoved_IsReportedInOneLine_TheRestIsPruned_AndTheExitCodeIs1()
    {
        var stuck = _t.Build(TimeSpan.FromDays(40));
        var debs = new[] { _t.Deb(TimeSpan.FromDays(40)), _t.Deb(TimeSpan.FromDays(40)) };
        using (CacheTree.Undeletable(stuck))
        {
            var result = CachePruner.Execute(CachePruner.Plan(CacheInventory.Read(_t.Root), PruneOptions.Default, DateTimeOffset.UtcNow), _t.Outside("no.key"));
            var failure = Assert.Single(result.Failures);
            Assert.Equal("builds-v1/" + Path.GetFileName(stuck), failure.Path);
            Assert.Matches("Operation not permitted|Permission denied", failure.Error);
            Assert.All(debs, d => Assert.False(File.Exists(d), d));
            Assert.Equal(2, result.Removed.Count);

            _t.Deb(TimeSpan.FromDays(40));
            var (code, stderr) = Cli("cache", "prune", "--cache", _t.Root);
            Assert.Equal(ExitCodes.GateFailed, code);
            var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith($"error: 1 file of {_t.Root} could not be removed", line);
            Assert.Empty(Directory.EnumerateFiles(_t.Path("debs/sha256")));
        }
        Assert.True(File.Exists(stuck));
    }

    [Fact]
    public void DryRun_RemovesNothing_TheTreeIsTheSameBeforeAndAfter()
    {
        _t.Deb(TimeSpan.FromDays(40));
        _t.Unpacked(TimeSpan.FromDays(40));
        _t.ByteCode(TimeSpan.FromDays(40));
        _t.Old("unpacked-v3", TimeSpan.Zero);
        _t.Old("bytecode-v1", TimeSpan.Zero);
        _t.Temp("content/sha256", TimeSpan.FromDays(2));
        _t.Orphan(TimeSpan.FromDays(40));
        File.CreateSymbolicLink(_t.Path("content/sha256/" + new string('e', 64)), _t.Outside("x"));
        var before = CacheTree.Snapshot(_t.Root);

        var (code, _) = Cli("cache", "prune", "--cache", _t.Root, "--dry-run", "--unused-for", "0", "--max-size", "1B");

        Assert.Equal(0, code);
        Assert.Equal(before, CacheTree.Snapshot(_t.Root));
        Assert.Equal(0, Cli("cache", "--cache", _t.Root).Code); // info reads, too, and changes nothing
        Assert.Equal(before, CacheTree.Snapshot(_t.Root));
    }

    [Theory]
    [InlineData("--unused-for", "banana")]
    [InlineData("--unused-for", "30")]
    [InlineData("--unused-for=-1d", null)]
    [InlineData("--unused-for", "1w")]
    [InlineData("--max-size", "12XB")]
    [InlineData("--max-size=-5GB", null)]
    [InlineData("--max-size", "lots")]
    public void BadOptionValue_IsOneLineNamingTheOptionAndTheForms_Exit2_NothingRemoved(string option, string? value)
    {
        var deb = _t.Deb(TimeSpan.FromDays(400));
        var args = new List<string> { "cache", "prune", "--cache", _t.Root, option };
        if (value != null) args.Add(value);

        var (code, stderr) = Cli([.. args]);

        Assert.Equal(ExitCodes.BadInput, code);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        var name = option.Split('=')[0];
        Assert.StartsWith($"error: {name} '", line);
        Assert.Contains(name == "--unused-for" ? "30d, 12h, 90m" : "500MB, 10GB", line);
        Assert.DoesNotContain(" at ", line);
        Assert.DoesNotContain("Exception", line);
        Assert.True(File.Exists(deb));
    }

    [Fact]
    public void CacheKeyFile_PlantedUnderAnEntrysName_IsNeverRemoved_NorPrinted()
    {
        // The key lives outside the cache (CacheAuthenticationKey refuses it inside); should it be there all the same
        // (a hard link, XDG_CONFIG_HOME pointed into the cache), prune leaves it.
        const string secret = "0123456789abcdef0123456789abcdef-secret";
        var key = _t.Write("builds-v1/" + new string('9', 64), System.Text.Encoding.ASCII.GetBytes(secret), TimeSpan.FromDays(400));
        var other = _t.Build(TimeSpan.FromDays(400));

        var result = PruneEverything(keyFile: key);

        Assert.Equal(secret, File.ReadAllText(key));
        Assert.False(File.Exists(other));
        Assert.Contains(result.Kept, k => k.Path == "builds-v1/" + new string('9', 64) && k.Why.Contains("cache key"));
        Assert.DoesNotContain(result.Kept.Concat(result.Failures.Select(f => new LeftEntry(f.Path, f.Error))), k => k.Why.Contains(secret) || k.Path.Contains(secret));
    }
}
