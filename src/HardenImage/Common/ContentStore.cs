using System.Collections.Concurrent;
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
/// <para>
/// Files written together (a package's tree, one compile's .pyc) go into one <b>pack</b>: a stored file that is their
/// concatenation (<see cref="PackWriter"/>). Creating thousands of small files was most of a cold build's kernel time
/// (inode allocation, directory locks, renames); a pack is one. Whoever reads the sealed list that names a pack's
/// files registers where they lie (<see cref="RegisterPack"/>), and from then on a file is read, and verified against
/// its own SHA-256, from its slice of the pack exactly as from a file of its own. A slice that does not verify evicts
/// the whole pack (the build derives it again); a pack shorter than the files it holds (torn by a crash) likewise.
/// </para>
/// </summary>
public sealed class ContentStore
{
    private readonly ContentAddressedDirectory _files;
    // file SHA-256 → where it lies in a pack; only ever filled from sealed lists this process has read.
    private readonly ConcurrentDictionary<string, PackedFile> _packed = new(StringComparer.Ordinal);

    private readonly record struct PackedFile(string Pack, long Offset, long Size);

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

    public bool Contains(string sha256) => LengthOf(sha256) >= 0;

    /// <summary>
    /// The length of the stored file (one stat; the content is verified when read), -1 when it is not stored. A file
    /// in a registered pack counts when the pack is there and long enough to hold it.
    /// </summary>
    public long LengthOf(string sha256)
    {
        if (!Sha256Hex.IsValid(sha256)) return -1;
        if (_packed.TryGetValue(sha256, out var at))
            return ContentAddressedDirectory.RegularFileLength(_files.PathOf(at.Pack)) >= at.Offset + at.Size ? at.Size : -1;
        return ContentAddressedDirectory.RegularFileLength(_files.PathOf(sha256));
    }

    /// <summary>
    /// Says where the files of pack <paramref name="packSha256"/> lie, as read from a sealed list (a package's file
    /// list, a compile's index). Nothing is read here: each file is verified against its own SHA-256 when read.
    /// </summary>
    public void RegisterPack(string packSha256, IEnumerable<(string Sha256, long Offset, long Size)> files)
    {
        if (!Sha256Hex.IsValid(packSha256)) throw new CorruptCacheEntryException($"{Root}/<pack>", "is not named by a SHA-256");
        foreach (var (sha, offset, size) in files)
        {
            if (!Sha256Hex.IsValid(sha) || offset < 0 || size < 0 || offset > long.MaxValue - size)
                throw new CorruptCacheEntryException(PathOf(packSha256), $"is listed with a file that is no SHA-256 or lies outside it ({sha} at {offset}+{size})");
            _packed[sha] = new PackedFile(packSha256, offset, size);
        }
    }

    /// <summary>The length of a stored pack file (one stat; not a packed file's length), -1 when it is not stored.</summary>
    public long LengthOfPack(string packSha256) =>
        Sha256Hex.IsValid(packSha256) ? ContentAddressedDirectory.RegularFileLength(_files.PathOf(packSha256)) : -1;

    /// <summary>Starts a pack: files added to it are stored, and registered, when it is committed.</summary>
    public PackWriter NewPack() => new(this);

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
        // Length first: a planted sparse file of gigabytes under this name is replaced, never read whole.
        try { same = ContentAddressedDirectory.RegularFileLength(target) == bytes.Length && bytes.SequenceEqual(File.ReadAllBytes(target)); }
        catch (FileNotFoundException) { same = false; } // evicted by another reader meanwhile: write it
        if (!same) AtomicFile.WriteAllBytes(target, bytes, durable: false);
        else LastUse.Refresh(target); // stored again: as much a use as a read
        return sha;
    }

    /// <summary>
    /// Opens a stored file; the stream throws <see cref="CorruptCacheEntryException"/> at its end if the bytes do not
    /// hash to <paramref name="sha256"/>, or at once if the file does not have <paramref name="expectedSize"/> bytes.
    /// </summary>
    public Stream OpenVerified(string sha256, long expectedSize = -1)
    {
        var path = PathOf(sha256);
        if (_packed.TryGetValue(sha256, out var at)) return OpenPacked(sha256, at, expectedSize);
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

    /// <summary>
    /// Reads a stored file whole and verifies it; with <paramref name="expectedSize"/> a file of another length is
    /// evicted before a byte is read (a planted sparse file of gigabytes is never read into memory).
    /// </summary>
    public byte[] ReadVerified(string sha256, long expectedSize = -1)
    {
        var path = PathOf(sha256);
        if (_packed.TryGetValue(sha256, out var at)) return ReadPacked(sha256, at, expectedSize);
        var length = ContentAddressedDirectory.RegularFileLength(path);
        if (length < 0) throw Missing(path);
        if ((expectedSize >= 0 && length != expectedSize) || length > Array.MaxLength)
        {
            AtomicFile.TryDelete(path);
            throw new CorruptCacheEntryException(path, $"has {length} bytes where {(expectedSize >= 0 ? $"its package says {expectedSize}" : "no stored file whole in memory has")} (tampered or corrupt); it was evicted");
        }
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { throw Missing(path); } // evicted by another reader meanwhile
        if (Convert.ToHexStringLower(SHA256.HashData(bytes)) != sha256)
        {
            AtomicFile.TryDelete(path);
            throw new CorruptCacheEntryException(path, "does not match its SHA-256 (tampered or corrupt); it was evicted");
        }
        return bytes;
    }

    private Stream OpenPacked(string sha256, PackedFile at, long expectedSize)
    {
        var handle = OpenPack(sha256, at, expectedSize);
        return new DigestVerifyingStream(new PackSliceStream(handle, at.Offset, at.Size), "sha256:" + sha256, at.Size, owner: handle, onMismatch: () =>
        {
            var e = EvictPack(at.Pack, $"holds bytes for file {sha256} that do not match its SHA-256 (tampered or corrupt)", handle);
            handle.Dispose();
            return e;
        });
    }

    private byte[] ReadPacked(string sha256, PackedFile at, long expectedSize)
    {
        using var handle = OpenPack(sha256, at, expectedSize);
        var bytes = new byte[at.Size];
        for (var done = 0; done < bytes.Length;)
        {
            var n = RandomAccess.Read(handle, bytes.AsSpan(done), at.Offset + done);
            if (n == 0) break; // shorter than at open (truncated meanwhile): fails the hash below
            done += n;
        }
        if (Convert.ToHexStringLower(SHA256.HashData(bytes)) != sha256)
            throw EvictPack(at.Pack, $"holds bytes for file {sha256} that do not match its SHA-256 (tampered or corrupt)", handle);
        return bytes;
    }

    /// <summary>The pack's file, once it is known to be a regular file long enough for the slice; else the pack goes.</summary>
    private Microsoft.Win32.SafeHandles.SafeFileHandle OpenPack(string sha256, PackedFile at, long expectedSize)
    {
        var path = PathOf(at.Pack);
        if (!IsRegularFile(path)) throw UnregisterPack(at.Pack, Missing(path));
        Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        try { handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read); }
        catch (FileNotFoundException) { throw UnregisterPack(at.Pack, Missing(path)); }
        var length = RandomAccess.GetLength(handle);
        if (length >= at.Offset + at.Size && (expectedSize < 0 || expectedSize == at.Size)) return handle;
        using (handle)
            throw EvictPack(at.Pack, length < at.Offset + at.Size
                ? $"has {length} bytes, too few for file {sha256} at {at.Offset}+{at.Size} (torn by a crash, or tampered)"
                : $"holds file {sha256} with {at.Size} bytes where its package says {expectedSize} (tampered or corrupt)", handle);
    }

    /// <summary>A file's slice of a pack, read with positional reads (no shared file position between readers).</summary>
    private sealed class PackSliceStream(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long start, long length) : ReadOnlyStream
    {
        private long _read;

        public override long Length => length;
        public override long Position { get => _read; }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_read >= length || buffer.IsEmpty) return 0;
            if (buffer.Length > length - _read) buffer = buffer[..(int)(length - _read)];
            var n = RandomAccess.Read(handle, buffer, start + _read);
            _read += n; // 0 before the end: the pack shrank meanwhile, and the digest check fails
            return n;
        }
    }

    // A bad pack goes whole: every file in it came from the same write, and the build derives them again. Only the
    // file that was read is deleted: a concurrent build may have renamed a fresh, good copy over it meanwhile.
    private CorruptCacheEntryException EvictPack(string pack, string problem, Microsoft.Win32.SafeHandles.SafeFileHandle read)
    {
        var path = PathOf(pack);
        var same = ContentAddressedDirectory.IsStillTheFileOf(read, path);
        if (same) AtomicFile.TryDelete(path);
        return UnregisterPack(pack, new CorruptCacheEntryException(path, problem + (same ? "; it was evicted" : "; a fresh copy already replaced it")));
    }

    private CorruptCacheEntryException UnregisterPack(string pack, CorruptCacheEntryException e)
    {
        foreach (var (sha, at) in _packed)
            if (at.Pack == pack) _packed.TryRemove(new KeyValuePair<string, PackedFile>(sha, at));
        return e;
    }

    /// <summary>
    /// Writes files one after another into one temp file beside the store, hashing each and the whole; <see cref="Commit"/>
    /// renames it into place under its own SHA-256 and registers the files.
    /// Not fsync'd, like every cache file here: reads are verified, and a torn pack is evicted and derived again.
    /// </summary>
    public sealed class PackWriter : IDisposable
    {
        private readonly ContentStore _store;
        private readonly string _temp;
        private readonly FileStream _out;
        private readonly IncrementalHash _whole = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private readonly IncrementalHash _one = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private readonly Dictionary<string, (long Offset, long Size)> _files = new(StringComparer.Ordinal);
        private readonly byte[] _buffer = new byte[1 << 16];
        private long _length;
        private bool _done;

        internal PackWriter(ContentStore store)
        {
            _store = store;
            _temp = store._files.NewTempPath("pack");
            _out = new FileStream(_temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        }

        /// <summary>Appends <paramref name="content"/>; returns its SHA-256, length and where it lies in the pack.</summary>
        public (string Sha256, long Size, long Offset) Add(Stream content)
        {
            var start = _length;
            int n;
            while ((n = content.Read(_buffer, 0, _buffer.Length)) > 0)
            {
                _one.AppendData(_buffer, 0, n);
                _whole.AppendData(_buffer, 0, n);
                _out.Write(_buffer, 0, n);
                _length += n;
            }
            return Added(Convert.ToHexStringLower(_one.GetHashAndReset()), start);
        }

        /// <inheritdoc cref="Add(Stream)"/>
        public (string Sha256, long Size, long Offset) Add(ReadOnlySpan<byte> bytes)
        {
            var start = _length;
            _whole.AppendData(bytes);
            _out.Write(bytes);
            _length += bytes.Length;
            return Added(Convert.ToHexStringLower(SHA256.HashData(bytes)), start);
        }

        private (string Sha256, long Size, long Offset) Added(string sha, long start)
        {
            // The same bytes twice (copies of a licence, say) are read from the first copy; the second stays unread.
            if (_files.TryGetValue(sha, out var earlier)) return (sha, earlier.Size, earlier.Offset);
            _files[sha] = (start, _length - start);
            return (sha, _length - start, start);
        }

        /// <summary>Stores the pack under its SHA-256 and registers its files; returns that SHA-256 and the pack's length.</summary>
        public (string Sha256, long Length) Commit()
        {
            if (_done) throw new InvalidOperationException("the pack was committed already");
            _out.Dispose();
            var sha = Convert.ToHexStringLower(_whole.GetHashAndReset());
            // The name is the content: replacing an identical pack of a concurrent writer is harmless.
            _store._files.Commit(_temp, sha);
            _done = true;
            _store.RegisterPack(sha, _files.Select(f => (f.Key, f.Value.Offset, f.Value.Size)));
            return (sha, _length);
        }

        public void Dispose()
        {
            _out.Dispose();
            _whole.Dispose();
            _one.Dispose();
            if (!_done) AtomicFile.TryDelete(_temp);
        }
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
