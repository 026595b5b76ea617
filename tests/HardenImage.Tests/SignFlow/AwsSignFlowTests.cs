using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using HardenImage.Aws;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Signing;
using HardenImage.Tests.Aws;
using HardenImage.Tests.Registry;
using HardenImage.Tests.Signing;

namespace HardenImage.Tests.SignFlow;

/// <summary>
/// The AWS paths of push/sign/verify: ECR (a SigV4-verifying loopback ECR API plus a loopback registry with ECR's
/// quirks) driven through the library services the commands call, and an awskms:// key through the real CLI against a loopback KMS.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AwsSignFlowTests
{
    private const string EcrHost = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    private const string EcrPassword = "ecr-token-password";

    internal static void ServeEcr(SigV4LoopbackServer aws, FakeRegistry registry)
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
            var request = r.Json()!;
            var name = request["repositoryName"]!.GetValue<string>();
            if (registry.Repositories.ContainsKey(name))
                return LoopbackResponse.AwsError(400, "RepositoryAlreadyExistsException", $"The repository with name '{name}' already exists");
            // The registry side enforces what was asked for, as ECR does (default MUTABLE).
            var mutability = request["imageTagMutability"]?.GetValue<string>() ?? "MUTABLE";
            var exclusions = (request["imageTagMutabilityExclusionFilters"] as JsonArray ?? [])
                .Select(f => f!["filter"]!.GetValue<string>()).ToArray();
            registry.TagMutability[name] = (mutability, exclusions);
            registry.EnsureAsync(name).GetAwaiter().GetResult();
            return LoopbackResponse.Json(new JsonObject { ["repository"] = Repository(name, mutability) });
        });
        aws.Handle("ecr", EcrApiClient.TargetPrefix + "DescribeRepositories", r =>
        {
            var name = r.Json()!["repositoryNames"]![0]!.GetValue<string>();
            return LoopbackResponse.Json(new JsonObject
            {
                ["repositories"] = new JsonArray(Repository(name, registry.TagMutability.TryGetValue(name, out var m) ? m.Mutability : "IMMUTABLE")),
            });
        });
    }

    private static JsonObject Repository(string name, string mutability) => new()
    {
        ["repositoryName"] = name,
        ["repositoryArn"] = $"arn:aws:ecr:eu-west-1:123456789012:repository/{name}",
        ["registryId"] = "123456789012",
        ["repositoryUri"] = $"{EcrHost}/{name}",
        ["imageTagMutability"] = mutability,
        ["imageScanningConfiguration"] = new JsonObject { ["scanOnPush"] = true },
    };

    /// <summary>An SBOM and a scan report per architecture, so signing writes several attestations (.att rewritten).</summary>
    private static void WriteSbomAndScan(SignFlowWorkspace ws)
    {
        Directory.CreateDirectory(ws.Combine("artifacts", "sbom"));
        Directory.CreateDirectory(ws.Combine("artifacts", "scan"));
        foreach (var arch in ws.Manifests.Keys)
        {
            File.WriteAllText(ws.Combine("artifacts", "sbom", $"base.{arch}.cdx.json"), new JsonObject
            {
                ["bomFormat"] = "CycloneDX", ["specVersion"] = "1.6", ["serialNumber"] = $"urn:uuid:{Guid.NewGuid()}", ["version"] = 1,
                ["components"] = new JsonArray(new JsonObject
                {
                    ["type"] = "library", ["name"] = "libc6", ["version"] = "2.41-12",
                    ["purl"] = $"pkg:deb/debian/libc6@2.41-12?arch={arch}&distro=debian-13",
                }),
            }.ToJsonString());
            File.WriteAllText(ws.Combine("artifacts", "scan", $"base.{arch}.json"), new JsonObject
            {
                ["scannedAt"] = "2026-11-26T06:00:00Z",
                ["findings"] = new JsonArray(new JsonObject { ["id"] = "CVE-2026-0001", ["package"] = "libc6", ["severity"] = "Low" }),
            }.ToJsonString());
        }
    }

    /// <summary>What 'harden sign' does with a key file: every pushed manifest and index signed and attested.</summary>
    private static async Task SignAsync(RegistryClients clients, SignFlowWorkspace ws, string keyPath, CancellationToken ct)
    {
        var pushed = ImageSetSigner.LoadPushed(ws.Artifacts);
        var signer = await SigningKeys.OpenAsync(SigningKeys.Choose(keyPath, ws.Artifacts), AwsKmsOptions.For(clients.Aws), ct);
        using var disposeSigner = signer as IDisposable;
        var signed = await new ImageSetSigner(signer, clients).SignAsync(pushed, new ImageSetSignRequest
        {
            ArtifactsDir = ws.Artifacts, ImagesDir = ws.Combine("images"), ToolVersion = "test", Insecure = true,
        }, ct);
        // Each platform manifest with SBOM, provenance and vuln; the index with all three covering every platform.
        Assert.Equal(ws.Manifests.Count + 1, signed.Count);
        foreach (var d in signed)
            Assert.Equal(d.IsIndex ? new[] { "provenance", "sbom", "vuln" } : new[] { "sbom", "provenance", "vuln" }, d.Attestations);
    }

    [Fact]
    public async Task Ecr_PushCreatesRepositoryImmutableExceptSignatureTags_SignsSeveralAttestationsTwice_AndAMovedReleaseTagIsRefused()
    {
        await using var aws = new SigV4LoopbackServer(region: "eu-west-1");
        // ECR quirks (201 PATCH, 5 MiB chunks, dropped pushes to missing repositories), immutable tags, and a token
        // endpoint that only accepts the GetAuthorizationToken credentials.
        using var registry = new FakeRegistry(new FakeRegistryMode { Ecr = true, ImmutableTags = true, Bearer = true, TokenCredentials = ("AWS", EcrPassword) });
        ServeEcr(aws, registry);
        using var services = new RegistryClients(new AwsAccess { RepositoryKmsKey = "alias/ecr-at-rest" },
            contextForRegion: region => aws.Context(), registryTransport: () => new RedirectToLoopback(registry.Authority) { InnerHandler = new SocketsHttpHandler() });
        using var ws = new SignFlowWorkspace(seed: 7);
        var ct = CancellationToken.None;

        var pushed = await ImageSetPusher.Open(new ImageSetPushRequest
        {
            Layout = ws.Combine("artifacts", "oci"), ArtifactsDir = ws.Artifacts, CreateRepositories = true, Insecure = true,
        }).Connect(RegistryTarget.Parse(EcrHost + "/team"), services).PushAsync(null, ct);
        Assert.Equal(ws.Index.Digest, pushed.Pushed.Images["base"].Index);
        Assert.True(registry.Repositories.ContainsKey("team/base"));
        var create = aws.ExchangesFor(EcrApiClient.TargetPrefix + "CreateRepository").Single().Request.Json()!;
        Assert.Equal("IMMUTABLE_WITH_EXCLUSION", create["imageTagMutability"]!.GetValue<string>());
        Assert.Equal("""[{"filterType":"WILDCARD","filter":"sha256-*"}]""", create["imageTagMutabilityExclusionFilters"]!.ToJsonString());
        Assert.Equal("123456789012", create["registryId"]!.GetValue<string>()); // the account the registry host names
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
        WriteSbomAndScan(ws);
        await SignAsync(services, ws, keyPath, ct);
        var verified = await new ReferenceVerifier(services).VerifyAsync($"{EcrHost}/team/base@{ws.Manifests["amd64"]}", "provenance,sbom,vuln",
            forbidCritical: false, ws.Combine("ecr-signing.pub"), insecure: true, ct);
        Assert.True(verified.Report.Passed, string.Join("; ", verified.Report.Failures));
        // Several attestations went to the same sha256-<hex>.att tag in one run: ECR accepted the rewrites.
        var attPuts = registry.Requests.Where(r => r.StartsWith("PUT /v2/team/base/manifests/sha256-") && r.EndsWith(".att"))
            .GroupBy(r => r).Max(g => g.Count());
        Assert.True(attPuts >= 2, $"at most {attPuts} write(s) of one .att tag");
        // One token for the whole run: GetAuthorizationToken is cached across push, sign and verify.
        Assert.Single(aws.ExchangesFor(EcrApiClient.TargetPrefix + "GetAuthorizationToken"));
        Assert.All(aws.Exchanges, e => Assert.Null(e.RejectReason));

        // A second signature (re-scan, key rotation) rewrites the sha256-* tags: allowed by the exclusion.
        var secondKey = ws.Combine("ecr-second.pem");
        using (var key = ECDsa.Create(ECCurve.NamedCurves.nistP256)) File.WriteAllText(secondKey, key.ExportPkcs8PrivateKeyPem());
        await SignAsync(services, ws, secondKey, ct);
        Assert.Empty(registry.Rejections);

        // A different image under the same tag: ECR's immutability answer is reported as such.
        using var other = new SignFlowWorkspace(seed: 8);
        var e = await Assert.ThrowsAnyAsync<Exception>(() => ImageSetPusher.Open(new ImageSetPushRequest
        {
            Layout = other.Combine("artifacts", "oci"), ArtifactsDir = other.Artifacts, CreateRepositories = true, Insecure = true,
        }).Connect(RegistryTarget.Parse(EcrHost + "/team"), services).PushAsync(null, ct));
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
