using System.Runtime.InteropServices;
using System.Text;
using HardenImage.Common;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace HardenImage.Lock;

/// <summary>One payload entry below a <c>files:</c> source, relative to the image-set directory.</summary>
public sealed record PayloadItem(string RelativePath, bool IsDirectory, bool Executable);

/// <summary>
/// Reads <c>files:</c> payload from inside the image-set directory only (threat I, information disclosure: a
/// source of <c>../../etc/shadow</c>, an absolute path, a symlinked directory or a hard link to a host file would
/// copy CI secrets or signing keys into a published image; threat D: a FIFO would hang the build).
/// </summary>
/// <remarks>
/// On Linux every open walks from the image-set directory one component at a time with
/// <c>openat(O_NOFOLLOW)</c>, so the kernel refuses a symlink anywhere on the path at the moment of opening, not
/// only when it was checked; the entry is <c>lstat</c>ed before it is opened (no FIFO or device is ever opened)
/// and <c>fstat</c>ed after (same inode, regular file, one link). Comparisons are ordinal on the real path of the
/// set directory: no case folding, no Unicode normalisation. Elsewhere the same rules are checked by path.
/// </remarks>
public sealed class PayloadReader
{
    public PayloadReader(string setDirectory)
    {
        var full = Path.GetFullPath(setDirectory);
        // The set directory itself may be reached through a symlink (the user's choice); nothing below it may.
        Root = new DirectoryInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full;
    }

    /// <summary>Real path of the image-set directory.</summary>
    public string Root { get; }

    /// <summary>Test seam: runs between the check of a file and its opening (where a swap would happen).</summary>
    internal Action<string>? BetweenCheckAndOpen { get; init; }

    /// <summary>Why <paramref name="source"/> cannot name something inside the set, or null when its form is fine.</summary>
    public static string? FormProblem(string source)
    {
        if (source.Length == 0) return "is empty";
        if (source.Contains('\0')) return "contains a NUL byte";
        if (Path.IsPathRooted(source) || source.StartsWith('~')) return "is an absolute path";
        if (source.Contains('\\')) return "contains a backslash (use '/')";
        if (source.Split('/').Any(s => s == "..")) return "contains a '..' segment";
        // "." or "./" would be the whole set: sources.yaml, the lock, keys/.
        if (Normalise(source).Length == 0) return "names the image-set directory itself";
        return null;
    }

    /// <summary>
    /// The source itself (a file) or every directory and file below it, sorted, skipping dot-files and
    /// <c>__pycache__</c>. Every file is opened once, so an unreadable one fails here with a clear message.
    /// </summary>
    /// <param name="where">"file:line" of the <c>files:</c> entry, for messages.</param>
    public IReadOnlyList<PayloadItem> List(string source, string where)
    {
        var problem = FormProblem(source);
        if (problem != null) throw Refuse(where, source, problem);
        var rel = Normalise(source);
        var top = Inspect(rel, where, source);
        var items = new List<PayloadItem> { top };
        if (top.IsDirectory) Walk(rel, where, source, items);
        else using (Open(rel, where, source)) { }
        return items;
    }

    /// <summary>
    /// <see cref="List(string, string)"/> for one <c>files:</c> entry and architecture: a per-architecture source
    /// (<c>{arch}</c>) is resolved first and then read under exactly the same rules; a missing build output says
    /// which architecture and how to produce it.
    /// </summary>
    public IReadOnlyList<PayloadItem> List(PayloadFiles files, string arch, string where)
    {
        if (!files.PerArchitecture) return List(files.Source, where);
        var source = files.SourceFor(arch);
        var problem = FormProblem(source);
        if (problem != null) throw Refuse(where, source, problem);
        // Path.Exists follows links, so a dangling one is "missing" here; a live one is refused by List below.
        if (!Path.Exists(Path.Combine(Root, Normalise(source))) && new FileInfo(Path.Combine(Root, Normalise(source))).LinkTarget == null)
            throw new HardenException($"{where}: files: source '{files.Source}' has no build output for {arch}: '{source}' does not exist in {Root}. " +
                                      "Produce it first (dotnet cake --target=Publish, see docs/images.md), or remove the architecture from the image.");
        return List(source, where);
    }

    /// <summary>Opens a payload file listed by <see cref="List"/>; refuses it if it changed into something else since.</summary>
    public Stream OpenFile(PayloadItem item, string where, string source) => Open(item.RelativePath, where, source);

    private void Walk(string dir, string where, string source, List<PayloadItem> items)
    {
        string[] names;
        try
        {
            names = Directory.EnumerateFileSystemEntries(Path.Combine(Root, dir)).Select(Path.GetFileName).OfType<string>()
                .Order(StringComparer.Ordinal).ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Refuse(where, source, $"has a directory '{dir}' that cannot be listed ({e.Message})");
        }
        foreach (var name in names)
        {
            if (name.StartsWith('.') || name == "__pycache__") continue;
            var item = Inspect(dir + "/" + name, where, source);
            items.Add(item);
            if (item.IsDirectory) Walk(item.RelativePath, where, source, items);
            else using (Open(item.RelativePath, where, source)) { }
        }
    }

    private static string Normalise(string source) =>
        string.Join('/', source.Split('/').Where(s => s.Length > 0 && s != "."));

    private static HardenException Refuse(string where, string source, string problem) =>
        new($"{where}: files: source '{source}' {problem}. Payload must be regular files and directories inside the image-set directory (copy it there; no symlinks or hard links).");

    // The Linux paths live in their own methods: Tmds.LibC has no implementation elsewhere, and a method that
    // merely mentions its types fails to compile (JIT) there even when the branch is not taken.
    private PayloadItem Inspect(string rel, string where, string source) =>
        OperatingSystem.IsLinux() ? InspectLinux(rel, where, source) : InspectByPath(rel, where, source);

    private Stream Open(string rel, string where, string source)
    {
        if (OperatingSystem.IsLinux()) return OpenLinux(rel, where, source);
        InspectByPath(rel, where, source);
        return File.OpenRead(Path.Combine(Root, rel));
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private PayloadItem InspectLinux(string rel, string where, string source)
    {
        var dirFd = OpenParent(rel, where, source, out var name);
        try
        {
            var st = StatNoFollow(dirFd, name, rel, where, source);
            var type = st.st_mode & S_IFMT;
            if (type == S_IFDIR) return new PayloadItem(rel, true, false);
            CheckRegular(st, rel, where, source);
            return new PayloadItem(rel, false, ((ushort)st.st_mode & 0b001_000_000) != 0);
        }
        finally { close(dirFd); }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private Stream OpenLinux(string rel, string where, string source)
    {
        var dirFd = OpenParent(rel, where, source, out var name);
        int fd;
        stat before, after;
        try
        {
            before = StatNoFollow(dirFd, name, rel, where, source);
            CheckRegular(before, rel, where, source);
            BetweenCheckAndOpen?.Invoke(Path.Combine(Root, rel));
            fd = OpenAt(dirFd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
            if (fd < 0) throw Refuse(where, source, $"has '{rel}', which cannot be opened ({Error()})");
        }
        finally { close(dirFd); }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            unsafe { if (fstat(fd, &after) != 0) throw Refuse(where, source, $"has '{rel}', which cannot be examined ({Error()})"); }
            // What was opened must be what was checked: a swap between lstat and open is refused, not followed.
            if (after.st_ino != before.st_ino || after.st_dev != before.st_dev)
                throw Refuse(where, source, $"has '{rel}', which was replaced while it was being read");
            CheckRegular(after, rel, where, source);
            return new FileStream(handle, FileAccess.Read, 1 << 16);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static void CheckRegular(stat st, string rel, string where, string source)
    {
        var type = st.st_mode & S_IFMT;
        if (type == S_IFLNK) throw Refuse(where, source, $"has '{rel}', which is a symlink");
        if (type == S_IFDIR) throw Refuse(where, source, $"has '{rel}', which is a directory where a file was expected");
        if (type != S_IFREG)
            throw Refuse(where, source, $"has '{rel}', which is a {(type == S_IFIFO ? "FIFO" : type == S_IFSOCK ? "socket" : "device")}, not a regular file");
        // A second name for the same inode may be a host file (a key, /etc/shadow) linked into the checkout.
        if ((ulong)st.st_nlink != 1)
            throw Refuse(where, source, $"has '{rel}', which has {(ulong)st.st_nlink} hard links (it may be a host file linked in; copy it instead)");
    }

    /// <summary>Opens every directory from the root down to the parent of <paramref name="rel"/>, refusing symlinks.</summary>
    private int OpenParent(string rel, string where, string source, out string name)
    {
        var parts = rel.Split('/');
        name = parts[^1];
        var fd = OpenPath(Root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) throw Refuse(where, source, $"cannot be read: the image-set directory {Root} cannot be opened ({Error()})");
        for (var i = 0; i < parts.Length - 1; i++)
        {
            var next = OpenAt(fd, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            var err = errno;
            close(fd);
            if (next < 0)
            {
                var at = string.Join('/', parts[..(i + 1)]);
                throw Refuse(where, source, err == ELOOP || err == ENOTDIR
                    ? $"goes through '{at}', which is a symlink or not a directory"
                    : err == ENOENT ? $"does not exist (no '{at}' in {Root})" : $"cannot be read: '{at}' ({Marshal.GetPInvokeErrorMessage(err)})");
            }
            fd = next;
        }
        return fd;
    }

    private stat StatNoFollow(int dirFd, string name, string rel, string where, string source)
    {
        stat st;
        int rc;
        var bytes = Encoding.UTF8.GetBytes(name + "\0");
        unsafe { fixed (byte* p = bytes) rc = fstatat(dirFd, p, &st, AT_SYMLINK_NOFOLLOW); }
        if (rc != 0)
            throw Refuse(where, source, errno == ENOENT ? $"does not exist (no '{rel}' in {Root})" : $"has '{rel}', which cannot be examined ({Error()})");
        if ((st.st_mode & S_IFMT) == S_IFLNK) throw Refuse(where, source, $"has '{rel}', which is a symlink");
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

    /// <summary>The same rules by path, for systems without openat semantics we bind to.</summary>
    private PayloadItem InspectByPath(string rel, string where, string source)
    {
        var path = Root;
        foreach (var part in rel.Split('/'))
        {
            path = Path.Combine(path, part);
            var info = new FileInfo(path);
            if (info.LinkTarget != null) throw Refuse(where, source, $"goes through '{Path.GetRelativePath(Root, path)}', which is a symlink");
        }
        if (Directory.Exists(path)) return new PayloadItem(rel, true, false);
        if (!File.Exists(path)) throw Refuse(where, source, $"does not exist (no '{rel}' in {Root})");
        var executable = !OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & UnixFileMode.UserExecute) != 0;
        return new PayloadItem(rel, false, executable);
    }
}
