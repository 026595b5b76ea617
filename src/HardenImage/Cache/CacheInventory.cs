using HardenImage.Build;
using HardenImage.Build.Hardening;
using HardenImage.Common;
using HardenImage.Common.Storage;

namespace HardenImage.Cache;

/// <summary>One file of the cache as the walk saw it: its '/'-separated path below the root and its lstat.</summary>
public sealed record CacheFile(string Path, EntryStat Stat)
{
    public long Bytes => Stat.DiskBytes;
}

/// <summary>Why an entry may go: after a time unused, always (a format this version never reads), or once a killed writer's temp file is stale.</summary>
public enum EntryRule { ByLastUse, OldFormat, TempFile }

/// <summary>
/// Files that are used together and go together: a .deb; an unpacked tree's pointer, its file list and its pack; a
/// byte-code index and its pack; a build record; an index snapshot; a wheel; a content file nothing names. Its last
/// use is the modification time of its first file, the pointer or index every use of it reads and refreshes with the
/// rest (<see cref="Common.Storage.LastUse"/>). Not the newest of its files: a pack two lists name is refreshed by
/// the use of either, which says nothing of the other.
/// </summary>
public sealed record CacheEntry(string Part, IReadOnlyList<CacheFile> Files, EntryRule Rule)
{
    public DateTimeOffset LastUse => Files[0].Stat.LastWrite;
}

/// <summary>Something prune found and leaves where it is, and why.</summary>
public sealed record LeftEntry(string Path, string Why);

/// <summary>
/// What is in a cache directory, read without following a symlink or opening anything but regular files
/// (<see cref="NoFollowDirectory"/>), grouped into <see cref="CacheEntry"/>s. Nothing is verified: <c>harden cache</c>
/// holds no cache key, so a forged pointer or index can only keep the files it names alive, never make prune
/// remove something else; builds verify whatever they read. Reading changes no modification time.
/// </summary>
public sealed class CacheInventory
{
    /// <summary>A file list larger than this is not read (its pack then counts as named by nothing); the largest seen is under 1 MB.</summary>
    public const long MaxFileListBytes = 64L << 20;

    private CacheInventory(string root, bool exists, bool isCache, List<CacheEntry> entries, List<LeftEntry> left, List<string> directories)
    {
        Root = root; Exists = exists; IsCache = isCache; Entries = entries; Left = left; Directories = directories;
    }

    public string Root { get; }
    /// <summary>False when the directory is not there (an empty cache).</summary>
    public bool Exists { get; }
    /// <summary>It holds one of harden's distinctive parts, or nothing at all (<see cref="CacheLayout.Distinctive"/>).</summary>
    public bool IsCache { get; }
    public IReadOnlyList<CacheEntry> Entries { get; }
    /// <summary>Unknown top-level entries, names harden does not give inside its parts, FIFOs, sockets and devices.</summary>
    public IReadOnlyList<LeftEntry> Left { get; }
    /// <summary>Every directory walked inside a part, parents before children.</summary>
    public IReadOnlyList<string> Directories { get; }

    public static CacheInventory Read(string root)
    {
        var entries = new List<CacheEntry>();
        var left = new List<LeftEntry>();
        var directories = new List<string>();
        using var top = NoFollowDirectory.OpenRoot(root);
        if (top == null)
        {
            if (File.Exists(root)) throw new HardenException($"cache directory {root} is a file, not a directory; point --cache or HARDEN_CACHE at harden's cache.");
            return new CacheInventory(root, false, true, entries, left, directories);
        }
        var files = new List<(string Part, CacheFile File)>();
        var names = top.Names().Order(StringComparer.Ordinal).ToList();
        foreach (var name in names)
        {
            if (top.Stat(name) is not { } st) continue;
            if (!CacheLayout.CurrentParts.Contains(name) && !CacheLayout.OldParts.Contains(name))
            {
                left.Add(new LeftEntry(name, "not part of harden's cache; left as it is"));
                continue;
            }
            switch (st.Kind)
            {
                case EntryKind.Directory:
                    Descend(top, name, name, name, files, left, directories);
                    break;
                case EntryKind.Symlink:
                    files.Add((name, new CacheFile(name, st))); // planted: the link may go, never what it names
                    break;
                default:
                    left.Add(new LeftEntry(name, st.Kind == EntryKind.File ? "a file where harden keeps a directory; left as it is" : NotRegular));
                    break;
            }
        }
        var isCache = names.Count == 0 || CacheLayout.Distinctive.Any(d => directories.Contains(d));
        Group(top, files, entries);
        return new CacheInventory(root, true, isCache, entries, left, directories);
    }

    private const string NotRegular = "not a regular file (a FIFO, socket or device): never opened, left as it is";

    /// <summary>Walks the subdirectory <paramref name="name"/> of <paramref name="dir"/> (opened with O_NOFOLLOW: a symlink swapped in since the lstat is left).</summary>
    private static void Descend(NoFollowDirectory dir, string name, string path, string part, List<(string, CacheFile)> files, List<LeftEntry> left, List<string> directories)
    {
        using var child = dir.OpenChild(name);
        if (child == null)
        {
            left.Add(new LeftEntry(path, "replaced while it was read; left as it is"));
            return;
        }
        directories.Add(path);
        Walk(child, path, part, files, left, directories);
    }

    private static void Walk(NoFollowDirectory dir, string rel, string part, List<(string, CacheFile)> files, List<LeftEntry> left, List<string> directories)
    {
        foreach (var name in dir.Names().Order(StringComparer.Ordinal))
        {
            var path = rel + "/" + name;
            if (dir.Stat(name) is not { } st) continue;
            switch (st.Kind)
            {
                // Deeper than harden ever nests: a writer of the cache planted it. Not walked: a nest 100,000 deep held a
                // descriptor per level and a path per directory (quadratic: 2.4 GB at 20,000 levels) until it failed.
                case EntryKind.Directory when path.Count(c => c == '/') >= CacheLayout.MaxDirectoryDepth:
                    left.Add(new LeftEntry(path, "a directory deeper than any harden makes; not walked, left as it is"));
                    break;
                case EntryKind.Directory when CacheLayout.IsDirectoryName(name):
                    Descend(dir, name, path, part, files, left, directories);
                    break;
                case EntryKind.File when CacheLayout.IsEntryName(name):
                    files.Add((part, new CacheFile(path, st)));
                    break;
                // A link under one of harden's names was planted (harden writes none): the link may go, never what it names.
                case EntryKind.Symlink when CacheLayout.IsEntryName(name) || CacheLayout.IsDirectoryName(name):
                    files.Add((part, new CacheFile(path, st)));
                    break;
                case EntryKind.Other:
                    left.Add(new LeftEntry(path, NotRegular));
                    break;
                default:
                    left.Add(new LeftEntry(path, "not a name harden gives anything in its cache; left as it is"));
                    break;
            }
        }
    }

    /// <summary>Pointers and indexes take the content files they name; every other file is an entry of its own.</summary>
    private static void Group(NoFollowDirectory top, List<(string Part, CacheFile File)> files, List<CacheEntry> entries)
    {
        var content = files.Where(f => f.Part == CacheLayout.Content && Parent(f.File.Path) == CacheLayout.ContentFiles && f.File.Stat.Kind == EntryKind.File)
            .ToDictionary(f => Name(f.File.Path), f => f.File, StringComparer.Ordinal);
        var grouped = new HashSet<string>(StringComparer.Ordinal); // paths in an entry of several files
        var packOfList = new Dictionary<string, string?>(StringComparer.Ordinal);
        using (var dirs = new OpenDirectories(top))
        {
            NoFollowDirectory? DirOf(string path) => dirs.Of(path);

            foreach (var (part, file) in files)
            {
                dirs.Trim();
                if (file.Stat.Kind != EntryKind.File || CacheLayout.IsTempName(Name(file.Path))) continue;
                var named = new List<string>();
                if (part == CacheLayout.Unpacked && Parent(file.Path) == CacheLayout.Unpacked)
                {
                    var list = Read(DirOf(file.Path), Name(file.Path), PackageUnpacker.MaxSealFileBytes, s => PackageUnpacker.FileListNamedBy(new StreamReader(s).ReadToEnd()));
                    if (list != null && content.ContainsKey(list))
                    {
                        named.Add(list);
                        // Once per list, however many pointers name it: pointers are unverified here, and thousands of forged
                        // ones naming one 64 MiB list made prune parse it thousands of times (hours).
                        if (!packOfList.TryGetValue(list, out var pack))
                            packOfList[list] = pack = Read(DirOf(CacheLayout.ContentFiles + "/" + list), list, MaxFileListBytes, PackageUnpacker.PackNamedBy);
                        if (pack != null) named.Add(pack);
                    }
                }
                else if (part == CacheLayout.ByteCode && file.Path.EndsWith(".index", StringComparison.Ordinal))
                    named.AddRange(Read(DirOf(file.Path), Name(file.Path), PythonByteCodeCompiler.MaxIndexBytes, PythonByteCodeCompiler.PacksNamedBy) ?? []);
                else continue;
                // A pack two lists name (two .debs with the same files) is in both entries; it goes with the last of them.
                var group = named.Where(content.ContainsKey).Select(n => content[n]).Prepend(file).Distinct().ToList();
                foreach (var f in group) grouped.Add(f.Path);
                entries.Add(new CacheEntry(part, group, EntryRule.ByLastUse));
            }
        }
        foreach (var (part, file) in files.Where(f => !grouped.Contains(f.File.Path)))
        {
            var rule = CacheLayout.OldParts.Contains(part) ? EntryRule.OldFormat
                : CacheLayout.IsTempName(Name(file.Path)) && file.Stat.Kind == EntryKind.File ? EntryRule.TempFile : EntryRule.ByLastUse;
            entries.Add(new CacheEntry(rule == EntryRule.TempFile ? TempFiles : part, [file], rule));
        }
    }

    /// <summary>The part temp files of killed writers are counted in, wherever they lie.</summary>
    public const string TempFiles = "temp files";

    /// <summary>What <paramref name="parse"/> makes of a regular file no longer than <paramref name="maxBytes"/>; null for anything else.</summary>
    private static T? Read<T>(NoFollowDirectory? dir, string name, long maxBytes, Func<Stream, T?> parse) where T : class
    {
        if (dir?.Stat(name) is not { Kind: EntryKind.File } st || st.Length > maxBytes) return null;
        try
        {
            using var s = dir.OpenRegularFile(name);
            return s == null ? null : parse(s);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    private static string Parent(string path) => CacheLayout.Parent(path);
    private static string Name(string path) => CacheLayout.Name(path);
}
