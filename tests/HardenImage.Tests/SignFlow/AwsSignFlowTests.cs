using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using HardenImage.Aws;
using HardenImage.Cli.Commands;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Signing;
using HardenImage.Tests.Aws;
using HardenImage.Tests.Registry;
using HardenImage.Tests.Signing;

namespace HardenImage.Tests.SignFlow;

/// <summary>
/// The AWS paths of push/sign/verify: ECR (a SigV4-verifying loopback ECR API plus a loopback registry with ECR's
/// quirks) driven in-process through the commands, and an awskms:// key through the real CLI against a loopback KMS.
/// </summary>
public sealed class AwsSignFlowTests
{
    private const string EcrHost = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    private const string EcrPassword = "ecr-token-password";

    private static void ServeEcr(SigV4LoopbackServer aws, FakeRegistry registry)
    {
        aws.Handle("ecr", EcrApiClient.TargetPrefix + "GetAuthorizationToken", _ => LoopbackResponse.Json(new JsonObject
        {
            ["authorizationData"] = new JsonArray(new JsonObject
            {
                ["authorizationToken"] = Convert.ToBase64String(Encoding.UTF8.GetBytes("AWS:" + EcrPassword)),
                ["expiresAt"] = DateTimeOffset.UtcNow.AddHours(12).ToUnixTimeSeconds(),
                ["proxyEndpoint"] = "https://" + EcrHost,
            }),
        }));
        aws.Handle("ecr", EcrApiClient.TargetPrefix + "CreateRepository", r =>
        {
            var name = r.Json()!["repositoryName"]!.GetValue<string>();
            if (registry.Repositories.ContainsKey(name))
                return LoopbackResponse.AwsError(400, "RepositoryAlreadyExistsException", $"The repository with name '{name}' already exists");
            registry.EnsureAsync(name).GetAwaiter().GetResult();
            return LoopbackResponse.Json(new JsonObject { ["repository"] = Repository(name) });
        });
        aws.Handle("ecr", EcrApiClient.TargetPrefix + "DescribeRepositories", r => LoopbackResponse.Json(new JsonObject
        {
            ["repositories"] = new JsonArray(Repository(r.Json()!["repositoryNames"]![0]!.GetValue<string>())),
        }));
    }

    private static JsonObject Repository(string name) => new()
    {
        ["repositoryName"] = name,
        ["repositoryArn"] = $"arn:aws:ecr:eu-west-1:123456789012:repository/{name}",
        ["registryId"] = "123456789012",
        ["repositoryUri"] = $"{EcrHost}/{name}",
        ["imageTagMutability"] = "IMMUTABLE",
        ["imageScanningConfiguration"] = new JsonObject { ["scanOnPush"] = true },
    };

    [Fact]
    public async Task Ecr_PushCreatesImmutableRepository_UsesTheToken_SignsAndVerifies_AndAMovedTagIsRefused()
    {
        await using var aws = new SigV4LoopbackServer(region: "eu-west-1");
        // ECR quirks (201 PATCH, 5 MiB chunks, dropped pushes to missing repositories), immutable tags, and a token
        // endpoint that only accepts the GetAuthorizationToken credentials.
        using var registry = new FakeRegistry(new FakeRegistryMode { Ecr = true, ImmutableTags = true, Bearer = true, TokenCredentials = ("AWS", EcrPassword) });
        ServeEcr(aws, registry);
        using var services = new RegistryServices(new AwsCommandOptions { RepositoryKmsKey = "alias/ecr-at-rest" },
            contextForRegion: region => aws.Context(), registryTransport: () => new RedirectToLoopback(registry.Authority) { InnerHandler = new SocketsHttpHandler() });
        using var ws = new SignFlowWorkspace(seed: 7);
        var ct = CancellationToken.None;

        var pushed = await new PushCommand(services.ForPush()).ExecuteAsync(InProcess.Context("push"), new PushSettings
        {
            Registry = EcrHost + "/team", Layout = ws.Combine("artifacts", "oci"), Artifacts = ws.Artifacts, CreateRepositories = true, Insecure = true,
        }, ct);
        Assert.Equal(0, pushed);
        Assert.True(registry.Repositories.ContainsKey("team/base"));
        var create = aws.ExchangesFor(EcrApiClient.TargetPrefix + "CreateRepository").Single().Request.Json()!;
        Assert.Equal("IMMUTABLE", create["imageTagMutability"]!.GetValue<string>());
        Assert.True(create["imageScanningConfiguration"]!["scanOnPush"]!.GetValue<bool>());
        Assert.Equal("alias/ecr-at-rest", create["encryptionConfiguration"]!["kmsKey"]!.GetValue<string>());
        Assert.True(registry.TokenRequests >= 1);
        Assert.Empty(registry.Rejections);

        var keyPath = ws.Combine("ecr-signing.pem");
        using (var key = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        {
            File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
            File.WriteAllText(ws.Combine("ecr-signing.pub"), key.ExportSubjectPublicKeyInfoPem());
        }
        Assert.Equal(0, await new SignCommand(services).ExecuteAsync(InProcess.Context("sign"),
            new SignSettings { Artifacts = ws.Artifacts, ImagesDir = ws.Combine("images"), Key = keyPath, Insecure = true }, ct));
        Assert.Equal(0, await new VerifyCommand(services).ExecuteAsync(InProcess.Context("verify"),
            new VerifySettings { Reference = $"{EcrHost}/team/base@{ws.Index.Digest}", Key = ws.Combine("ecr-signing.pub"), Require = "provenance", Insecure = true }, ct));
        // One token for the whole run: GetAuthorizationToken is cached across push, sign and verify.
        Assert.Single(aws.ExchangesFor(EcrApiClient.TargetPrefix + "GetAuthorizationToken"));
        Assert.All(aws.Exchanges, e => Assert.Null(e.RejectReason));

        // A second signer on an immutable repository would move the .sig tag: refused, saying what to do.
        var secondKey = ws.Combine("ecr-second.pem");
        using (var key = ECDsa.Create(ECCurve.NamedCurves.nistP256)) File.WriteAllText(secondKey, key.ExportPkcs8PrivateKeyPem());
        var resign = await Assert.ThrowsAsync<HardenImage.Common.HardenException>(() => new SignCommand(services).ExecuteAsync(InProcess.Context("sign"),
            new SignSettings { Artifacts = ws.Artifacts, ImagesDir = ws.Combine("images"), Key = secondKey, Insecure = true }, ct));
        Assert.Contains("tag is immutable", resign.Message);
        Assert.Contains("IMMUTABLE_WITH_EXCLUSION", resign.Message);

        // A different image under the same tag: ECR's immutability answer is reported as such.
        using var other = new SignFlowWorkspace(seed: 8);
        var e = await Assert.ThrowsAnyAsync<Exception>(() => new PushCommand(services.ForPush()).ExecuteAsync(InProcess.Context("push"), new PushSettings
        {
            Registry = EcrHost + "/team", Layout = other.Combine("artifacts", "oci"), Artifacts = other.Artifacts, CreateRepositories = true, Insecure = true,
        }, ct));
        Assert.Contains("tag is immutable", e.Message);
    }

    [Fact]
    public void AwsKms_SignWithLoopbackKms_VerifiesWithItsPublicKeyAndWithTheKmsReference()
    {
        using var kmsKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var kms = new FakeKmsServer(kmsKey);
        using var ws = new SignFlowWorkspace(seed: 9);
        var env = new Dictionary<string, string>
        {
            ["AWS_ACCESS_KEY_ID"] = "AKIDTEST",
            ["AWS_SECRET_ACCESS_KEY"] = "kms-loopback-secret",
            ["AWS_REGION"] = "us-west-2",
            ["AWS_EC2_METADATA_DISABLED"] = "true",
        };
        ws.HardenOk("push");
        var signed = ws.HardenOk(env, "sign", "--key", "awskms:///alias/harden", "--aws-endpoint", kms.Url, "--aws-region", "us-west-2");
        Assert.DoesNotContain("DEVELOPMENT SIGNING KEY", signed);
        Assert.Contains("TrentService.Sign", kms.Targets);
        Assert.Empty(kms.Problems);

        File.WriteAllText(ws.Combine("kms.pub"), kmsKey.ExportSubjectPublicKeyInfoPem());
        var reference = $"oci:artifacts/registry/base@{ws.Index.Digest}";
        ws.HardenOk("verify", reference, "--key", ws.Combine("kms.pub"), "--require", "provenance");
        ws.HardenOk(env, "verify", reference, "--key", "awskms:///alias/harden", "--aws-endpoint", kms.Url, "--require", "provenance");
        // No local key was involved: a key generated here does not verify the KMS signatures.
        var stranger = new KeyPairGenerator().WriteTo(ws.Combine("stranger"), "x", overwrite: false);
        Assert.NotEqual(0, ws.Harden("verify", reference, "--key", stranger.PublicKeyPath).Code);
    }
}
