using System.Security.Cryptography;
using HardenImage.Common;

namespace HardenImage.Common;

/// <summary>
/// Content-addressed file store under the cache (<c>&lt;cache&gt;/content/sha256/&lt;hex&gt;</c>): every file a package
/// unpacks to is kept once, named by its SHA-256. Writes go to a temp file and are renamed when complete; reads
/// are verified while streaming (threat: Tampering — a cache changed behind our back fails the build instead of
/// entering an image).
/// </summary>
public sealed class ContentStore
{
    /// <param name="time">The clock that decides a leftover temp file is stale (tests); default the system's.</param>
    public ContentStore(string cacheRoot, TimeProvider? time = null)
    {
        Root = Path.Combine(cacheRoot, "content", "sha256");
        Directory.CreateDirectory(Root);
        StaleTempFiles.Clean(Root, time); // what a killed build left (.tmp-incoming-*), else the disk fills for ever
    }

    public string Root { get; }

    public string PathOf(string sha256) => Path.Combine(Root, sha256);

    public bool Contains(string sha256) => IsRegularFile(PathOf(sha256));

    /// <summary>
    /// True for a regular file that is not a symlink. The cache may be written by someone else: a FIFO planted
    /// under a blob's name would block a read for ever (threat D), a symlink would read from elsewhere.
    /// </summary>
    public static bool IsRegularFile(string path) =>
        OperatingSystem.IsLinux() ? IsRegularFileLinux(path) : File.Exists(path) && new FileInfo(path).LinkTarget == null;

    // Separate so that no other platform JIT-compiles a reference to Tmds.LibC (Linux-only implementation).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static unsafe bool IsRegularFileLinux(string path)
    {
        Tmds.Linux.stat st;
        var bytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
            if (Tmds.Linux.LibC.fstatat(Tmds.Linux.LibC.AT_FDCWD, p, &st, Tmds.Linux.LibC.AT_SYMLINK_NOFOLLOW) != 0) return false;
        return (st.st_mode & Tmds.Linux.LibC.S_IFMT) == Tmds.Linux.LibC.S_IFREG;
    }

    /// <summary>Copies a stream in, returning its SHA-256 and length.</summary>
    public (string Sha256, long Size) Put(Stream content)
    {
        var tmp = AtomicFile.TempPathFor(Path.Combine(Root, "incoming"));
        try
        {
            long size = 0;
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                var buffer = new byte[1 << 16];
                int n;
                while ((n = content.Read(buffer, 0, buffer.Length)) > 0)
                {
                    hash.AppendData(buffer, 0, n);
                    fs.Write(buffer, 0, n);
                    size += n;
                }
            }
            var sha = Convert.ToHexStringLower(hash.GetHashAndReset());
            // Two builders may store the same bytes at once (an Architecture: all package in two architecture
            // chains): the name is the content, so replacing an identical file is harmless and rename is atomic.
            // Always replacing (rather than keeping what is there) also repairs a forged file of that name for free.
            File.Move(tmp, PathOf(sha), overwrite: true);
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
        if (!IsRegularFile(target) || !bytes.SequenceEqual(File.ReadAllBytes(target))) AtomicFile.WriteAllBytes(target, bytes);
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
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var length = fs.Length;
        if (expectedSize >= 0 && length != expectedSize)
        {
            fs.Dispose();
            AtomicFile.TryDelete(path);
            throw new CorruptCacheEntryException(path, $"has {length} bytes where its package says {expectedSize} (tampered or corrupt); it was evicted");
        }
        return new VerifyingStream(fs, sha256, path);
    }

    public byte[] ReadVerified(string sha256)
    {
        var path = PathOf(sha256);
        var bytes = IsRegularFile(path) ? File.ReadAllBytes(path) : throw Missing(path);
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
        AtomicFile.TryDelete(path);
        return new CorruptCacheEntryException(path, "is not a regular file (a symlink, FIFO or device planted in the cache); it was evicted");
    }

    /// <summary>Hashes what passes through and fails on the last read if the content is not what was named.</summary>
    private sealed class VerifyingStream(Stream inner, string expected, string path) : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private bool _checked;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer);
            if (n > 0) _hash.AppendData(buffer[..n]);
            else if (!_checked)
            {
                _checked = true;
                var actual = Convert.ToHexStringLower(_hash.GetHashAndReset());
                if (actual != expected)
                {
                    inner.Dispose();
                    AtomicFile.TryDelete(path);
                    throw new CorruptCacheEntryException(path, "does not match its SHA-256 (tampered or corrupt); it was evicted");
                }
            }
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) { inner.Dispose(); _hash.Dispose(); }
            base.Dispose(disposing);
        }
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
