using System.Text.Json;
using HardenImage.Common;
using HardenImage.Common.Storage;
using HardenImage.Common.Streams;
using HardenImage.Deb;
using HardenImage.Oci;

namespace HardenImage.Build;

/// <summary>One path a package ships, as unpacked into the content store.</summary>
public sealed record UnpackedEntry(string Path, FsNodeType Type, int Mode, int Uid, int Gid, long Size, string? Sha256, string? LinkTarget)
{
    /// <summary>Where a regular file's bytes start in its package's pack (<see cref="UnpackedPackage.Pack"/>).</summary>
    public long Offset { get; init; }
}

/// <summary>A package's control data and file list; file bytes live in the <see cref="ContentStore"/>.</summary>
public sealed record UnpackedPackage
{
    public required string Name { get; init; }
    public required string Version { get; init; }
    public required string Architecture { get; init; }
    public required string DebSha256 { get; init; }
    public required string ControlText { get; init; }
    public string? Md5sums { get; init; }
    public List<string> MaintainerScripts { get; init; } = new();
    /// <summary>update-alternatives --install calls found in postinst: the links its script would have made.</summary>
    public List<AlternativeLink> Alternatives { get; init; } = new();
    public List<UnpackedEntry> Entries { get; init; } = new();
    /// <summary>The content-store pack that holds every regular file's bytes, one after another, and its length.</summary>
    public string? Pack { get; init; }
    public long PackLength { get; init; }

    /// <summary>Where each regular file lies in <see cref="Pack"/> (for <see cref="ContentStore.RegisterPack"/>).</summary>
    internal IEnumerable<(string Sha256, long Offset, long Size)> PackedFiles =>
        Entries.Where(e => e.Sha256 != null).Select(e => (e.Sha256!, e.Offset, e.Size));
}

/// <summary>One <c>update-alternatives --install LINK NAME PATH PRIORITY</c> of a package's postinst.</summary>
public sealed record AlternativeLink(string Link, string Name, string Path, int Priority);

/// <summary>
/// Unpacks .debs once per SHA-256: the file bytes go into one content-store pack per package, the file list (which
/// says where each file lies in the pack) into the content store, and <c>&lt;cache&gt;/unpacked-v4/&lt;deb sha256&gt;</c>
/// points at the list, sealed with the <see cref="CacheKey"/> over the .deb's and the file list's SHA-256 (threat T:
/// the cache may be shared or restored from another CI run, and a file list is derived data that no hash chain
/// proves; without the seal a rewritten list plus a content blob would change a file in the image). Every file is
/// still named by its SHA-256 and verified on every read. A warm build reads no .deb at all. No maintainer script
/// runs, ever (threat E).
/// </summary>
public sealed class PackageUnpacker
{
    private const string SealPurpose = "unpacked-tree-v4";
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };
    private readonly ContentStore _store;
    private readonly CacheKey _key;
    private readonly string _pointers;
    // One bound on the bytes all packages of this build decompress (docs/limits.md, "Parsers and unpacking").
    private readonly DebReaderOptions _readerOptions = new() { Build = new UnpackBudget(InputLimits.MaxUnpackedBytesPerBuild, "this build") };
    private readonly Action<string> _report;

    /// <param name="report">Told about every cache entry that was refused (forged, corrupt) and derived again.</param>
    public PackageUnpacker(ContentStore store, string cacheRoot, CacheKey key, Action<string>? report = null)
    {
        _store = store;
        _key = key;
        _report = report ?? (_ => { });
        // "-v4": file lists name a pack; v3 lists (a file each) and unsealed v2 pointers are never read.
        _pointers = Path.Combine(cacheRoot, "unpacked-v4");
        Directory.CreateDirectory(_pointers);
    }

    /// <summary>
    /// Returns the unpacked package: from the cache when its pointer is sealed with our key and everything it names
    /// is present and verified, else by unpacking <paramref name="debPath"/> (the verified .deb) again.
    /// </summary>
    public UnpackedPackage Get(string debSha256, string debPath, string label)
    {
        var pointer = Path.Combine(_pointers, debSha256);
        if (File.Exists(pointer) && !ContentStore.IsRegularFile(pointer))
        {
            _report($"unpacked tree of {label}: {pointer} is not a regular file (planted in the cache); unpacked the verified .deb again");
            AtomicFile.TryDelete(pointer);
        }
        else if (File.Exists(pointer))
        {
            var (cached, problem) = TryCached(pointer, debSha256);
            if (cached != null) return cached;
            if (problem != null) _report($"unpacked tree of {label} in {pointer} {problem}; unpacked the verified .deb again");
            AtomicFile.TryDelete(pointer);
        }
        var unpacked = Unpack(debSha256, debPath, label);
        var sha = _store.Put(JsonSerializer.SerializeToUtf8Bytes(unpacked, Json));
        AtomicFile.WriteAllText(pointer, $"{sha} {_key.Seal(SealPurpose, debSha256, sha)}\n");
        return unpacked;
    }

    /// <summary>The cached package, or null with the reason to report (null reason: merely incomplete, e.g. evicted content).</summary>
    internal const long MaxSealFileBytes = 1024;

    private (UnpackedPackage? Package, string? Problem) TryCached(string pointer, string debSha256)
    {
        // A pointer is "<sha256> <hmac>\n" (130 bytes): a planted gigabyte file is a forgery, not something to read whole.
        string text;
        try
        {
            if (new FileInfo(pointer).Length > MaxSealFileBytes) return (null, "is not a sealed pointer (far too large: planted)");
            text = File.ReadAllText(pointer);
        }
        // Removed since File.Exists (a concurrent 'harden cache prune'): not cached, unpacked again.
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return (null, null); }
        if (ParsePointer(text) is not var (manifestSha, seal))
            return (null, "is not a sealed pointer (forged, or written by an older harden)");
        if (!_key.Verify(seal, SealPurpose, debSha256, manifestSha))
            return (null, "is not sealed with this cache key (forged, or written with another key)");
        if (!_store.Contains(manifestSha)) return (null, null);
        UnpackedPackage? cached;
        try { cached = JsonSerializer.Deserialize<UnpackedPackage>(_store.ReadVerified(manifestSha), Json); }
        catch (CorruptCacheEntryException e) { return (null, $"names a file list that failed verification ({e.Message})"); }
        catch (JsonException e) { return (null, $"names a file list that is not valid JSON ({e.Message})"); }
        if (cached == null || cached.DebSha256 != debSha256) return (null, "names the file list of another .deb");
        if (cached.Pack == null)
        {
            if (cached.Entries.Any(e => e.Sha256 != null)) return (null, "names no pack for its files");
            LastUse.Refresh(pointer, _store.PathOf(manifestSha));
            return (cached, null);
        }
        // Content is verified when it is read; a missing pack (evicted), or one of the wrong length (cache files are
        // not fsync'd: an empty or torn pack after a crash), just means unpacking again, before any build pass.
        var length = _store.LengthOfPack(cached.Pack);
        if (length < 0) return (null, null);
        if (length != cached.PackLength)
            return (null, $"names pack {cached.Pack}, which has {length} bytes where the list says {cached.PackLength} (torn by a crash, or tampered)");
        try { _store.RegisterPack(cached.Pack, cached.PackedFiles); }
        catch (CorruptCacheEntryException e) { return (null, $"names a file list that failed verification ({e.Message})"); }
        // Used: pointer, list and pack stay while builds use them (harden cache prune goes by this time).
        LastUse.Refresh(pointer, _store.PathOf(manifestSha), _store.PathOf(cached.Pack));
        return (cached, null);
    }

    /// <summary>A pointer's text, "&lt;file list sha256&gt; &lt;seal&gt;", split; null when it is not of that shape (the seal is not checked here).</summary>
    private static (string FileList, string Seal)? ParsePointer(string text) =>
        text.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) is [var list, var seal] && Sha256Hex.IsValid(list)
            ? (list, seal) : null;

    /// <summary>
    /// The files of one cache entry, for <c>harden cache</c> (which holds no key, so nothing is verified: a forged
    /// pointer can only keep files alive): the file list a pointer's text names, else null.
    /// </summary>
    public static string? FileListNamedBy(string pointerText) => ParsePointer(pointerText)?.FileList;

    /// <summary>The pack a file list names (<see cref="UnpackedPackage.Pack"/>), or null when it names none or is not a file list.</summary>
    public static string? PackNamedBy(Stream fileList)
    {
        try { return JsonSerializer.Deserialize<PackOnly>(fileList, Json)?.Pack is { } p && Sha256Hex.IsValid(p) ? p : null; }
        catch (JsonException) { return null; }
    }

    private sealed record PackOnly(string? Pack);

    private UnpackedPackage Unpack(string debSha256, string debPath, string label)
    {
        FileStream file;
        // Verified by the fetch, then removed before it was unpacked (a concurrent 'harden cache prune --unused-for 0'):
        // the next run downloads and verifies it again.
        try { file = new FileStream(debPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new HardenException($"{label}: its verified .deb {debPath} left the cache while this build ran (removed by 'harden cache prune' or by hand); run the build again: it downloads and verifies it again.", inner: e);
        }
        using var owned = file;
        // The fetch verified the .deb by its path, perhaps minutes ago (the repair pass: much later); a writer of a shared
        // cache may have renamed another .deb over it since. What is unpacked is hashed as it is read, and nothing of it
        // is kept unless it is the .deb the lock pins.
        using var hashed = new HashingReadStream(file, leaveOpen: true);
        using var reader = DebPackageReader.Open(hashed, Path.GetFileName(debPath), _readerOptions, leaveOpen: true);
        using var pack = _store.NewPack();
        var control = reader.Control;
        var entries = new List<UnpackedEntry>();
        var files = new Dictionary<string, UnpackedEntry>(StringComparer.Ordinal);
        foreach (var e in reader.ReadDataEntries())
        {
            if (e.Path.Length == 0) continue;
            UnpackedEntry entry;
            switch (e.Type)
            {
                case DebEntryType.File:
                    var (sha, size, offset) = pack.Add(e.Content);
                    entry = new UnpackedEntry(e.Path, FsNodeType.File, e.ModeBits, e.Uid, e.Gid, size, sha, null) { Offset = offset };
                    files[e.Path] = entry;
                    break;
                case DebEntryType.Directory:
                    entry = new UnpackedEntry(e.Path, FsNodeType.Directory, e.ModeBits, e.Uid, e.Gid, 0, null, null);
                    break;
                case DebEntryType.Symlink:
                    entry = new UnpackedEntry(e.Path, FsNodeType.Symlink, 511, e.Uid, e.Gid, 0, null, e.LinkTarget);
                    break;
                case DebEntryType.HardLink:
                    // A hard link becomes a second regular file with the same content: layers stay simple and a
                    // transform that removes the first name cannot leave a dangling link.
                    if (e.LinkTarget == null || !files.TryGetValue(e.LinkTarget, out var target))
                        throw new HardenException($"{label}: hard link {e.Path} → {e.LinkTarget} names no earlier file of the package; refusing it.");
                    entry = target with { Path = e.Path, Mode = e.ModeBits == 0 ? target.Mode : e.ModeBits };
                    break;
                default:
                    throw new HardenException($"{label}: {e.Path} has an unsupported type {e.Type}.");
            }
            entries.Add(entry);
        }
        hashed.CopyTo(Stream.Null); // what the reader left unread (trailing members, padding) is part of the .deb too
        if (hashed.FinishDigest() is var actual && actual != "sha256:" + debSha256)
        {
            var same = ContentAddressedDirectory.IsStillTheFileOf(file.SafeFileHandle, debPath);
            if (same) AtomicFile.TryDelete(debPath);
            throw new HardenException($"{label}: {debPath} is not the .deb the fetch verified ({actual}, the lock pins sha256:{debSha256}): it was replaced in the cache " +
                                      $"after the check (another writer of HARDEN_CACHE?). Nothing of it was kept{(same ? " and it was removed" : "")}; run the build again: it downloads and verifies the .deb again.");
        }
        var (packSha, packLength) = pack.Commit();
        return new UnpackedPackage
        {
            Name = control.Package,
            Version = control.Version,
            Architecture = control.Architecture ?? "",
            DebSha256 = debSha256,
            ControlText = control.Fields.ToText(),
            Md5sums = control.Md5SumsText,
            MaintainerScripts = control.MaintainerScripts.Keys.Order(StringComparer.Ordinal).ToList(),
            Alternatives = control.MaintainerScripts.TryGetValue("postinst", out var postinst) ? ParseAlternatives(postinst) : [],
            Entries = entries,
            Pack = packSha,
            PackLength = packLength,
        };
    }

    /// <summary>
    /// Finds <c>update-alternatives --install &lt;link&gt; &lt;name&gt; &lt;path&gt; &lt;priority&gt;</c> (continuation lines joined) in
    /// a postinst. Only literal arguments count: a call built from shell variables is not guessed at.
    /// </summary>
    internal static List<AlternativeLink> ParseAlternatives(string script)
    {
        var result = new List<AlternativeLink>();
        var joined = script.Replace("\\\n", " ");
        foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(joined,
                     @"update-alternatives\s+(?:--quiet\s+)?--install\s+(/[^\s$`'""]+)\s+([^\s$`'""]+)\s+(/[^\s$`'""]+)\s+(\d+)"))
            result.Add(new AlternativeLink(m.Groups[1].Value, m.Groups[2].Value, m.Groups[3].Value, int.Parse(m.Groups[4].Value, System.Globalization.CultureInfo.InvariantCulture)));
        return result;
    }
}
