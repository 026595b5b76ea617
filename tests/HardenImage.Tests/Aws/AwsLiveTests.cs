using System.Text.Json.Nodes;
using HardenImage.Aws;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Aws;

/// <summary>
/// Opt-in checks against real AWS (not reachable from the build machines). Run them with
/// <c>HARDEN_AWS_LIVE=1 AWS_REGION=eu-west-1 dotnet test --filter "Category=AwsLive"</c> and credentials from the
/// default chain (environment, AWS_PROFILE, IRSA web identity, instance role); they must then pass. IAM needed:
/// ecr:GetAuthorizationToken, ecr:DescribeRepositories, inspector-scan:ScanSbom, inspector2:ListFindings.
/// Without HARDEN_AWS_LIVE=1 every test here FAILS with this instruction instead of passing silently, so the
/// default and CI test runs exclude the category explicitly: <c>--filter "Category!=AwsLive"</c>.
/// </summary>
[Trait("Category", "AwsLive")]
public class AwsLiveTests
{
    [Fact]
    public async Task Ecr_GetAuthorizationToken_ReturnsALoginForThisRegion()
    {
        var context = LiveGates.Aws();
        using var ecr = new EcrApiClient(context);
        var auth = await ecr.GetAuthorizationTokenAsync();
        Assert.Equal("AWS", auth.Username);
        Assert.NotEmpty(auth.Password);
        Assert.True(auth.ExpiresAt > DateTimeOffset.UtcNow.AddHours(1));
        Assert.Equal(context.Region, EcrRegistryHost.Parse(auth.ProxyEndpoint.Host).Region);
    }

    [Fact]
    public async Task Ecr_DescribeRepositories_Answers()
    {
        using var ecr = new EcrApiClient(LiveGates.Aws());
        var repositories = await ecr.DescribeRepositoriesAsync();
        Assert.All(repositories, r => Assert.StartsWith("arn:aws", r.Arn));
    }

    [Fact]
    public async Task InspectorScan_SmallSbom_IsAcceptedAndParsed()
    {
        using var inspector = new InspectorScanClient(LiveGates.Aws());
        var sbom = InspectorClientTests.Sbom(0);
        sbom["components"] = new JsonArray(new JsonObject
        {
            ["bom-ref"] = "openssl", ["type"] = "library", ["name"] = "openssl", ["version"] = "3.0.11-1~deb12u1",
            ["purl"] = "pkg:deb/debian/openssl@3.0.11-1~deb12u1?arch=amd64&distro=debian-12",
        });
        sbom.Remove("dependencies");
        var findings = await inspector.ScanSbomAsync(sbom);
        Assert.All(findings, f => Assert.False(string.IsNullOrEmpty(f.Id)));
    }

    [Fact]
    public async Task Inspector2_ListFindings_UnknownDigest_IsEmpty()
    {
        using var inspector2 = new Inspector2FindingsClient(LiveGates.Aws());
        var findings = await inspector2.ListImageFindingsAsync("sha256:" + new string('0', 64));
        Assert.Empty(findings);
    }
}
