using System.Text;
using System.Text.Json.Nodes;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Signing;
using HardenImage.Tests.Infrastructure;
using HardenImage.Tests.Registry;

namespace HardenImage.Tests.SignFlow;

/// <summary>
/// push → sign → verify through the real CLI (harden.dll as a child process) against the default OCI layout
/// registry and a real docker-registry, with the cosign formats checked by independent tools (skopeo, openssl).
/// </summary>
[Trait("Category", "Integration")]
public sealed class SignFlowTests
{
    private static Dictionary<string, string> Password(string password) => new() { [KeyPasswordSource.HardenVariable] = password };

    [Fact]
    public async Task DefaultLayoutRegistry_PushSignVerify_WithLoudDevKey_AndTamperedPayloadFails()
    {
        using var ws = new SignFlowWorkspace();
        ws.HardenOk("push");
        var signed = ws.HardenOk("sign");
        Assert.Contains("DEVELOPMENT SIGNING KEY GENERATED", signed);
        Assert.Contains("EMPTY password", signed);
        Assert.True(File.Exists(ws.Combine("artifacts", "keys", "cosign.key")));

        var reference = $"oci:artifacts/registry/base@{ws.Index.Digest}";
        var ok = ws.HardenOk("verify", reference, "--require", "provenance");
        Assert.Contains("verified", ok);
        // By tag too, with the default key path.
        ws.HardenOk("verify", "oci:artifacts/registry/base:latest", "--require", "provenance");

        // One byte of the amd64 manifest's signed payload changed in the layout: verifying that manifest fails and says
        // why. The index is judged by its own .sig/.att only (as cosign, Kyverno and policy-controller do), so it still passes.
        var layout = RegistryFactory.Create(RegistryTarget.Parse("oci:" + ws.Combine("artifacts", "registry")));
        await SignatureTampering.ChangePayloadByte(layout, "base", ws.Manifests["amd64"]);
        ws.HardenOk("verify", reference, "--require", "provenance");
        var (code, output) = ws.Harden("verify", $"oci:artifacts/registry/base@{ws.Manifests["amd64"]}", "--require", "provenance");
        Assert.NotEqual(0, code);
        Assert.Contains("verification failed", output);
        Assert.Contains("no valid signature", output);
    }

    [Fact]
    public async Task RealRegistry_SignatureIsCosignSimpleSigning_VerifiesWithOpenssl_AndTamperedSignatureFails()
    {
        var skopeo = RequiredService.Tool("skopeo", "skopeo");
        var openssl = RequiredService.Tool("openssl", "openssl");
        using var ws = new SignFlowWorkspace(seed: 2);
        using var server = RegistryFixture.Start();
        ws.HardenOk("push", "--registry", server.Host + "/hardened", "--insecure");
        ws.HardenOk("sign", "--insecure");
        var reference = $"{server.Host}/hardened/base@{ws.Index.Digest}";
        ws.HardenOk("verify", reference, "--insecure", "--require", "provenance");

        // skopeo sees cosign's layout: one simple-signing layer with the signature annotation.
        var sigTag = CosignSignatureManifest.SignatureTag(Digest.Parse(ws.Index.Digest));
        var raw = JsonNode.Parse(RequiredService.RunOk(skopeo, ["inspect", "--raw", "--tls-verify=false", $"docker://{server.Host}/hardened/base:{sigTag}"]))!;
        var layer = raw["layers"]![0]!;
        Assert.Equal("application/vnd.dev.cosign.simplesigning.v1+json", layer["mediaType"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(layer["annotations"]![CosignSignatureManifest.SignatureAnnotation]!.GetValue<string>()));

        // openssl verifies our signature over the payload blob we pushed, and the payload names the image.
        var registry = RegistryTestKit.Client(server.Host);
        var artifact = await SignatureTampering.SignatureArtifact(registry, "hardened/base", ws.Index.Digest);
        var payloadLayer = artifact.Manifest.Layers.Single();
        var payload = artifact.VerifiedBlob(payloadLayer.Digest)!;
        var statement = JsonNode.Parse(payload)!;
        Assert.Equal(ws.Index.Digest, statement["critical"]!["image"]!["docker-manifest-digest"]!.GetValue<string>());
        Assert.Equal($"{server.Host}/hardened/base", statement["critical"]!["identity"]!["docker-reference"]!.GetValue<string>());
        File.WriteAllBytes(ws.Combine("payload"), payload);
        File.WriteAllBytes(ws.Combine("sig.der"), Convert.FromBase64String(payloadLayer.Annotations![CosignSignatureManifest.SignatureAnnotation]));
        var verified = RequiredService.RunOk(openssl, ["dgst", "-sha256", "-verify", ws.DevPublicKey, "-signature", ws.Combine("sig.der"), ws.Combine("payload")]);
        Assert.Contains("Verified OK", verified);

        // One byte of the index's signature changed in the registry: verify fails, naming the subject.
        await SignatureTampering.ChangeSignatureByte(registry, "hardened/base", ws.Index.Digest);
        var (code, output) = ws.Harden("verify", reference, "--insecure");
        Assert.NotEqual(0, code);
        Assert.Contains("no valid signature", output);
        // The tampered bytes really are what openssl sees as invalid too.
        var tampered = await SignatureTampering.SignatureArtifact(registry, "hardened/base", ws.Index.Digest);
        File.WriteAllBytes(ws.Combine("sig2.der"), Convert.FromBase64String(tampered.Manifest.Layers[0].Annotations![CosignSignatureManifest.SignatureAnnotation]));
        var (opensslCode, _, _) = RequiredService.Run(openssl, ["dgst", "-sha256", "-verify", ws.DevPublicKey, "-signature", ws.Combine("sig2.der"), ws.Combine("payload")]);
        Assert.NotEqual(0, opensslCode);
    }

    [Fact]
    public async Task SigningTwice_KeepsBothSignatures_EitherKeyVerifies_AnUnrelatedKeyDoesNot()
    {
        using var ws = new SignFlowWorkspace(seed: 3);
        ws.HardenOk("push");
        ws.HardenOk("sign");
        var second = new KeyPairGenerator(ScryptParameters.Default).WriteTo(ws.Combine("second"), "second-password", overwrite: false);
        ws.HardenOk(Password("second-password"), "sign", "--key", second.PrivateKeyPath);
        var stranger = new KeyPairGenerator().WriteTo(ws.Combine("stranger"), "x", overwrite: false);

        var layout = RegistryFactory.Create(RegistryTarget.Parse("oci:" + ws.Combine("artifacts", "registry")));
        foreach (var digest in ws.Manifests.Values.Append(ws.Index.Digest))
            Assert.Equal(2, (await SignatureTampering.SignatureArtifact(layout, "base", digest)).Manifest.Layers.Count);

        var reference = $"oci:artifacts/registry/base@{ws.Index.Digest}";
        ws.HardenOk("verify", reference, "--key", ws.DevPublicKey, "--require", "provenance");
        ws.HardenOk("verify", reference, "--key", second.PublicKeyPath, "--require", "provenance");
        var (code, output) = ws.Harden("verify", reference, "--key", stranger.PublicKeyPath);
        Assert.NotEqual(0, code);
        Assert.Contains("no valid signature", output);
    }

    [Fact]
    public void RequiredSbomAndVuln_FailUntilSignedWithThem_AndNoCriticalFailsOnACriticalFinding()
    {
        using var ws = new SignFlowWorkspace(seed: 4);
        ws.HardenOk("push");
        ws.HardenOk("sign");
        var reference = $"oci:artifacts/registry/base@{ws.Index.Digest}";
        var (missingCode, missing) = ws.Harden("verify", reference, "--require", "sbom,vuln");
        Assert.NotEqual(0, missingCode);
        Assert.Contains("required attestation 'sbom'", missing);
        Assert.Contains("required attestation 'vuln'", missing);

        Directory.CreateDirectory(ws.Combine("artifacts", "sbom"));
        Directory.CreateDirectory(ws.Combine("artifacts", "scan"));
        foreach (var arch in ws.Manifests.Keys)
        {
            File.WriteAllText(ws.Combine("artifacts", "sbom", $"base.{arch}.cdx.json"), new JsonObject
            {
                ["bomFormat"] = "CycloneDX",
                ["specVersion"] = "1.6",
                ["serialNumber"] = $"urn:uuid:{Guid.NewGuid()}",
                ["version"] = 1,
                ["components"] = new JsonArray(new JsonObject
                {
                    ["type"] = "library", ["name"] = "libc6", ["version"] = "2.41-12",
                    ["purl"] = $"pkg:deb/debian/libc6@2.41-12?arch={arch}&distro=debian-13",
                }),
            }.ToJsonString());
            File.WriteAllText(ws.Combine("artifacts", "scan", $"base.{arch}.json"), new JsonObject
            {
                ["scannedAt"] = "2026-11-26T06:00:00Z",
                ["findings"] = new JsonArray(new JsonObject { ["id"] = "CVE-2026-0001", ["package"] = "libc6", ["severity"] = "Critical" }),
            }.ToJsonString());
        }
        var signed = ws.HardenOk("sign");
        Assert.Contains("sbom", signed);
        Assert.Contains("vuln", signed);

        ws.HardenOk("verify", reference, "--require", "sbom,provenance,vuln");
        var (criticalCode, critical) = ws.Harden("verify", reference, "--require", "sbom,vuln", "--no-critical");
        Assert.NotEqual(0, criticalCode);
        Assert.Contains("critical", critical);
        Assert.Contains("CVE-2026-0001", critical);
    }
}
