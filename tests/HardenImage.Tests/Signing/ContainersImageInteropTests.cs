using System.Security.Cryptography;
using HardenImage.Oci;
using HardenImage.Signing;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Signing;

/// <summary>
/// Our .sig artifact goes through real tools: skopeo (containers/image) pushes it to a real distribution registry
/// beside the image and pulls it back with digests preserved, and it still verifies. (Debian's skopeo has its
/// sigstore verification disabled, "Debian-local change", so it cannot serve as the independent verifier.)
/// </summary>
[Trait("Category", "Integration")]
public class ContainersImageInteropTests
{
    [Fact]
    public async Task SignatureArtifact_SurvivesRealRegistryRoundTrip_AndStillVerifies()
    {
        var skopeo = RequiredService.Tool("skopeo", "skopeo");
        using var dir = new TempDir("hi-sig-interop");
        using var registry = RegistryFixture.Start();
        var layout = OciLayout.OpenOrCreate(dir.Combine("layout"));
        var image = Digest.Parse(new TestImage().File("hello.txt", "hello from harden\n").WriteTo(layout, tag: "app"));
        var repo = $"{registry.Host}/harden/app";
        using var key = SigningTestData.NewKey();
        var signer = new ImageSigner(new EcdsaFileSigner(ECDsa.Create(key.ExportParameters(true))), new OciLayoutSignatureStore(layout));
        await signer.SignAsync(repo, image);
        var sigTag = CosignSignatureManifest.SignatureTag(image);

        RequiredService.RunOk(skopeo, ["copy", "--dest-tls-verify=false", $"oci:{layout.Root}:app", $"docker://{repo}:v1"]);
        RequiredService.RunOk(skopeo, ["copy", "--dest-tls-verify=false", "--preserve-digests", $"oci:{layout.Root}:{sigTag}", $"docker://{repo}:{sigTag}"]);
        var pushedDigest = RequiredService.RunOk(skopeo, ["inspect", "--tls-verify=false", "--format", "{{.Digest}}", $"docker://{repo}:v1"]).Trim();
        Assert.Equal(image.ToString(), pushedDigest);

        // Pull the signature back through the registry into a fresh layout and verify it there.
        RequiredService.RunOk(skopeo, ["copy", "--src-tls-verify=false", "--preserve-digests", $"docker://{repo}:{sigTag}", $"oci:{dir.Combine("pulled")}:{sigTag}"]);
        var pulled = new OciLayoutSignatureStore(OciLayout.Open(dir.Combine("pulled")));
        var report = await new ImageVerifier(pulled, key).VerifyAsync(image, new VerificationPolicy());
        Assert.True(report.Passed, string.Join("\n", report.Failures));
        Assert.Equal(repo, report.Signatures.Checks.Single(c => c.Valid).Claim!.DockerReference);

        using var stranger = SigningTestData.NewKey();
        Assert.False((await new ImageVerifier(pulled, stranger).VerifyAsync(image, new VerificationPolicy())).Passed);
    }
}
