using HardenImage.Common;

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
        _tree = new NoFollowTree(Root);
    }

    private readonly NoFollowTree _tree;

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
        Stream stream;
        try { stream = _tree.OpenFile(file.Path, BetweenCheckAndOpen); }
        catch (NoFollowRefusal r) { throw Refusal(r); }
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
            bool isDirectory;
            long size;
            try { (isDirectory, size, _) = _tree.Inspect(rel); }
            catch (NoFollowRefusal r) { throw Refusal(r); }
            if (isDirectory) Walk(rel, files);
            else files.Add(new ModelFile(rel, size));
        }
    }

    private HardenException Refuse(string rel, string problem) =>
        new($"{System.IO.Path.Combine(Root, rel)}: {problem}. A model directory must hold only regular files and directories " +
            "(copy symlinked or hard-linked files in, e.g. 'cp -rL', and remove FIFOs, sockets and devices).");

    private HardenException Refusal(NoFollowRefusal r) => r.Problem switch
    {
        NoFollowProblem.RootUnopenable => new HardenException($"{Root}: the model directory cannot be opened ({r.ErrorText})"),
        NoFollowProblem.PathNotADirectory => Refuse(r.At, "is a symlink or not a directory"),
        NoFollowProblem.PathMissing or NoFollowProblem.PathUnopenable => Refuse(r.At, $"cannot be opened ({r.ErrorText})"),
        NoFollowProblem.Missing => Refuse(r.At, "disappeared while packing"),
        NoFollowProblem.Unexaminable => Refuse(r.At, $"cannot be examined ({r.ErrorText})"),
        NoFollowProblem.Symlink => Refuse(r.At, "is a symlink"),
        NoFollowProblem.Directory => Refuse(r.At, "is a directory, not a regular file"),
        NoFollowProblem.Fifo => Refuse(r.At, "is a FIFO, not a regular file"),
        NoFollowProblem.Socket => Refuse(r.At, "is a socket, not a regular file"),
        NoFollowProblem.Device => Refuse(r.At, "is a device, not a regular file"),
        NoFollowProblem.HardLinked => Refuse(r.At, $"has {r.Links} hard links (it may be a host file linked in)"),
        NoFollowProblem.Unopenable => Refuse(r.At, r.Errno == Tmds.Linux.LibC.ELOOP ? "was replaced by a symlink while packing" : $"cannot be opened ({r.ErrorText})"),
        NoFollowProblem.Replaced => Refuse(r.At, "was replaced while packing"),
        _ => throw new InvalidOperationException(r.Problem.ToString()),
    };
}
