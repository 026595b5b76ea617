using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace HardenImage.Common;

/// <summary>What <see cref="NoFollowTree"/> refused, for the caller to say in its own words.</summary>
public enum NoFollowProblem
{
    /// <summary>The root itself cannot be opened.</summary>
    RootUnopenable,
    /// <summary>A directory on the way (<see cref="NoFollowRefusal.At"/>) is a symlink or not a directory.</summary>
    PathNotADirectory,
    /// <summary>A directory on the way does not exist.</summary>
    PathMissing,
    /// <summary>A directory on the way cannot be opened for another reason (<see cref="NoFollowRefusal.Errno"/>).</summary>
    PathUnopenable,
    /// <summary>The entry does not exist (anymore).</summary>
    Missing,
    /// <summary>The entry cannot be stat'ed (lstat before opening, fstat after).</summary>
    Unexaminable,
    Symlink,
    /// <summary>A directory where a file was expected.</summary>
    Directory,
    Fifo,
    Socket,
    Device,
    /// <summary>A regular file with more than one name (<see cref="NoFollowRefusal.Links"/>).</summary>
    HardLinked,
    /// <summary>open() failed; <see cref="NoFollowRefusal.Errno"/> is ELOOP when it became a symlink after the check.</summary>
    Unopenable,
    /// <summary>What was opened is another inode than what was checked.</summary>
    Replaced,
}

/// <summary>A refusal of <see cref="NoFollowTree"/>: the problem, the relative path it concerns, the errno and links.</summary>
public sealed class NoFollowRefusal(NoFollowProblem problem, string at, int errno = 0, ulong links = 0)
    : Exception($"{at}: {problem}")
{
    public NoFollowProblem Problem { get; } = problem;
    /// <summary>'/'-separated path below the root that the problem is about (a directory on the way, or the entry).</summary>
    public string At { get; } = at;
    public int Errno { get; } = errno;
    public ulong Links { get; } = links;
    /// <summary>The errno's text, for messages.</summary>
    public string ErrorText => Marshal.GetPInvokeErrorMessage(Errno);
}

/// <summary>
/// Reads below one root without ever following a symlink (threats I and D: a symlink or hard link to a host file —
/// a key, /etc/shadow — would be copied into a published artifact; a FIFO would hang the reader). On Linux every
/// open walks down from the root one component at a time with <c>openat(O_NOFOLLOW)</c>, so the kernel refuses a
/// symlink anywhere on the path at the moment of opening, not only when it was checked; the entry is <c>lstat</c>ed
/// before it is opened (no FIFO or device is ever opened) and <c>fstat</c>ed after (same inode, still regular, one
/// link). Elsewhere the same rules are checked by path. The payload reader and the model directory reader share it;
/// each words the refusals for its own input.
/// </summary>
public sealed class NoFollowTree(string root)
{
    /// <summary>Real path the tree is read below (the caller resolves a symlinked root: that one is the user's choice).</summary>
    public string Root { get; } = root;

    /// <summary>A directory, or a regular file with one link: its size and whether its owner may execute it.</summary>
    public (bool IsDirectory, long Size, bool Executable) Inspect(string rel) =>
        OperatingSystem.IsLinux() ? InspectLinux(rel) : InspectByPath(rel);

    /// <summary>Opens a regular file with one link; <paramref name="betweenCheckAndOpen"/> is a test seam where a swap would happen.</summary>
    public Stream OpenFile(string rel, Action<string>? betweenCheckAndOpen = null)
    {
        if (OperatingSystem.IsLinux()) return OpenLinux(rel, betweenCheckAndOpen);
        if (InspectByPath(rel).IsDirectory) throw new NoFollowRefusal(NoFollowProblem.Directory, rel);
        return new FileStream(Path.Combine(Root, rel), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
    }

    // The Linux paths live in their own methods: Tmds.LibC has no implementation elsewhere, and a method that
    // merely mentions its types fails to compile (JIT) there even when the branch is not taken.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private (bool IsDirectory, long Size, bool Executable) InspectLinux(string rel)
    {
        var dirFd = OpenParent(rel, out var name);
        try
        {
            var st = StatNoFollow(dirFd, name, rel);
            if ((st.st_mode & S_IFMT) == S_IFDIR) return (true, 0, false);
            CheckRegular(st, rel);
            return (false, st.st_size, ((ushort)st.st_mode & 0b001_000_000) != 0);
        }
        finally { close(dirFd); }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private Stream OpenLinux(string rel, Action<string>? betweenCheckAndOpen)
    {
        var dirFd = OpenParent(rel, out var name);
        int fd;
        stat before, after;
        try
        {
            before = StatNoFollow(dirFd, name, rel);
            CheckRegular(before, rel);
            betweenCheckAndOpen?.Invoke(Path.Combine(Root, rel));
            fd = OpenAt(dirFd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
            if (fd < 0) throw new NoFollowRefusal(NoFollowProblem.Unopenable, rel, errno);
        }
        finally { close(dirFd); }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            unsafe { if (fstat(fd, &after) != 0) throw new NoFollowRefusal(NoFollowProblem.Unexaminable, rel, errno); }
            // What was opened must be what was checked: a swap between lstat and open is refused, not followed.
            if (after.st_ino != before.st_ino || after.st_dev != before.st_dev) throw new NoFollowRefusal(NoFollowProblem.Replaced, rel);
            CheckRegular(after, rel);
            return new FileStream(handle, FileAccess.Read, 1 << 16);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static void CheckRegular(stat st, string rel)
    {
        var type = st.st_mode & S_IFMT;
        if (type == S_IFREG)
        {
            // A second name for the same inode may be a host file (a key, /etc/shadow) linked into the tree.
            if ((ulong)st.st_nlink != 1) throw new NoFollowRefusal(NoFollowProblem.HardLinked, rel, links: (ulong)st.st_nlink);
            return;
        }
        throw new NoFollowRefusal(type == S_IFLNK ? NoFollowProblem.Symlink : type == S_IFDIR ? NoFollowProblem.Directory
            : type == S_IFIFO ? NoFollowProblem.Fifo : type == S_IFSOCK ? NoFollowProblem.Socket : NoFollowProblem.Device, rel);
    }

    /// <summary>Opens every directory from the root down to the parent of <paramref name="rel"/>, refusing symlinks.</summary>
    private int OpenParent(string rel, out string name)
    {
        var parts = rel.Split('/');
        name = parts[^1];
        var fd = OpenPath(Root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) throw new NoFollowRefusal(NoFollowProblem.RootUnopenable, "", errno);
        for (var i = 0; i < parts.Length - 1; i++)
        {
            var next = OpenAt(fd, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            var err = errno;
            close(fd);
            if (next < 0)
            {
                var at = string.Join('/', parts[..(i + 1)]);
                throw new NoFollowRefusal(err == ELOOP || err == ENOTDIR ? NoFollowProblem.PathNotADirectory
                    : err == ENOENT ? NoFollowProblem.PathMissing : NoFollowProblem.PathUnopenable, at, err);
            }
            fd = next;
        }
        return fd;
    }

    private static stat StatNoFollow(int dirFd, string name, string rel)
    {
        stat st;
        int rc;
        var bytes = Encoding.UTF8.GetBytes(name + "\0");
        unsafe { fixed (byte* p = bytes) rc = fstatat(dirFd, p, &st, AT_SYMLINK_NOFOLLOW); }
        if (rc != 0)
        {
            var err = errno;
            throw new NoFollowRefusal(err == ENOENT ? NoFollowProblem.Missing : NoFollowProblem.Unexaminable, rel, err);
        }
        if ((st.st_mode & S_IFMT) == S_IFLNK) throw new NoFollowRefusal(NoFollowProblem.Symlink, rel);
        return st;
    }

    private static unsafe int OpenAt(int dirFd, string name, int flags)
    {
        var bytes = Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* p = bytes) return openat(dirFd, p, flags, 0);
    }

    private static unsafe int OpenPath(string path, int flags)
    {
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes) return open(p, flags, 0);
    }

    /// <summary>The same rules by path, for systems without the openat semantics we bind to.</summary>
    private (bool IsDirectory, long Size, bool Executable) InspectByPath(string rel)
    {
        var path = Root;
        var parts = rel.Split('/');
        for (var i = 0; i < parts.Length; i++)
        {
            path = Path.Combine(path, parts[i]);
            if (new FileInfo(path).LinkTarget != null)
                throw new NoFollowRefusal(i < parts.Length - 1 ? NoFollowProblem.PathNotADirectory : NoFollowProblem.Symlink, string.Join('/', parts[..(i + 1)]));
        }
        if (System.IO.Directory.Exists(path)) return (true, 0, false);
        if (!File.Exists(path)) throw new NoFollowRefusal(NoFollowProblem.Missing, rel);
        var executable = !OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & UnixFileMode.UserExecute) != 0;
        return (false, new FileInfo(path).Length, executable);
    }
}
