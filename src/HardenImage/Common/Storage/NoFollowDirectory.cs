using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace HardenImage.Common.Storage;

/// <summary>What a directory entry is, as lstat sees it (a symlink is a symlink, never what it names).</summary>
public enum EntryKind { File, Directory, Symlink, Other }

/// <summary>One entry's lstat: kind, length, bytes on disk, modification time and identity.</summary>
public readonly record struct EntryStat(EntryKind Kind, long Length, long DiskBytes, DateTimeOffset LastWrite, ulong Device, ulong Inode);

/// <summary>
/// An open directory that every operation goes through by name: <c>fstatat</c>, <c>openat</c> and <c>unlinkat</c>
/// relative to its descriptor, with <c>O_NOFOLLOW</c>/<c>AT_SYMLINK_NOFOLLOW</c>. Code that deletes in a directory
/// others may write (a shared or restored cache) must not be turned against files elsewhere: a path re-resolved at
/// each step would follow a directory swapped for a symlink after it was checked; a descriptor opened with
/// <c>O_NOFOLLOW</c> stays the directory that was checked. No FIFO or device is ever opened (files are opened
/// <c>O_NONBLOCK</c> after an lstat, then fstat'ed). Linux only, like the rest of the cache's hardening.
/// </summary>
public sealed class NoFollowDirectory : IDisposable
{
    private readonly int _fd;

    private NoFollowDirectory(int fd, string path)
    {
        _fd = fd;
        Path = path;
    }

    /// <summary>The path it was opened as (for messages only; nothing re-resolves it).</summary>
    public string Path { get; }

    /// <summary>Opens <paramref name="path"/> itself, following a symlink there (a symlinked root is the user's choice); null when it is not a directory.</summary>
    public static NoFollowDirectory? OpenRoot(string path)
    {
        RequireLinux();
        var fd = OpenDirectory(path);
        return fd < 0 ? null : new NoFollowDirectory(fd, path);
    }

    /// <summary>Opens the subdirectory <paramref name="name"/>; null when it is a symlink, not a directory or gone.</summary>
    public NoFollowDirectory? OpenChild(string name)
    {
        var fd = OpenAt(_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? null : new NoFollowDirectory(fd, System.IO.Path.Combine(Path, name));
    }

    /// <summary>Opens '/'-separated <paramref name="relative"/> one component at a time, none of them followed ("" is this directory again); null when one is not a directory.</summary>
    public NoFollowDirectory? OpenDescendant(string relative)
    {
        var current = OpenChild(".");
        foreach (var part in relative.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            var next = current?.OpenChild(part);
            current?.Dispose();
            current = next;
        }
        return current;
    }

    /// <summary>The names in the directory, "." and ".." left out.</summary>
    public IReadOnlyList<string> Names()
    {
        // .NET lists by path only; /proc/self/fd/N is this very descriptor's directory, not a path resolved again.
        var self = $"/proc/self/fd/{_fd}";
        try
        {
            return Directory.EnumerateFileSystemEntries(self).Select(System.IO.Path.GetFileName).OfType<string>().ToList();
        }
        catch (DirectoryNotFoundException)
        {
            throw new HardenException($"cannot list {Path} through /proc/self/fd: /proc is not mounted here; mount it (or run where it is) and try again.");
        }
    }

    /// <summary>The entry's lstat, or null when it is gone.</summary>
    public EntryStat? Stat(string name) => StatAt(_fd, name);

    /// <summary>The lstat of <paramref name="path"/> (not followed), or null when there is nothing there. Linux only.</summary>
    public static EntryStat? StatPath(string path) => StatAt(AT_FDCWD, path);

    private static unsafe EntryStat? StatAt(int dirFd, string name)
    {
        stat st;
        var bytes = Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* p = bytes)
            if (fstatat(dirFd, p, &st, AT_SYMLINK_NOFOLLOW) != 0) return null;
        return ToEntry(st);
    }

    /// <summary>
    /// Opens a regular file for reading; null for anything else (a symlink, a FIFO, a device: never opened) or when
    /// it is gone or was swapped between the check and the open.
    /// </summary>
    public unsafe Stream? OpenRegularFile(string name)
    {
        if (Stat(name) is not { Kind: EntryKind.File } before) return null;
        var fd = OpenAt(_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) return null;
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        stat after;
        if (fstat(fd, &after) != 0 || ToEntry(after) is not { Kind: EntryKind.File } now || now.Inode != before.Inode || now.Device != before.Device)
        {
            handle.Dispose();
            return null;
        }
        return new FileStream(handle, FileAccess.Read, 1 << 16);
    }

    /// <summary>
    /// True while a process holds the regular file <paramref name="name"/> open through .NET with a sharing mode, which
    /// .NET takes as an advisory <c>flock</c> (every writer of a temp file does: <see cref="StaleTempFiles"/>); the lock
    /// is tried without waiting. Also true for a regular file this process cannot open to try (another user's, in a
    /// shared cache): whether a writer holds it cannot be told, and deleting it under a live writer fails its commit.
    /// False for anything that is not a regular file (never opened) or is gone.
    /// </summary>
    public bool IsLocked(string name)
    {
        using var file = OpenRegularFile(name);
        if (file is not FileStream fs) return Stat(name) is { Kind: EntryKind.File };
        if (Flock(fs.SafeFileHandle, LockExclusive | LockNonBlocking) != 0) return true;
        Flock(fs.SafeFileHandle, LockUnlock);
        return false;
    }

    private const int LockExclusive = 2, LockNonBlocking = 4, LockUnlock = 8;

    // Tmds.LibC binds no flock(2).
    [DllImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static extern int Flock(SafeFileHandle fd, int operation);

    /// <summary>Removes the name <paramref name="name"/> (a file or a symlink itself, never what a link names); 0, or the errno.</summary>
    public int Unlink(string name) => UnlinkAt(name, 0);

    /// <summary>Removes the empty subdirectory <paramref name="name"/>; 0, or the errno (ENOTEMPTY when something is left in it).</summary>
    public int RemoveDirectory(string name) => UnlinkAt(name, AT_REMOVEDIR);

    /// <summary>The text of an errno, for messages ("Permission denied").</summary>
    public static string ErrorText(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    public void Dispose() => close(_fd);

    private unsafe int UnlinkAt(string name, int flags)
    {
        var bytes = Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* p = bytes)
            return unlinkat(_fd, p, flags) == 0 ? 0 : errno;
    }

    private static EntryStat ToEntry(stat st)
    {
        var type = st.st_mode & S_IFMT;
        var kind = type == S_IFREG ? EntryKind.File : type == S_IFDIR ? EntryKind.Directory : type == S_IFLNK ? EntryKind.Symlink : EntryKind.Other;
        var mtime = DateTimeOffset.FromUnixTimeSeconds(st.st_mtim.tv_sec).AddTicks(st.st_mtim.tv_nsec / 100);
        return new EntryStat(kind, st.st_size, st.st_blocks * 512, mtime, st.st_dev, st.st_ino);
    }

    private static unsafe int OpenAt(int dirFd, string name, int flags)
    {
        var bytes = Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* p = bytes) return openat(dirFd, p, flags, 0);
    }

    // Apart from OpenRoot, so that elsewhere the check above speaks before anything of Tmds.LibC is JIT-compiled.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static unsafe int OpenDirectory(string path)
    {
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes) return open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    }

    private static void RequireLinux()
    {
        if (!OperatingSystem.IsLinux())
            throw new HardenException("this operation walks the cache with openat(O_NOFOLLOW), which harden binds on Linux only; run it on Linux.");
    }
}
