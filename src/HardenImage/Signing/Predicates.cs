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
