using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using HardenImage.Build;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Cache;

/// <summary>
/// A cache directory with entries in harden's own formats (a pointer naming a real file list naming a pack, a
/// byte-code index naming its pack, .debs, build records, indices, wheels, older formats), each made to look last
/// used a given time ago, plus what a test plants beside them. Files are 100 KiB (whole 4 KiB blocks), so the bytes
/// on disk are predictable.
/// </summary>
public sealed class CacheTree : IDisposable
{
    public const int FileBytes = 100 * 1024;
    private readonly TempDir _dir = new("hi-cache-tree");

    public CacheTree()
    {
        Root = _dir.Combine("cache");
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }
    /// <summary>A directory beside the cache, for what must never be touched.</summary>
    public string Outside(params string[] parts) => _dir.Combine(["outside", .. parts]);
    public string Path(string relative) => System.IO.Path.Combine(Root, relative);

    /// <summary>A .deb: debs/sha256/&lt;sha256&gt;.</summary>
    public string Deb(TimeSpan age) => Stored("debs/sha256", Random(), age);

    /// <summary>An unpacked tree: its pointer, file list and pack; returns the three paths (pointer first).</summary>
    public string[] Unpacked(TimeSpan age, byte[]? packBytes = null)
    {
        var pack = Stored("content/sha256", packBytes ?? Random(), age);
        var debSha = Hex(RandomNumberGenerator.GetBytes(32));
        var list = JsonSerializer.SerializeToUtf8Bytes(new UnpackedPackage
        {
            Name = "pkg", Version = "1.0", Architecture = "amd64", DebSha256 = debSha, ControlText = "Package: pkg\n",
            Entries = [new UnpackedEntry("usr/bin/pkg", HardenImage.Oci.FsNodeType.File, 493, 0, 0, FileBytes, Hex(SHA256.HashData(File.ReadAllBytes(pack))), null)],
            Pack = System.IO.Path.GetFileName(pack), PackLength = FileBytes,
        }, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase });
        var listPath = Stored("content/sha256", list, age);
        var pointer = Write($"unpacked-v4/{debSha}", Encoding.ASCII.GetBytes($"{System.IO.Path.GetFileName(listPath)} {new string('5', 64)}\n"), age);
        return [pointer, listPath, pack];
    }

    /// <summary>A byte-code index and its pack: bytecode-v2/&lt;identity&gt;/&lt;pack&gt;.index; returns both paths (index first).</summary>
    public string[] ByteCode(TimeSpan age, string identity = "")
    {
        var pack = Stored("content/sha256", Random(), age);
        var packSha = System.IO.Path.GetFileName(pack);
        identity = identity.Length > 0 ? identity : new string('1', 64);
        var line = $"{new string('a', 64)} {new string('b', 64)} {packSha} 0 {FileBytes}";
        var index = Write($"bytecode-v2/{identity}/{packSha}.index", Encoding.ASCII.GetBytes($"{line}\nseal {new string('6', 64)}\n"), age);
        return [index, pack];
    }

    public string Build(TimeSpan age) => Write($"builds-v1/{Hex(RandomNumberGenerator.GetBytes(32))}", Encoding.ASCII.GetBytes(new string('7', 64) + "\n"), age);
    public string Index(TimeSpan age) => Stored("indices/apt-indices/sha256", Random(), age);
    public string Proof(TimeSpan age) => Write($"indices/apt-proofs/{Hex(RandomNumberGenerator.GetBytes(32))}-amd64", Random(), age);
    public string Wheel(TimeSpan age) => Stored("wheels", Random(), age);
    /// <summary>A content file nothing names (a payload file, a pack whose pointer was rewritten).</summary>
    public string Orphan(TimeSpan age) => Stored("content/sha256", Random(), age);
    /// <summary>A file of an older format (unpacked-v3/&lt;sha&gt;, bytecode-v1/&lt;2 hex&gt;/&lt;sha&gt;).</summary>
    public string Old(string part, TimeSpan age)
    {
        var sha = Hex(RandomNumberGenerator.GetBytes(32));
        return Write(part == "bytecode-v1" ? $"{part}/{sha[..2]}/{sha}" : $"{part}/{sha}", Random(), age);
    }

    /// <summary>A temp file a writer left in <paramref name="directory"/> (<c>.tmp-&lt;name&gt;-&lt;32 hex&gt;</c>).</summary>
    public string Temp(string directory, TimeSpan age) => Write($"{directory}/.tmp-incoming-{Guid.NewGuid():N}", Random(), age);

    public string Write(string relative, byte[] bytes, TimeSpan age)
    {
        var path = Path(relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        Age(path, age);
        return path;
    }

    private string Stored(string directory, byte[] bytes, TimeSpan age) => Write($"{directory}/{Hex(SHA256.HashData(bytes))}", bytes, age);

    /// <summary>Sets the modification time of <paramref name="path"/> itself (a symlink's own, never its target's) to <paramref name="age"/> ago.</summary>
    public static void Age(string path, TimeSpan age)
    {
        var when = (DateTimeOffset.UtcNow - age).ToUnixTimeSeconds();
        if (utimensat(AtFdCwd, path, [new Timespec(when, 0), new Timespec(when, 0)], AtSymlinkNoFollow) != 0)
            throw new IOException($"utimensat {path}: errno {Marshal.GetLastPInvokeError()}");
    }

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Timespec(long Seconds, long Nanoseconds);

    private const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100;

    [DllImport("libc", SetLastError = true)]
    private static extern int utimensat(int dirfd, string path, Timespec[] times, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int mkfifo(string path, uint mode);

    /// <summary>Every path below <paramref name="root"/> (never through a symlink) with its type, length, mtime and link target.</summary>
    public static SortedDictionary<string, string> Snapshot(string root)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        void Walk(string dir)
        {
            foreach (var entry in new DirectoryInfo(dir).EnumerateFileSystemInfos())
            {
                var rel = System.IO.Path.GetRelativePath(root, entry.FullName);
                if (entry.LinkTarget != null) result[rel] = $"link → {entry.LinkTarget}";
                else if (entry is DirectoryInfo d) { result[rel] = "dir"; Walk(d.FullName); }
                else result[rel] = $"{entry.UnixFileMode} {((FileInfo)entry).Length} {entry.LastWriteTimeUtc:O}";
            }
        }
        Walk(root);
        return result;
    }

    /// <summary>A FIFO (never to be opened: a reader would block on it for ever).</summary>
    public static void Fifo(string path)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        if (mkfifo(path, 0x1a4) != 0) throw new IOException($"mkfifo {path}: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>
    /// Makes <paramref name="path"/> impossible to remove for this process: the immutable attribute for root (who
    /// may remove anything else), else a read-only parent directory. <see cref="IDisposable.Dispose"/> undoes it.
    /// </summary>
    public static IDisposable Undeletable(string path)
    {
        if (geteuid() != 0)
        {
            var parent = System.IO.Path.GetDirectoryName(path)!;
            var mode = File.GetUnixFileMode(parent);
            File.SetUnixFileMode(parent, UnixFileMode.UserRead | UnixFileMode.UserExecute);
            return new Undo(() => File.SetUnixFileMode(parent, mode));
        }
        SetImmutable(path, true);
        return new Undo(() => SetImmutable(path, false));
    }

    private sealed class Undo(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }

    // FS_IOC_GETFLAGS / FS_IOC_SETFLAGS (linux/fs.h, 64-bit) and FS_IMMUTABLE_FL: what chattr +i does.
    private const ulong GetFlags = 0x80086601, SetFlags = 0x40086602;
    private const int ImmutableFlag = 0x10;

    private static void SetImmutable(string path, bool on)
    {
        using var f = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        var fd = (int)f.DangerousGetHandle();
        var flags = 0;
        if (ioctl(fd, GetFlags, ref flags) != 0) throw new IOException($"FS_IOC_GETFLAGS {path}: errno {Marshal.GetLastPInvokeError()} (a file system without attributes?)");
        flags = on ? flags | ImmutableFlag : flags & ~ImmutableFlag;
        if (ioctl(fd, SetFlags, ref flags) != 0) throw new IOException($"FS_IOC_SETFLAGS {path}: errno {Marshal.GetLastPInvokeError()}");
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int ioctl(int fd, ulong request, ref int flags);

    [DllImport("libc")]
    private static extern uint geteuid();

    public static byte[] Random() => RandomNumberGenerator.GetBytes(FileBytes);
    private static string Hex(byte[] b) => Convert.ToHexStringLower(b);

    public void Dispose() => _dir.Dispose();
}
