namespace HardenImage.Scan;

/// <summary>What a finding means for the image.</summary>
public enum FindingStatus
{
    /// <summary>A fixed version exists and the installed one is older.</summary>
    Fixed,
    /// <summary>Affected and no fix is available yet.</summary>
    Unfixed,
    /// <summary>Affected but judged minor by the distribution (no-dsa, unimportant, end-of-life, ignored, postponed).</summary>
    Negligible,
    /// <summary>A source (e.g. an external scanner) says the package is not affected.</summary>
    NotAffected,
}

/// <summary>How the severity was decided: a CVSS vector, a database's own rating, or the Debian urgency.</summary>
public static class SeveritySources
{
    public const string CvssV3 = "cvss-v3";
    public const string Database = "database";
    public const string DebianUrgency = "debian-urgency";
    public const string External = "external";
    public const string None = "none";
}

/// <summary>One vulnerability in one package of an image (the same CVE from several stores is one finding).</summary>
public sealed record Finding
{
    /// <summary>Preferred id: the CVE when any source names one, else the advisory id.</summary>
    public required string Id { get; init; }
    public IReadOnlyList<string> Aliases { get; init; } = [];
    public required string Package { get; init; }
    /// <summary>"deb" or "pypi".</summary>
    public required string PackageType { get; init; }
    /// <summary>The component's purl (also its bom-ref in the SBOM).</summary>
    public required string Purl { get; init; }
    public required string InstalledVersion { get; init; }
    public string? SourcePackage { get; init; }
    public string? SourceVersion { get; init; }
    public string? FixedVersion { get; init; }
    public required FindingStatus Status { get; init; }
    public required Severity Severity { get; init; }
    /// <summary><see cref="SeveritySources"/>.</summary>
    public required string SeveritySource { get; init; }
    public double? CvssScore { get; init; }
    public string? CvssVector { get; init; }
    /// <summary>Debian urgency or a database's textual severity, as the source wrote it.</summary>
    public string? SourceSeverity { get; init; }
    /// <summary>Which stores reported it, e.g. "debian-tracker:Debian:13", "osv:PyPI", "amazon-inspector".</summary>
    public IReadOnlyList<string> Sources { get; init; } = [];
    public string? Summary { get; init; }
    /// <summary>Debian's reason for not fixing (no-dsa note), when any.</summary>
    public string? Note { get; init; }
    /// <summary>The allowlist entry that accepts this finding, set by the policy gate.</summary>
    public AllowlistEntry? Allowlisted { get; init; }

    public bool HasFix => Status == FindingStatus.Fixed;
}

/// <summary>
/// A component no advisory source could speak about: its ecosystem is unknown (a third-party repository, another
/// distribution) or the advisory data holds nothing for its ecosystem (e.g. no Debian:13 or no PyPI records).
/// "0 findings" would be a lie for it, so it fails the gate unless --allow-unscanned (threat: Spoofing of a clean result).
/// </summary>
public sealed record UnscannedPackage(string Package, string PackageType, string Purl, string Version, string Reason);

/// <summary>What the advisory data behind a scan was.</summary>
public sealed record AdvisoryDataInfo
{
    public bool Scanned { get; init; } = true;
    /// <summary>"sha256:…" of the advisory inputs.</summary>
    public string? Digest { get; init; }
    public string? Location { get; init; }
    public IReadOnlyList<string> Sources { get; init; } = [];
    /// <summary>Why the image was not scanned (only with --allow-unscanned).</summary>
    public string? UnscannedReason { get; init; }
}

/// <summary>The result of scanning one image for one architecture.</summary>
public sealed record ScanResult
{
    public required Sbom.ImageInventory Image { get; init; }
    public required AdvisoryDataInfo Data { get; init; }
    /// <summary>All findings, negligible ones included, sorted by severity (worst first), package, id.</summary>
    public required IReadOnlyList<Finding> Findings { get; init; }
    public PolicyResult? Policy { get; init; }
    /// <summary>When the scan ran (VEX timestamps, allowlist expiry).</summary>
    public DateTimeOffset ScannedAt { get; init; }
    /// <summary>Things the scan could not do (e.g. unknown distro), shown to the user and kept in the report.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
    /// <summary>Components that could not be matched against any advisory source (see <see cref="UnscannedPackage"/>).</summary>
    public IReadOnlyList<UnscannedPackage> Unscanned { get; init; } = [];
    /// <summary>True when the caller accepted <see cref="Unscanned"/> components explicitly (--allow-unscanned).</summary>
    public bool UnscannedAllowed { get; init; }
}
