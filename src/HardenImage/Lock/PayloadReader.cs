using HardenImage.Common;

namespace HardenImage.Lock;

/// <summary>One payload entry below a <c>files:</c> source, relative to the image-set directory.</summary>
public sealed record PayloadItem(string RelativePath, bool IsDirectory, bool Executable);

/// <summary>
/// Reads <c>files:</c> payload from inside the image-set directory only (threat I, information disclosure: a
/// source of <c>../../etc/shadow</c>, an absolute path, a symlinked directory or a hard link to a host file would
/// copy CI secrets or signing keys into a published image; threat D: a FIFO would hang the build).
/// </summary>
/// <remarks>
/// Every file is reached through <see cref="NoFollowTree"/> (openat(O_NOFOLLOW) from the set directory down, lstat
/// before and fstat after opening). Comparisons are ordinal on the real path of the set directory: no case
/// folding, no Unicode normalisation.
/// </remarks>
public sealed class PayloadReader
{
    public PayloadReader(string setDirectory)
    {
        var full = Path.GetFullPath(setDirectory);
        // The set directory itself may be reached through a symlink (the user's choice); nothing below it may.
        Root = new DirectoryInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full;
        _tree = new NoFollowTree(Root);
    }

    private readonly NoFollowTree _tree;

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

    private PayloadItem Inspect(string rel, string where, string source)
    {
        try
        {
            var (isDirectory, _, executable) = _tree.Inspect(rel);
            return new PayloadItem(rel, isDirectory, executable);
        }
        catch (NoFollowRefusal r) { throw Refuse(where, source, Problem(r)); }
    }

    private Stream Open(string rel, string where, string source)
    {
        try { return _tree.OpenFile(rel, BetweenCheckAndOpen); }
        catch (NoFollowRefusal r) { throw Refuse(where, source, Problem(r)); }
    }

    private string Problem(NoFollowRefusal r) => r.Problem switch
    {
        NoFollowProblem.RootUnopenable => $"cannot be read: the image-set directory {Root} cannot be opened ({r.ErrorText})",
        NoFollowProblem.PathNotADirectory => $"goes through '{r.At}', which is a symlink or not a directory",
        NoFollowProblem.PathMissing or NoFollowProblem.Missing => $"does not exist (no '{r.At}' in {Root})",
        NoFollowProblem.PathUnopenable => $"cannot be read: '{r.At}' ({r.ErrorText})",
        NoFollowProblem.Unexaminable => $"has '{r.At}', which cannot be examined ({r.ErrorText})",
        NoFollowProblem.Symlink => $"has '{r.At}', which is a symlink",
        NoFollowProblem.Directory => $"has '{r.At}', which is a directory where a file was expected",
        NoFollowProblem.Fifo => $"has '{r.At}', which is a FIFO, not a regular file",
        NoFollowProblem.Socket => $"has '{r.At}', which is a socket, not a regular file",
        NoFollowProblem.Device => $"has '{r.At}', which is a device, not a regular file",
        NoFollowProblem.HardLinked => $"has '{r.At}', which has {r.Links} hard links (it may be a host file linked in; copy it instead)",
        NoFollowProblem.Unopenable => $"has '{r.At}', which cannot be opened ({r.ErrorText})",
        NoFollowProblem.Replaced => $"has '{r.At}', which was replaced while it was being read",
        _ => throw new InvalidOperationException(r.Problem.ToString()),
    };
}
