using System.Formats.Tar;
using HardenImage.Common;
using HardenImage.Oci;

namespace HardenImage.Deploy;

/// <summary>One path of an image's merged root filesystem (after applying every layer and its whiteouts).</summary>
public sealed record ImageFileEntry(string Path, TarEntryType Type, UnixFileMode Mode, string? LinkTarget);

/// <summary>
/// The merged file view of one image manifest, read from the OCI layout without running anything: the static half
/// of the smoke checks (setuid/setgid files — threat: Elevation of privilege) and what the runner needs to know
/// about an image (does it carry Python, PyTorch).
/// </summary>
public sealed class SmokeLayerScan
{
    private readonly SortedDictionary<string, ImageFileEntry> _files;

    private SmokeLayerScan(SortedDictionary<string, ImageFileEntry> files) => _files = files;

    public IReadOnlyDictionary<string, ImageFileEntry> Files => _files;

    /// <summary>Reads every layer of <paramref name="image"/> in order, applying OCI whiteouts.</summary>
    public static SmokeLayerScan Read(OciLayoutReader reader, ResolvedManifest image)
    {
        var files = new SortedDictionary<string, ImageFileEntry>(StringComparer.Ordinal);
        foreach (var layer in image.Manifest.Layers)
        {
            using var stream = reader.OpenUncompressed(layer);
            using var tar = new TarReader(stream);
            try
            {
                while (tar.GetNextEntry() is { } entry)
                {
                    var path = Normalize(entry.Name);
                    if (path.Length == 0) continue;
                    var name = System.IO.Path.GetFileName(path);
                    var dir = System.IO.Path.GetDirectoryName(path) ?? "";
                    if (name == ".wh..wh..opq")
                    {
                        foreach (var k in files.Keys.Where(k => k.StartsWith(dir + "/", StringComparison.Ordinal)).ToList()) files.Remove(k);
                        continue;
                    }
                    if (name.StartsWith(".wh.", StringComparison.Ordinal))
                    {
                        var gone = (dir.Length == 0 ? "" : dir + "/") + name[4..];
                        files.Remove(gone);
                        foreach (var k in files.Keys.Where(k => k.StartsWith(gone + "/", StringComparison.Ordinal)).ToList()) files.Remove(k);
                        continue;
                    }
                    files[path] = new ImageFileEntry(path, entry.EntryType, entry.Mode,
                        entry.EntryType is TarEntryType.SymbolicLink or TarEntryType.HardLink ? entry.LinkName : null);
                }
            }
            catch (Exception e) when (e is InvalidDataException or FormatException)
            {
                throw new HardenException($"{reader.Layout.Root}: layer {layer.Digest} is not a readable tar ({e.Message}); rebuild with 'harden build'.", inner: e);
            }
        }
        return new SmokeLayerScan(files);
    }

    /// <summary>Regular files (and hard links) with the setuid or setgid bit, as absolute paths.</summary>
    public IReadOnlyList<string> SetuidFiles() =>
        _files.Values
            .Where(f => f.Type is TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.HardLink or TarEntryType.ContiguousFile)
            .Where(f => (f.Mode & (UnixFileMode.SetUser | UnixFileMode.SetGroup)) != 0)
            .Select(f => "/" + f.Path).ToList();

    /// <summary>Whether <paramref name="absolutePath"/> exists, following symlinks (also in parent directories, e.g. /bin → usr/bin).</summary>
    public bool Exists(string absolutePath) => Resolve(absolutePath) != null;

    /// <summary>The entry <paramref name="absolutePath"/> ends at after following symlinks, or null.</summary>
    public ImageFileEntry? Resolve(string absolutePath)
    {
        var parts = new Queue<string>(Normalize(absolutePath).Split('/', StringSplitOptions.RemoveEmptyEntries));
        var current = new List<string>();
        ImageFileEntry? entry = null;
        for (var hops = 0; parts.Count > 0 && hops < 64;)
        {
            var part = parts.Dequeue();
            if (part == ".") continue;
            if (part == "..") { if (current.Count > 0) current.RemoveAt(current.Count - 1); continue; }
            current.Add(part);
            if (!_files.TryGetValue(string.Join('/', current), out entry)) return null;
            if (entry.Type != TarEntryType.SymbolicLink) continue;
            hops++;
            var target = entry.LinkTarget ?? "";
            current.RemoveAt(current.Count - 1);
            if (target.StartsWith('/')) current.Clear();
            var rest = parts.ToList();
            parts = new Queue<string>(target.Split('/', StringSplitOptions.RemoveEmptyEntries).Concat(rest));
            if (parts.Count == 0) return null;
        }
        return entry?.Type == TarEntryType.SymbolicLink ? null : entry;
    }

    private static string Normalize(string name)
    {
        var n = name.Replace('\\', '/');
        while (n.StartsWith("./", StringComparison.Ordinal)) n = n[2..];
        return n.Trim('/');
    }
}
