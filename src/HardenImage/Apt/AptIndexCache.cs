using HardenImage.Common;
using HardenImage.Common.Storage;

namespace HardenImage.Apt;

/// <summary>
/// Content-addressed store of verified repository indices (Packages.xz/.gz/plain), keyed by the SHA-256 that the
/// signed Release lists. Every read re-hashes the file; a file that no longer matches is deleted and fetched again.
/// Writes go to a temp file beside the target and are renamed only after size and hash match.
/// Answers Tampering: a cache entry edited on disk, or a half-written one from an interrupted run, is never trusted.
/// </summary>
public sealed class AptIndexCache
{
    private readonly ContentAddressedDirectory _files;

    public AptIndexCache(string rootDirectory)
    {
        RootDirectory = rootDirectory;
        Directory = Path.Combine(rootDirectory, "apt-indices", "sha256");
        _files = new ContentAddressedDirectory(Directory);
    }

    /// <summary>The cache root (HARDEN_CACHE or its default).</summary>
    public string RootDirectory { get; }

    /// <summary>Where index blobs live: <c>&lt;root&gt;/apt-indices/sha256/&lt;hex&gt;</c>.</summary>
    public string Directory { get; }

    public string PathFor(string sha256) =>
        Sha256Hex.IsValid(sha256) ? _files.PathOf(sha256) : throw new ArgumentException($"'{sha256}' is not a lower-case SHA-256", nameof(sha256));

    /// <summary>
    /// The cached index for <paramref name="sha256"/>, opened once, hashed through that descriptor and positioned at its
    /// start; null when absent or no longer matching (a corrupt entry is removed). The caller parses the very bytes that
    /// were hashed: checked by path and parsed by path, the file could be removed in between by a concurrent
    /// <c>harden cache prune</c> (a stray FileNotFoundException) or replaced by a writer of a shared cache (a forged
    /// index parsed as the verified one). A FIFO, device or symlink under the name is never opened.
    /// </summary>
    public FileStream? OpenVerified(string sha256, long size)
    {
        var path = PathFor(sha256);
        var info = new FileInfo(path);
        if (!info.Exists && info.LinkTarget == null) return null;
        // A FIFO planted under a digest's name would block the read for ever, a symlink read from elsewhere (threat D).
        if (!ContentAddressedDirectory.IsRegularFile(path)) { _files.Evict(sha256); return null; }
        return _files.OpenVerified(sha256, size); // null when removed, swapped or not those bytes: fetched again
    }

    /// <summary>
    /// A stored InRelease by its SHA-256 (the digest a lock records per suite), re-hashed on read; null when absent or
    /// no longer matching. The caller still verifies its signature: the store proves identity, the keyring proves origin.
    /// </summary>
    public byte[]? TryGetInRelease(string sha256, long maxBytes)
    {
        var path = PathFor(sha256);
        var info = new FileInfo(path);
        if (!info.Exists && info.LinkTarget == null) return null;
        // A FIFO planted under a digest's name would block the read for ever, a symlink read from elsewhere (threat D).
        if (!ContentAddressedDirectory.IsRegularFile(path)) { _files.Evict(sha256); return null; }
        if (info.Length <= maxBytes)
        {
            byte[] bytes;
            try { bytes = File.ReadAllBytes(path); }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return null; } // pruned meanwhile: fetched again
            if (Sha256Hex.Of(bytes) == sha256)
            {
                LastUse.Refresh(path);
                return bytes;
            }
        }
        _files.Evict(sha256);
        return null;
    }

    /// <summary>Keeps a verified InRelease so that a lock recording it stays provable after the mirror moves on.</summary>
    public void PutInRelease(byte[] bytes)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var path = PathFor(Sha256Hex.Of(bytes));
        if (!File.Exists(path)) AtomicFile.WriteAllBytes(path, bytes);
    }

    /// <summary>
    /// Copies <paramref name="content"/> into the cache while hashing it. Stops reading past <paramref name="size"/>
    /// bytes (a hostile server cannot fill the disk) and commits only when size and hash match.
    /// </summary>
    /// <returns>The cached path, or null plus what was actually received when the content does not match.</returns>
    public async Task<(string? Path, string ActualSha256, long ActualSize)> PutAsync(string sha256, long size, Stream content, CancellationToken ct)
    {
        _ = PathFor(sha256); // the name is a SHA-256 (no path traversal)
        // More than the signed size: the rest is not read (nor written).
        var (tmp, actual, total) = await _files.WriteTempAsync(sha256, content, maxBytes: size, ct);
        if (total != size || actual != sha256)
        {
            AtomicFile.TryDelete(tmp);
            return (null, total > size ? "(not computed: too long)" : actual, total);
        }
        try
        {
            return (_files.Commit(tmp, sha256), actual, total);
        }
        catch
        {
            AtomicFile.TryDelete(tmp);
            throw;
        }
    }
}
