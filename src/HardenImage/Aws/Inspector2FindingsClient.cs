using System.Text.Json.Nodes;
using HardenImage.Common;

namespace HardenImage.Aws;

/// <summary>
/// Amazon Inspector findings for an image already in ECR (<c>POST /findings/list</c>, SigV4 service "inspector2"),
/// filtered by image digest and followed across pages.
/// </summary>
public sealed class Inspector2FindingsClient : IDisposable
{
    public const string SigningService = "inspector2";

    private readonly AwsJsonTransport _transport;

    public Inspector2FindingsClient(AwsContext context)
    {
        Context = context;
        _transport = new AwsJsonTransport(context, SigningService, "inspector2");
    }

    /// <summary>The AWS settings this client uses (the ECR scan-status check shares them).</summary>
    public AwsContext Context { get; }

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
                    // Open risk and what someone suppressed (reported as such); CLOSED findings are fixed or gone.
                    ["findingStatus"] = new JsonArray(
                        new JsonObject { ["comparison"] = "EQUALS", ["value"] = "ACTIVE" },
                        new JsonObject { ["comparison"] = "EQUALS", ["value"] = "SUPPRESSED" }),
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
            // Finding.status is required by the model; a finding without one is treated as open risk.
            var status = f["status"]?.GetValue<string>() ?? "ACTIVE";
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
                    fix, severity, score, FindingStatus: status);
            }
        }
    }

    public void Dispose() => _transport.Dispose();
}
