using System.Globalization;
using System.Text.Json.Nodes;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Contracts;

namespace HardenImage.Signing;

/// <summary>What <see cref="ImageSetSigner"/> signs: the artifacts of one pipeline run.</summary>
public sealed record ImageSetSignRequest
{
    /// <summary>Holds pushed.json, build.json, sbom/ and scan/.</summary>
    public required string ArtifactsDir { get; init; }

    /// <summary>The image set whose images.lock.json gives the provenance's resolved dependencies (optional).</summary>
    public required string ImagesDir { get; init; }

    /// <summary>Only these images; empty = every pushed image.</summary>
    public IReadOnlyCollection<string> Images { get; init; } = [];

    /// <summary>The scanner version the vuln predicates name (the harden tool's).</summary>
    public required string ToolVersion { get; init; }

    public bool Insecure { get; init; }
}

/// <summary>One signed digest: a platform manifest or an image's index, and the attestations written for it.</summary>
/// <param name="Platform">The manifest's platform (linux/amd64); null for the index.</param>
public sealed record SignedDigest(string Image, string? Platform, string Digest, IReadOnlyList<string> Attestations)
{
    public bool IsIndex => Platform == null;
}

/// <summary>
/// <c>harden sign</c>'s work: a cosign simple-signing signature for every pushed index and manifest, and DSSE
/// attestations for every manifest — the CycloneDX SBOM (artifacts/sbom/IMAGE.ARCH.cdx.json when present), SLSA
/// provenance, the vulnerability scan (artifacts/scan/IMAGE.ARCH.json when present) — and for the index the
/// provenance plus an SBOM and a vuln statement covering all its platforms (threats S, T, R).
/// </summary>
public sealed class ImageSetSigner(ISigner signer, RegistryClients clients)
{
    /// <summary>The signature annotation that binds a fan-out manifest to its inputs digest (FanOut/RegistryCache).</summary>
    public const string InputsAnnotation = "dev.hardenimage.inputs";

    public const string ScannerUri = "https://github.com/hardenimage/harden";

    /// <summary>artifacts/pushed.json, or one line saying to push first.</summary>
    public static PushedFile LoadPushed(string artifactsDir)
    {
        var pushedPath = ArtifactPaths.PushRecord(artifactsDir);
        return PushedFile.TryLoad(pushedPath)
               ?? throw new HardenException($"{pushedPath}: missing. Sign what is pushed: run 'harden push' first.");
    }

    /// <summary>The docker-reference cosign's simple-signing payload names: host/repository (just the repository for a layout).</summary>
    public static string DockerReference(RegistryTarget target, string repository) =>
        target.Kind == RegistryKind.OciLayout ? repository : target.Reference(repository, null).ToString();

    /// <summary>Signs and attests what <paramref name="pushed"/> lists; the digests in the order they were signed.</summary>
    public async Task<IReadOnlyList<SignedDigest>> SignAsync(PushedFile pushed, ImageSetSignRequest request, CancellationToken ct)
    {
        var target = RegistryTarget.Parse(pushed.Registry);
        var registry = clients.Create(target, request.Insecure);
        var lockPath = Path.Combine(request.ImagesDir, "images.lock.json");
        var lockFile = File.Exists(lockPath) ? LockFile.Load(lockPath) : null;
        // Fan-out manifests carry their inputs digest (build.json, from the jobs' records): bound into the signature,
        // it makes the manifest a registry-cache hit for exactly those inputs (FanOut/RegistryCache).
        var inputsOf = (BuildManifest.TryLoad(ArtifactPaths.BuildRecord(request.ArtifactsDir))?.Images ?? [])
            .SelectMany(i => i.Architectures).Where(a => a.Inputs != null)
            .GroupBy(a => a.Manifest, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Inputs!, StringComparer.Ordinal);
        var signed = new List<SignedDigest>();
        try
        {
            foreach (var (name, image) in pushed.Images)
            {
                if (request.Images.Count > 0 && !request.Images.Contains(name)) continue;
                var imageSigner = new ImageSigner(signer, new RegistrySignatureStore(registry, image.Repository));
                var reference = DockerReference(target, image.Repository);
                var index = Digest.Parse(image.Index);
                var provenance = Provenance.ForImage(name, pushed.Registry, image.Repository, lockFile);
                var sboms = new List<PlatformDocument>();
                var scans = new List<PlatformDocument>();
                foreach (var (platform, manifest) in image.Manifests)
                {
                    var arch = PlatformName.ArchitectureOf(platform); // "linux/arm64/v8" → the artifacts' "arm64"
                    var digest = Digest.Parse(manifest);
                    await imageSigner.SignAsync(reference, digest,
                        inputsOf.TryGetValue(manifest, out var inputs) ? new Dictionary<string, string> { [InputsAnnotation] = inputs } : null, ct);
                    var kinds = new List<string>();
                    var sbomPath = ArtifactPaths.Sbom(request.ArtifactsDir, name, arch);
                    if (File.Exists(sbomPath))
                    {
                        var sbom = Predicates.CycloneDx(BoundedFile.ReadAllBytes(sbomPath, InputLimits.MaxReportBytes, "SBOM"));
                        await imageSigner.AttestAsync(reference, digest, PredicateTypes.CycloneDx, sbom, ct);
                        sboms.Add(new PlatformDocument(platform, digest, sbom));
                        kinds.Add("sbom");
                    }
                    await imageSigner.AttestAsync(reference, digest, PredicateTypes.SlsaProvenanceV1, provenance, ct);
                    kinds.Add("provenance");
                    var scanPath = ArtifactPaths.ScanReport(request.ArtifactsDir, name, arch);
                    if (File.Exists(scanPath))
                    {
                        var scan = ReadScanReport(scanPath);
                        await imageSigner.AttestAsync(reference, digest, PredicateTypes.CosignVuln, VulnPredicate(scan, scanPath, request.ToolVersion), ct);
                        scans.Add(new PlatformDocument(platform, digest, scan));
                        kinds.Add("vuln");
                    }
                    signed.Add(new SignedDigest(name, platform, manifest, kinds));
                }

                // The index is what a Deployment pins and the only digest whose .att cosign, Kyverno and policy-controller
                // read for it, so it carries every attestation the admission policies require — covering all platforms,
                // or none (an index statement about some platforms would vouch for the unscanned rest).
                await imageSigner.SignAsync(reference, index, null, ct);
                await imageSigner.AttestAsync(reference, index, PredicateTypes.SlsaProvenanceV1, provenance, ct);
                var indexKinds = new List<string> { "provenance" };
                var missingSbom = image.Manifests.Keys.Except(sboms.Select(d => d.Platform)).ToList();
                if (sboms.Count > 0 && missingSbom.Count == 0)
                {
                    await imageSigner.AttestAsync(reference, index, PredicateTypes.CycloneDx, Predicates.IndexCycloneDx(name, index, sboms), ct);
                    indexKinds.Add("sbom");
                }
                else if (sboms.Count > 0) indexKinds.Add($"no sbom (none for {string.Join(", ", missingSbom)})");
                var missingScan = image.Manifests.Keys.Except(scans.Select(d => d.Platform)).ToList();
                if (scans.Count > 0 && missingScan.Count == 0)
                {
                    var report = Predicates.IndexScanReport(name, index, scans);
                    await imageSigner.AttestAsync(reference, index, PredicateTypes.CosignVuln,
                        VulnPredicate(report, Path.Combine(ArtifactPaths.ScanDirectory(request.ArtifactsDir), $"{name}.*.json"), request.ToolVersion), ct);
                    indexKinds.Add("vuln");
                }
                else if (scans.Count > 0) indexKinds.Add($"no vuln (no scan for {string.Join(", ", missingScan)})");
                signed.Add(new SignedDigest(name, null, image.Index, indexKinds));
            }
        }
        catch (ImmutableTagException e)
        {
            // cosign's layout moves the .sig/.att tags when a signature is added; an immutable repository refuses that.
            throw new HardenException($"{e.Message} Signing adds layers to the sha256-<hex>.sig/.att tags, so they must be able to move: " +
                "sign everything in one run after the push, or exempt 'sha256-*' tags from tag immutability (ECR: IMMUTABLE_WITH_EXCLUSION).", inner: e);
        }
        return signed;
    }

    private static JsonNode ReadScanReport(string path) =>
        BoundedJson.ParseNode(BoundedFile.ReadAllBytes(path, InputLimits.MaxReportBytes, "scan report"), path, "scan report", InputLimits.MaxReportBytes);

    /// <summary>cosign's vuln predicate around our scan report; the scan's own time (the file's when it records none).</summary>
    private static JsonNode VulnPredicate(JsonNode scan, string scanPath, string toolVersion)
    {
        var at = ScanTime(scan, "scannedAt") ?? (File.Exists(scanPath) ? File.GetLastWriteTimeUtc(scanPath) : DateTimeOffset.UnixEpoch);
        return Predicates.Vuln(new VulnScanInput
        {
            ScannerUri = ScannerUri,
            ScannerVersion = toolVersion,
            Result = scan,
            ScanStartedOn = at,
            ScanFinishedOn = at,
        });
    }

    private static DateTimeOffset? ScanTime(JsonNode scan, string field) =>
        scan is JsonObject o && o[field] is JsonValue v && v.TryGetValue<string>(out var t)
        && DateTimeOffset.TryParse(t, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var d) ? d : null;
}
