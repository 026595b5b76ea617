using System.Text;
using HardenImage.Apt;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// Attacks by whoever can write HARDEN_CACHE (a CI cache restored from another run) that the issue did not list:
/// a FIFO planted under a derived entry's name (the read would block for ever: lock --check hangs the runner), and
/// a cache key that the cache writer can reach through a symlink or read through loose permissions.
/// </summary>
public sealed class CacheAttackTests
{
    private static readonly CacheAuthenticationKey Key = new(Encoding.UTF8.GetBytes("cache-attack-tests-key-0123456789"));
    private static readonly string IndexSha = new('a', 64);

    /// <summary>Runs <paramref name="read"/> off the test thread; a hang fails the test instead of blocking the run.</summary>
    private static T WithinSeconds<T>(Func<T> read)
    {
        var task = Task.Run(read);
        Assert.True(task.Wait(TimeSpan.FromSeconds(20)), "the cache read blocked on a planted FIFO");
        return task.Result;
    }

    [Fact]
    public void ParsedIndexCache_PlantedFifo_IsReportedAndRemoved_NotReadForEver()
    {
        using var dir = new TempDir("hi-attack-cache");
        var proofs = new IndexProofCache(dir.Path, Key);
        Directory.CreateDirectory(proofs.Directory);
        var fifo = proofs.PathFor(IndexSha, "amd64");
        RequiredService.RunOk("mkfifo", [fifo]);

        string? forged = null;
        var entries = WithinSeconds(() => proofs.TryRead(IndexSha, "amd64", out forged));

        Assert.Null(entries);
        Assert.Contains("is not a regular file (planted in the cache)", forged);
        Assert.False(File.Exists(fifo));
    }

    [Fact]
    public void IndexStore_PlantedFifoOrSymlink_UnderAnInReleaseDigest_IsNotRead()
    {
        using var dir = new TempDir("hi-attack-cache");
        var indices = new AptIndexCache(dir.Path);
        Directory.CreateDirectory(indices.Directory);
        var fifo = indices.PathFor(IndexSha);
        RequiredService.RunOk("mkfifo", [fifo]);
        Assert.Null(WithinSeconds(() => indices.TryGetInRelease(IndexSha, 1 << 20)));
        Assert.False(File.Exists(fifo));

        // An empty Packages file has size 0, as a FIFO does: hashing it would block too.
        RequiredService.RunOk("mkfifo", [fifo]);
        Assert.Null(WithinSeconds(() => indices.TryGetVerified(IndexSha, 0)));
        Assert.False(File.Exists(fifo));

        // /dev/zero has length 0 and never ends: read whole, it would take 2 GB before failing.
        File.CreateSymbolicLink(fifo, "/dev/zero");
        Assert.Null(WithinSeconds(() => indices.TryGetInRelease(IndexSha, 1 << 20)));
        Assert.Null(new FileInfo(fifo).LinkTarget);
    }
}
