using System.Runtime.InteropServices;
using System.Text;
using HardenImage.Common;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace HardenImage.Model;

/// <summary>One regular file of a model directory: its '/'-separated path below the directory and its size.</summary>
public sealed record ModelFile(string Path, long Size);

/// <summary>
/// Lists and opens the files of a model directory for packing, and nothing else: regular files and directories
/// only. A symlink (a Hugging Face snapshot is made of them), a FIFO, a device, a socket or a file with a second hard
/// link is refused with its path, because each could put a host file (a key, /etc/shadow) into a published, signed
/// artifact or hang the pack (threats I, T, D). Hidden files are packed like any other: what is in the directory is
/// what is signed.
/// </summary>
/// <remarks>
/// On Linux every open walks down from the model directory with <c>openat(O_NOFOLLOW)</c>, <c>lstat</c>s before
/// opening and <c>fstat</c>s after (same inode, still regular, one link), so a swap between listing and reading is
/// refused rather than followed — the approach of Lock/PayloadReader, with model wording.
/// </remarks>
public sealed class ModelDirectoryReader
{
    public ModelDirectoryReader(string directory)
    {
        var full = System.IO.Path.GetFullPath(directory);
        if (!Directory.Exists(full)) throw new HardenException($"{directory}: no such model directory");
        // The directory itself may be reached through a symlink (the user named it); nothing below it may.
        Root = new DirectoryInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full;
    }

    /// <summary>Real path of the model directory.</summary>
    public string Root { get; }

    /// <summary>Test seam: runs between the check of a file and its opening (where a swap would happen).</summary>
    internal Action<string>? BetweenCheckAndOpen { get; init; }

    /// <summary>Every regular file below the root, in ordinal path order; empty directories are not listed.</summary>
    public IReadOnlyList<ModelFile> List()
    {
        var files = new List<ModelFile>();
        Walk("", files);
        if (files.Count == 0) throw new HardenException($"{Root}: the model directory has no files to pack");
        return files;
    }

    /// <summary>Opens a listed file; refuses it when it has changed into something else since it was listed.</summary>
    public Stream Open(ModelFile file)
    {
        var stream = OperatingSystem.IsLinux() ? OpenLinux(file.Path) : OpenByPath(file.Path);
        var length = stream.Length;
        if (length != file.Size)
        {
            stream.Dispose();
            throw Refuse(file.Path, $"changed size while packing ({file.Size} → {length} bytes)");
        }
        return stream;
    }

    private void Walk(string dir, List<ModelFile> files)
    {
        string[] names;
        try
        {
            names = Directory.EnumerateFileSystemEntries(dir.Length == 0 ? Root : System.IO.Path.Combine(Root, dir))
                .Select(System.IO.Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Refuse(dir, $"cannot be listed ({e.Message})");
        }
        foreach (var name in names)
        {
            var rel = dir.Length == 0 ? name : dir + "/" + name;
            if (name.Contains('\\') || name.Any(char.IsControl))
                throw Refuse(rel, "has a backslash or a control character in its name; rename it");
            var (isDirectory, size) = OperatingSystem.IsLinux() ? InspectLinux(rel) : InspectByPath(rel);
            if (isDirectory) Walk(rel, files);
            else files.Add(new ModelFile(rel, size));
        }
    }

    private HardenException Refuse(string rel, string problem) =>
        new($"{System.IO.Path.Combine(Root, rel)}: {problem}. A model directory must hold only regular files and directories " +
            "(copy symlinked or hard-linked files in, e.g. 'cp -rL', and remove FIFOs, sockets and devices).");

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private (bool IsDirectory, long Size) InspectLinux(string rel)
    {
        var dirFd = OpenParent(rel, out var name);
        try
        {
            var st = StatNoFollow(dirFd, name, rel);
            if ((st.st_mode & S_IFMT) == S_IFDIR) return (true, 0);
            CheckRegular(st, rel);
            return (false, st.st_size);
        }
        finally { close(dirFd); }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private Stream OpenLinux(string rel)
    {
        var dirFd = OpenParent(rel, out var name);
        int fd;
        stat before, after;
        try
        {
            before = StatNoFollow(dirFd, name, rel);
            CheckRegular(before, rel);
            BetweenCheckAndOpen?.Invoke(System.IO.Path.Combine(Root, rel));
            fd = OpenAt(dirFd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
            if (fd < 0) throw Refuse(rel, errno == ELOOP ? "was replaced by a symlink while packing" : $"cannot be opened ({Error()})");
        }
        finally { close(dirFd); }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            unsafe { if (fstat(fd, &after) != 0) throw Refuse(rel, $"cannot be examined ({Error()})"); }
            if (after.st_ino != before.st_ino || after.st_dev != before.st_dev) throw Refuse(rel, "was replaced while packing");
            CheckRegular(after, rel);
            return new FileStream(handle, FileAccess.Read, 1 << 16);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private void CheckRegular(stat st, string rel)
    {
        var type = st.st_mode & S_IFMT;
        if (type == S_IFLNK) throw Refuse(rel, "is a symlink");
        if (type != S_IFREG)
            throw Refuse(rel, $"is a {(type == S_IFIFO ? "FIFO" : type == S_IFSOCK ? "socket" : type == S_IFDIR ? "directory" : "device")}, not a regular file");
        if ((ulong)st.st_nlink != 1)
            throw Refuse(rel, $"has {(ulong)st.st_nlink} hard links (it may be a host file linked in)");
    }

    /// <summary>Opens every directory from the root down to the parent of <paramref name="rel"/>, refusing symlinks.</summary>
    private int OpenParent(string rel, out string name)
    {
        var parts = rel.Split('/');
        name = parts[^1];
        var fd = OpenPath(Root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) throw new HardenException($"{Root}: the model directory cannot be opened ({Error()})");
        for (var i = 0; i < parts.Length - 1; i++)
        {
            var next = OpenAt(fd, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            var err = errno;
            close(fd);
            if (next < 0)
            {
                var at = string.Join('/', parts[..(i + 1)]);
                throw Refuse(at, err == ELOOP || err == ENOTDIR ? "is a symlink or not a directory" : $"cannot be opened ({Marshal.GetPInvokeErrorMessage(err)})");
            }
            fd = next;
        }
        return fd;
    }

    private stat StatNoFollow(int dirFd, string name, string rel)
    {
        stat st;
        int rc;
        var bytes = Encoding.UTF8.GetBytes(name + "\0");
        unsafe { fixed (byte* p = bytes) rc = fstatat(dirFd, p, &st, AT_SYMLINK_NOFOLLOW); }
        if (rc != 0) throw Refuse(rel, errno == ENOENT ? "disappeared while packing" : $"cannot be examined ({Error()})");
        if ((st.st_mode & S_IFMT) == S_IFLNK) throw Refuse(rel, "is a symlink");
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

    private static string Error() => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary>The same rules by path, for systems without the openat semantics we bind to.</summary>
    private (bool IsDirectory, long Size) InspectByPath(string rel)
    {
        var path = Root;
        foreach (var part in rel.Split('/'))
        {
            path = System.IO.Path.Combine(path, part);
            if (new FileInfo(path).LinkTarget != null) throw Refuse(System.IO.Path.GetRelativePath(Root, path), "is a symlink");
        }
        if (Directory.Exists(path)) return (true, 0);
        if (!File.Exists(path)) throw Refuse(rel, "disappeared while packing");
        return (false, new FileInfo(path).Length);
    }

    private Stream OpenByPath(string rel)
    {
        InspectByPath(rel);
        return new FileStream(System.IO.Path.Combine(Root, rel), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
    }
}
