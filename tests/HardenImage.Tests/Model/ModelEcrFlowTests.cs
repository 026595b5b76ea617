using System.Security.Cryptography;
using HardenImage.Aws;
using HardenImage.Registry;
using HardenImage.Signing;
using HardenImage.Model;
using HardenImage.Tests.Aws;
using HardenImage.Tests.Registry;
using HardenImage.Tests.SignFlow;

namespace HardenImage.Tests.Model;

/// <summary>
/// Models through ECR with the images' code: a SigV4-verifying loopback ECR API and a loopback registry with ECR's
/// quirks (201 PATCH, 5 MiB chunks, dropped pushes to missing repositories, immutable tags but sha256-*, bearer
/// tokens from GetAuthorizationToken), driven through the library services the model commands call.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ModelEcrFlowTests
{
    private const string EcrHost = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

    [Fact]
    public async Task Ecr_ModelPushCreatesTheRepository_SignsAttestsVerifiesAndFetches()
    {
        await using var aws = new SigV4LoopbackServer(region: "eu-west-1");
        using var registry = new FakeRegistry(new FakeRegistryMode { Ecr = true, ImmutableTags = true, Bearer = true, TokenCredentials = ("AWS", "ecr-token-password") });
        AwsSignFlowTests.ServeEcr(aws, registry);
        using var services = new RegistryClients(new AwsAccess(),
            contextForRegion: _ => aws.Context(), registryTransport: () => new RedirectToLoopback(registry.Authority) { InnerHandler = new SocketsHttpHandler() });
        using var ws = new SignFlowWorkspace();
        var modelDir = ws.Combine("model");
        Directory.CreateDirectory(Path.Combine(modelDir, "neuron"));
        // Over 5 MiB: the weights go up in ECR-sized chunks.
        File.WriteAllBytes(Path.Combine(modelDir, "neuron", "model.neff"), ModelTestKit.Random(3, 6 << 20));
        File.WriteAllText(Path.Combine(modelDir, "config.json"), "{}");
        ws.HardenOk("model", "pack", "model", "--name", "tiny-lm", "--version", "1");
        var ct = CancellationToken.None;

        var (_, pushed) = await ModelPusher.PushArtifactsAsync(ws.Artifacts, RegistryTarget.Parse(EcrHost + "/team"), services,
            new ModelPushRequest(CreateRepositories: true, Insecure: true), null, ct);
        Assert.Equal(["tiny-lm"], pushed.Select(m => m.Name));
        Assert.True(registry.Repositories.ContainsKey("team/models/tiny-lm"));
        Assert.Empty(registry.Rejections);
        var model = ModelRecordFile.Load(Path.Combine(ws.Artifacts, "models.json"))!.Models["tiny-lm"];
        Assert.Equal($"{EcrHost}/team/models/tiny-lm@{model.Digest}", model.Reference);

        var keyPath = ws.Combine("release.pem");
        using (var key = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        {
            File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
            File.WriteAllText(ws.Combine("release.pub"), key.ExportSubjectPublicKeyInfoPem());
        }
        var signer = await SigningKeys.OpenAsync(SigningKeys.Choose(keyPath, ws.Artifacts), AwsKmsOptions.For(services.Aws), ct);
        using (signer as IDisposable)
        {
            var signed = await new ModelSigner(signer, services).SignAsync(ModelSigner.LoadRecord(ws.Artifacts), ws.Artifacts, null, insecure: true, ct);
            Assert.Equal(["tiny-lm"], signed.Select(s => s.Name));
        }
        var verified = await new ReferenceVerifier(services).VerifyAsync(model.Reference, "sbom", forbidCritical: false, ws.Combine("release.pub"), insecure: true, ct);
        Assert.True(verified.Report.Passed, string.Join("; ", verified.Report.Failures));
        var fetched = await ModelFetcher.FetchReferenceAsync(services, model.Reference, ws.Combine("release.pub"), ws.Combine("fetched"), "sbom", insecure: true, null, ct);
        Assert.True(fetched.Verification.Passed);
        Assert.Equal(File.ReadAllBytes(Path.Combine(modelDir, "neuron", "model.neff")), File.ReadAllBytes(ws.Combine("fetched", "neuron", "model.neff")));
        Assert.Empty(registry.Rejections);
        Assert.All(aws.Exchanges, e => Assert.Null(e.RejectReason));
    }
}
