using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using HardenImage.Common;

namespace HardenImage.Signing;

/// <summary>A resolved build input for provenance: where it came from and its sha256 (e.g. a .deb from the lock).</summary>
public sealed record ResolvedDependency(string Uri, string Sha256, string? Name = null);

/// <summary>Inputs of a SLSA provenance v1 predicate (slsa.dev/spec/v1.0/provenance).</summary>
public sealed record SlsaProvenanceInput
{
    public required string BuildType { get; init; }
    public required string BuilderId { get; init; }
    public required JsonObject ExternalParameters { get; init; }
    public JsonObject? InternalParameters { get; init; }
    public IReadOnlyList<ResolvedDependency> ResolvedDependencies { get; init; } = [];
    public string? InvocationId { get; init; }
    public DateTimeOffset? StartedOn { get; init; }
    public DateTimeOffset? FinishedOn { get; init; }
}

/// <summary>Inputs of cosign's vulnerability scan predicate (cosign specs/COSIGN_VULN_ATTESTATION_SPEC.md).</summary>
public sealed record VulnScanInput
{
    public required string ScannerUri { get; init; }
    public required string ScannerVersion { get; init; }
    public string DbUri { get; init; } = "";
    public string DbVersion { get; init; } = "";
    /// <summary>The scanner's own result document (ours: the scan report JSON).</summary>
    public required JsonNode Result { get; init; }
    public JsonNode? InvocationParameters { get; init; }
    public string InvocationUri { get; init; } = "";
    public string EventId { get; init; } = "";
    public string BuilderId { get; init; } = "";
    public required DateTimeOffset ScanStartedOn { get; init; }
    public required DateTimeOffset ScanFinishedOn { get; init; }
}

/// <summary>One platform manifest of an image index with a document about it (its SBOM or its scan report).</summary>
public sealed record PlatformDocument(string Platform, Oci.Digest Manifest, JsonNode Document);

/// <summary>Builds the predicates HardenImage attests: CycloneDX SBOM, SLSA provenance v1, cosign vuln.</summary>
public static class Predicates
{
    /// <summary>The CycloneDX predicate is the SBOM document itself.</summary>
    public static JsonNode CycloneDx(ReadOnlySpan<byte> sbomJson)
    {
        try
        {
            var node = JsonNode.Parse(sbomJson.ToArray());
            // TryGetValue: a bomFormat that is a number or object is "not CycloneDX", not an InvalidOperationException.
            if (node is not JsonObject obj || obj["bomFormat"] is not JsonValue format || !format.TryGetValue<string>(out var f) || f != "CycloneDX")
                throw new HardenException("the SBOM is not a CycloneDX JSON document (bomFormat != CycloneDX). Run 'harden sbom' first.");
            return obj;
        }
        catch (JsonException e)
        {
            throw new HardenException($"the SBOM is not valid JSON: {e.Message}", inner: e);
        }
    }

    public static JsonNode SlsaProvenance(SlsaProvenanceInput input)
    {
        var deps = new JsonArray();
        foreach (var d in input.ResolvedDependencies.OrderBy(d => d.Uri, StringComparer.Ordinal))
        {
            var rd = new JsonObject { ["uri"] = d.Uri, ["digest"] = new JsonObject { ["sha256"] = d.Sha256 } };
            if (d.Name != null) rd["name"] = d.Name;
            deps.Add(rd);
        }
        var buildDefinition = new JsonObject
        {
            ["buildType"] = input.BuildType,
            ["externalParameters"] = input.ExternalParameters.DeepClone(),
        };
        if (input.InternalParameters != null) buildDefinition["internalParameters"] = input.InternalParameters.DeepClone();
        buildDefinition["resolvedDependencies"] = deps;

        var metadata = new JsonObject();
        if (input.InvocationId != null) metadata["invocationId"] = input.InvocationId;
        if (input.StartedOn is { } s) metadata["startedOn"] = Rfc3339(s);
        if (input.FinishedOn is { } f) metadata["finishedOn"] = Rfc3339(f);
        var runDetails = new JsonObject { ["builder"] = new JsonObject { ["id"] = input.BuilderId } };
        if (metadata.Count > 0) runDetails["metadata"] = metadata;

        return new JsonObject { ["buildDefinition"] = buildDefinition, ["runDetails"] = runDetails };
    }

    public static JsonNode Vuln(VulnScanInput input) => new JsonObject
    {
        ["invocation"] = new JsonObject
        {
            ["parameters"] = input.InvocationParameters?.DeepClone(),
            ["uri"] = input.InvocationUri,
            ["event_id"] = input.EventId,
            ["builder.id"] = input.BuilderId,
        },
        ["scanner"] = new JsonObject
        {
            ["uri"] = input.ScannerUri,
            ["version"] = input.ScannerVersion,
            ["db"] = new JsonObject { ["uri"] = input.DbUri, ["version"] = input.DbVersion },
            ["result"] = input.Result.DeepClone(),
        },
        ["metadata"] = new JsonObject
        {
            ["scanStartedOn"] = Rfc3339(input.ScanStartedOn),
            ["scanFinishedOn"] = Rfc3339(input.ScanFinishedOn),
        },
    };

    /// <summary>
    /// The SBOM of an image index, for the statement whose subject is the index digest (the digest a Deployment pins,
    /// and the only one cosign, Kyverno and policy-controller read attestations for). One CycloneDX document, so every
    /// verifier sees exactly one SBOM statement: <c>metadata.component</c> is the index; each platform's image is a
    /// <c>container</c> component (its own metadata.component) holding that platform's components. bom-refs are
    /// prefixed with the platform (<c>amd64#…</c>) because arch-independent packages appear in every platform
    /// and bom-refs must be unique in a BOM.
    /// </summary>
    public static JsonNode IndexCycloneDx(string imageName, Oci.Digest index, IReadOnlyList<PlatformDocument> platforms)
    {
        if (platforms.Count == 0) throw new HardenException($"{imageName}: an index SBOM needs at least one platform SBOM");
        var indexRef = $"pkg:oci/{imageName}@{Uri.EscapeDataString(index.ToString())}";
        var components = new JsonArray();
        var dependencies = new JsonArray();
        var platformRefs = new JsonArray();
        DateTimeOffset? newest = null;
        foreach (var p in platforms.OrderBy(p => p.Platform, StringComparer.Ordinal))
        {
            var sbom = CycloneDx(System.Text.Encoding.UTF8.GetBytes(p.Document.ToJsonString())).AsObject();
            string Prefixed(string? reference) => $"{p.Platform}#{reference}";
            var image = sbom["metadata"]?["component"]?.DeepClone() as JsonObject
                        ?? new JsonObject { ["type"] = "container", ["name"] = imageName, ["version"] = p.Manifest.ToString() };
            var imageRef = (string?)image["bom-ref"] ?? $"pkg:oci/{imageName}@{Uri.EscapeDataString(p.Manifest.ToString())}";
            image["bom-ref"] = Prefixed(imageRef);
            var nested = (sbom["components"]?.DeepClone() as JsonArray) ?? [];
            PrefixRefs(nested, Prefixed);
            image["components"] = nested;
            components.Add(image);
            platformRefs.Add(Prefixed(imageRef));
            foreach (var d in sbom["dependencies"] as JsonArray ?? [])
            {
                if (d is not JsonObject dep) continue;
                var copy = new JsonObject { ["ref"] = Prefixed((string?)dep["ref"]) };
                if (dep["dependsOn"] is JsonArray on) copy["dependsOn"] = new JsonArray(on.Select(x => (JsonNode?)Prefixed((string?)x)).ToArray());
                dependencies.Add(copy);
            }
            if ((string?)sbom["metadata"]?["timestamp"] is { } ts && DateTimeOffset.TryParse(ts, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)
                && (newest == null || t > newest)) newest = t;
        }
        dependencies.Insert(0, new JsonObject { ["ref"] = indexRef, ["dependsOn"] = platformRefs });
        var metadata = new JsonObject();
        if (newest is { } n) metadata["timestamp"] = Rfc3339(n);
        metadata["component"] = new JsonObject
        {
            ["type"] = "container",
            ["bom-ref"] = indexRef,
            ["name"] = imageName,
            ["version"] = index.ToString(),
            ["purl"] = indexRef,
            ["properties"] = new JsonArray(new JsonObject
            {
                ["name"] = "hardenimage:platforms",
                ["value"] = string.Join(",", platforms.Select(p => p.Platform).Order(StringComparer.Ordinal)),
            }),
        };
        return new JsonObject
        {
            ["bomFormat"] = "CycloneDX",
            ["specVersion"] = "1.6",
            // Deterministic: the same index and platform SBOMs give the same statement (so re-signing is a no-op).
            ["serialNumber"] = Sbom.CycloneDxWriter.SerialNumberFor(index + string.Concat(platforms.Select(p => p.Manifest.ToString()).Order(StringComparer.Ordinal)), "hardenimage:index-sbom:"),
            ["version"] = 1,
            ["metadata"] = metadata,
            ["components"] = components,
            ["dependencies"] = dependencies,
        };
    }

    /// <summary>
    /// The scan report of an image index, as <c>scanner.result</c> of the vuln statement whose subject is the index:
    /// <c>findings</c> is the union of every platform's findings, each with its <c>platform</c>, so the admission
    /// query <c>scanner.result.findings[?severity == 'critical' &amp;&amp; !allowlisted]</c> sees a critical finding of any
    /// platform the index may run on; <c>platforms</c> keeps each report's image, summary and policy verdict.
    /// </summary>
    public static JsonNode IndexScanReport(string imageName, Oci.Digest index, IReadOnlyList<PlatformDocument> platforms)
    {
        var findings = new JsonArray();
        var summaries = new JsonArray();
        string? newest = null;
        foreach (var p in platforms.OrderBy(p => p.Platform, StringComparer.Ordinal))
        {
            foreach (var f in p.Document["findings"] as JsonArray ?? [])
            {
                if (f?.DeepClone() is not JsonObject finding) continue;
                finding["platform"] = p.Platform;
                findings.Add(finding);
            }
            var entry = new JsonObject { ["platform"] = p.Platform, ["manifest"] = p.Manifest.ToString() };
            foreach (var field in new[] { "scannedAt", "image", "advisoryData", "summary", "policy" })
                if (p.Document[field] is { } v) entry[field] = v.DeepClone();
            summaries.Add(entry);
            if ((string?)p.Document["scannedAt"] is { } at && (newest == null || string.CompareOrdinal(at, newest) > 0)) newest = at;
        }
        var result = new JsonObject
        {
            ["schema"] = "hardenimage.scan.index/v1",
            ["image"] = new JsonObject { ["name"] = imageName, ["digest"] = index.ToString() },
        };
        if (newest != null) result["scannedAt"] = newest;
        result["platforms"] = summaries;
        result["findings"] = findings;
        return result;
    }

    private static void PrefixRefs(JsonArray components, Func<string?, string> prefixed)
    {
        foreach (var c in components)
        {
            if (c is not JsonObject o) continue;
            if (o["bom-ref"] is JsonValue r && r.TryGetValue<string>(out var reference)) o["bom-ref"] = prefixed(reference);
            if (o["components"] is JsonArray nested) PrefixRefs(nested, prefixed);
        }
    }

    /// <summary>
    /// Critical findings in a vuln predicate's <c>scanner.result</c>, whatever the scanner's shape: every object with a
    /// <c>severity</c> (any case) of "critical", skipping findings a VEX analysis marked not_affected, false_positive
    /// or resolved. Returns the ids of the findings (nearest enclosing "id"/"VulnerabilityID").
    /// </summary>
    public static IReadOnlyList<string> CriticalFindings(JsonNode? vulnPredicate)
    {
        var found = new SortedSet<string>(StringComparer.Ordinal);
        Walk(vulnPredicate?["scanner"]?["result"], null, found);
        return found.ToList();
    }

    private static void Walk(JsonNode? node, string? currentId, SortedSet<string> found)
    {
        switch (node)
        {
            case JsonArray arr:
                foreach (var item in arr) Walk(item, currentId, found);
                break;
            case JsonObject obj:
                var state = (obj["analysis"] as JsonObject)?["state"] is JsonValue v && v.TryGetValue<string>(out var st) ? st : null;
                if (state is "not_affected" or "false_positive" or "resolved" or "resolved_with_pedigree") return;
                foreach (var key in new[] { "id", "ID", "VulnerabilityID", "vulnerabilityId", "cve" })
                    if (obj[key] is JsonValue idv && idv.TryGetValue<string>(out var id)) { currentId = id; break; }
                foreach (var (name, value) in obj)
                {
                    if (name.Equals("severity", StringComparison.OrdinalIgnoreCase) && value is JsonValue sv
                        && sv.TryGetValue<string>(out var sev) && sev.Equals("critical", StringComparison.OrdinalIgnoreCase))
                        found.Add(currentId ?? "(unnamed finding)");
                    else Walk(value, currentId, found);
                }
                break;
        }
    }

    private static string Rfc3339(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
