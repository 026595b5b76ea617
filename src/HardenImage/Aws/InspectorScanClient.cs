using System.Text.Json.Nodes;
using HardenImage.Common;

namespace HardenImage.Aws;

/// <summary>The report format asked from Inspector ScanSbom.</summary>
public enum InspectorOutputFormat
{
    /// <summary>"CYCLONE_DX_1_5": the SBOM back with vulnerabilities.</summary>
    CycloneDx15,

    /// <summary>"INSPECTOR": Inspector's own finding JSON.</summary>
    Inspector,
}

/// <summary>
/// Amazon Inspector Scan (<c>POST /scan/sbom</c>, SigV4 service "inspector-scan"): sends a CycloneDX SBOM and returns
/// the vulnerabilities Inspector knows for its packages. SBOMs above 5,000 components go in several requests.
/// </summary>
public sealed class InspectorScanClient : IDisposable
{
    public const string SigningService = "inspector-scan";

    /// <summary>ScanSbom's documented per-request limit.</summary>
    public const int MaxComponentsPerRequest = 5000;

    private readonly AwsJsonTransport _transport;

    public InspectorScanClient(AwsContext context) =>
        _transport = new AwsJsonTransport(context, SigningService, "inspector-scan");

    /// <summary>HTTP attempts made so far, retries included.</summary>
    public int Attempts => _transport.Attempts;

    /// <summary>Scans <paramref name="sbom"/> (a CycloneDX JSON document; it is not modified) and merges the findings of every batch.</summary>
    public async Task<IReadOnlyList<InspectorFinding>> ScanSbomAsync(JsonObject sbom,
        InspectorOutputFormat format = InspectorOutputFormat.CycloneDx15, CancellationToken cancellationToken = default)
    {
        var batches = SplitSbom(sbom);
        var merged = new List<InspectorFinding>();
        var seen = new HashSet<InspectorFinding>();
        foreach (var batch in batches)
        {
            var body = new JsonObject
            {
                ["sbom"] = batch,
                ["outputFormat"] = format == InspectorOutputFormat.Inspector ? "INSPECTOR" : "CYCLONE_DX_1_5",
            };
            var answer = await _transport.PostAsync("ScanSbom", "/scan/sbom", null, "application/json", body, cancellationToken)
                .ConfigureAwait(false);
            foreach (var f in InspectorReportParser.Parse(answer))
                if (seen.Add(f)) merged.Add(f);
        }
        return merged;
    }

    /// <summary>
    /// Splits an SBOM into documents of at most <paramref name="maxComponents"/> top-level components each. Every part
    /// keeps the metadata (the image) and the dependency entries of its own components, with edges to components in
    /// other parts dropped, so each part is a valid CycloneDX document on its own. specVersion is set to 1.5 because
    /// ScanSbom accepts only 1.5. One part (a copy) when the SBOM is small enough.
    /// </summary>
    public static IReadOnlyList<JsonObject> SplitSbom(JsonObject sbom, int maxComponents = MaxComponentsPerRequest)
    {
        if (maxComponents < 1) throw new ArgumentOutOfRangeException(nameof(maxComponents));
        if (sbom["bomFormat"]?.GetValue<string>() is not "CycloneDX")
            throw new HardenException("Inspector ScanSbom needs a CycloneDX JSON SBOM (bomFormat \"CycloneDX\"); the SBOM given has none.");

        var components = (sbom["components"] as JsonArray ?? []).ToList();
        var dependencies = (sbom["dependencies"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        var metadataRef = sbom["metadata"]?["component"]?["bom-ref"]?.GetValue<string>();

        var parts = new List<JsonObject>();
        var count = Math.Max(1, (components.Count + maxComponents - 1) / maxComponents);
        for (var i = 0; i < count; i++)
        {
            var slice = components.Skip(i * maxComponents).Take(maxComponents).ToList();
            var refs = new HashSet<string>(StringComparer.Ordinal);
            foreach (var c in slice) CollectRefs(c, refs);
            if (metadataRef != null) refs.Add(metadataRef);

            var part = new JsonObject();
            foreach (var (key, value) in sbom)
            {
                if (key is "components" or "dependencies" or "vulnerabilities") continue;
                part[key] = value?.DeepClone();
            }
            part["specVersion"] = "1.5";
            part["components"] = new JsonArray(slice.Select(c => c?.DeepClone()).ToArray());
            if (dependencies.Count > 0)
            {
                var deps = new JsonArray();
                foreach (var d in dependencies)
                {
                    var reference = d["ref"]?.GetValue<string>();
                    if (reference == null || !refs.Contains(reference)) continue;
                    var edges = (d["dependsOn"] as JsonArray ?? []).Select(x => x?.GetValue<string>()).OfType<string>().ToList();
                    var kept = edges.Where(refs.Contains).Select(x => (JsonNode)x).ToArray();
                    var entry = new JsonObject { ["ref"] = reference };
                    // "dependsOn": [] would claim "no dependencies"; when every edge leads into another part, say nothing.
                    if (kept.Length > 0 || (d["dependsOn"] != null && edges.Count == 0)) entry["dependsOn"] = new JsonArray(kept);
                    deps.Add(entry);
                }
                part["dependencies"] = deps;
            }
            parts.Add(part);
        }
        return parts;
    }

    private static void CollectRefs(JsonNode? component, HashSet<string> refs)
    {
        if (component is not JsonObject o) return;
        if (o["bom-ref"]?.GetValue<string>() is { } r) refs.Add(r);
        foreach (var nested in o["components"] as JsonArray ?? []) CollectRefs(nested, refs);
    }

    public void Dispose() => _transport.Dispose();
}

/// <summary>
/// Amazon Inspector findings for an image already in ECR (<c>POST /findings/list</c>, SigV4 service "inspector2"),
/// filtered by image digest and followed across pages.
/// </summary>
public sealed class Inspector2FindingsClient : IDisposable
{
    public const string SigningService = "inspector2";

    private readonly AwsJsonTransport _transport;

    public Inspector2FindingsClient(AwsContext context) =>
        _transport = new AwsJsonTransport(context, SigningService, "inspector2");

    /// <summary>HTTP attempts made so far, retries included.</summary>
    public int Attempts => _transport.Attempts;

    /// <summary>All package-vulnerability findings for the ECR image with digest <paramref name="imageDigest"/> (sha256:...).</summary>
    /// <param name="pageSize">maxResults per page (Inspector allows 1..100).</param>
    public async Task<IReadOnlyList<InspectorFinding>> ListImageFindingsAsync(string imageDigest, int pageSize = 100,
        CancellationToken cancellationToken = default)
    {
        if (!imageDigest.StartsWith("sha256:", StringComparison.Ordinal) || !Sha256Hex.IsValid(imageDigest[7..]))
            throw new HardenException($"'{imageDigest}' is not an image digest (sha256:<64 hex>).");
        var findings = new List<InspectorFinding>();
        string? next = null;
        var pages = 0;
        do
        {
            var body = new JsonObject
            {
                ["filterCriteria"] = new JsonObject
                {
                    ["ecrImageHash"] = new JsonArray(new JsonObject { ["comparison"] = "EQUALS", ["value"] = imageDigest }),
                },
                ["maxResults"] = Math.Clamp(pageSize, 1, 100),
            };
            if (next != null) body["nextToken"] = next;
            var answer = await _transport.PostAsync("ListFindings", "/findings/list", null, "application/json", body, cancellationToken)
                .ConfigureAwait(false);
            findings.AddRange(ParseFindings(answer));
            var token = answer?["nextToken"]?.GetValue<string>();
            next = string.IsNullOrEmpty(token) ? null : token;
            // A service that keeps handing out tokens must not keep us here forever (Denial of service).
            if (++pages > 10_000) throw new HardenException("Inspector2 ListFindings returned more than 10,000 pages; stopping.");
        } while (next != null);
        return findings;
    }

    internal static IEnumerable<InspectorFinding> ParseFindings(JsonNode? answer)
    {
        foreach (var f in (answer?["findings"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var details = f["packageVulnerabilityDetails"] as JsonObject;
            if (details == null) continue; // network reachability and code findings have no package
            var id = details["vulnerabilityId"]?.GetValue<string>() ?? f["title"]?.GetValue<string>() ?? "";
            var severity = InspectorReportParser.Severity(f["severity"]?.GetValue<string>());
            var score = InspectorReportParser.Number(f["inspectorScore"]);
            if (score == null)
                foreach (var c in (details["cvss"] as JsonArray ?? []).OfType<JsonObject>())
                    if (InspectorReportParser.Number(c["baseScore"]) is { } s && (score == null || s > score)) score = s;
            foreach (var p in (details["vulnerablePackages"] as JsonArray ?? []).OfType<JsonObject>())
            {
                var fix = p["fixedInVersion"]?.GetValue<string>();
                if (fix is "NotAvailable" or "") fix = null;
                yield return new InspectorFinding(id, null, p["name"]?.GetValue<string>() ?? "", p["version"]?.GetValue<string>(),
                    fix, severity, score);
            }
        }
    }

    public void Dispose() => _transport.Dispose();
}
