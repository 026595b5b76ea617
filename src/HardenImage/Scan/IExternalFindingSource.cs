using HardenImage.Sbom;

namespace HardenImage.Scan;

/// <summary>
/// A scanner outside this process (e.g. Amazon Inspector) whose findings are merged into ours. Implementations
/// name themselves in <see cref="Name"/>; every finding they return keeps that name in its sources, so a report
/// says who claimed what (threat: Repudiation).
/// </summary>
public interface IExternalFindingSource
{
    /// <summary>Short source name, e.g. "amazon-inspector".</summary>
    string Name { get; }

    Task<IReadOnlyList<ExternalFinding>> GetFindingsAsync(ImageInventory inventory, CancellationToken cancellationToken);
}

/// <summary>
/// A finding from an external source. <see cref="Purl"/> should be the component's purl as written in our SBOM
/// (CycloneDxWriter.DebRef / PyRef); when it is absent the finding is matched by <see cref="PackageName"/>.
/// </summary>
public sealed record ExternalFinding
{
    public required string Id { get; init; }
    public IReadOnlyList<string> Aliases { get; init; } = [];
    public string? Purl { get; init; }
    public string? PackageName { get; init; }
    public string? InstalledVersion { get; init; }
    public string? FixedVersion { get; init; }
    public Severity Severity { get; init; } = Severity.Unknown;
    public double? CvssScore { get; init; }
    public string? CvssVector { get; init; }
    public string? Summary { get; init; }
    /// <summary>The source that reported it (set by the implementation to its <see cref="IExternalFindingSource.Name"/>).</summary>
    public required string Source { get; init; }
    /// <summary>True when the source states the package is not affected.</summary>
    public bool NotAffected { get; init; }
}
