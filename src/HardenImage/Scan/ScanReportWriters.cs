using System.Text.Json;
using HardenImage.Sbom;

namespace HardenImage.Scan;

/// <summary>JSON writer options shared by the scan outputs: indented, UTF-8 as is.</summary>
internal static class ScanJson
{
    public static Utf8JsonWriter Writer(Stream s) => new(s, new JsonWriterOptions
    {
        Indented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    public static string Name(FindingStatus s) => s switch
    {
        FindingStatus.Fixed => "fixed",
        FindingStatus.Unfixed => "unfixed",
        FindingStatus.Negligible => "negligible",
        _ => "not-affected",
    };

    public static string Name(Severity s) => s.ToString().ToLowerInvariant();

    public static string Time(DateTimeOffset t) => CycloneDxWriter.Timestamp(t);

    public static IEnumerable<Finding> Shown(ScanResult r, bool includeNegligible) =>
        r.Findings.Where(f => includeNegligible || f.Status != FindingStatus.Negligible || f.Allowlisted != null);
}

/// <summary>
/// Our findings format, <c>artifacts/scan/&lt;image&gt;.&lt;arch&gt;.json</c> (schema "hardenimage.scan/v1",
/// documented in docs/scan.md).
/// </summary>
public static class ScanReportWriter
{
    public const string Schema = "hardenimage.scan/v1";

    public static byte[] Write(ScanResult r, bool includeNegligible)
    {
        using var ms = new MemoryStream();
        using (var w = ScanJson.Writer(ms))
        {
            var shown = ScanJson.Shown(r, includeNegligible).ToList();
            w.WriteStartObject();
            w.WriteString("schema", Schema);
            w.WriteString("scannedAt", ScanJson.Time(r.ScannedAt));
            w.WriteStartObject("image");
            w.WriteString("name", r.Image.ImageName);
            w.WriteString("architecture", r.Image.Architecture);
            w.WriteString("digest", r.Image.Digest);
            w.WriteString("distro", r.Image.Distro);
            w.WriteString("osRelease", r.Image.OsRelease);
            w.WriteNumber("debianPackages", r.Image.Packages.Count);
            w.WriteNumber("pythonDistributions", r.Image.PythonDistributions.Count);
            w.WriteEndObject();
            w.WriteStartObject("advisoryData");
            w.WriteBoolean("scanned", r.Data.Scanned);
            if (r.Data.Digest != null) w.WriteString("digest", r.Data.Digest);
            if (r.Data.Location != null) w.WriteString("location", r.Data.Location);
            if (r.Data.UnscannedReason != null) w.WriteString("unscannedReason", r.Data.UnscannedReason);
            w.WriteStartArray("sources");
            foreach (var s in r.Data.Sources) w.WriteStringValue(s);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteStartObject("summary");
            foreach (var sev in Enum.GetValues<Severity>().OrderByDescending(s => s))
                w.WriteNumber(ScanJson.Name(sev), shown.Count(f => f.Severity == sev));
            w.WriteNumber("fixable", shown.Count(f => f.Status == FindingStatus.Fixed));
            w.WriteNumber("allowlisted", shown.Count(f => f.Allowlisted != null));
            w.WriteNumber("negligibleHidden", r.Findings.Count - shown.Count);
            w.WriteNumber("unscanned", r.Unscanned.Count);
            w.WriteEndObject();
            if (r.Policy is { } p)
            {
                w.WriteStartObject("policy");
                w.WriteString("source", p.PolicySource);
                w.WriteBoolean("passed", p.Passed);
                w.WriteStartArray("violations");
                foreach (var v in p.Violations) w.WriteStringValue(v);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteStartArray("warnings");
            foreach (var warn in r.Warnings) w.WriteStringValue(warn);
            w.WriteEndArray();
            // Components no advisory source could judge: named, so "0 findings" is never read as "clean" for them.
            w.WriteBoolean("unscannedAllowed", r.UnscannedAllowed);
            w.WriteStartArray("unscanned");
            foreach (var u in r.Unscanned)
            {
                w.WriteStartObject();
                w.WriteString("package", u.Package);
                w.WriteString("packageType", u.PackageType);
                w.WriteString("purl", u.Purl);
                w.WriteString("version", u.Version);
                w.WriteString("reason", u.Reason);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("findings");
            foreach (var f in shown) WriteFinding(w, f);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        ms.WriteByte((byte)'\n');
        return ms.ToArray();
    }

    /// <summary>A finding as every report of ours spells it (the scan report and the ECR/Inspector report alike).</summary>
    internal static void WriteFinding(Utf8JsonWriter w, Finding f)
    {
        w.WriteStartObject();
        w.WriteString("id", f.Id);
        w.WriteStartArray("aliases");
        foreach (var alias in f.Aliases) w.WriteStringValue(alias);
        w.WriteEndArray();
        w.WriteString("package", f.Package);
        w.WriteString("packageType", f.PackageType);
        w.WriteString("purl", f.Purl);
        w.WriteString("installedVersion", f.InstalledVersion);
        if (f.SourcePackage != null) w.WriteString("sourcePackage", f.SourcePackage);
        if (f.SourceVersion != null) w.WriteString("sourceVersion", f.SourceVersion);
        if (f.FixedVersion != null) w.WriteString("fixedVersion", f.FixedVersion); else w.WriteNull("fixedVersion");
        w.WriteString("status", ScanJson.Name(f.Status));
        w.WriteString("severity", ScanJson.Name(f.Severity));
        w.WriteString("severitySource", f.SeveritySource);
        if (f.CvssScore is { } score) w.WriteNumber("cvssScore", score);
        if (f.CvssVector != null) w.WriteString("cvssVector", f.CvssVector);
        if (f.SourceSeverity != null) w.WriteString("sourceSeverity", f.SourceSeverity);
        w.WriteStartArray("sources");
        foreach (var s in f.Sources) w.WriteStringValue(s);
        w.WriteEndArray();
        if (f.Summary != null) w.WriteString("summary", f.Summary);
        if (f.Note != null) w.WriteString("note", f.Note);
        if (f.Allowlisted is { } a)
        {
            w.WriteStartObject("allowlisted");
            w.WriteString("justification", a.Justification);
            w.WriteString("expires", a.Expires.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
            if (a.VexJustification != null) w.WriteString("vexJustification", a.VexJustification);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }
}

/// <summary>
/// CycloneDX 1.6 VEX: the image as metadata.component, the affected components, and one vulnerability per
/// finding with <c>analysis</c> (state, justification, response, detail). Allowlisted findings carry their
/// justification, so the accepted risk travels with the image (threat: Repudiation).
/// </summary>
public static class CycloneDxVexWriter
{
    public static byte[] Write(ScanResult r, bool includeNegligible)
    {
        var shown = ScanJson.Shown(r, includeNegligible).ToList();
        using var ms = new MemoryStream();
        using (var w = ScanJson.Writer(ms))
        {
            w.WriteStartObject();
            CycloneDxWriter.WriteHeader(w, r.Image, CycloneDxWriter.SerialNumberFor(r.Image.Digest + "|" + r.Data.Digest, "hardenimage:vex:"), r.ScannedAt);
            w.WriteStartArray("components");
            foreach (var purl in shown.Select(f => f.Purl).Distinct().OrderBy(p => p, StringComparer.Ordinal))
            {
                var f = shown.First(x => x.Purl == purl);
                w.WriteStartObject();
                w.WriteString("type", "library");
                w.WriteString("bom-ref", purl);
                w.WriteString("name", f.Package);
                w.WriteString("version", f.InstalledVersion);
                w.WriteString("purl", purl);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("vulnerabilities");
            foreach (var f in shown.OrderBy(f => f.Id, StringComparer.Ordinal).ThenBy(f => f.Purl, StringComparer.Ordinal))
            {
                w.WriteStartObject();
                w.WriteString("bom-ref", $"{f.Id}@{f.Purl}");
                w.WriteString("id", f.Id);
                w.WriteStartObject("source");
                var (name, url) = SourceOf(f);
                w.WriteString("name", name);
                w.WriteString("url", url);
                w.WriteEndObject();
                if (f.Aliases.Count > 0)
                {
                    w.WriteStartArray("references");
                    foreach (var a in f.Aliases)
                    {
                        w.WriteStartObject();
                        w.WriteString("id", a);
                        w.WriteStartObject("source");
                        w.WriteString("name", a.StartsWith("CVE-", StringComparison.Ordinal) ? "NVD" : "OSV");
                        w.WriteString("url", a.StartsWith("CVE-", StringComparison.Ordinal) ? $"https://nvd.nist.gov/vuln/detail/{a}" : $"https://osv.dev/vulnerability/{a}");
                        w.WriteEndObject();
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                }
                w.WriteStartArray("ratings");
                w.WriteStartObject();
                if (f.CvssScore is { } score) w.WriteNumber("score", score);
                w.WriteString("severity", f.Severity switch
                {
                    Severity.Negligible => "info",
                    Severity.Unknown => "unknown",
                    _ => ScanJson.Name(f.Severity),
                });
                w.WriteString("method", f.CvssVector != null ? (f.CvssVector.StartsWith("CVSS:3.1", StringComparison.Ordinal) ? "CVSSv31" : "CVSSv3") : "other");
                if (f.CvssVector != null) w.WriteString("vector", f.CvssVector);
                w.WriteEndObject();
                w.WriteEndArray();
                if (f.Summary != null) w.WriteString("description", f.Summary);
                if (f.FixedVersion != null) w.WriteString("recommendation", $"Upgrade {f.Package} to {f.FixedVersion} or later.");
                WriteAnalysis(w, f);
                w.WriteStartArray("affects");
                w.WriteStartObject();
                w.WriteString("ref", f.Purl);
                w.WriteStartArray("versions");
                w.WriteStartObject();
                w.WriteString("version", f.InstalledVersion);
                w.WriteString("status", f.Allowlisted?.VexJustification != null ? "unaffected" : "affected");
                w.WriteEndObject();
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndArray();
                CycloneDxWriter.WriteProperties(w, [("hardenimage:status", ScanJson.Name(f.Status)), ("hardenimage:severitySource", f.SeveritySource)]);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        ms.WriteByte((byte)'\n');
        return ms.ToArray();
    }

    private static (string Name, string Url) SourceOf(Finding f) =>
        f.Sources.Any(s => s.StartsWith(AdvisoryOrigins.DebianTracker, StringComparison.Ordinal)) && f.Id.StartsWith("CVE-", StringComparison.Ordinal)
            ? ("Debian Security Tracker", $"https://security-tracker.debian.org/tracker/{f.Id}")
            : ("OSV", $"https://osv.dev/vulnerability/{f.Id}");

    public static string CycloneDxJustification(string openVex) => openVex switch
    {
        "component_not_present" or "vulnerable_code_not_present" => "code_not_present",
        "vulnerable_code_not_in_execute_path" => "code_not_reachable",
        "vulnerable_code_cannot_be_controlled_by_adversary" => "requires_environment",
        _ => "protected_by_mitigating_control",
    };

    private static void WriteAnalysis(Utf8JsonWriter w, Finding f)
    {
        w.WriteStartObject("analysis");
        string state; string? justification = null; string[] response; string detail;
        if (f.Allowlisted is { } a)
        {
            var until = $"(accepted until {a.Expires:yyyy-MM-dd})";
            if (a.VexJustification != null)
            {
                state = "not_affected"; justification = CycloneDxJustification(a.VexJustification); response = [];
            }
            else { state = "exploitable"; response = ["will_not_fix"]; }
            detail = $"{a.Justification} {until}";
        }
        else
        {
            state = "in_triage";
            (response, detail) = f.Status switch
            {
                FindingStatus.Fixed => (["update"], $"Fixed in {f.FixedVersion}."),
                FindingStatus.Negligible => (new[] { "will_not_fix" }, $"Debian does not plan a fix in this release{(f.Note != null ? ": " + f.Note : ".")}"),
                _ => (new[] { "can_not_fix" }, "No fixed version is available yet."),
            };
        }
        w.WriteString("state", state);
        if (justification != null) w.WriteString("justification", justification);
        if (response.Length > 0)
        {
            w.WriteStartArray("response");
            foreach (var x in response) w.WriteStringValue(x);
            w.WriteEndArray();
        }
        w.WriteString("detail", detail);
        w.WriteEndObject();
    }
}

/// <summary>
/// OpenVEX 0.2.0 document: one statement per finding, the image as product and the package as subcomponent.
/// Allowlisted findings with a VEX justification are "not_affected"; every other finding is "affected" with an
/// action statement (upgrade, or the accepted-risk justification).
/// </summary>
public static class OpenVexWriter
{
    public static byte[] Write(ScanResult r, bool includeNegligible)
    {
        var shown = ScanJson.Shown(r, includeNegligible).ToList();
        var imagePurl = CycloneDxWriter.ImageRef(r.Image);
        using var ms = new MemoryStream();
        using (var w = ScanJson.Writer(ms))
        {
            w.WriteStartObject();
            w.WriteString("@context", "https://openvex.dev/ns/v0.2.0");
            w.WriteString("@id", CycloneDxWriter.SerialNumberFor(r.Image.Digest + "|" + r.Data.Digest, "hardenimage:openvex:"));
            w.WriteString("author", "HardenImage");
            w.WriteString("role", "Image builder");
            w.WriteString("timestamp", ScanJson.Time(r.ScannedAt));
            w.WriteNumber("version", 1);
            w.WriteString("tooling", $"{CycloneDxWriter.ToolName} {CycloneDxWriter.ToolVersion}");
            w.WriteStartArray("statements");
            if (shown.Count == 0)
            {
                // The schema wants at least one statement; an empty scan says nothing is under investigation.
                w.WriteStartObject();
                w.WriteStartObject("vulnerability");
                w.WriteString("name", "NONE");
                w.WriteString("description", "No known vulnerabilities matched this image.");
                w.WriteEndObject();
                WriteProducts(w, imagePurl, null);
                w.WriteString("status", "not_affected");
                w.WriteString("justification", "vulnerable_code_not_present");
                w.WriteEndObject();
            }
            foreach (var f in shown.OrderBy(f => f.Id, StringComparer.Ordinal).ThenBy(f => f.Purl, StringComparer.Ordinal))
            {
                w.WriteStartObject();
                w.WriteStartObject("vulnerability");
                w.WriteString("name", f.Id);
                if (f.Summary != null) w.WriteString("description", f.Summary);
                if (f.Aliases.Count > 0)
                {
                    w.WriteStartArray("aliases");
                    foreach (var alias in f.Aliases) w.WriteStringValue(alias);
                    w.WriteEndArray();
                }
                w.WriteEndObject();
                WriteProducts(w, imagePurl, f.Purl);
                if (f.Allowlisted is { VexJustification: { } j } a)
                {
                    w.WriteString("status", "not_affected");
                    w.WriteString("justification", j);
                    w.WriteString("impact_statement", $"{a.Justification} (accepted until {a.Expires:yyyy-MM-dd})");
                }
                else
                {
                    w.WriteString("status", "affected");
                    w.WriteString("action_statement", f.Allowlisted is { } acc
                        ? $"Risk accepted until {acc.Expires:yyyy-MM-dd}: {acc.Justification}"
                        : f.Status switch
                        {
                            FindingStatus.Fixed => $"Upgrade {f.Package} to {f.FixedVersion} or later.",
                            FindingStatus.Negligible => $"Debian does not plan a fix in this release{(f.Note != null ? ": " + f.Note : ".")}",
                            _ => "No fixed version is available yet; track the advisory.",
                        });
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        ms.WriteByte((byte)'\n');
        return ms.ToArray();
    }

    private static void WriteProducts(Utf8JsonWriter w, string imagePurl, string? componentPurl)
    {
        w.WriteStartArray("products");
        w.WriteStartObject();
        w.WriteString("@id", imagePurl);
        w.WriteStartObject("identifiers");
        w.WriteString("purl", imagePurl);
        w.WriteEndObject();
        if (componentPurl != null)
        {
            w.WriteStartArray("subcomponents");
            w.WriteStartObject();
            w.WriteString("@id", componentPurl);
            w.WriteStartObject("identifiers");
            w.WriteString("purl", componentPurl);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndArray();
        }
        w.WriteEndObject();
        w.WriteEndArray();
    }
}
