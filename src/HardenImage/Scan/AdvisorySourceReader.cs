using System.IO.Compression;
using System.Text;
using System.Text.Json;
using HardenImage.Common;

namespace HardenImage.Scan;

/// <summary>
/// Reads every advisory store under a path into <see cref="AdvisoryRecord"/>s. A path is a directory (walked
/// recursively), a .zip (OSV export, e.g. all.zip), a .json (OSV record, Debian tracker JSON, vuln-list tracker
/// file), a .jsonl (OSV records, one a line) or a .yaml (OSV YAML as in pypa/advisory-database). The kind of
/// each JSON file is recognised from its shape; files of no known shape (READMEs, manifests) are skipped and counted.
/// </summary>
public sealed class AdvisorySourceReader
{
    private readonly List<AdvisoryRecord> _records = new();
    private readonly HashSet<(string, string, string, string)> _seen = new();
    private readonly VulnListDebianReader _vulnList = new();
    private readonly SortedDictionary<string, int> _counts = new(StringComparer.Ordinal);

    /// <summary>Reads <paramref name="path"/>; returns the records and one line per kind of store read.</summary>
    public static (IReadOnlyList<AdvisoryRecord> Records, IReadOnlyList<string> Sources) ReadAll(string path)
    {
        var reader = new AdvisorySourceReader();
        reader.AddPath(path);
        return reader.Finish();
    }

    public void AddPath(string path)
    {
        if (Directory.Exists(path))
        {
            foreach (var file in Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                         .OrderBy(f => f, StringComparer.Ordinal))
                AddFile(file, Path.GetRelativePath(path, file));
        }
        else if (File.Exists(path)) AddFile(path, Path.GetFileName(path));
        else throw new HardenException($"{path}: advisory data not found. Pass --db PATH|URL (the repository ships vulndb/) or run 'harden db update'.");
    }

    private void AddFile(string file, string display)
    {
        var name = Path.GetFileName(file);
        if (name.StartsWith('.')) return;
        var ext = Path.GetExtension(file).ToLowerInvariant();
        switch (ext)
        {
            case ".zip":
                AddZip(file, display);
                break;
            case ".json" or ".jsonl" or ".yaml" or ".yml":
                AddBytes(BoundedFile.ReadAllBytes(file, InputLimits.MaxAdvisoryFileBytes, "advisory file"), ext, display);
                break;
            default:
                Count("skipped (not advisory data)");
                break;
        }
    }

    // Bounded (docs/limits.md): entry count, and each entry's size on the bytes inflated, not on the size the zip
    // declares (a 3 GB entry stops at the limit, having used at most that much memory).
    private void AddZip(string file, string display)
    {
        ZipArchive zip;
        try { zip = ZipFile.OpenRead(file); }
        catch (InvalidDataException e) { throw new HardenException($"{display}: not a readable zip archive ({e.Message}). Replace it or run 'harden db update'."); }
        using (zip)
        {
            IReadOnlyCollection<ZipArchiveEntry> entries;
            try { entries = zip.Entries; }
            catch (InvalidDataException e) { throw new HardenException($"{display}: corrupt zip directory ({e.Message}). Replace it or run 'harden db update'."); }
            if (entries.Count > InputLimits.MaxAdvisoryZipEntries)
                throw new HardenException($"{display}: {entries.Count} zip entries, more than the limit of {InputLimits.MaxAdvisoryZipEntries} (docs/limits.md).");
            foreach (var entry in entries.OrderBy(e => e.FullName, StringComparer.Ordinal))
            {
                if (entry.Length == 0) continue;
                var where = $"{display}!{entry.FullName}";
                if (entry.Length > InputLimits.MaxAdvisoryFileBytes) throw BoundedFile.TooLarge(where, "zip entry", InputLimits.MaxAdvisoryFileBytes);
                AddBytes(ReadEntry(entry, where), Path.GetExtension(entry.Name).ToLowerInvariant(), where);
            }
        }
    }

    private static byte[] ReadEntry(ZipArchiveEntry entry, string where)
    {
        try
        {
            using var s = entry.Open();
            using var ms = new MemoryStream();
            var chunk = new byte[1 << 16];
            while (true)
            {
                var n = s.Read(chunk, 0, chunk.Length);
                if (n == 0) break;
                ms.Write(chunk, 0, n);
                if (ms.Length > InputLimits.MaxAdvisoryFileBytes) throw BoundedFile.TooLarge(where, "zip entry", InputLimits.MaxAdvisoryFileBytes);
            }
            return ms.ToArray();
        }
        catch (InvalidDataException e) { throw new HardenException($"{where}: corrupt zip entry ({e.Message}). Replace the archive or run 'harden db update'."); }
    }

    private void AddBytes(byte[] bytes, string ext, string display)
    {
        switch (ext)
        {
            case ".json":
                using (var doc = BoundedJson.Parse(bytes, display, "advisory file", InputLimits.MaxAdvisoryFileBytes, allowTrailingCommas: true))
                    AddJson(doc.RootElement, display);
                break;
            case ".jsonl":
                int lineNo = 0;
                foreach (var line in Encoding.UTF8.GetString(bytes).Split('\n'))
                {
                    lineNo++;
                    if (string.IsNullOrWhiteSpace(line)) continue;
                    using var doc = BoundedJson.Parse(Encoding.UTF8.GetBytes(line), $"{display}:{lineNo}", "advisory record", InputLimits.MaxAdvisoryFileBytes);
                    AddJson(doc.RootElement, $"{display}:{lineNo}");
                }
                break;
            case ".yaml" or ".yml":
                var root = OsvReader.YamlToJson(Encoding.UTF8.GetString(bytes), display);
                if (OsvReader.LooksLikeOsv(root)) AddRecords(OsvReader.Read(root, display), "OSV YAML records");
                else Count("skipped (not advisory data)");
                break;
        }
    }

    private void AddJson(JsonElement root, string display)
    {
        if (OsvReader.LooksLikeOsv(root)) AddRecords(OsvReader.Read(root, display), "OSV records");
        else if (VulnListDebianReader.LooksLikeVulnList(root))
        {
            _vulnList.Add(root, display);
            Count("Debian tracker entries (vuln-list format)");
        }
        else if (DebianTrackerReader.LooksLikeTracker(root)) AddRecords(DebianTrackerReader.Read(root, display), "Debian tracker JSON files");
        else Count("skipped (not advisory data)");
    }

    private void AddRecords(IEnumerable<AdvisoryRecord> records, string kind)
    {
        foreach (var r in records)
            // The same record may arrive twice (e.g. OSV YAML and its JSON copy): keep the first.
            if (_seen.Add((r.Ecosystem, r.Package, r.Id, r.Origin))) _records.Add(r);
        Count(kind);
    }

    private void Count(string kind) => _counts[kind] = _counts.GetValueOrDefault(kind) + 1;

    public (IReadOnlyList<AdvisoryRecord> Records, IReadOnlyList<string> Sources) Finish()
    {
        foreach (var r in _vulnList.Records())
            if (_seen.Add((r.Ecosystem, r.Package, r.Id, r.Origin))) _records.Add(r);
        return (_records, _counts.Select(kv => $"{kv.Value} {kv.Key}").ToList());
    }
}
