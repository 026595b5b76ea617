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
        using var dir = new TempDir("hi-review-bc-link");
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
        using var dir = new TempDir("hi-review-bc-index");
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
        var cache = Directory.CreateTempSubdirectory("hi-review-loose-").FullName;
        try
        {
            var store = new ContentStore(cache);
            string first, second, pack;
            using (var writer = store.NewPack())
            {
                first = writer.Add("first file"u8).Sha256;
                second = writer.Add("second file"u8).Sha256;
                pack = writer.Commit().Sha256;
            }
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
        using var dir = new TempDir("hi-review-bc-race");
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
}

/// <summary>The file list of an unpacked package is a loose store file: a planted sparse file under its name.</summary>
public sealed class FileListPlantedAttackTests
{
    [Fact]
    public void PlantedHugeFileUnderAFileListsName_IsReplaced_NotReadWhole()
    {
        // Storing the file list compares it with what is already stored under its name by reading that whole: a
        // sparse 3 GB file planted there fails every build with "I/O error: file too long" (and a 1.9 GB one is
        // read into memory), where a length check would simply replace it.
        using var dir = new TempDir("hi-review-list");
        var debPath = dir.Combine("tiny_1.0_all.deb");
        File.WriteAllBytes(debPath, HardenImage.Tests.Deb.HostileDebs.WithPath("./usr/share/tiny/f", System.Formats.Tar.TarEntryFormat.Pax));
        var debSha = Sha256Hex.OfFile(debPath);
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
