using System.Text.Json;
using System.Text.Json.Nodes;
using HardenImage.Common;

namespace HardenImage.Scan;

/// <summary>
/// Reads OSV records (ossf/osv-schema) into <see cref="AdvisoryRecord"/>s, one per affected package. Only the
/// ecosystems we can match are kept (Debian:&lt;n&gt; and PyPI); withdrawn records are dropped.
/// </summary>
public static class OsvReader
{
    public static bool IsSupportedEcosystem(string ecosystem) =>
        ecosystem == "PyPI" || ecosystem.StartsWith("Debian:", StringComparison.Ordinal);

    public static bool LooksLikeOsv(JsonElement root) =>
        root.ValueKind == JsonValueKind.Object && root.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String
        && (root.TryGetProperty("affected", out _) || root.TryGetProperty("modified", out _));

    /// <summary>Converts one OSV document; <paramref name="origin"/> names the file for error messages.</summary>
    public static IEnumerable<AdvisoryRecord> Read(JsonElement root, string origin)
    {
        if (!LooksLikeOsv(root)) throw new HardenException($"{origin}: not an OSV record (no 'id'/'affected'). Check the --db path.");
        if (root.TryGetProperty("withdrawn", out var w) && w.ValueKind == JsonValueKind.String) yield break;
        var id = root.GetProperty("id").GetString()!; // LooksLikeOsv checked it is a string
        var aliases = new List<string>();
        if (root.TryGetProperty("aliases", out var al) && al.ValueKind == JsonValueKind.Array)
            foreach (var a in al.EnumerateArray()) if (Text(a) is { } s) aliases.Add(s);
        if (root.TryGetProperty("upstream", out var up) && up.ValueKind == JsonValueKind.Array)
            foreach (var a in up.EnumerateArray()) if (Text(a) is { } s && s.StartsWith("CVE-", StringComparison.Ordinal)) aliases.Add(s);
        string? summary = Str(root, "summary") ?? FirstLine(Str(root, "details"));
        string? topVector = CvssVectorOf(root);
        string? topDbSeverity = root.TryGetProperty("database_specific", out var ds) && ds.ValueKind == JsonValueKind.Object ? Str(ds, "severity") : null;
        if (!root.TryGetProperty("affected", out var affected) || affected.ValueKind != JsonValueKind.Array) yield break;
        foreach (var aff in affected.EnumerateArray())
        {
            if (aff.ValueKind != JsonValueKind.Object) continue; // TryGetProperty throws on anything else
            if (!aff.TryGetProperty("package", out var pkg) || pkg.ValueKind != JsonValueKind.Object) continue;
            var eco = Str(pkg, "ecosystem");
            var name = Str(pkg, "name");
            if (eco is null || name is null || !IsSupportedEcosystem(eco)) continue;
            if (eco == "PyPI") name = Pep440Version.NormalizeName(name);
            var ranges = new List<OsvRange>();
            if (aff.TryGetProperty("ranges", out var rs) && rs.ValueKind == JsonValueKind.Array)
                foreach (var r in rs.EnumerateArray())
                {
                    var type = Str(r, "type");
                    if (type is not ("ECOSYSTEM" or "SEMVER")) continue;
                    var events = new List<OsvEvent>();
                    if (r.TryGetProperty("events", out var evs) && evs.ValueKind == JsonValueKind.Array)
                        foreach (var e in evs.EnumerateArray())
                        {
                            if (Str(e, "introduced") is { } i) events.Add(new(OsvEventKind.Introduced, i));
                            else if (Str(e, "fixed") is { } f) events.Add(new(OsvEventKind.Fixed, f));
                            else if (Str(e, "last_affected") is { } l) events.Add(new(OsvEventKind.LastAffected, l));
                            else if (Str(e, "limit") is { } lim) events.Add(new(OsvEventKind.Limit, lim));
                        }
                    ranges.Add(new OsvRange(type, events));
                }
            var versions = new List<string>();
            if (aff.TryGetProperty("versions", out var vs) && vs.ValueKind == JsonValueKind.Array)
                foreach (var v in vs.EnumerateArray()) if (Text(v) is { } s) versions.Add(s);
            string? dbSeverity = aff.TryGetProperty("database_specific", out var ads) && ads.ValueKind == JsonValueKind.Object
                ? Str(ads, "severity") : null;
            if (aff.TryGetProperty("ecosystem_specific", out var es) && es.ValueKind == JsonValueKind.Object && Str(es, "urgency") is { } urgency)
                dbSeverity ??= urgency;
            yield return new AdvisoryRecord
            {
                Ecosystem = eco,
                Package = name,
                Id = id,
                Aliases = aliases,
                Origin = AdvisoryOrigins.Osv,
                Summary = Truncate(summary),
                Ranges = ranges,
                Versions = versions,
                CvssVector = CvssVectorOf(aff) ?? topVector,
                DatabaseSeverity = dbSeverity ?? topDbSeverity,
            };
        }
    }

    private static string? CvssVectorOf(JsonElement e)
    {
        if (!e.TryGetProperty("severity", out var sev) || sev.ValueKind != JsonValueKind.Array) return null;
        string? best = null;
        foreach (var s in sev.EnumerateArray())
        {
            var type = Str(s, "type");
            var score = Str(s, "score");
            if (type == "CVSS_V3" && score != null) best = score;
        }
        return best;
    }

    /// <summary>OSV YAML (pypa/advisory-database) → the same JSON shape, strings kept as written.</summary>
    /// <remarks>Bounded (docs/limits.md): the walk below expands aliases, so the loader refuses YAML whose expanded
    /// node count, depth or size is over <see cref="InputLimits.AdvisoryYaml"/> before it is walked.</remarks>
    public static JsonElement YamlToJson(string yaml, string origin)
    {
        var root = BoundedYaml.Load(yaml, origin, InputLimits.AdvisoryYaml)
                   ?? throw new HardenException($"{origin}: empty YAML document");
        return JsonSerializer.SerializeToElement(Convert(root, origin));
    }

    private static JsonNode? Convert(YamlDotNet.RepresentationModel.YamlNode n, string origin) => n switch
    {
        YamlDotNet.RepresentationModel.YamlMappingNode m => ToObject(m, origin),
        YamlDotNet.RepresentationModel.YamlSequenceNode s => new JsonArray(s.Children.Select(c => Convert(c, origin)).ToArray()),
        YamlDotNet.RepresentationModel.YamlScalarNode sc => sc.Value is null || (sc.Style == YamlDotNet.Core.ScalarStyle.Plain && sc.Value is "null" or "~") ? null : JsonValue.Create(sc.Value),
        _ => null,
    };

    private static JsonObject ToObject(YamlDotNet.RepresentationModel.YamlMappingNode m, string origin)
    {
        var o = new JsonObject();
        foreach (var (k, v) in m.Children)
        {
            var key = BoundedYaml.KeyText(k, origin);
            // JsonObject.Add throws ArgumentException on a repeated key; YAML keys are unique per mapping, but say so.
            if (!o.TryAdd(key, Convert(v, origin)))
                throw new HardenException($"{origin}:{k.Start.Line}: key '{key}' appears twice in one mapping.");
        }
        return o;
    }

    /// <summary>The element's text when it is a JSON string; null for anything else (GetString would throw).</summary>
    internal static string? Text(JsonElement e) => e.ValueKind == JsonValueKind.String ? e.GetString() : null;

    internal static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    internal static string? FirstLine(string? s)
    {
        if (string.IsNullOrWhiteSpace(s)) return null;
        var t = s.Trim();
        var nl = t.IndexOf('\n');
        return nl > 0 ? t[..nl].Trim() : t;
    }

    // Descriptions feed reports, not decisions; a bound keeps the index small.
    internal static string? Truncate(string? s) => s is null ? null : s.Length <= 400 ? s : s[..400] + "…";
}
