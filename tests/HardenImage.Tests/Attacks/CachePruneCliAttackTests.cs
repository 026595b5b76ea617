using System.Security.Cryptography;
using HardenImage.Tests.Cache;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// <c>harden cache</c> and <c>harden cache prune</c> as a user runs them (the real harden.dll in a child process)
/// over a cache a hostile writer prepared: what it prints cannot be forged by a file name, and a cache of many
/// directories cannot exhaust its file descriptors.
/// </summary>
[Trait("Category", "Integration")]
public sealed class CachePruneCliAttackTests : IDisposable
{
    private readonly CacheTree _t = new();

    public void Dispose() => _t.Dispose();

    /// <summary>Runs the real CLI as the user 65534 (nobody): another user of a shared cache.</summary>
    private static (int Code, string Stdout, string Stderr) HardenAsAnotherUser(string home, params string[] args) =>
        RequiredService.Run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "dotnet", Path.Combine(AppContext.BaseDirectory, "harden.dll"), .. args],
            env: new Dictionary<string, string> { ["NO_COLOR"] = "1", ["COLUMNS"] = "400", ["HOME"] = home, ["DOTNET_CLI_HOME"] = home }, timeout: TimeSpan.FromMinutes(2));

    /// <param name="maxOpenFiles">When set, the child's RLIMIT_NOFILE (soft and hard: .NET raises the soft limit to the hard one).</param>
    private static (int Code, string Stdout, string Stderr) Harden(int? maxOpenFiles, params string[] args)
    {
        string[] harden = [Path.Combine(AppContext.BaseDirectory, "harden.dll"), .. args];
        var env = new Dictionary<string, string> { ["NO_COLOR"] = "1", ["COLUMNS"] = "400" };
        return maxOpenFiles is { } n
            ? RequiredService.Run("bash", ["-c", $"ulimit -n {n} && exec dotnet \"$@\"", "harden", .. harden], env: env, timeout: TimeSpan.FromMinutes(2))
            : RequiredService.Run("dotnet", harden, env: env, timeout: TimeSpan.FromMinutes(2));
    }

    [Fact]
    public void FileNamesWithNewlinesEscapesAndBidiOverrides_CannotForgeLinesOrColours_InWhatCacheAndPrunePrint()
    {
        _t.Deb(TimeSpan.FromDays(40));
        var hostile = new[]
        {
            "debs/sha256/x\nerror: forged: every .deb verified",
            "debs/sha256/y\u001b[2J\u001b[32mfreed 0 B",
            "content/sha256/abc\u202Etxt.exe",
            "wheels/z\rkept",
            "top\u2028level",
        };
        foreach (var h in hostile) _t.Write(h, [1], TimeSpan.FromDays(400));

        foreach (var args in new[] { new[] { "cache" }, ["cache", "prune", "--dry-run"], ["cache", "prune"] })
        {
            var (code, stdout, stderr) = Harden(null, [.. args, "--cache", _t.Root]);

            Assert.True(code == 0, stderr);
            Assert.DoesNotContain('\u001b', stdout);
            Assert.DoesNotContain('\r', stdout);
            Assert.DoesNotContain('\u202E', stdout);
            Assert.DoesNotContain('\u2028', stdout);
            // Each name stays on the one line that says it was left.
            Assert.DoesNotContain(stdout.Split('\n'), l => l.StartsWith("error: forged", StringComparison.Ordinal));
            Assert.Equal(hostile.Length, stdout.Split('\n').Count(l => l.StartsWith("left ", StringComparison.Ordinal)));
        }
        foreach (var h in hostile) Assert.True(File.Exists(_t.Path(h)), h);
    }

    [Fact]
    public void ThousandsOfDirectoriesInAPart_DoNotExhaustTheDescriptors_PruneRemovesEveryEntry()
    {
        // A writer of the cache makes 600 interpreter directories under bytecode-v2, each with a stale index: prune
        // kept a descriptor open for every directory it read a file in (the inventory, then the removal), so under a
        // limit of 256 descriptors it stopped half-way — 'no longer a directory harden made' for directories that
        // were, or the runtime aborted with no line at all (SIGABRT, seen at 40,000 directories under 20,000).
        var indexes = Enumerable.Range(0, 600)
            .Select(_ => _t.ByteCode(TimeSpan.FromDays(40), Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)))[0]).ToList();

        var (code, stdout, stderr) = Harden(256, "cache", "prune", "--cache", _t.Root);

        Assert.True(code == 0, $"exit {code}: {stderr}\n{stdout[^Math.Min(2000, stdout.Length)..]}");
        Assert.All(indexes, i => Assert.False(File.Exists(i), i));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_t.Path("bytecode-v2")));
        Assert.Empty(Directory.EnumerateFiles(_t.Path("content/sha256")));
    }

    [Fact]
    public void TempFileOfAnotherUsersLiveWriter_ThatPruneCannotOpen_IsKept_NotDeletedUnderTheWriter()
    {
        // A shared cache (directories everyone may write): root's build writes a pack slowly (umask 077, its last
        // write two minutes ago) while another user prunes. Prune tells a live writer by trying its lock, which needs the
        // file open; it could not open root's 0600 file, took that for "not held" and deleted it under the writer, whose
        // commit then failed. StaleTempFiles, the stores' own cleaner, leaves such a file alone; so does prune now.
        Assert.True(Environment.UserName == "root", "this test runs prune as another user (setpriv), which needs root; run the integration tests as root (README)");
        var home = _t.Outside("nobody-home");
        Directory.CreateDirectory(home);
        _t.Deb(TimeSpan.FromDays(40));
        foreach (var d in new[] { _t.Root, _t.Path("debs"), _t.Path("debs/sha256"), _t.Path("content"), _t.Path("content/sha256"), home, _t.Outside() })
        {
            Directory.CreateDirectory(d);
            File.SetUnixFileMode(d, (UnixFileMode)Convert.ToInt32("777", 8));
        }
        var temp = _t.Path($"content/sha256/.tmp-pack-{Guid.NewGuid():N}");
        using (var writer = new FileStream(temp, new FileStreamOptions
               {
                   Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, // the writers' own lock
                   UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
               }))
        {
            writer.Write(new byte[4096]);
            writer.Flush();
            CacheTree.Age(temp, TimeSpan.FromMinutes(2));

            var (code, stdout, stderr) = HardenAsAnotherUser(home, "cache", "prune", "--cache", _t.Root);

            Assert.True(code == 0, $"exit {code}: {stderr}\n{stdout}");
            Assert.True(File.Exists(temp), "prune deleted the temp file of a live writer it could not open");
            Assert.Contains("kept content/sha256/.tmp-pack-", stdout);
        }
        Assert.Empty(Directory.EnumerateFiles(_t.Path("debs/sha256"))); // the rest was pruned
    }
}
