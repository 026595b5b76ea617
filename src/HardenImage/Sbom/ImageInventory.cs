namespace HardenImage.Sbom;

/// <summary>
/// What one image (one architecture) contains, as read from its layers and its lock entries. SBOM and scan both
/// work from this, so tests can build one directly.
/// </summary>
public sealed record ImageInventory
{
    public required string ImageName { get; init; }
    public required string Architecture { get; init; }
    /// <summary>Manifest digest, "sha256:…".</summary>
    public required string Digest { get; init; }
    /// <summary>e.g. "debian-13" (from etc/os-release); null when the image says nothing.</summary>
    public string? Distro { get; init; }
    /// <summary>The image config's <c>created</c> (the build epoch), used as the SBOM timestamp.</summary>
    public DateTimeOffset Created { get; init; } = DateTimeOffset.UnixEpoch;
    public IReadOnlyList<InventoryPackage> Packages { get; init; } = [];
    public IReadOnlyList<PythonDistribution> PythonDistributions { get; init; } = [];
    public IReadOnlyList<PayloadFile> Files { get; init; } = [];
}

/// <summary>A Debian binary package in the image.</summary>
public sealed record InventoryPackage
{
    public required string Name { get; init; }
    public required string Version { get; init; }
    public required string Architecture { get; init; }
    /// <summary>Source package name (binary name when the record has no Source).</summary>
    public required string SourceName { get; init; }
    public required string SourceVersion { get; init; }
    /// <summary>SHA-256 of the .deb (from the lock), when known.</summary>
    public string? Sha256 { get; init; }
    /// <summary>Licence ids from a machine-readable (DEP-5) copyright file; empty when there is none.</summary>
    public IReadOnlyList<string> Licenses { get; init; } = [];
    /// <summary>Package names named in Depends and Pre-Depends (every alternative).</summary>
    public IReadOnlyList<string> Depends { get; init; } = [];
    /// <summary>Where the package was seen: "status.d", "lock" or both.</summary>
    public string Evidence { get; init; } = "status.d";
}

/// <summary>An installed Python distribution (a *.dist-info directory).</summary>
public sealed record PythonDistribution
{
    public required string Name { get; init; }
    public required string Version { get; init; }
    /// <summary>License-Expression, else a one-line License field; null when neither.</summary>
    public string? License { get; init; }
    /// <summary>True when <see cref="License"/> came from License-Expression (an SPDX expression).</summary>
    public bool LicenseIsExpression { get; init; }
    /// <summary>Path of the METADATA file inside the image, e.g. usr/lib/python3/dist-packages/x-1.0.dist-info/METADATA.</summary>
    public required string MetadataPath { get; init; }
    public string NormalizedName => Scan.Pep440Version.NormalizeName(Name);
}

/// <summary>A payload file the caller asked about (models, application code), with its digest.</summary>
public sealed record PayloadFile(string Path, string Sha256, long Size);
