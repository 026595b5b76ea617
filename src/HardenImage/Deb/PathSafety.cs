using HardenImage.Common;

namespace HardenImage.Deb;

/// <summary>
/// Normalises archive paths and refuses the ones that would escape the image root.
/// </summary>
/// <remarks>Tampering / Elevation of privilege: a tar entry named <c>/etc/shadow</c> or <c>usr/../../etc/x</c> must
/// never reach a writer that joins it to a root directory.</remarks>
public static class DebPath
{
    /// <summary>
    /// The normalised form of <paramref name="raw"/> (<c>./usr//bin/</c> → <c>usr/bin</c>; <c>./</c> → empty string
    /// for the root), or null with <paramref name="problem"/> set when the path is absolute, contains a <c>..</c>
    /// segment or a NUL byte, or is empty.
    /// </summary>
    public static string? TryNormalise(string raw, out string? problem)
    {
        problem = null;
        if (raw.Length == 0) { problem = "empty path"; return null; }
        if (raw[0] == '/') { problem = "absolute path"; return null; }
        if (raw.Contains('\0')) { problem = "NUL byte in path"; return null; }
        // Bounded before any per-segment work: a 1 MB, 4,000-level path would otherwise cost gigabytes downstream
        // (every ancestor as its own string). Counted in UTF-8 bytes, as the kernel counts.
        if (raw.Length > InputLimits.MaxPathLength || System.Text.Encoding.UTF8.GetByteCount(raw) > InputLimits.MaxPathLength)
        {
            problem = $"path longer than {InputLimits.MaxPathLength} bytes (PATH_MAX)";
            return null;
        }
        var parts = new List<string>();
        foreach (var segment in raw.Split('/'))
        {
            if (segment.Length == 0 || segment == ".") continue;
            if (segment == "..") { problem = "'..' segment"; return null; }
            if (System.Text.Encoding.UTF8.GetByteCount(segment) > InputLimits.MaxPathSegmentLength)
            {
                problem = $"path segment longer than {InputLimits.MaxPathSegmentLength} bytes (NAME_MAX)";
                return null;
            }
            parts.Add(segment);
        }
        return string.Join('/', parts);
    }

    /// <summary>The parent of a normalised path (<c>usr/bin/env</c> → <c>usr/bin</c>; <c>usr</c> → empty).</summary>
    public static string Parent(string path)
    {
        var slash = path.LastIndexOf('/');
        return slash < 0 ? "" : path[..slash];
    }
}

/// <summary>
/// Knows the symlinks placed so far in an image (from earlier packages or earlier entries) and tells whether a new
/// entry's path would be written THROUGH one of them: <c>usr/lib/foo -> /etc</c> followed by <c>usr/lib/foo/x</c>
/// would put <c>x</c> in <c>/etc</c> on extraction, outside what the entry claims to be.
/// </summary>
/// <remarks>
/// Tampering / Elevation of privilege: a package (or a pair of packages) could otherwise plant files anywhere,
/// including over another package's files or into /etc. Replacing a symlink by an entry of the same path is not
/// traversal (the entry replaces the link) and is allowed here; duplicate handling is the assembler's policy.
/// Merged /usr aliases (<c>bin -> usr/bin</c>, ...) are the one legitimate case: rewrite those paths with
/// <see cref="MergedUsr.Canonicalise"/> before asking, instead of rejecting them.
/// </remarks>
public sealed class PathSafety
{
    private readonly Dictionary<string, string> _symlinks = new(StringComparer.Ordinal);

    public PathSafety() { }

    /// <param name="symlinks">Already known symlinks: normalised path → target as shipped.</param>
    public PathSafety(IEnumerable<KeyValuePair<string, string>> symlinks)
    {
        foreach (var (path, target) in symlinks) AddSymlink(path, target);
    }

    /// <summary>The known symlinks, normalised path → target.</summary>
    public IReadOnlyDictionary<string, string> Symlinks => _symlinks;

    /// <summary>Records a symlink at <paramref name="path"/> (normalised relative path).</summary>
    public void AddSymlink(string path, string target) => _symlinks[path] = target;

    /// <summary>Forgets a symlink, e.g. when a later entry replaces it with a directory or file.</summary>
    public bool RemoveSymlink(string path) => _symlinks.Remove(path);

    public bool IsSymlink(string path) => _symlinks.ContainsKey(path);

    /// <summary>
    /// The known symlink that is a proper ancestor of <paramref name="path"/> (the outermost one), or null when
    /// writing <paramref name="path"/> would not pass through a symlink.
    /// </summary>
    public string? FindSymlinkOnPath(string path)
    {
        if (_symlinks.Count == 0) return null;
        var slash = path.IndexOf('/');
        while (slash >= 0)
        {
            var ancestor = path[..slash];
            if (_symlinks.ContainsKey(ancestor)) return ancestor;
            slash = path.IndexOf('/', slash + 1);
        }
        return null;
    }

    /// <summary>Throws when <paramref name="path"/> would be written through a known symlink.</summary>
    /// <param name="package">Names the package (or file) in the message.</param>
    public void EnsureNotThroughSymlink(string path, string package)
    {
        var link = FindSymlinkOnPath(path);
        if (link != null)
            throw new HardenException(
                $"{package}: entry '{path}' would be written through the symlink '{link}' -> '{_symlinks[link]}'. " +
                "Refusing: a package must not place files behind a symlink (it could land anywhere in the image). " +
                "Remove the package from the image or report it to its maintainer.");
    }
}

/// <summary>
/// Debian 13 is merged-/usr: base-files ships <c>bin -> usr/bin</c>, <c>sbin -> usr/sbin</c>, <c>lib -> usr/lib</c>
/// and <c>lib64 -> usr/lib64</c> (and lib32/libx32/libo32 where the architecture has them). Packages built before
/// the transition still ship <c>bin/x</c>; written as is, that path goes through the <c>bin</c> symlink, which
/// <see cref="PathSafety"/> would rightly refuse. The assembler instead rewrites such paths to their canonical
/// place under <c>usr/</c>, which is exactly where dpkg on a merged system puts them, and keeps the alias
/// symlinks themselves unchanged (see <see cref="IsAliasSymlink"/>).
/// </summary>
/// <remarks>Tampering: canonicalising keeps the image's shape fixed (the aliases stay symlinks) instead of letting a
/// later package replace <c>/bin</c> with a real directory that shadows <c>/usr/bin</c>.</remarks>
public static class MergedUsr
{
    /// <summary>Top-level directories that are symlinks into <c>usr/</c> on a merged-/usr system.</summary>
    public static IReadOnlyList<string> Aliases { get; } = ["bin", "sbin", "lib", "lib32", "lib64", "libx32", "libo32"];

    /// <summary>
    /// <c>bin/x</c> → <c>usr/bin/x</c>, <c>lib</c> → <c>usr/lib</c>, <c>lib64/ld-linux-x86-64.so.2</c> →
    /// <c>usr/lib64/ld-linux-x86-64.so.2</c>; every other normalised path is returned unchanged. Do not apply it to
    /// the alias symlinks themselves (<see cref="IsAliasSymlink"/>).
    /// </summary>
    public static string Canonicalise(string path)
    {
        var slash = path.IndexOf('/');
        var first = slash < 0 ? path : path[..slash];
        foreach (var alias in Aliases)
            if (first == alias) return "usr/" + path;
        return path;
    }

    /// <summary>
    /// The entry with its path (and, for a hard link, its target) moved under <c>usr/</c> as
    /// <see cref="Canonicalise(string)"/> says; the alias symlinks themselves come back unchanged. Any other
    /// non-directory entry AT an alias name (a file <c>bin</c>, or <c>lib -> /tmp</c>) is refused: canonicalised it
    /// would replace <c>usr/bin</c> or <c>usr/lib</c> wholesale (Tampering).
    /// </summary>
    /// <param name="package">Names the package in the message.</param>
    public static DebEntry Canonicalise(DebEntry entry, string package)
    {
        if (IsAliasSymlink(entry)) return entry;
        if (entry.Type != DebEntryType.Directory && Aliases.Contains(entry.Path))
            throw new HardenException(
                $"{package}: refusing entry '{entry.Path}' ({entry.Type.ToString().ToLowerInvariant()}" +
                (entry.LinkTarget != null ? $" -> '{entry.LinkTarget}'" : "") +
                $"): on a merged-/usr system '{entry.Path}' must be the symlink to usr/{entry.Path}, and this entry would replace it.");
        var path = Canonicalise(entry.Path);
        var target = entry.Type == DebEntryType.HardLink && entry.LinkTarget != null ? Canonicalise(entry.LinkTarget) : entry.LinkTarget;
        return path == entry.Path && target == entry.LinkTarget ? entry : entry with { Path = path, LinkTarget = target };
    }

    /// <summary>True for the merged-/usr alias symlinks themselves (<c>bin</c> → <c>usr/bin</c> or <c>/usr/bin</c>).</summary>
    public static bool IsAliasSymlink(DebEntry entry) =>
        entry.Type == DebEntryType.Symlink && entry.LinkTarget != null && IsAliasSymlink(entry.Path, entry.LinkTarget);

    /// <summary>True when <paramref name="path"/> is an alias name and <paramref name="target"/> points at its place in usr/.</summary>
    public static bool IsAliasSymlink(string path, string target)
    {
        if (!Aliases.Contains(path)) return false;
        var t = target.TrimEnd('/');
        return t == "usr/" + path || t == "/usr/" + path;
    }

    /// <summary>A <see cref="PathSafety"/> that already knows the alias symlinks of a merged-/usr base.</summary>
    public static PathSafety NewPathSafety()
    {
        var safety = new PathSafety();
        foreach (var alias in Aliases) safety.AddSymlink(alias, "usr/" + alias);
        return safety;
    }
}
