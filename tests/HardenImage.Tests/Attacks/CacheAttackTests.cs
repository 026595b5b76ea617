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

    [Trait("Category", "Integration")]
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

    [Trait("Category", "Integration")]
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
        Assert.Null(WithinSeconds(() => indices.OpenVerified(IndexSha, 0)));
        Assert.False(File.Exists(fifo));

        // /dev/zero has length 0 and never ends: read whole, it would take 2 GB before failing.
        File.CreateSymbolicLink(fifo, "/dev/zero");
        Assert.Null(WithinSeconds(() => indices.TryGetInRelease(IndexSha, 1 << 20)));
        Assert.Null(new FileInfo(fifo).LinkTarget);
    }

    [Fact]
    public void CacheKey_ReachedThroughASymlinkedCacheRoot_IsRefused()
    {
        // HARDEN_CACHE names a symlink whose target holds the config directory: textually the key is outside the
        // cache, really it is inside it (the cache writer reads the key and forges every seal).
        using var dir = new TempDir("hi-attack-cachekey");
        var real = dir.Combine("real");
        var keyFile = Path.Combine(real, "config", "hardenimage", "cache.key");
        Directory.CreateDirectory(real);
        var cacheLink = dir.Combine("cache");
        Directory.CreateSymbolicLink(cacheLink, real);

        var e = Assert.Throws<HardenException>(() => CacheAuthenticationKey.Load(cacheLink, keyFile, null));
        Assert.Contains("lies inside the cache", e.Message);
        var e2 = Assert.Throws<HardenException>(() => CacheKey.Load(cacheLink, keyFile, null));
        Assert.Contains("lies inside the cache", e2.Message);
        Assert.False(File.Exists(keyFile));

        // And the other way round: the config directory is a symlink into the cache.
        var cache = dir.Combine("cache2");
        Directory.CreateDirectory(Path.Combine(cache, "planted"));
        var config = dir.Combine("config");
        Directory.CreateSymbolicLink(config, Path.Combine(cache, "planted"));
        var e3 = Assert.Throws<HardenException>(() => CacheKey.Load(cache, Path.Combine(config, "hardenimage", "cache.key"), null));
        Assert.Contains("lies inside the cache", e3.Message);
        Assert.False(File.Exists(Path.Combine(cache, "planted", "hardenimage", "cache.key")));
    }

    [Fact]
    public void CacheKeyFile_ReadableOrWritableByOthers_IsRefused()
    {
        using var dir = new TempDir("hi-attack-cachekey");
        var cache = dir.Combine("cache");
        var keyFile = dir.Combine("config", "hardenimage", "cache.key");
        var first = CacheKey.Load(cache, keyFile, null);
        var authenticator = CacheAuthenticationKey.Load(cache, keyFile, null);
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var e = Assert.Throws<HardenException>(() => CacheKey.Load(cache, keyFile, null));
        Assert.Contains("may be read or written by other users", e.Message);
        Assert.Contains("chmod 600", e.Message);
        Assert.Throws<HardenException>(() => CacheAuthenticationKey.Load(cache, keyFile, null));

        // Fixed as the message says: the same key as before (one secret for both users of it).
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.Equal(first.Seal("p", "x"), CacheKey.Load(cache, keyFile, null).Seal("p", "x"));
        Assert.Equal(authenticator.Mac("x"u8), CacheAuthenticationKey.Load(cache, keyFile, null).Mac("x"u8));
    }
}

/// <summary>A planted, sparse, gigabyte-sized seal or pointer costs nothing on disk; read whole, it exhausts memory.</summary>
public sealed class CacheSealSizeAttackTests
{
    /// <summary>A one-file .deb in <paramref name="dir"/> and its SHA-256.</summary>
    private static (string Path, string Sha256) TinyDeb(TempDir dir)
    {
        var debPath = dir.Combine("tiny_1.0_all.deb");
        File.WriteAllBytes(debPath, HardenImage.Tests.Deb.HostileDebs.WithPath("./usr/share/tiny/f", System.Formats.Tar.TarEntryFormat.Pax));
        return (debPath, Sha256Hex.OfFile(debPath));
    }

    [Fact]
    public void HugeUnpackedTreePointer_IsReportedAndRederived_NotReadWhole()
    {
        using var dir = new TempDir("hi-attack-pointer");
        var (debPath, debSha) = TinyDeb(dir);
        var cache = dir.Combine("cache");
        var key = CacheKey.FromSecret("pointer-attack-secret-0123456789abcdef");
        var reports = new List<string>();
        var first = new PackageUnpacker(new ContentStore(cache), cache, key, reports.Add).Get(debSha, debPath, "tiny");
        var pointer = Assert.Single(Directory.GetFiles(cache, debSha, SearchOption.AllDirectories));
        using (var fs = new FileStream(pointer, FileMode.Open, FileAccess.Write)) fs.SetLength(3L << 30);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var again = new PackageUnpacker(new ContentStore(cache), cache, key, reports.Add).Get(debSha, debPath, "tiny");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64L << 20, "the planted pointer was read into memory");
        Assert.Equal(first.Entries.Select(e => e.Path), again.Entries.Select(e => e.Path));
        Assert.Contains(reports, r => r.Contains("far too large", StringComparison.Ordinal));
        Assert.True(new FileInfo(pointer).Length < 1024);
    }

    [Fact]
    public void ContentStore_NameThatIsNoSha256_IsRefusedBeforeAnythingOutsideTheStoreIsTouched()
    {
        // A name from anywhere but our own hashing ("../../victim") must not reach a path outside content/sha256: the
        // store evicts what fails verification, so a path name would be a delete primitive.
        var cache = Directory.CreateTempSubdirectory("hi-cas-name-").FullName;
        try
        {
            var store = new ContentStore(cache);
            var victim = Path.Combine(cache, "victim");
            File.WriteAllText(victim, "not ours");
            var link = Path.Combine(cache, "victim-link");
            File.CreateSymbolicLink(link, victim);
            foreach (var name in new[] { "../../victim", "../../victim-link", new string('A', 64), "" })
            {
                var open = Assert.Throws<CorruptCacheEntryException>(() => store.OpenVerified(name));
                Assert.Contains("is not named by a SHA-256", open.Message);
                Assert.Throws<CorruptCacheEntryException>(() => store.ReadVerified(name));
                Assert.False(store.Contains(name));
            }
            Assert.Equal("not ours", File.ReadAllText(victim));
            Assert.NotNull(new FileInfo(link).LinkTarget);
        }
        finally { Directory.Delete(cache, recursive: true); }
    }

    [Fact]
    public void PlantedHugeFileUnderAFileListsName_IsReplaced_NotReadWhole()
    {
        // Storing the file list compares it with what is already stored under its name by reading that whole: a
        // sparse 3 GB file planted there fails every build with "I/O error: file too long" (and a 1.9 GB one is
        // read into memory), where a length check would simply replace it.
        using var dir = new TempDir("hi-packattack-list");
        var (debPath, debSha) = TinyDeb(dir);
        var cache = dir.Combine("cache");
        var key = CacheKey.FromSecret("file-list-attack-secret-0123456789abcdef");
        var first = new PackageUnpacker(new ContentStore(cache), cache, key).Get(debSha, debPath, "tiny");
        var pointer = Path.Combine(cache, "unpacked-v4", debSha);
        var list = Path.Combine(cache, "content", "sha256", File.ReadAllText(pointer).Split(' ')[0]);
        File.Delete(pointer);
        File.Delete(list);
        using (var fs = new FileStream(list, FileMode.CreateNew, FileAccess.Write)) fs.SetLength(3L << 30);

        var again = new PackageUnpacker(new ContentStore(cache), cache, key).Get(debSha, debPath, "tiny");

        Assert.Equal(first.Entries.Select(e => e.Path), again.Entries.Select(e => e.Path));
        Assert.True(new FileInfo(list).Length < 1 << 20);
    }
}
