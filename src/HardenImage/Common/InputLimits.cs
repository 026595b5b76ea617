namespace HardenImage.Common;

/// <summary>
/// The bounds every parser and reader holds its input to, in one place so docs/limits.md can list them and tests
/// can name them. Each is far above the largest real input we know (measured figures in docs/limits.md) and far
/// below what exhausts a 2-core, few-GiB CI runner (threat: Denial of service).
/// </summary>
public static class InputLimits
{
    /// <summary>images/*.yaml, sources.yaml, deploy/*.yaml, policies/*.yaml (all shipped ones together: 10.7 KB).</summary>
    public static YamlLimits DeclarativeYaml { get; } = new(MaxBytes: 1L << 20, MaxDepth: 32, MaxNodes: 50_000);

    /// <summary>One OSV advisory in YAML (pypa/advisory-database; largest in vulndb/: 6.8 KB).</summary>
    public static YamlLimits AdvisoryYaml { get; } = new(MaxBytes: 4L << 20, MaxDepth: 32, MaxNodes: 200_000);

    /// <summary>Kubernetes manifests and CRD bundles read back as YAML (the Kyverno ClusterPolicy CRD: a few MB, deeply nested schemas).</summary>
    public static YamlLimits ManifestYaml { get; } = new(MaxBytes: 16L << 20, MaxDepth: 128, MaxNodes: 2_000_000);

    /// <summary>Nesting of any JSON document we read (OCI, lock, build.json, SBOM, scan, advisories: at most ~8 deep).</summary>
    public const int MaxJsonDepth = 64;

    /// <summary>images/images.lock.json (shipped: 192 KB for 4 images x 2 architectures).</summary>
    public const long MaxLockBytes = 64L << 20;

    /// <summary>artifacts/build.json and artifacts/pushed.json (main job: 11 KB and 1.7 KB).</summary>
    public const long MaxRecordBytes = 16L << 20;

    /// <summary>OCI index.json, image index, manifest and config: the distribution spec's 4 MiB manifest limit.</summary>
    public const long MaxOciDocumentBytes = 4L << 20;

    /// <summary>A CycloneDX SBOM or a scan report (inference-cpu SBOM: 225 KB).</summary>
    public const long MaxReportBytes = 256L << 20;

    /// <summary>One advisory file or zip entry (the whole Debian tracker JSON is tens of MB).</summary>
    public const long MaxAdvisoryFileBytes = 512L << 20;

    /// <summary>Entries in one advisory zip (OSV all.zip of PyPI: ~17,000).</summary>
    public const int MaxAdvisoryZipEntries = 1_000_000;

    /// <summary>A .deb or layer path (Linux PATH_MAX).</summary>
    public const int MaxPathLength = 4096;

    /// <summary>One path segment (Linux NAME_MAX).</summary>
    public const int MaxPathSegmentLength = 255;

    /// <summary>Entries in one package's data.tar (python3-torch: 2,525).</summary>
    public const int MaxTarEntriesPerPackage = 1_000_000;

    /// <summary>Hard cap on the unpacked bytes of one package, whatever its Installed-Size says (largest: 270 MiB, libtorch2.6).</summary>
    public const long MaxUnpackedBytesPerPackage = 8L << 30;

    /// <summary>Slack over a package's declared Installed-Size (KiB, rounded per file by dpkg) before its data.tar is refused.</summary>
    public static long UnpackedAllowance(long installedSizeKiB) => installedSizeKiB * 1024 * 2 + (16L << 20);

    /// <summary>Unpacked bytes of all packages of one build (every locked .deb of every image and architecture: 1.7 GiB).</summary>
    public const long MaxUnpackedBytesPerBuild = 32L << 30;

    /// <summary>An OpenPGP keyring or key file (largest in images/keys: 9.7 KB).</summary>
    public const long MaxKeyringBytes = 1L << 20;
}

/// <summary>Bounds for one kind of YAML input.</summary>
/// <param name="MaxBytes">File size.</param>
/// <param name="MaxDepth">Nested mappings/sequences; checked before the tree is built, so deep input cannot overflow the stack.</param>
/// <param name="MaxNodes">Nodes after alias expansion: an alias counts as many nodes as its anchor's subtree
/// ("billion laughs" is refused at the alias that crosses the bound, before anything expands it).</param>
public sealed record YamlLimits(long MaxBytes, int MaxDepth, long MaxNodes);
