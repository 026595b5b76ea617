using System.Text;
using HardenImage.Common;

namespace HardenImage.Apt;

/// <summary>What a verified Packages index says about one package: enough to prove a lock entry and its dependencies.</summary>
public sealed record ProvenIndexEntry(
    string Name, string Version, string Architecture, string Sha256, long Size, string Filename,
    string Depends, string PreDepends, string Provides, string SourceName, string SourceVersion)
{
    public static ProvenIndexEntry From(BinaryPackage p) =>
        new(p.Name, p.Version, p.Architecture, p.Sha256, p.Size, p.Filename, p.Depends, p.PreDepends, p.Provides, p.SourceName, p.SourceVersion);
}

/// <summary>
/// Parsed-index cache (the compact index snapshot): the fields of every package of one verified Packages index that
/// proofs and the resolver read (keyed by the index's SHA-256 from a signed Release, and the architecture filter),
/// so that neither proving a lock nor <c>lock --update</c> decompresses and re-parses 56 MB of index text while the
/// index is unchanged. It is written only from an index whose bytes matched the SHA-256 of an OpenPGP-verified
/// InRelease. The entry is derived data, so it is authenticated with <see cref="CacheAuthenticationKey"/> (a secret
/// that is not in the cache): a cache writer cannot forge or edit one, nor move one under another index's digest
/// (the first line, under the MAC, names the index and filter). A forged, truncated or foreign entry is reported,
/// deleted and re-derived from the verified index bytes.
/// </summary>
public sealed class IndexProofCache(string rootDirectory, CacheAuthenticationKey key) : ISignatureRecords
{
    // v3: adds Multi-Arch, Essential and Priority, which the resolver needs; v2 entries are re-derived silently.
    private const string Magic = "hardenimage-index-proof v3";
    private const int FieldCount = 14;

    public string Directory { get; } = Path.Combine(rootDirectory, "apt-proofs");

    public string PathFor(string indexSha256, string architecture) =>
        Sha256Hex.IsValid(indexSha256) && architecture.All(c => char.IsAsciiLetterOrDigit(c) || c == '-')
            ? Path.Combine(Directory, $"{indexSha256}-{architecture}")
            : throw new ArgumentException($"bad index key '{indexSha256}' / '{architecture}'");

    /// <summary>The entries, or null when absent; a present entry that fails authentication is deleted and
    /// <paramref name="forged"/> says so (the caller re-derives and reports it).</summary>
    /// <param name="keepName">Only entries of these packages are materialised (a lock names a few hundred of 70,000).</param>
    public IReadOnlyList<ProvenIndexEntry>? TryRead(string indexSha256, string architecture, out string? forged, Func<string, bool>? keepName = null)
    {
        var list = new List<ProvenIndexEntry>();
        var ok = TryReadRows(indexSha256, architecture, out forged, keepName, f =>
        {
            if (!long.TryParse(f[4], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var size)) return false;
            list.Add(new ProvenIndexEntry(f[0], f[1], f[2], f[3], size, f[5], f[6], f[7], f[8], f[9], f[10]));
            return true;
        });
        return ok ? list : null;
    }

    /// <summary>
    /// The index's packages as the resolver reads them (no <see cref="BinaryPackage.Paragraph"/>: the resolver needs
    /// only the fields kept here), with <paramref name="origin"/> and <paramref name="baseUrl"/> of the source being
    /// read; null when absent or not authentic (then <paramref name="forged"/> may say why, as for <see cref="TryRead"/>).
    /// </summary>
    public IReadOnlyList<BinaryPackage>? TryReadPackages(string indexSha256, string architecture, string origin, string baseUrl, out string? forged)
    {
        var list = new List<BinaryPackage>(1 << 16);
        // Few distinct values, repeated on 70,000 lines: one string each.
        var common = new Dictionary<string, string>(StringComparer.Ordinal);
        string Shared(string v) => v.Length == 0 ? "" : common.TryGetValue(v, out var s) ? s : common[v] = v;
        var ok = TryReadRows(indexSha256, architecture, out forged, null, f =>
        {
            if (!long.TryParse(f[4], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var size)) return false;
            list.Add(new BinaryPackage
            {
                Name = f[0], Version = f[1], Architecture = Shared(f[2]), Sha256 = f[3], Size = size, Filename = f[5],
                Depends = f[6], PreDepends = f[7], Provides = f[8], SourceName = f[9] == f[0] ? f[0] : f[9], SourceVersion = f[10] == f[1] ? f[1] : f[10],
                MultiArch = Shared(f[11]), Essential = f[12] == "yes", Priority = Shared(f[13]), Origin = origin, BaseUrl = baseUrl,
            });
            return true;
        });
        return ok ? list : null;
    }

    private bool TryReadRows(string indexSha256, string architecture, out string? forged, Func<string, bool>? keepName, Func<string[], bool> row)
    {
        forged = null;
        var path = PathFor(indexSha256, architecture);
        var info = new FileInfo(path);
        if (!info.Exists && info.LinkTarget == null) return false;
        if (!Common.Storage.ContentAddressedDirectory.IsRegularFile(path))
        {
            // A FIFO planted under an entry's name would block the read for ever, a symlink read from elsewhere (threat D/T).
            AtomicFile.TryDelete(path);
            forged = $"parsed-index cache entry {path} is not a regular file (planted in the cache): deleted, re-derived from the verified index";
            return false;
        }
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { return false; }
        catch (DirectoryNotFoundException) { return false; }
        if (Parse(bytes, indexSha256, architecture, keepName, row, out var authentic))
        {
            Common.Storage.LastUse.Refresh(path); // harden cache prune keeps what proofs use
            return true;
        }
        AtomicFile.TryDelete(path);
        // Authentic but of an older format or another index: ours, just stale — re-derived without a warning.
        if (authentic) return false;
        forged = $"parsed-index cache entry {path} does not authenticate (forged, edited or from another machine's key): deleted, re-derived from the verified index";
        return false;
    }

    // Signature records (InReleaseVerifier): "sig-<sha256 of id>" holding the MAC of the id under its own purpose.
    // A relock re-reads the same InRelease files; BouncyCastle's check of each 4096-bit RSA key costs ~0.1 s of CPU.
    private const string SignaturePurpose = "hardenimage-signature-verified v1\n";

    private string SignaturePath(string id) => Path.Combine(Directory, "sig-" + Sha256Hex.Of(Encoding.UTF8.GetBytes(id)));

    private byte[] SignatureMac(string id) => key.Mac(Encoding.UTF8.GetBytes(SignaturePurpose + id));

    public bool Verified(string id)
    {
        var path = SignaturePath(id);
        // Not a regular file (a planted FIFO or symlink), or not the size of a record: not a record.
        // One stat: the length of a regular file, or -1 (also when a concurrent prune removed it meanwhile).
        if (Common.Storage.ContentAddressedDirectory.RegularFileLength(path) != 64 + 1) return false;
        try
        {
            var text = File.ReadAllText(path);
            var verified = text.Length == 65 && text[64] == '\n' && key.Verify(Encoding.UTF8.GetBytes(SignaturePurpose + id), Convert.FromHexString(text.AsSpan(0, 64)));
            if (verified) Common.Storage.LastUse.Refresh(path);
            return verified;
        }
        catch (Exception e) when (e is IOException or FormatException) { return false; }
    }

    public void Record(string id)
    {
        System.IO.Directory.CreateDirectory(Directory);
        AtomicFile.WriteAllText(SignaturePath(id), Convert.ToHexStringLower(SignatureMac(id)) + "\n");
    }

    /// <summary>Writes the entry of a verified index (<paramref name="packages"/> parsed from bytes that matched <paramref name="indexSha256"/>).</summary>
    public void Write(string indexSha256, string architecture, IEnumerable<BinaryPackage> packages)
    {
        var sb = new StringBuilder();
        sb.Append(Magic).Append(' ').Append(indexSha256).Append(' ').Append(architecture).Append('\n');
        foreach (var p in packages)
            sb.AppendJoin('\t', Clean(p.Name), Clean(p.Version), Clean(p.Architecture), Clean(p.Sha256),
                p.Size.ToString(System.Globalization.CultureInfo.InvariantCulture), Clean(p.Filename),
                Clean(p.Depends), Clean(p.PreDepends), Clean(p.Provides), Clean(p.SourceName), Clean(p.SourceVersion),
                Clean(p.MultiArch), p.Essential ? "yes" : "", Clean(p.Priority)).Append('\n');
        var body = Encoding.UTF8.GetBytes(sb.ToString());
        var mac = Encoding.ASCII.GetBytes("mac " + Convert.ToHexStringLower(key.Mac(body)) + "\n");
        System.IO.Directory.CreateDirectory(Directory);
        AtomicFile.WriteAllBytes(PathFor(indexSha256, architecture), [.. body, .. mac]);
    }

    // Deb822 values may be folded over lines; tabs and newlines are separators here.
    private static string Clean(string s) => s.Replace('\n', ' ').Replace('\t', ' ').Replace('\r', ' ');

    private bool Parse(byte[] bytes, string indexSha256, string architecture, Func<string, bool>? keepName, Func<string[], bool> row, out bool authentic)
    {
        authentic = false;
        // Layout: body, then "mac <64 hex>\n". The MAC covers the body, whose first line names the index and filter.
        const int macLine = 4 + 64 + 1;
        if (bytes.Length < macLine || bytes[^1] != '\n') return false;
        var body = bytes.AsSpan(0, bytes.Length - macLine);
        var tail = Encoding.ASCII.GetString(bytes, bytes.Length - macLine, macLine);
        if (!tail.StartsWith("mac ", StringComparison.Ordinal)) return false;
        byte[] mac;
        try { mac = Convert.FromHexString(tail.AsSpan(4, 64)); }
        catch (FormatException) { return false; }
        if (!key.Verify(body, mac)) return false;
        authentic = true;
        var firstEnd = body.IndexOf((byte)'\n');
        if (firstEnd < 0 || Encoding.UTF8.GetString(body[..firstEnd]) != $"{Magic} {indexSha256} {architecture}") return false;
        var rest = body[(firstEnd + 1)..];
        var fields = new string[FieldCount];
        while (rest.Length > 0)
        {
            var end = rest.IndexOf((byte)'\n');
            var line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? [] : rest[(end + 1)..];
            if (line.Length == 0) continue;
            // Decode only the lines of wanted packages: the name is the first field.
            var tab = line.IndexOf((byte)'\t');
            if (tab <= 0) return false;
            if (keepName != null && !keepName(Encoding.UTF8.GetString(line[..tab]))) continue;
            var n = 0;
            while (true)
            {
                var t = line.IndexOf((byte)'\t');
                if (n == FieldCount) return false;
                fields[n++] = t < 0 ? Encoding.UTF8.GetString(line) : t == 0 ? "" : Encoding.UTF8.GetString(line[..t]);
                if (t < 0) break;
                line = line[(t + 1)..];
            }
            if (n != FieldCount || !row(fields)) return false;
        }
        return true;
    }
}
