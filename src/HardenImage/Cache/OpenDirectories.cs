using HardenImage.Common.Storage;

namespace HardenImage.Cache;

/// <summary>
/// The directories of cache files, each opened from the root down without following a link
/// (<see cref="NoFollowDirectory.OpenDescendant"/>) and kept open for the next file of the same directory — at most
/// <see cref="MaxOpen"/> at a time. A cache of thousands of directories (planted by a writer of it, or thousands of
/// interpreters under <c>bytecode-v2</c>) must not exhaust the process's descriptors: prune then took directories it
/// could not open for swapped ones, and the runtime aborted without a line once it could not open one of its own.
/// </summary>
internal sealed class OpenDirectories(NoFollowDirectory top) : IDisposable
{
    public const int MaxOpen = 64;
    private readonly Dictionary<string, NoFollowDirectory?> _open = new(StringComparer.Ordinal);

    /// <summary>The directory holding '/'-separated <paramref name="path"/>; null when a component is not a directory (a symlink is never followed).</summary>
    public NoFollowDirectory? Of(string path)
    {
        var parent = CacheLayout.Parent(path);
        return _open.TryGetValue(parent, out var d) ? d : _open[parent] = top.OpenDescendant(parent);
    }

    /// <summary>
    /// Closes them all once more than <see cref="MaxOpen"/> are open. Called between entries only, so that an entry's
    /// files are checked and removed through the same descriptors.
    /// </summary>
    public void Trim()
    {
        if (_open.Count > MaxOpen) Dispose();
    }

    public void Dispose()
    {
        foreach (var d in _open.Values) d?.Dispose();
        _open.Clear();
    }
}
