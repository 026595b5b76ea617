using HardenImage.Common;
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
    /// <summary>
    /// The release the image's packages were locked from, e.g. "debian-13" (from the lock's sources, see
    /// <see cref="OriginDistributions"/>); null when no package has a known release. Never read from a file inside
    /// the image: an image without os-release, or with a forged one, is matched as what it was built from.
    /// </summary>
    public string? Distro { get; init; }
    /// <summary>What etc/os-release (or usr/lib/os-release) claims, e.g. "debian-13"; only reported, never used to match.</summary>
    public string? OsRelease { get; init; }
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
    /// <summary>The lock source it came from (e.g. "debian/trixie"); null when the package is not in the lock.</summary>
    public string? Origin { get; init; }
    /// <summary>
    /// Release of its origin (e.g. "debian-13"); null with <see cref="Origin"/> set means the origin is not a release
    /// any advisory source knows (<see cref="DistroUnknownReason"/> says why). Null without an origin: the image's
    /// <see cref="ImageInventory.Distro"/> applies.
    /// </summary>
    public string? Distro { get; init; }
    public string? DistroUnknownReason { get; init; }
    /// <summary>What the lock says, when it differs from the status.d record (version or source).</summary>
    public LockedIdentity? Locked { get; init; }
}

/// <summary>A package's version and source as the lock (proven by a signed index) records them.</summary>
public sealed record LockedIdentity(string Version, string SourceName, string SourceVersion);

/// <summary>Where a Python distribution's metadata was found.</summary>
public static class PythonLocations
{
    /// <summary>Directly in a directory on Python's sys.path: importlib.metadata sees it.</summary>
    public const string SysPath = "sys.path";
    /// <summary>Copied inside another distribution (pip/_vendor, setuptools/_vendor): importable through it only.</summary>
    public const string Vendored = "vendored";
    /// <summary>Anywhere else in the image (not on the default sys.path).</summary>
    public const string Other = "other";
}

/// <summary>An installed Python distribution: a *.dist-info or *.egg-info (directory or file), or a vendor.txt line.</summary>
public sealed record PythonDistribution
{
    public required string Name { get; init; }
    public required string Version { get; init; }
    /// <summary>License-Expression, else a one-line License field; null when neither.</summary>
    public string? License { get; init; }
    /// <summary>True when <see cref="License"/> came from License-Expression (an SPDX expression).</summary>
    public bool LicenseIsExpression { get; init; }
    /// <summary>
    /// Path of the metadata inside the image: …/x-1.0.dist-info/METADATA, …/x-1.0.egg-info/PKG-INFO, the file
    /// …/x-1.0.egg-info itself, or a …/_vendor/vendor.txt.
    /// </summary>
    public required string MetadataPath { get; init; }
    /// <summary><see cref="PythonLocations"/>.</summary>
    public string Location { get; init; } = PythonLocations.SysPath;
    /// <summary>For vendored copies: the directory of the distribution that carries them, e.g. usr/lib/python3/dist-packages/setuptools.</summary>
    public string? VendoredIn { get; init; }
    /// <summary>The Debian package whose file list (status.d/&lt;pkg&gt;.md5sums) contains <see cref="MetadataPath"/>.</summary>
    public string? DebianPackage { get; init; }
    /// <summary>SHA-256 and file name of the wheel harden installed it from (its .dist-info/HARDENIMAGE-WHEEL), else null.</summary>
    public string? WheelSha256 { get; init; }
    public string? WheelFile { get; init; }
    public string NormalizedName => Pep440Version.NormalizeName(Name);
}

/// <summary>A payload file the caller asked about (models, application code), with its digest.</summary>
public sealed record PayloadFile(string Path, string Sha256, long Size);
