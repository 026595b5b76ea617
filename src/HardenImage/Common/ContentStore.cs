using System.Security.Cryptography;
using HardenImage.Common;
using HardenImage.Common.Storage;
using HardenImage.Common.Streams;

namespace HardenImage.Common;

/// <summary>
/// Content-addressed file store under the cache (<c>&lt;cache&gt;/content/sha256/&lt;hex&gt;</c>): every file a package
/// unpacks to is kept once, named by its SHA-256. Writes go to a temp file and are renamed when complete; reads
/// are verified while streaming (threat: Tampering — a cache changed behind our back fails the build instead of
/// entering an image).
/// </summary>
public sealed class ContentStore
{
    private readonly ContentAddressedDirectory _files;

    /// <param name="time">The clock that decides a leftover temp file is stale (tests); default the system's.</param>
    public ContentStore(string cacheRoot, TimeProvider? time = null)
    {
        Root = Path.Combine(cacheRoot, "content", "sha256");
        _files = new ContentAddressedDirectory(Root);
        Directory.CreateDirectory(Root);
        _files.CleanStaleTemps(time); // what a killed build left (.tmp-incoming-*), else the disk fills for ever
    }

    public string Root { get; }

    /// <summary>
    /// Where the file named <paramref name="sha256"/> lives. A name that is not a SHA-256 (64 lower-case hex) is
    /// refused here, before anything is stat'ed, opened or evicted: "../x" must never reach a path outside the store.
    /// </summary>
    public string PathOf(string sha256) => Sha256Hex.IsValid(sha256) ? _files.PathOf(sha256)
        : throw new CorruptCacheEntryException($"{Root}/<{(sha256.Length > 80 ? sha256[..80] + "…" : sha256)}>", "is not named by a SHA-256 (64 lower-case hex); nothing was read or evicted");

    public bool Contains(string sha256) => Sha256Hex.IsValid(sha256) && IsRegularFile(_files.PathOf(sha256));

    /// <summary>The length of the stored file (one stat; the content is verified when read), -1 when it is not stored.</summary>
    public long LengthOf(string sha256) => Sha256Hex.IsValid(sha256) ? ContentAddressedDirectory.RegularFileLength(_files.PathOf(sha256)) : -1;

    /// <inheritdoc cref="ContentAddressedDirectory.IsRegularFile"/>
    public static bool IsRegularFile(string path) => ContentAddressedDirectory.IsRegularFile(path);

    /// <summary>Copies a stream in, returning its SHA-256 and length.</summary>
    public (string Sha256, long Size) Put(Stream content)
    {
        var (tmp, sha, size) = _files.WriteTemp("incoming", content);
        try
        {
            // Two builders may store the same bytes at once (an Architecture: all package in two architecture
            // chains): the name is the content, so replacing an identical file is harmless and rename is atomic.
            // Always replacing (rather than keeping what is there) also repairs a forged file of that name for free.
            _files.Commit(tmp, sha);
            return (sha, size);
        }
        finally
        {
            AtomicFile.TryDelete(tmp);
        }
    }

    public string Put(ReadOnlySpan<byte> bytes)
    {
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        var target = PathOf(sha);
        // Not fsync'd, like Put(Stream): every read is verified, and a build that meets a corrupt entry evicts it and
        // derives it again (ImageBuilder), so a crash costs a rebuild, never wrong bytes.
        bool same;
        try { same = IsRegularFile(target) && bytes.SequenceEqual(File.ReadAllBytes(target)); }
        catch (FileNotFoundException) { same = false; } // evicted by another reader meanwhile: write it
        if (!same) AtomicFile.WriteAllBytes(target, bytes, durable: false);
        return sha;
    }

    /// <summary>
    /// Opens a stored file; the stream throws <see cref="CorruptCacheEntryException"/> at its end if the bytes do not
    /// hash to <paramref name="sha256"/>, or at once if the file does not have <paramref name="expectedSize"/> bytes.
    /// </summary>
    public Stream OpenVerified(string sha256, long expectedSize = -1)
    {
        var path = PathOf(sha256);
        if (!IsRegularFile(path)) throw Missing(path);
        FileStream fs;
        // Another reader may evict a corrupt file between the check and the open (parallel unpack, layers, trees).
        try { fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16); }
        catch (FileNotFoundException) { throw Missing(path); }
        var length = fs.Length;
        if (expectedSize >= 0 && length != expectedSize)
        {
            fs.Dispose();
            AtomicFile.TryDelete(path);
            throw new CorruptCacheEntryException(path, $"has {length} bytes where its package says {expectedSize} (tampered or corrupt); it was evicted");
        }
        return new DigestVerifyingStream(fs, "sha256:" + sha256, length, onMismatch: () =>
        {
            fs.Dispose();
            AtomicFile.TryDelete(path);
            return new CorruptCacheEntryException(path, "does not match its SHA-256 (tampered or corrupt); it was evicted");
        });
    }

    public byte[] ReadVerified(string sha256)
    {
        var path = PathOf(sha256);
        byte[] bytes;
        try { bytes = IsRegularFile(path) ? File.ReadAllBytes(path) : throw Missing(path); }
        catch (FileNotFoundException) { throw Missing(path); } // evicted by another reader meanwhile
        if (Convert.ToHexStringLower(SHA256.HashData(bytes)) != sha256)
        {
            AtomicFile.TryDelete(path);
            throw new CorruptCacheEntryException(path, "does not match its SHA-256 (tampered or corrupt); it was evicted");
        }
        return bytes;
    }

    private static CorruptCacheEntryException Missing(string path)
    {
        if (!File.Exists(path) && new FileInfo(path).LinkTarget == null) return new CorruptCacheEntryException(path, "is missing");
        // Put back by a concurrent writer since the failed open: not planted, and not to be deleted.
        if (IsRegularFile(path)) return new CorruptCacheEntryException(path, "was replaced while being read");
        AtomicFile.TryDelete(path);
        return new CorruptCacheEntryException(path, "is not a regular file (a symlink, FIFO or device planted in the cache); it was evicted");
    }
}

/// <summary>
/// A content-store file that is missing or does not hold the bytes its name says. The builder evicts it, reports
/// it and builds once more, which unpacks the verified .deb again (threat T: a poisoned cache cannot change an image).
/// </summary>
public sealed class CorruptCacheEntryException(string path, string problem)
    : HardenException($"cache file {path} {problem}; run the build again (it unpacks the package again).")
{
    public string CachePath { get; } = path;
    public string Problem { get; } = problem;
}
