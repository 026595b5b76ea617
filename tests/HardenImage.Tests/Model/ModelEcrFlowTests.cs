using System.Security.Cryptography;
using HardenImage.Aws;
using HardenImage.Cli.Commands;
using HardenImage.Registry;
using HardenImage.Model;
using HardenImage.Tests.Aws;
using HardenImage.Tests.Registry;
using HardenImage.Tests.SignFlow;

namespace HardenImage.Tests.Model;

/// <summary>
/// Models through ECR with the images' code: a SigV4-verifying loopback ECR API and a loopback registry with ECR's
/// quirks (201 PATCH, 5 MiB chunks, dropped pushes to missing repositories, immutable tags but sha256-*, bearer
/// tokens from GetAuthorizationToken), driven in-process through the model commands.
/// </summary>
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

        Assert.Equal(0, await new ModelPushCommand(services).ExecuteAsync(InProcess.Context("push"),
            new ModelPushSettings { Registry = EcrHost + "/team", Artifacts = ws.Artifacts, CreateRepositories = true, Insecure = true }, ct));
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
        Assert.Equal(0, await new ModelSignCommand(services).ExecuteAsync(InProcess.Context("sign"),
            new ModelSignSettings { Artifacts = ws.Artifacts, Key = keyPath, Insecure = true }, ct));
        Assert.Equal(0, await new VerifyCommand(services).ExecuteAsync(InProcess.Context("verify"),
            new VerifySettings { Reference = model.Reference, Key = ws.Combine("release.pub"), Require = "sbom", Insecure = true }, ct));
        Assert.Equal(0, await new ModelFetchCommand(services).ExecuteAsync(InProcess.Context("fetch"),
            new ModelFetchSettings { Reference = model.Reference, Key = ws.Combine("release.pub"), Into = ws.Combine("fetched"), Require = "sbom", Insecure = true }, ct));
        Assert.Equal(File.ReadAllBytes(Path.Combine(modelDir, "neuron", "model.neff")), File.ReadAllBytes(ws.Combine("fetched", "neuron", "model.neff")));
        Assert.Empty(registry.Rejections);
        Assert.All(aws.Exchanges, e => Assert.Null(e.RejectReason));
    }
}
