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
/// Parsed-index cache for proofs: the few fields of every package of one verified Packages index (keyed by the
/// index's SHA-256 from a signed Release, and the architecture filter), so that proving a lock does not re-parse
/// 56 MB of index text on every fetch and build. The entry is derived data, so it is authenticated with
/// <see cref="CacheAuthenticationKey"/> (a secret that is not in the cache): a cache writer cannot forge or edit one.
/// A forged, truncated or foreign entry is reported, deleted and re-derived from the verified index bytes.
/// </summary>
public sealed class IndexProofCache(string rootDirectory, CacheAuthenticationKey key)
{
    private const string Magic = "hardenimage-index-proof v2";

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
        forged = null;
        var path = PathFor(indexSha256, architecture);
        var info = new FileInfo(path);
        if (!info.Exists && info.LinkTarget == null) return null;
        if (!Build.ContentStore.IsRegularFile(path))
        {
            // A FIFO planted under an entry's name would block the read for ever, a symlink read from elsewhere (threat D/T).
            AtomicFile.TryDelete(path);
            forged = $"parsed-index cache entry {path} is not a regular file (planted in the cache): deleted, re-derived from the verified index";
            return null;
        }
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { return null; }
        catch (DirectoryNotFoundException) { return null; }
        var entries = Parse(bytes, indexSha256, architecture, keepName, out var authentic);
        if (entries != null) return entries;
        AtomicFile.TryDelete(path);
        // Authentic but of an older format or another index: ours, just stale — re-derived without a warning.
        if (authentic) return null;
        forged = $"parsed-index cache entry {path} does not authenticate (forged, edited or from another machine's key): deleted, re-derived from the verified index";
        return null;
    }

    public void Write(string indexSha256, string architecture, IEnumerable<ProvenIndexEntry> entries)
    {
        var sb = new StringBuilder();
        sb.Append(Magic).Append(' ').Append(indexSha256).Append(' ').Append(architecture).Append('\n');
        foreach (var e in entries)
            sb.AppendJoin('\t', Clean(e.Name), Clean(e.Version), Clean(e.Architecture), Clean(e.Sha256),
                e.Size.ToString(System.Globalization.CultureInfo.InvariantCulture), Clean(e.Filename),
                Clean(e.Depends), Clean(e.PreDepends), Clean(e.Provides), Clean(e.SourceName), Clean(e.SourceVersion)).Append('\n');
        var body = Encoding.UTF8.GetBytes(sb.ToString());
        var mac = Encoding.ASCII.GetBytes("mac " + Convert.ToHexStringLower(key.Mac(body)) + "\n");
        System.IO.Directory.CreateDirectory(Directory);
        AtomicFile.WriteAllBytes(PathFor(indexSha256, architecture), [.. body, .. mac]);
    }

    // Deb822 values may be folded over lines; tabs and newlines are separators here.
    private static string Clean(string s) => s.Replace('\n', ' ').Replace('\t', ' ').Replace('\r', ' ');

    private IReadOnlyList<ProvenIndexEntry>? Parse(byte[] bytes, string indexSha256, string architecture, Func<string, bool>? keepName, out bool authentic)
    {
        authentic = false;
        // Layout: body, then "mac <64 hex>\n". The MAC covers the body, whose first line names the index and filter.
        const int macLine = 4 + 64 + 1;
        if (bytes.Length < macLine || bytes[^1] != '\n') return null;
        var body = bytes.AsSpan(0, bytes.Length - macLine);
        var tail = Encoding.ASCII.GetString(bytes, bytes.Length - macLine, macLine);
        if (!tail.StartsWith("mac ", StringComparison.Ordinal)) return null;
        byte[] mac;
        try { mac = Convert.FromHexString(tail.AsSpan(4, 64)); }
        catch (FormatException) { return null; }
        if (!key.Verify(body, mac)) return null;
        authentic = true;
        var firstEnd = body.IndexOf((byte)'\n');
        if (firstEnd < 0 || Encoding.UTF8.GetString(body[..firstEnd]) != $"{Magic} {indexSha256} {architecture}") return null;
        var list = new List<ProvenIndexEntry>();
        var rest = body[(firstEnd + 1)..];
        while (rest.Length > 0)
        {
            var end = rest.IndexOf((byte)'\n');
            var line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? [] : rest[(end + 1)..];
            if (line.Length == 0) continue;
            // Decode only the lines of wanted packages: the name is the first field.
            var tab = line.IndexOf((byte)'\t');
            if (tab <= 0) return null;
            if (keepName != null && !keepName(Encoding.UTF8.GetString(line[..tab]))) continue;
            var f = Encoding.UTF8.GetString(line).Split('\t');
            if (f.Length != 11 || !long.TryParse(f[4], System.Globalization.CultureInfo.InvariantCulture, out var size)) return null;
            list.Add(new ProvenIndexEntry(f[0], f[1], f[2], f[3], size, f[5], f[6], f[7], f[8], f[9], f[10]));
        }
        return list;
    }
}
