using System.Text;
using HardenImage.Build;
using HardenImage.Build.Hardening;
using HardenImage.Common;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// The content-store packs and the byte-code cache index (bytecode-v2) against whoever can write HARDEN_CACHE: a
/// symlink planted for a cache directory, planted index and loose files far larger than any real one, and a
/// concurrent build deleting a stale index while this one reads it.
/// </summary>
public sealed class PackCacheAttackTests
{
    private static readonly CacheKey Key = CacheKey.FromSecret("pack-review-attack-secret-0123456789abcdef");

    /// <summary>A compiler whose interpreter tree is empty: enough to reach the index reading of <c>Compile</c>.</summary>
    private static PythonByteCodeCompiler Compiler(string cache) =>
        new("3.13", [new InterpreterPackage("python3.13-minimal", new string('c', 64), [])], new ContentStore(cache), cache, Key);

    private static string CacheDirOf(PythonByteCodeCompiler c) => c.CacheDirectory;

    /// <summary>Compile one source that is not in the store: the indexes are read, then the compile fails as a cache miss.</summary>
    private static void CompileOneMissingSource(PythonByteCodeCompiler c)
    {
        try { c.Compile([new PythonSource("usr/lib/python3/dist-packages/m.py", new string('b', 64), 10)]); }
        catch (CorruptCacheEntryException) { } // the source is not stored: expected here
    }

    [Fact]
    public void ByteCodeIndexDirectory_SymlinkedOutOfTheCache_NothingThereIsDeleted()
    {
        // bytecode-v2/<interpreter identity> is a symlink planted in the cache to a directory of the user's: every
        // "*.index" there that is not a sealed index would be "a forged index" and deleted (a delete primitive
        // outside the cache; the identity is computable from the lock).
        using var dir = new TempDir("hi-packattack-bc-link");
        var cache = dir.Combine("cache");
        var victim = dir.Combine("victim");
        Directory.CreateDirectory(victim);
        File.WriteAllText(Path.Combine(victim, "search.index"), "the user's own file\n");
        using var compiler = Compiler(cache);
        var cacheDir = CacheDirOf(compiler);
        Directory.CreateDirectory(Path.GetDirectoryName(cacheDir)!);
        Directory.CreateSymbolicLink(cacheDir, victim);

        CompileOneMissingSource(compiler);

        Assert.True(File.Exists(Path.Combine(victim, "search.index")), "a file outside the cache was deleted through a symlink planted in it");
    }

    [Fact]
    public void PlantedByteCodeIndex_OfManyShortLines_IsNotSplitIntoMemory()
    {
        // An index line is ~200 bytes, yet MaxIndexBytes is 64 MB and the file is read whole and split before
        // anything is checked: "a\n" repeated makes one string object per two bytes (~16x the file in memory; a
        // 64 MB file, which compresses to nothing in a CI cache, costs over a gigabyte).
        using var dir = new TempDir("hi-packattack-bc-index");
        var cache = dir.Combine("cache");
        using var compiler = Compiler(cache);
        var cacheDir = CacheDirOf(compiler);
        Directory.CreateDirectory(cacheDir);
        var planted = Path.Combine(cacheDir, new string('d', 64) + ".index");
        var bytes = new byte[16 << 20];
        for (var i = 0; i < bytes.Length; i += 2) { bytes[i] = (byte)'a'; bytes[i + 1] = (byte)'\n'; }
        File.WriteAllBytes(planted, bytes);
        bytes = null;

        var before = GC.GetAllocatedBytesForCurrentThread();
        CompileOneMissingSource(compiler);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.False(File.Exists(planted));
        Assert.True(allocated < 64L << 20, $"a planted 16 MB index cost {allocated >> 20} MB of allocations");
    }

    [Fact]
    public void PackedFile_AfterItsPackWasEvicted_APlantedLooseFileOfItsName_IsNotReadWhole()
    {
        // "A file planted in the store under a packed file's name is never read" holds only while the pack is
        // registered. Once one bad slice evicts the pack, every other file of it falls back to its loose name, and
        // ReadVerified reads that whole with no size bound: a planted sparse 3 GB file escapes as an IOException
        // (not a CorruptCacheEntryException: the byte-code cache lookup and the repair loop do not catch it; the
        // build fails), and a sparse 1.9 GB one is allocated and read in full, once per such name.
        var cache = Directory.CreateTempSubdirectory("hi-packattack-loose-").FullName;
        try
        {
            var store = new ContentStore(cache);
            var (first, second, pack) = TestPacks.TwoFiles(store, "first file"u8, "second file"u8);
            var bytes = File.ReadAllBytes(store.PathOf(pack));
            bytes[0] ^= 0x20; // a crash or a forger changed the first file's slice
            File.WriteAllBytes(store.PathOf(pack), bytes);
            using (var fs = new FileStream(store.PathOf(second), FileMode.CreateNew, FileAccess.Write)) fs.SetLength(3L << 30);

            Assert.Throws<CorruptCacheEntryException>(() => store.ReadVerified(first)); // evicts the pack
            var e = Record.Exception(() => store.ReadVerified(second));
            Assert.IsType<CorruptCacheEntryException>(e);
        }
        finally { Directory.Delete(cache, recursive: true); }
    }

    [Fact]
    public async Task ByteCodeIndexes_DeletedByAConcurrentBuild_WhileBeingRead_AreAMiss_NotAnIOError()
    {
        // Two builds share the cache and the interpreter: both meet the same stale index (its pack was evicted) and
        // one deletes it while the other is between the stat and the read. The other must see a miss, not fail with
        // FileNotFoundException (which is neither HardenException nor CorruptCacheEntryException).
        using var dir = new TempDir("hi-packattack-bc-race");
        var cache = dir.Combine("cache");
        using var compiler = Compiler(cache);
        var cacheDir = CacheDirOf(compiler);
        Directory.CreateDirectory(cacheDir);
        var stale = Path.Combine(cacheDir, new string('e', 64) + ".index");
        var body = string.Join("\n", Enumerable.Range(0, 2000).Select(_ => new string('a', 64) + " " + new string('b', 64) + " " + new string('c', 64) + " 0 1"))
                   + "\nseal " + new string('f', 64) + "\n";
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(8));
        var other = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                try { File.WriteAllText(stale, body); } catch (IOException) { }
                AtomicFile.TryDelete(stale); // what the other build's ReadIndexes does with it
            }
        });
        Exception? escaped = null;
        while (!stop.IsCancellationRequested && escaped == null)
        {
            try { compiler.ReadIndexes(); }
            catch (Exception e) { escaped = e; }
        }
        await other;
        Assert.Null(escaped);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void PackedFile_WithAFlippedByte_IsRefusedByEveryReader_AndThePackIsEvicted(bool streamed)
    {
        // Files of one package share a pack. A byte changed inside one file's slice must fail that file's own
        // SHA-256 however it is read (whole or streamed to a layer), and take the pack with it: the build unpacks the
        // package again. (A whole read once skipped the check: reading zero bytes at the end never hashed.)
        var cache = Directory.CreateTempSubdirectory("hi-cas-pack-").FullName;
        try
        {
            var store = new ContentStore(cache);
            var (hello, world, pack) = TestPacks.TwoFiles(store, "hello, "u8, "world"u8);
            Assert.Equal("world", Encoding.ASCII.GetString(store.ReadVerified(world)));
            var path = store.PathOf(pack);
            var bytes = File.ReadAllBytes(path);
            bytes[^2] ^= 0x20; // "worLd"
            File.WriteAllBytes(path, bytes);

            var e = Assert.Throws<CorruptCacheEntryException>(() =>
            {
                if (!streamed) { store.ReadVerified(world); return; }
                using var s = store.OpenVerified(world, 5);
                s.CopyTo(Stream.Null);
            });
            Assert.Contains("do not match its SHA-256", e.Message);
            Assert.Contains(pack, e.Message);
            Assert.False(File.Exists(path));
            Assert.False(store.Contains(hello)); // the same pack: gone with it
            Assert.Throws<CorruptCacheEntryException>(() => store.ReadVerified(hello));
        }
        finally { Directory.Delete(cache, recursive: true); }
    }

    [Fact]
    public void PackShorterThanItsFiles_IsEvicted_BeforeAnyByteIsRead()
    {
        var cache = Directory.CreateTempSubdirectory("hi-cas-torn-").FullName;
        try
        {
            var store = new ContentStore(cache);
            var (first, second, pack) = TestPacks.TwoFiles(store, new byte[4096], Encoding.ASCII.GetBytes(new string('x', 4096)));
            using (var fs = new FileStream(store.PathOf(pack), FileMode.Open, FileAccess.Write)) fs.SetLength(5000); // torn by a crash
            Assert.Equal(4096, store.LengthOf(first)); // the first file is still whole in it
            Assert.Equal(-1, store.LengthOf(second));
            var e = Assert.Throws<CorruptCacheEntryException>(() => store.OpenVerified(second, 4096));
            Assert.Contains("too few for file", e.Message);
            Assert.False(File.Exists(store.PathOf(pack)));
        }
        finally { Directory.Delete(cache, recursive: true); }
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task FifoPlantedAsAPack_IsNotOpened()
    {
        var cache = Directory.CreateTempSubdirectory("hi-cas-fifo-pack-").FullName;
        try
        {
            var store = new ContentStore(cache);
            var (file, _, pack) = TestPacks.TwoFiles(store, "content"u8, "more"u8);
            File.Delete(store.PathOf(pack));
            RequiredService.RunOk("mkfifo", [store.PathOf(pack)]);
            // Bounded: a FIFO that is opened blocks for ever, and the test then fails instead of hanging.
            var e = await Task.Run(() => Assert.Throws<CorruptCacheEntryException>(() => store.ReadVerified(file))).WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Contains("is not a regular file", e.Message);
        }
        finally { Directory.Delete(cache, recursive: true); }
    }

    [Fact]
    public void CorruptPack_ReplacedByAConcurrentBuildWhileBeingRead_TheFreshCopyIsKept()
    {
        // Two builds share the cache. This one opened a corrupt pack; meanwhile the other unpacked the package again
        // and renamed a good copy over the same name. The corrupt bytes fail here, but what is evicted is what was
        // read, not the good copy the other build just committed (it would have to unpack again, or give up).
        var cache = Directory.CreateTempSubdirectory("hi-packattack-race-").FullName;
        try
        {
            var store = new ContentStore(cache);
            var (first, _, pack) = TestPacks.TwoFiles(store, "first file"u8, "second file"u8);
            var path = store.PathOf(pack);
            var good = File.ReadAllBytes(path);
            var bad = (byte[])good.Clone();
            bad[0] ^= 0x01;
            File.WriteAllBytes(path, bad);
            using var reading = store.OpenVerified(first, 10);
            var fresh = path + ".fresh";
            File.WriteAllBytes(fresh, good);
            File.Move(fresh, path, overwrite: true); // the other build's commit
            var e = Assert.Throws<CorruptCacheEntryException>(() => reading.CopyTo(Stream.Null));
            Assert.Contains("a fresh copy already replaced it", e.Message);
            Assert.Equal(good, File.ReadAllBytes(path));
        }
        finally { Directory.Delete(cache, recursive: true); }
    }
}
