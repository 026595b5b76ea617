using System.Security.Cryptography;
using System.Text;
using HardenImage.Common;

namespace HardenImage.Scan;

/// <summary>
/// All advisory records keyed by (ecosystem, package), built once per advisory data digest. Saved in a compact
/// binary form (string table + records) followed by its SHA-256, so a later scan loads it quickly and never
/// trusts a truncated or altered cache file (threat: Tampering).
/// </summary>
public sealed class AdvisoryIndex
{
    private const string Magic = "HIADVIDX";
    // Bump when the record shape or the readers' interpretation changes: old caches then miss.
    public const int FormatVersion = 2;

    private readonly Dictionary<(string Ecosystem, string Package), AdvisoryRecord[]> _byPackage;

    private AdvisoryIndex(string dataDigest, IReadOnlyList<string> sources, Dictionary<(string, string), AdvisoryRecord[]> byPackage, int count)
    {
        DataDigest = dataDigest; Sources = sources; _byPackage = byPackage; RecordCount = count;
    }

    /// <summary>"sha256:…" over the advisory inputs (see <see cref="AdvisoryIndexStore.ComputeDataDigest"/>).</summary>
    public string DataDigest { get; }
    /// <summary>What was read, e.g. "64 Debian tracker entries (vuln-list format)".</summary>
    public IReadOnlyList<string> Sources { get; }
    public int RecordCount { get; }
    public int PackageCount => _byPackage.Count;

    /// <summary>
    /// Ecosystems the data holds at least one record for ("Debian:13", "PyPI"). A package of any other ecosystem
    /// cannot be judged by this data: no records means "not looked at", not "clean".
    /// </summary>
    public IReadOnlySet<string> Ecosystems => _ecosystems ??= _byPackage.Keys.Select(k => k.Ecosystem).ToHashSet(StringComparer.Ordinal);
    private HashSet<string>? _ecosystems;

    public bool Covers(string ecosystem) => Ecosystems.Contains(ecosystem);

    public IReadOnlyList<AdvisoryRecord> Lookup(string ecosystem, string package) =>
        _byPackage.TryGetValue((ecosystem, package), out var list) ? list : [];

    public IEnumerable<AdvisoryRecord> All => _byPackage.Values.SelectMany(v => v);

    public static AdvisoryIndex Create(IEnumerable<AdvisoryRecord> records, string dataDigest, IReadOnlyList<string> sources)
    {
        var map = new Dictionary<(string, string), List<AdvisoryRecord>>();
        int count = 0;
        foreach (var r in records)
        {
            if (!map.TryGetValue((r.Ecosystem, r.Package), out var list)) map[(r.Ecosystem, r.Package)] = list = new();
            list.Add(r);
            count++;
        }
        return new AdvisoryIndex(dataDigest, sources, map.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray()), count);
    }

    public byte[] Serialize()
    {
        var strings = new Dictionary<string, int>(StringComparer.Ordinal);
        var table = new List<string>();
        int S(string? s)
        {
            if (s is null) return 0;
            if (!strings.TryGetValue(s, out var i)) { i = table.Count + 1; strings[s] = i; table.Add(s); }
            return i;
        }
        using var body = new MemoryStream();
        using (var w = new BinaryWriter(body, Encoding.UTF8, leaveOpen: true))
        {
            var records = _byPackage.OrderBy(kv => kv.Key.Ecosystem, StringComparer.Ordinal).ThenBy(kv => kv.Key.Package, StringComparer.Ordinal)
                .SelectMany(kv => kv.Value).ToList();
            w.Write7BitEncodedInt(records.Count);
            foreach (var r in records)
            {
                w.Write7BitEncodedInt(S(r.Ecosystem)); w.Write7BitEncodedInt(S(r.Package)); w.Write7BitEncodedInt(S(r.Id));
                w.Write7BitEncodedInt(S(r.Origin)); w.Write7BitEncodedInt(S(r.Summary));
                w.Write7BitEncodedInt(r.Aliases.Count); foreach (var a in r.Aliases) w.Write7BitEncodedInt(S(a));
                if (r.Tracker is { } t)
                {
                    w.Write(true);
                    w.Write7BitEncodedInt(S(t.Status)); w.Write7BitEncodedInt(S(t.FixedVersion)); w.Write7BitEncodedInt(S(t.Urgency));
                    w.Write7BitEncodedInt(S(t.NoDsa)); w.Write7BitEncodedInt(S(t.NoDsaReason));
                }
                else w.Write(false);
                w.Write7BitEncodedInt(r.Ranges.Count);
                foreach (var range in r.Ranges)
                {
                    w.Write7BitEncodedInt(S(range.Type));
                    w.Write7BitEncodedInt(range.Events.Count);
                    foreach (var e in range.Events) { w.Write((byte)e.Kind); w.Write7BitEncodedInt(S(e.Version)); }
                }
                w.Write7BitEncodedInt(r.Versions.Count); foreach (var v in r.Versions) w.Write7BitEncodedInt(S(v));
                w.Write7BitEncodedInt(S(r.CvssVector)); w.Write7BitEncodedInt(S(r.DatabaseSeverity));
            }
        }
        using var all = new MemoryStream();
        using (var w = new BinaryWriter(all, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Encoding.ASCII.GetBytes(Magic));
            w.Write(FormatVersion);
            w.Write(DataDigest);
            w.Write7BitEncodedInt(Sources.Count); foreach (var s in Sources) w.Write(s);
            w.Write7BitEncodedInt(table.Count); foreach (var s in table) w.Write(s);
            w.Write(body.GetBuffer(), 0, (int)body.Length);
        }
        var hash = SHA256.HashData(all.GetBuffer().AsSpan(0, (int)all.Length));
        all.Write(hash);
        return all.ToArray();
    }

    /// <summary>Reads a serialised index; throws <see cref="InvalidDataException"/> when it is damaged or of another format.</summary>
    public static AdvisoryIndex Deserialize(byte[] bytes)
    {
        if (bytes.Length < Magic.Length + 4 + 32) throw new InvalidDataException("index file too short");
        var content = bytes.AsSpan(0, bytes.Length - 32);
        if (!SHA256.HashData(content).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - 32)))
            throw new InvalidDataException("index checksum mismatch");
        using var r = new BinaryReader(new MemoryStream(bytes, 0, bytes.Length - 32), Encoding.UTF8);
        if (Encoding.ASCII.GetString(r.ReadBytes(Magic.Length)) != Magic) throw new InvalidDataException("not an advisory index");
        if (r.ReadInt32() != FormatVersion) throw new InvalidDataException("index format version differs");
        var digest = r.ReadString();
        var sources = new string[r.Read7BitEncodedInt()];
        for (int i = 0; i < sources.Length; i++) sources[i] = r.ReadString();
        var table = new string?[r.Read7BitEncodedInt() + 1];
        for (int i = 1; i < table.Length; i++) table[i] = r.ReadString();
        string? S() => table[r.Read7BitEncodedInt()];
        string Req() => S() ?? throw new InvalidDataException("missing string");
        int n = r.Read7BitEncodedInt();
        var records = new List<AdvisoryRecord>(n);
        for (int k = 0; k < n; k++)
        {
            var eco = Req(); var pkg = Req(); var id = Req(); var origin = Req(); var summary = S();
            var aliases = new string[r.Read7BitEncodedInt()];
            for (int i = 0; i < aliases.Length; i++) aliases[i] = Req();
            TrackerStatus? tracker = null;
            if (r.ReadBoolean()) tracker = new TrackerStatus(Req(), S(), Req(), S(), S());
            var ranges = new OsvRange[r.Read7BitEncodedInt()];
            for (int i = 0; i < ranges.Length; i++)
            {
                var type = Req();
                var events = new OsvEvent[r.Read7BitEncodedInt()];
                for (int j = 0; j < events.Length; j++) events[j] = new OsvEvent((OsvEventKind)r.ReadByte(), Req());
                ranges[i] = new OsvRange(type, events);
            }
            var versions = new string[r.Read7BitEncodedInt()];
            for (int i = 0; i < versions.Length; i++) versions[i] = Req();
            records.Add(new AdvisoryRecord
            {
                Ecosystem = eco, Package = pkg, Id = id, Origin = origin, Summary = summary, Aliases = aliases,
                Tracker = tracker, Ranges = ranges, Versions = versions, CvssVector = S(), DatabaseSeverity = S(),
            });
        }
        return Create(records, digest, sources);
    }
}

/// <summary>
/// Builds advisory indexes and caches them content-addressed under <c>&lt;cacheDir&gt;/advisory-index/&lt;digest&gt;.idx</c>.
/// The key is the digest of the inputs, so changed data is never answered from a stale index. The entry is derived
/// data in a cache others may write (a CI cache restored from another run): its checksum alone could be recomputed by
/// a forger who drops the advisories of the packages they ship, so the file also carries an HMAC with the
/// <see cref="CacheAuthenticationKey"/> (not stored in the cache). A damaged, forged or foreign entry, or anything
/// but a regular file, is rebuilt from the data (threat: Tampering, Denial of service).
/// </summary>
public sealed class AdvisoryIndexStore
{
    private readonly Lazy<CacheAuthenticationKey> _key;

    /// <param name="key">Authenticates cache entries; default <see cref="CacheAuthenticationKey.Load(string)"/>.</param>
    public AdvisoryIndexStore(string cacheDir, CacheAuthenticationKey? key = null)
    {
        CacheDir = Path.GetFullPath(cacheDir);
        _key = key != null ? new(key) : new(() => CacheAuthenticationKey.Load(CacheDir));
    }

    public string CacheDir { get; }

    /// <summary>True when the last <see cref="LoadOrBuild"/> was answered from the cache.</summary>
    public bool LastWasCacheHit { get; private set; }

    /// <summary>Why the last <see cref="LoadOrBuild"/> did not trust a cache entry that was there (null: none, or it was trusted).</summary>
    public string? LastRejected { get; private set; }

    public string CachePathFor(string dataDigest) =>
        Path.Combine(CacheDir, "advisory-index", Oci.Digest.Parse(dataDigest).Hex + ".idx");

    private const int MacLength = 32;

    public AdvisoryIndex LoadOrBuild(string dbPath)
    {
        var digest = ComputeDataDigest(dbPath);
        var cachePath = CachePathFor(digest);
        LastRejected = null;
        if (File.Exists(cachePath) || new FileInfo(cachePath).LinkTarget != null)
        {
            try
            {
                if (!ContentStore.IsRegularFile(cachePath)) throw new InvalidDataException("not a regular file");
                var bytes = File.ReadAllBytes(cachePath);
                if (bytes.Length < MacLength || !_key.Value.Verify(bytes.AsSpan(0, bytes.Length - MacLength), bytes.AsSpan(bytes.Length - MacLength)))
                    throw new InvalidDataException("does not authenticate with this machine's cache key (forged, or from another machine)");
                var cached = AdvisoryIndex.Deserialize(bytes[..^MacLength]);
                if (cached.DataDigest == digest) { LastWasCacheHit = true; return cached; }
                LastRejected = "is for other data";
            }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException)
            {
                // A damaged or forged cache is not an error: rebuild it from the data.
                LastRejected = e.Message;
            }
            AtomicFile.TryDelete(cachePath);
        }
        LastWasCacheHit = false;
        var index = Build(dbPath, digest);
        var serialized = index.Serialize();
        AtomicFile.WriteAllBytes(cachePath, [.. serialized, .. _key.Value.Mac(serialized)]);
        return index;
    }

    public static AdvisoryIndex Build(string dbPath, string? digest = null)
    {
        var (records, sources) = AdvisorySourceReader.ReadAll(dbPath);
        if (records.Count == 0)
            throw new HardenException($"{dbPath}: no advisory records found (OSV .json/.jsonl/.yaml/.zip, Debian tracker JSON, vuln-list tracker files). Pass another --db or run 'harden db update'.");
        return AdvisoryIndex.Create(records, digest ?? ComputeDataDigest(dbPath), sources);
    }

    /// <summary>
    /// SHA-256 over the format version and, for each file under the path in ordinal order, its relative path and
    /// content digest. Equal data ⇒ equal digest on any machine. Only regular files are read, each at most
    /// <see cref="InputLimits.MaxAdvisoryFileBytes"/>; a symlink must end at a regular file inside the data directory
    /// (threat D/T: a symlink to /dev/zero or a FIFO under --db never ended; a symlink leaving it read other data).
    /// </summary>
    public static string ComputeDataDigest(string dbPath)
    {
        var sb = new StringBuilder($"hardenimage-advisory-index v{AdvisoryIndex.FormatVersion}\n");
        if (Directory.Exists(dbPath))
        {
            var root = CacheAuthenticationKey.RealPath(Path.GetFullPath(dbPath));
            foreach (var f in AdvisoryFilesUnder(dbPath, dbPath, root)
                         .Select(f => (Full: f, Rel: Path.GetRelativePath(dbPath, f).Replace('\\', '/')))
                         .Where(f => !Path.GetFileName(f.Rel).StartsWith('.'))
                         .OrderBy(f => f.Rel, StringComparer.Ordinal))
                sb.Append(f.Rel).Append('\0').Append(DigestOfRegularFile(CacheAuthenticationKey.RealPath(Path.GetFullPath(f.Full)), f.Full)).Append('\n');
        }
        else if (File.Exists(dbPath) || new FileInfo(dbPath).LinkTarget != null)
            // The path the user named may itself be a symlink (their choice); what it ends at must be a regular file.
            sb.Append(Path.GetFileName(dbPath)).Append('\0').Append(DigestOfRegularFile(CacheAuthenticationKey.RealPath(Path.GetFullPath(dbPath)), dbPath)).Append('\n');
        else
            throw new HardenException($"{dbPath}: advisory data not found. Pass --db PATH|URL (the repository ships vulndb/) or run 'harden db update'.");
        return "sha256:" + Sha256Hex.Of(Encoding.UTF8.GetBytes(sb.ToString()));
    }

    /// <summary>Every file under <paramref name="dir"/>, not following directory symlinks; symlinks checked to stay inside <paramref name="root"/>.</summary>
    private static IEnumerable<string> AdvisoryFilesUnder(string dir, string dbPath, string root)
    {
        foreach (var entry in Directory.EnumerateFileSystemEntries(dir))
        {
            if (Path.GetFileName(entry).StartsWith('.')) continue;
            var link = new FileInfo(entry).LinkTarget;
            if (link != null)
            {
                var target = CacheAuthenticationKey.RealPath(Path.GetFullPath(link, Path.GetDirectoryName(Path.GetFullPath(entry))!));
                if (!target.StartsWith(root.TrimEnd('/') + "/", StringComparison.Ordinal) || Directory.Exists(target))
                    throw new HardenException($"{entry}: a symlink in the advisory data {dbPath} that leaves it or names a directory (-> {link}); only regular files inside it are advisory data. Remove it, or pass --db the real directory.");
                yield return entry;
            }
            else if (Directory.Exists(entry))
                foreach (var f in AdvisoryFilesUnder(entry, dbPath, root)) yield return f;
            else yield return entry;
        }
    }

    /// <summary>SHA-256 of a regular file of at most the advisory size limit; anything else is one clear error naming <paramref name="shown"/>.</summary>
    private static string DigestOfRegularFile(string path, string shown)
    {
        if (!ContentStore.IsRegularFile(path))
            throw new HardenException($"{shown}: not a regular file (a FIFO, device, socket or dangling symlink) in the advisory data; reading it may never end. Remove it, or pass another --db.");
        // Streamed (a cache hit reads nothing else), bounded on the bytes read, not on what the file system says.
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        if (fs.Length > InputLimits.MaxAdvisoryFileBytes) throw BoundedFile.TooLarge(shown, "advisory file", InputLimits.MaxAdvisoryFileBytes);
        var chunk = new byte[1 << 16];
        long total = 0;
        int n;
        while ((n = fs.Read(chunk, 0, chunk.Length)) > 0)
        {
            total += n;
            if (total > InputLimits.MaxAdvisoryFileBytes) throw BoundedFile.TooLarge(shown, "advisory file", InputLimits.MaxAdvisoryFileBytes);
            hash.AppendData(chunk, 0, n);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
