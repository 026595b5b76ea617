namespace HardenImage.Build;

public enum FsNodeType { File, Directory, Symlink, HardLink }

/// <summary>
/// One path of a layer being assembled. Only metadata lives in memory; file content is named by its SHA-256 in
/// the content store (or given as bytes for small generated files), so a layer never sits in memory whole.
/// </summary>
public sealed record FsNode
{
    /// <summary>Relative path without leading "/" or "./", e.g. "usr/bin/python3.13".</summary>
    public required string Path { get; init; }
    public required FsNodeType Type { get; init; }
    /// <summary>Permission bits including setuid (04000), setgid (02000) and sticky (01000).</summary>
    public int Mode { get; init; }
    public int Uid { get; init; }
    public int Gid { get; init; }
    public long Size { get; init; }
    /// <summary>SHA-256 of the content (files) in the content store.</summary>
    public string? ContentSha256 { get; init; }
    /// <summary>Inline content for generated files (passwd, status.d records…).</summary>
    public byte[]? Inline { get; init; }
    /// <summary>Symlink target as written, or hard link target path (relative).</summary>
    public string? LinkTarget { get; init; }
    /// <summary>Package that shipped it, or "harden:&lt;transform&gt;" for generated entries.</summary>
    public required string Owner { get; init; }
}

/// <summary>
/// The paths one image layer adds, keyed by path, plus a read-only view of what lower layers (the parent
/// image) already have, so transforms and conflict checks can see the whole filesystem.
/// </summary>
public sealed class FsTree
{
    private readonly Dictionary<string, FsNode> _nodes = new(StringComparer.Ordinal);

    public FsTree(IReadOnlyDictionary<string, FsNode>? lower = null)
    {
        Lower = lower ?? new Dictionary<string, FsNode>(StringComparer.Ordinal);
    }

    /// <summary>Everything below this layer (the parent image's merged tree).</summary>
    public IReadOnlyDictionary<string, FsNode> Lower { get; }

    public IEnumerable<FsNode> Nodes => _nodes.Values;
    public int Count => _nodes.Count;

    public bool Contains(string path) => _nodes.ContainsKey(path);
    public FsNode? Get(string path) => _nodes.TryGetValue(path, out var n) ? n : null;

    /// <summary>Looks a path up in this layer first, then below.</summary>
    public FsNode? Resolve(string path) =>
        _nodes.TryGetValue(path, out var n) ? n : Lower.TryGetValue(path, out var l) ? l : null;

    public void Set(FsNode node) => _nodes[node.Path] = node;

    public bool Remove(string path) => _nodes.Remove(path);

    /// <summary>Adds the directory and its missing ancestors (0755 root-owned) so tar readers see parents first.</summary>
    public void EnsureDirectory(string path, int mode = 0b111_101_101, int uid = 0, int gid = 0, string owner = "harden")
    {
        if (path.Length == 0) return;
        var parent = ParentOf(path);
        if (parent.Length > 0 && Resolve(parent) == null) EnsureDirectory(parent, owner: owner);
        if (Resolve(path) == null)
            Set(new FsNode { Path = path, Type = FsNodeType.Directory, Mode = mode, Uid = uid, Gid = gid, Owner = owner });
    }

    public void AddFile(string path, byte[] content, int mode, string owner, int uid = 0, int gid = 0)
    {
        EnsureDirectory(ParentOf(path));
        Set(new FsNode { Path = path, Type = FsNodeType.File, Mode = mode, Uid = uid, Gid = gid, Size = content.Length, Inline = content, Owner = owner });
    }

    public static string ParentOf(string path)
    {
        var i = path.LastIndexOf('/');
        return i < 0 ? "" : path[..i];
    }

    /// <summary>The merged view (lower + this layer), for a child image's <see cref="Lower"/>.</summary>
    public Dictionary<string, FsNode> Merged()
    {
        var merged = new Dictionary<string, FsNode>(Lower, StringComparer.Ordinal);
        foreach (var (k, v) in _nodes) merged[k] = v;
        return merged;
    }
}
