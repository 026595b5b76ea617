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
