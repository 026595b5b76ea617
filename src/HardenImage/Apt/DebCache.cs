using System.Security.Cryptography;
using HardenImage.Common;
using HardenImage.Common.Storage;

namespace HardenImage.Apt;

/// <summary>What a cache lookup found.</summary>
public enum DebCacheState
{
    /// <summary>No file for that digest.</summary>
    Missing,
    /// <summary>The file is there and its size and SHA-256 match.</summary>
    Verified,
    /// <summary>A file was there but did not match; it has been deleted.</summary>
    Evicted,
}

/// <summary>
/// Content-addressed store of .deb files: <c>&lt;root&gt;/debs/sha256/&lt;hex&gt;</c>. Files enter only through
/// <see cref="Commit"/> after the downloader checked size and SHA-256, and are re-hashed on every lookup.
/// <para>
/// Threat: Tampering. Why a full re-hash rather than a "verified" marker keyed by inode+mtime+size: a marker
/// lives in the same writable directory, so whoever can rewrite a .deb can rewrite its marker (and mtime can
/// be set back with <c>touch -d</c>); .NET also exposes no inode without P/Invoke. Hashing costs about 0.6 s
/// per GB with SHA-NI (measured here: 1.7 GB/s), which is small beside the build that reads the same bytes.
/// </para>
/// </summary>
public sealed class DebCache
{
    private readonly ContentAddressedDirectory _files;

    /// <param name="time">The clock that decides a leftover temp file is stale (tests); default the system's.</param>
    public DebCache(string root, TimeProvider? time = null)
    {
        if (string.IsNullOrWhiteSpace(root)) throw new ArgumentException("cache directory is empty", nameof(root));
        Root = Path.GetFullPath(root);
        DebsDirectory = Path.Combine(Root, "debs", "sha256");
        _files = new ContentAddressedDirectory(DebsDirectory);
        _files.CleanStaleTemps(time); // what a killed download left (.tmp-<sha256>-*), else the disk fills for ever
    }

    /// <summary>The cache root (the commands pass <c>Build.HardenPaths.CacheRoot</c>).</summary>
    public string Root { get; }

    /// <summary><c>&lt;root&gt;/debs/sha256</c>.</summary>
    public string DebsDirectory { get; }

    /// <summary>Where the .deb with this SHA-256 lives (whether or not it is there).</summary>
    public string PathFor(string sha256)
    {
        var hex = sha256.ToLowerInvariant();
        // The digest becomes a file name: refuse anything that is not 64 hex digits (no path traversal).
        if (!Sha256Hex.IsValid(hex)) throw new ArgumentException($"'{sha256}' is not a SHA-256 hex digest", nameof(sha256));
        return _files.PathOf(hex);
    }

    /// <summary>
    /// Checks the cached file for <paramref name="sha256"/>: size first (cheap), then the full hash. A file that
    /// does not match is deleted so that it is fetched again.
    /// </summary>
    public async Task<DebCacheState> VerifyAsync(string sha256, long size, CancellationToken ct = default)
    {
        var path = PathFor(sha256);
        var info = new FileInfo(path);
        if (!info.Exists) return DebCacheState.Missing;
        bool ok = false;
        if (info.Length == size)
        {
            try
            {
                await using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
                var actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(fs, ct));
                ok = actual == sha256.ToLowerInvariant();
            }
            catch (FileNotFoundException) { return DebCacheState.Missing; } // raced with another eviction
        }
        if (ok)
        {
            LastUse.Refresh(path); // harden cache prune keeps what builds use
            return DebCacheState.Verified;
        }
        _files.Evict(Path.GetFileName(path));
        return DebCacheState.Evicted;
    }

    /// <summary>A fresh temp path in the cache directory, so that <see cref="Commit"/> is a same-filesystem rename.</summary>
    public string NewTempPath(string sha256) => _files.NewTempPath(Path.GetFileName(PathFor(sha256)));

    /// <summary>Moves a verified temp file into place (atomic rename; a concurrent writer of the same digest wrote the same bytes).</summary>
    public string Commit(string tempPath, string sha256)
    {
        return _files.Commit(tempPath, Path.GetFileName(PathFor(sha256)));
    }
}
