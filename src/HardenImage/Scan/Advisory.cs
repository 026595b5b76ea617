namespace HardenImage.Scan;

/// <summary>Finding severity, ordered: a larger value is worse.</summary>
public enum Severity
{
    Unknown = 0,
    Negligible = 1,
    Low = 2,
    Medium = 3,
    High = 4,
    Critical = 5,
}

/// <summary>Where an advisory record came from.</summary>
public static class AdvisoryOrigins
{
    public const string DebianTracker = "debian-tracker";
    public const string Osv = "osv";
}

/// <summary>
/// One advisory about one package in one ecosystem, normalised from any store (OSV record, Debian tracker JSON,
/// vuln-list tracker files). Debian ecosystems are "Debian:&lt;major&gt;" (e.g. Debian:13) and name the SOURCE
/// package; "PyPI" names are PEP 503-normalised.
/// </summary>
public sealed record AdvisoryRecord
{
    public required string Ecosystem { get; init; }
    public required string Package { get; init; }
    public required string Id { get; init; }
    public IReadOnlyList<string> Aliases { get; init; } = [];
    /// <summary><see cref="AdvisoryOrigins"/>.</summary>
    public required string Origin { get; init; }
    public string? Summary { get; init; }
    /// <summary>Debian tracker status for the release (null for OSV records).</summary>
    public TrackerStatus? Tracker { get; init; }
    /// <summary>OSV ranges of type ECOSYSTEM or SEMVER (GIT ranges cannot be evaluated without the repository).</summary>
    public IReadOnlyList<OsvRange> Ranges { get; init; } = [];
    /// <summary>OSV <c>affected[].versions</c>: explicitly affected versions.</summary>
    public IReadOnlyList<string> Versions { get; init; } = [];
    /// <summary>A CVSS v3.x vector from the record's severity, when present.</summary>
    public string? CvssVector { get; init; }
    /// <summary>A textual severity from database_specific (GHSA: LOW, MODERATE, HIGH, CRITICAL).</summary>
    public string? DatabaseSeverity { get; init; }
}

/// <summary>
/// Debian security tracker state of a CVE for one source package in one release.
/// <paramref name="Status"/>: resolved, open or undetermined. <paramref name="FixedVersion"/> "0" means never
/// affected. <paramref name="NoDsa"/>: the security team will not issue an advisory (minor issue).
/// </summary>
public sealed record TrackerStatus(string Status, string? FixedVersion, string Urgency, string? NoDsa, string? NoDsaReason);

public enum OsvEventKind { Introduced, Fixed, LastAffected, Limit }

public sealed record OsvEvent(OsvEventKind Kind, string Version);

/// <summary>One OSV range: its type (ECOSYSTEM or SEMVER) and its events in record order.</summary>
public sealed record OsvRange(string Type, IReadOnlyList<OsvEvent> Events);
