using System.Security.Cryptography;

namespace HardenImage.Common.Storage;

/// <summary>
/// One directory of files named by the lower-case hex SHA-256 of their bytes — the shape of every store the tool
/// keeps (<c>debs/sha256</c>, <c>apt-indices/sha256</c>, <c>content/sha256</c> under the cache, <c>blobs/sha256</c> of an
/// OCI layout). What they share lives here: the path of a digest, writing to a temp file beside the target (our
/// <c>.tmp-&lt;name&gt;-&lt;guid&gt;</c> names, which <see cref="StaleTempFiles"/> recognises) while hashing, the atomic
/// rename into place, the regular-file check, re-hashing on read and eviction. Each store keeps its own policy (what
/// a bad name, a missing or a corrupt file means to its callers) and its own messages.
/// </summary>
public sealed class ContentAddressedDirectory(string directory)
{
    private const int BufferSize = 1 << 16;

    /// <summary>The directory the files live in (created on the first write).</summary>
    public string Directory { get; } = directory;

    /// <summary>Where the file named <paramref name="hex"/> lives, whether or not it is there. Callers validate the name.</summary>
    public string PathOf(string hex) => Path.Combine(Directory, hex);

    /// <summary>Removes temp files killed writers left here (<see cref="StaleTempFiles"/>); returns how many.</summary>
    public int CleanStaleTemps(TimeProvider? time = null) => StaleTempFiles.Clean(Directory, time);

    /// <summary>A fresh temp path beside the files (<c>.tmp-&lt;name&gt;-&lt;guid&gt;</c>), so committing is a same-filesystem rename.</summary>
    public string NewTempPath(string name) => AtomicFile.TempPathFor(PathOf(name));

    /// <summary>Moves a finished temp file into place (atomic; a concurrent writer of the same digest wrote the same bytes).</summary>
    public string Commit(string tempPath, string hex)
    {
        var path = PathOf(hex);
        File.Move(tempPath, path, overwrite: true);
        return path;
    }

    /// <summary>Deletes the file named <paramref name="hex"/> if it can (a corrupt or planted entry).</summary>
    public void Evict(string hex) => AtomicFile.TryDelete(PathOf(hex));

    /// <summary>
    /// True for a regular file that is not a symlink. A cache may be written by someone else: a FIFO planted
    /// under a blob's name would block a read for ever (threat D), a symlink would read from elsewhere.
    /// </summary>
    public static bool IsRegularFile(string path) => RegularFileLength(path) >= 0;

    /// <summary>
    /// Opens <paramref name="path"/> for reading when it is a regular file (not a symlink, FIFO or device, never opened);
    /// null when it is anything else or gone. On Linux the open itself does not follow a link and cannot block on a FIFO
    /// swapped in after the check (<see cref="NoFollowDirectory.OpenRegularFile"/>).
    /// </summary>
    public static FileStream? OpenRegularFile(string path)
    {
        if (OperatingSystem.IsLinux()) return OpenRegularFileLinux(path);
        if (!IsRegularFile(path)) return null;
        try { return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return null; }
    }

    /// <summary>
    /// The file named <paramref name="hex"/>, opened once (never through a symlink, FIFO or device), hashed through that
    /// descriptor and positioned at its start, so the caller uses the very bytes that were checked: a path checked and
    /// opened again could meanwhile be another writer's file (a shared cache) or gone (a concurrent prune). Null when
    /// absent, of another length than <paramref name="expectedLength"/> (when given) or not those bytes — then evicted,
    /// if it is still the file that was read (a good copy renamed over it meanwhile stays). A hit records its use.
    /// </summary>
    public FileStream? OpenVerified(string hex, long expectedLength = -1)
    {
        var path = PathOf(hex);
        var file = OpenRegularFile(path);
        if (file == null) return null;
        bool ok;
        try { ok = (expectedLength < 0 || file.Length == expectedLength) && Common.Sha256Hex.Of(file) == hex; }
        catch
        {
            file.Dispose();
            throw;
        }
        if (ok)
        {
            file.Position = 0;
            LastUse.Refresh(path); // harden cache prune keeps what is used
            return file;
        }
        var same = IsStillTheFileOf(file.SafeFileHandle, path);
        file.Dispose();
        if (same) Evict(hex);
        return null;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static FileStream? OpenRegularFileLinux(string path)
    {
        using var dir = NoFollowDirectory.OpenRoot(Path.GetDirectoryName(Path.GetFullPath(path))!);
        return dir?.OpenRegularFile(Path.GetFileName(path)) as FileStream;
    }

    /// <summary>The length of a regular file that is not a symlink (one stat), or -1 for anything else or nothing.</summary>
    public static long RegularFileLength(string path)
    {
        if (OperatingSystem.IsLinux()) return RegularFileLengthLinux(path);
        var info = new FileInfo(path);
        return info.Exists && info.LinkTarget == null ? info.Length : -1;
    }

    // Separate so that no other platform JIT-compiles a reference to Tmds.LibC (Linux-only implementation).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static long RegularFileLengthLinux(string path) =>
        NoFollowDirectory.StatPath(path) is { Kind: EntryKind.File } st ? st.Length : -1;

    /// <summary>
    /// True while <paramref name="path"/> (not followed) is the very file <paramref name="handle"/> has open (same
    /// device and inode): false once a concurrent writer has renamed a fresh copy over it, which must not be evicted
    /// for what was wrong with the old one. Other platforms: true.
    /// </summary>
    public static bool IsStillTheFileOf(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string path) =>
        !OperatingSystem.IsLinux() || IsStillTheFileOfLinux(handle, path);

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static unsafe bool IsStillTheFileOfLinux(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string path)
    {
        Tmds.Linux.stat open, named;
        if (Tmds.Linux.LibC.fstat((int)handle.DangerousGetHandle(), &open) != 0) return true;
        var bytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
            if (Tmds.Linux.LibC.fstatat(Tmds.Linux.LibC.AT_FDCWD, p, &named, Tmds.Linux.LibC.AT_SYMLINK_NOFOLLOW) != 0) return false;
        return open.st_dev == named.st_dev && open.st_ino == named.st_ino;
    }

    /// <summary>
    /// Copies <paramref name="content"/> into a new temp file (<see cref="NewTempPath"/>) while hashing it; stops
    /// reading once more than <paramref name="maxBytes"/> have come (that chunk is not written). The caller commits
    /// or deletes the temp file; on an exception it is already deleted.
    /// </summary>
    /// <returns>The temp path, the hex SHA-256 of what was written and the number of bytes read.</returns>
    public (string TempPath, string Hex, long Size) WriteTemp(string tempName, Stream content, long maxBytes = long.MaxValue)
    {
        var tmp = NewTempPath(tempName);
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long total = 0;
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize))
            {
                var buffer = new byte[BufferSize];
                int n;
                while ((n = content.Read(buffer, 0, buffer.Length)) > 0)
                {
                    total += n;
                    if (total > maxBytes) break;
                    hash.AppendData(buffer, 0, n);
                    fs.Write(buffer, 0, n);
                }
            }
            return (tmp, Convert.ToHexStringLower(hash.GetHashAndReset()), total);
        }
        catch
        {
            AtomicFile.TryDelete(tmp);
            throw;
        }
    }

    /// <inheritdoc cref="WriteTemp"/>
    public async Task<(string TempPath, string Hex, long Size)> WriteTempAsync(string tempName, Stream content, long maxBytes = long.MaxValue,
        CancellationToken ct = default)
    {
        var tmp = NewTempPath(tempName);
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long total = 0;
            await using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize, useAsync: true))
            {
                var buffer = new byte[BufferSize];
                int n;
                while ((n = await content.ReadAsync(buffer, ct)) > 0)
                {
                    total += n;
                    if (total > maxBytes) break;
                    hash.AppendData(buffer, 0, n);
                    await fs.WriteAsync(buffer.AsMemory(0, n), ct);
                }
            }
            return (tmp, Convert.ToHexStringLower(hash.GetHashAndReset()), total);
        }
        catch
        {
            AtomicFile.TryDelete(tmp);
            throw;
        }
    }
}
