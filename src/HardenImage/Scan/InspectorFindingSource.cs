using System.Text.Json.Nodes;
using HardenImage.Aws;
using HardenImage.Common;
using HardenImage.Sbom;

namespace HardenImage.Scan;

/// <summary>
/// Amazon Inspector as an <see cref="IExternalFindingSource"/>: sends the image's CycloneDX SBOM to Inspector Scan
/// (ScanSbom, at most 5,000 components per signed request) and turns its answer into <see cref="ExternalFinding"/>s
/// named "amazon-inspector", so every merged finding says who reported it (Repudiation). Only package components
/// leave the machine: payload files (model and application paths with their hashes) are not sent, as Inspector has
/// no use for them (Information disclosure).
/// </summary>
public sealed class InspectorFindingSource : IExternalFindingSource, IDisposable
{
    private readonly InspectorScanClient _client;
    private readonly bool _ownsClient;
    private readonly InspectorOutputFormat _format;

    public InspectorFindingSource(InspectorScanClient client, InspectorOutputFormat format = InspectorOutputFormat.CycloneDx15)
    {
        _client = client;
        _format = format;
    }

    /// <summary>A source with its own client for <paramref name="context"/> (disposed with this source).</summary>
    public InspectorFindingSource(AwsContext context, InspectorOutputFormat format = InspectorOutputFormat.CycloneDx15)
        : this(new InspectorScanClient(context), format) => _ownsClient = true;

    public string Name => InspectorFinding.SourceName;

    /// <summary>ScanSbom requests sent so far (one per ≤ 5,000-component part; retries not counted).</summary>
    public int RequestsSent { get; private set; }

    /// <summary>HTTP attempts made so far, retries included.</summary>
    public int Attempts => _client.Attempts;

    public async Task<IReadOnlyList<ExternalFinding>> GetFindingsAsync(ImageInventory inventory, CancellationToken cancellationToken)
    {
        var sbom = SbomFor(inventory);
        var componentCount = (sbom["components"] as JsonArray)?.Count ?? 0;
        RequestsSent += Math.Max(1, (componentCount + InspectorScanClient.MaxComponentsPerRequest - 1) / InspectorScanClient.MaxComponentsPerRequest);
        var found = await _client.ScanSbomAsync(sbom, _format, cancellationToken).ConfigureAwait(false);
        var components = new ComponentLookup(inventory);
        return found.Select(f => ToExternal(f, components)).ToList();
    }

    /// <summary>
    /// The SBOM sent to Inspector: our CycloneDX document without file components and without "$schema" (the client
    /// relabels the document 1.5, the only version ScanSbom accepts; a 1.6 schema URL would contradict that).
    /// </summary>
    public static JsonObject SbomFor(ImageInventory inventory)
    {
        var sbom = (JsonObject)JsonNode.Parse(CycloneDxWriter.Write(inventory with { Files = [] }))!;
        sbom.Remove("$schema");
        return sbom;
    }

    /// <summary>Maps one Inspector finding onto the component of <paramref name="inventory"/> it names.</summary>
    public static ExternalFinding ToExternal(InspectorFinding finding, ImageInventory inventory) =>
        ToExternal(finding, new ComponentLookup(inventory));

    private static ExternalFinding ToExternal(InspectorFinding f, ComponentLookup components) => new()
    {
        Id = f.Id,
        Purl = components.Resolve(f),
        PackageName = f.PackageName,
        InstalledVersion = f.InstalledVersion,
        FixedVersion = f.FixedVersion,
        Severity = MapSeverity(f.Severity),
        CvssScore = f.CvssScore,
        Source = InspectorFinding.SourceName,
    };

    /// <summary>Inspector's severities (lower-case) onto ours; "untriaged" and anything unknown stay Unknown so CVSS decides.</summary>
    public static Severity MapSeverity(string severity) => severity.Trim().ToLowerInvariant() switch
    {
        "critical" => Severity.Critical,
        "high" => Severity.High,
        "medium" or "moderate" => Severity.Medium,
        "low" => Severity.Low,
        "informational" or "info" or "none" => Severity.Negligible,
        _ => Severity.Unknown,
    };

    public void Dispose()
    {
        if (_ownsClient) _client.Dispose();
    }

    /// <summary>
    /// Finds our purl for an Inspector finding: the purl as given when it is one of ours (ScanSbom echoes our
    /// bom-refs), else the package of that name and version (Inspector may normalise purls), else null so the
    /// scanner matches by name.
    /// </summary>
    private sealed class ComponentLookup
    {
        private readonly HashSet<string> _purls = new(StringComparer.Ordinal);
        private readonly Dictionary<(string Name, string Version), string> _byNameVersion = new();

        public ComponentLookup(ImageInventory inventory)
        {
            foreach (var p in inventory.Packages)
            {
                var purl = CycloneDxWriter.DebRef(inventory, p);
                _purls.Add(purl);
                _byNameVersion.TryAdd((p.Name, p.Version), purl);
            }
            foreach (var d in inventory.PythonDistributions)
            {
                var purl = CycloneDxWriter.PyRef(d);
                _purls.Add(purl);
                _byNameVersion.TryAdd((d.NormalizedName, d.Version), purl);
                _byNameVersion.TryAdd((d.Name, d.Version), purl);
            }
        }

        public string? Resolve(InspectorFinding f)
        {
            if (f.PackagePurl != null && _purls.Contains(f.PackagePurl)) return f.PackagePurl;
            if (f.InstalledVersion != null)
            {
                if (_byNameVersion.TryGetValue((f.PackageName, f.InstalledVersion), out var purl)) return purl;
                if (_byNameVersion.TryGetValue((Pep440Version.NormalizeName(f.PackageName), f.InstalledVersion), out purl)) return purl;
            }
            return null;
        }
    }
}
