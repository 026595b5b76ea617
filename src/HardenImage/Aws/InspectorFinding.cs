using System.Globalization;
using System.Text.Json.Nodes;

namespace HardenImage.Aws;

/// <summary>
/// One vulnerability Amazon Inspector reports for one package, in a shape independent of Inspector's formats so the
/// scan stage can merge it with its offline findings.
/// </summary>
/// <param name="Id">Vulnerability id, e.g. CVE-2024-1234.</param>
/// <param name="PackagePurl">purl of the affected package when Inspector gives one (ScanSbom), else null.</param>
/// <param name="PackageName">Package name (from the purl when only that is known).</param>
/// <param name="InstalledVersion">The version found in the image/SBOM.</param>
/// <param name="FixedVersion">First fixed version, null when Inspector knows none.</param>
/// <param name="Severity">Lower-case: critical, high, medium, low, informational, untriaged, none, unknown.</param>
/// <param name="CvssScore">Highest CVSS v3 base score reported (Inspector2: the inspectorScore), null when absent.</param>
/// <param name="Source">Always "amazon-inspector".</param>
/// <param name="FindingStatus">Inspector2's ACTIVE, SUPPRESSED or CLOSED; null from ScanSbom (no such notion there).</param>
public sealed record InspectorFinding(string Id, string? PackagePurl, string PackageName, string? InstalledVersion,
    string? FixedVersion, string Severity, double? CvssScore, string Source = InspectorFinding.SourceName, string? FindingStatus = null)
{
    public const string SourceName = "amazon-inspector";
}

/// <summary>Reads Inspector ScanSbom answers: CycloneDX 1.5 with vulnerabilities, or the "inspector" JSON format.</summary>
public static class InspectorReportParser
{
    private const string FixedVersionProperty = "amazon:inspector:sbom_scanner:fixed_version:";

    /// <summary>Parses a ScanSbom response body (<c>{"sbom": ...}</c>) or the document inside it.</summary>
    public static IReadOnlyList<InspectorFinding> Parse(JsonNode? response)
    {
        var doc = response?["sbom"] as JsonObject ?? response as JsonObject;
        if (doc == null) return [];
        if (doc["inspector"] is JsonObject inspector) return ParseInspectorFormat(inspector);
        if (doc["vulnerabilities"] is JsonArray && doc["bomFormat"] != null) return ParseCycloneDx(doc);
        if (doc["vulnerabilities"] is JsonArray) return ParseInspectorFormat(doc);
        return [];
    }

    private static IReadOnlyList<InspectorFinding> ParseCycloneDx(JsonObject doc)
    {
        var byRef = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (var c in Flatten(doc["components"] as JsonArray))
            if (c["bom-ref"]?.GetValue<string>() is { } r) byRef[r] = c;

        var findings = new List<InspectorFinding>();
        foreach (var v in (doc["vulnerabilities"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var id = v["id"]?.GetValue<string>() ?? "";
            var fixedByRef = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in (v["properties"] as JsonArray ?? []).OfType<JsonObject>())
                if (p["name"]?.GetValue<string>() is { } n && n.StartsWith(FixedVersionProperty, StringComparison.Ordinal))
                    fixedByRef[n[FixedVersionProperty.Length..]] = p["value"]?.GetValue<string>() ?? "";

            var (severity, score) = BestRating(v["ratings"] as JsonArray);
            foreach (var a in (v["affects"] as JsonArray ?? []).OfType<JsonObject>())
            {
                var reference = a["ref"]?.GetValue<string>() ?? "";
                byRef.TryGetValue(reference, out var component);
                var purl = component?["purl"]?.GetValue<string>();
                var name = component?["name"]?.GetValue<string>() ?? NameFromPurl(purl) ?? reference;
                var version = component?["version"]?.GetValue<string>() ?? VersionFromPurl(purl);
                fixedByRef.TryGetValue(reference, out var fix);
                findings.Add(new InspectorFinding(id, purl, name, version, string.IsNullOrEmpty(fix) ? null : fix, severity, score));
            }
        }
        return findings;
    }

    private static IReadOnlyList<InspectorFinding> ParseInspectorFormat(JsonObject inspector)
    {
        var findings = new List<InspectorFinding>();
        foreach (var v in (inspector["vulnerabilities"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var id = v["id"]?.GetValue<string>() ?? "";
            var severity = Severity(v["severity"]?.GetValue<string>());
            double? score = null;
            foreach (var c in (v["properties"]?["cvss"] as JsonArray ?? []).OfType<JsonObject>())
                if (Number(c["cvss3_base_score"]) is { } s && (score == null || s > score)) score = s;
            foreach (var a in (v["affects"] as JsonArray ?? []).OfType<JsonObject>())
            {
                var purl = a["installed_version"]?.GetValue<string>();
                var fix = a["fixed_version"]?.GetValue<string>();
                findings.Add(new InspectorFinding(id, purl, NameFromPurl(purl) ?? purl ?? "", VersionFromPurl(purl),
                    string.IsNullOrEmpty(fix) ? null : fix, severity, score));
            }
        }
        return findings;
    }

    // Prefer a CVSS rating (highest score); EPSS "ratings" are probabilities, not severities.
    private static (string Severity, double? Score) BestRating(JsonArray? ratings)
    {
        string severity = "unknown";
        double? score = null;
        foreach (var r in (ratings ?? []).OfType<JsonObject>())
        {
            var method = r["method"]?.GetValue<string>() ?? "";
            if (!method.StartsWith("CVSS", StringComparison.OrdinalIgnoreCase)) continue;
            var s = Number(r["score"]);
            if (score == null || (s != null && s > score))
            {
                score = s;
                severity = Severity(r["severity"]?.GetValue<string>());
            }
        }
        return (severity, score);
    }

    internal static string Severity(string? s) => string.IsNullOrWhiteSpace(s) ? "unknown" : s.Trim().ToLowerInvariant();

    internal static double? Number(JsonNode? n) => n switch
    {
        JsonValue v when v.TryGetValue<double>(out var d) => d,
        JsonValue v when v.TryGetValue<string>(out var s) && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        _ => null,
    };

    private static IEnumerable<JsonObject> Flatten(JsonArray? components)
    {
        foreach (var c in (components ?? []).OfType<JsonObject>())
        {
            yield return c;
            foreach (var nested in Flatten(c["components"] as JsonArray)) yield return nested;
        }
    }

    /// <summary>"pkg:deb/debian/libssl3@3.0.11-1?arch=amd64" → "libssl3".</summary>
    internal static string? NameFromPurl(string? purl)
    {
        if (purl == null || !purl.StartsWith("pkg:", StringComparison.Ordinal)) return null;
        var core = purl.Split('?', '#')[0];
        var at = core.LastIndexOf('@');
        if (at > 0) core = core[..at];
        var slash = core.LastIndexOf('/');
        return Uri.UnescapeDataString(slash >= 0 ? core[(slash + 1)..] : core[4..]);
    }

    internal static string? VersionFromPurl(string? purl)
    {
        if (purl == null) return null;
        var core = purl.Split('?', '#')[0];
        var at = core.LastIndexOf('@');
        return at > 0 ? Uri.UnescapeDataString(core[(at + 1)..]) : null;
    }
}
