namespace HardenImage.Contracts;

/// <summary>
/// Where each stage's record lives in the artifacts directory, spelled once. The names are part of the contract:
/// the Cake script, CI and users' scripts read them (docs/architecture.md, "Contracts").
/// </summary>
public static class ArtifactPaths
{
    /// <summary>The OCI image layout every built image is written into: <c>oci/</c>.</summary>
    public static string Layout(string artifacts) => Path.Combine(artifacts, "oci");

    /// <summary><c>build.json</c> (<see cref="BuildManifest"/>): written by build and fan-in, read by every later stage.</summary>
    public static string BuildRecord(string artifacts) => Path.Combine(artifacts, "build.json");

    /// <summary><c>pushed.json</c> (<see cref="PushedFile"/>): written by push, read by scan (Inspector), sign, verify, deploy.</summary>
    public static string PushRecord(string artifacts) => Path.Combine(artifacts, "pushed.json");

    /// <summary><c>sbom/</c>: one CycloneDX SBOM per image and architecture.</summary>
    public static string SbomDirectory(string artifacts) => Path.Combine(artifacts, "sbom");

    /// <summary><c>scan/</c>: one scan report (and its VEX documents) per image and architecture.</summary>
    public static string ScanDirectory(string artifacts) => Path.Combine(artifacts, "scan");

    /// <summary><c>fanout/</c>: the records of fan-out jobs.</summary>
    public static string FanOutDirectory(string artifacts) => Path.Combine(artifacts, "fanout");

    /// <summary><c>sbom/&lt;image&gt;.&lt;arch&gt;.cdx.json</c>: the CycloneDX SBOM of one built manifest.</summary>
    public static string Sbom(string artifacts, string image, string architecture) =>
        Path.Combine(SbomDirectory(artifacts), $"{image}.{architecture}.cdx.json");

    /// <summary><c>scan/&lt;image&gt;.&lt;arch&gt;.json</c>: the scan report of one built manifest.</summary>
    public static string ScanReport(string artifacts, string image, string architecture) =>
        Path.Combine(ScanDirectory(artifacts), $"{image}.{architecture}.json");

    /// <summary><c>fanout/&lt;image&gt;.&lt;arch&gt;.json</c>: what one fan-out job built.</summary>
    public static string PlatformRecord(string artifacts, string image, string architecture) =>
        Path.Combine(FanOutDirectory(artifacts), $"{image}.{architecture}.json");

    /// <summary><c>deploy/</c>: rendered manifests and admission policies.</summary>
    public static string Deploy(string artifacts) => Path.Combine(artifacts, "deploy");
}
