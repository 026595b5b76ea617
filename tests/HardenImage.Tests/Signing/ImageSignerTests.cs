using System.Security.Cryptography;
using System.Text.Json.Nodes;
using HardenImage.Oci;
using HardenImage.Signing;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Signing;

public class ImageSignerTests
{
    private static readonly Digest Image = Digest.Of("an image manifest"u8);
    private const string Reference = "registry.example/harden/base";

    private static JsonNode Sbom() => Predicates.CycloneDx("{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.6\",\"components\":[]}"u8);

    private static JsonNode Provenance() => Predicates.SlsaProvenance(new SlsaProvenanceInput
    {
        BuildType = "https://hardenimage.dev/build/v1",
        BuilderId = "local",
        ExternalParameters = new JsonObject { ["image"] = "base" },
    });

    private static JsonNode Vuln(string severity) => Predicates.Vuln(new VulnScanInput
    {
        ScannerUri = "pkg:generic/harden",
        ScannerVersion = "0",
        Result = JsonNode.Parse($"{{\"vulnerabilities\":[{{\"id\":\"CVE-2026-0001\",\"ratings\":[{{\"severity\":\"{severity}\"}}]}}]}}")!,
        ScanStartedOn = DateTimeOffset.UnixEpoch,
        ScanFinishedOn = DateTimeOffset.UnixEpoch,
    });

    private static async Task SignEverything(ImageSigner signer, string severity = "high")
    {
        await signer.SignAsync(Reference, Image);
        await signer.AttestAsync(Reference, Image, PredicateTypes.CycloneDx, Sbom());
        await signer.AttestAsync(Reference, Image, PredicateTypes.SlsaProvenanceV1, Provenance());
        await signer.AttestAsync(Reference, Image, PredicateTypes.CosignVuln, Vuln(severity));
    }

    private static readonly VerificationPolicy Strict = new()
    {
        RequiredAttestations = ["sbom", "provenance", "vuln"],
        ForbidCriticalVulnerabilities = true,
    };

    [Fact]
    public async Task SignAndAttest_ThenVerify_PassesStrictPolicy()
    {
        using var key = SigningTestData.NewKey();
        var store = new InMemorySignatureStore();
        await SignEverything(new ImageSigner(new EcdsaFileSigner(ECDsa.Create(key.ExportParameters(true))), store));

        Assert.Equal(2, store.Tags.Count);
        var report = await new ImageVerifier(store, key).VerifyAsync(Image, Strict);
        Assert.True(report.Passed, string.Join("\n", report.Failures));
        Assert.Equal(3, report.Attestations.PredicateTypes.Count);
    }

    [Fact]
    public async Task SigningTwice_IsIdempotent_AndOtherSignersAreKept()
    {
        using var key = SigningTestData.NewKey();
        using var otherKey = SigningTestData.NewKey();
        var store = new InMemorySignatureStore();
        var signer = new ImageSigner(new EcdsaFileSigner(ECDsa.Create(key.ExportParameters(true))), store);
        await SignEverything(signer);
        await SignEverything(signer);
        var sig = (await store.GetAsync(CosignSignatureManifest.SignatureTag(Image)))!;
        var att = (await store.GetAsync(CosignSignatureManifest.AttestationTag(Image)))!;
        Assert.Single(sig.Manifest.Layers);
        Assert.Equal(3, att.Manifest.Layers.Count);

        await new ImageSigner(new EcdsaFileSigner(ECDsa.Create(otherKey.ExportParameters(true))), store).SignAsync(Reference, Image);
        sig = (await store.GetAsync(CosignSignatureManifest.SignatureTag(Image)))!;
        Assert.Equal(2, sig.Manifest.Layers.Count);
        Assert.True((await new ImageVerifier(store, key).VerifyAsync(Image, new())).Passed);
        Assert.True((await new ImageVerifier(store, otherKey).VerifyAsync(Image, new())).Passed);
    }

    [Fact]
    public async Task Verify_ReportsMissingSignatureAndAttestations()
    {
        using var key = SigningTestData.NewKey();
        var report = await new ImageVerifier(new InMemorySignatureStore(), key).VerifyAsync(Image, Strict);
        Assert.False(report.Passed);
        Assert.Contains(report.Failures, f => f.Contains("no signature") && f.Contains("harden sign"));
        Assert.Contains(report.Failures, f => f.Contains("'sbom'"));
        Assert.Contains(report.Failures, f => f.Contains("'provenance'"));
        Assert.Contains(report.Failures, f => f.Contains("'vuln'"));
    }

    [Fact]
    public async Task Verify_FailsOnCriticalVulnerability()
    {
        using var key = SigningTestData.NewKey();
        var store = new InMemorySignatureStore();
        await SignEverything(new ImageSigner(new EcdsaFileSigner(ECDsa.Create(key.ExportParameters(true))), store), severity: "critical");
        var report = await new ImageVerifier(store, key).VerifyAsync(Image, Strict);
        Assert.False(report.Passed);
        Assert.Equal(["CVE-2026-0001"], report.CriticalFindings);
        Assert.Contains(report.Failures, f => f.Contains("1 critical vulnerability"));
        Assert.True((await new ImageVerifier(store, key).VerifyAsync(Image, Strict with { ForbidCriticalVulnerabilities = false })).Passed);
    }

    [Fact]
    public async Task Verify_WithStrangerKey_Fails()
    {
        using var key = SigningTestData.NewKey();
        using var stranger = SigningTestData.NewKey();
        var store = new InMemorySignatureStore();
        await SignEverything(new ImageSigner(new EcdsaFileSigner(ECDsa.Create(key.ExportParameters(true))), store));
        var report = await new ImageVerifier(store, stranger).VerifyAsync(Image, Strict);
        Assert.False(report.Passed);
        Assert.Contains(report.Failures, f => f.Contains("does not verify with the given public key"));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task OciLayoutStore_RoundTrips_AndSkopeoReadsTheSignatureManifest()
    {
        var skopeo = RequiredService.Tool("skopeo", "skopeo");
        using var dir = new TempDir();
        using var key = SigningTestData.NewKey();
        var layout = OciLayout.OpenOrCreate(dir.Path);
        var store = new OciLayoutSignatureStore(layout);
        await SignEverything(new ImageSigner(new EcdsaFileSigner(ECDsa.Create(key.ExportParameters(true))), store));

        var reopened = new OciLayoutSignatureStore(OciLayout.Open(dir.Path));
        var report = await new ImageVerifier(reopened, key).VerifyAsync(Image, Strict);
        Assert.True(report.Passed, string.Join("\n", report.Failures));

        var tag = CosignSignatureManifest.SignatureTag(Image);
        var raw = RequiredService.RunOk(skopeo, ["inspect", "--raw", $"oci:{dir.Path}:{tag}"]);
        var manifest = OciJson.Deserialize<ImageManifest>(System.Text.Encoding.UTF8.GetBytes(raw));
        Assert.Equal(MediaTypes.CosignSimpleSigning, Assert.Single(manifest.Layers).MediaType);
        var config = RequiredService.RunOk(skopeo, ["inspect", "--config", "--raw", $"oci:{dir.Path}:{tag}"]);
        Assert.Contains("\"diff_ids\":[\"" + manifest.Layers[0].Digest + "\"]", config);
    }

    [Fact]
    public async Task OciLayoutStore_TamperedBlob_IsRejected()
    {
        using var dir = new TempDir();
        using var key = SigningTestData.NewKey();
        var layout = OciLayout.OpenOrCreate(dir.Path);
        var store = new OciLayoutSignatureStore(layout);
        var artifact = await new ImageSigner(new EcdsaFileSigner(ECDsa.Create(key.ExportParameters(true))), store).SignAsync(Reference, Image);
        var payloadPath = layout.BlobPath(artifact.Manifest.Layers[0].Digest);
        var bytes = File.ReadAllBytes(payloadPath);
        bytes[^3] ^= 1;
        File.WriteAllBytes(payloadPath, bytes);
        var report = await new ImageVerifier(store, key).VerifyAsync(Image, new());
        Assert.False(report.Passed);
        Assert.Contains(report.Failures, f => f.Contains("not matching its digest"));
    }
}
