using System.Text.Json.Nodes;
using HardenImage.Aws;
using HardenImage.Scan;
using HardenImage.Tests.Registry;
using HardenImage.Tests.SignFlow;
using static HardenImage.Tests.Scan.InspectorFindingSourceTests;

namespace HardenImage.Tests.Aws;

/// <summary>
/// Neither our clients nor our loopback AWS may drift from AWS: every operation our ECR, Inspector2 and Inspector
/// Scan clients call is driven against the loopback handlers the other tests use, and every request and every
/// answer is validated against the operation's shapes in AWS's own botocore models (TestData/Aws/models).
/// </summary>
public sealed class AwsModelConformanceTests
{
    private static readonly Dictionary<string, BotocoreModel> Models = new(StringComparer.Ordinal)
    {
        ["ecr"] = BotocoreModel.Load("ecr"),
        ["inspector2"] = BotocoreModel.Load("inspector2"),
        ["inspector-scan"] = BotocoreModel.Load("inspector-scan"),
    };

    /// <summary>Deprecated members we still send, each with the reason.</summary>
    private static readonly Dictionary<string, string> KnownDeprecated = new(StringComparer.Ordinal)
    {
        // ECR ignores it (a token is valid for every registry the caller may use) but it keeps the token cache per registry.
        ["GetAuthorizationToken $.registryIds"] = "still accepted; documented as ignored",
    };

    [Trait("Category", "Integration")]
    [Fact]
    public async Task EveryRequestOurClientsSend_AndEveryLoopbackAnswer_MatchesTheBotocoreModels()
    {
        await using var aws = new SigV4LoopbackServer(region: "eu-west-1");
        using var registry = new FakeRegistry(new FakeRegistryMode { Ecr = true });
        AwsSignFlowTests.ServeEcr(aws, registry);
        aws.Handle("ecr", ScanStatusTarget, ScanStatusAnswer("none", "PENDING", "COMPLETE"));
        aws.Handle("ecr", EcrApiClient.TargetPrefix + "PutImage", _ => LoopbackResponse.AwsError(400, "ImageTagAlreadyExistsException",
            "The image tag '1.0' already exists in the 'team/base' repository and cannot be overwritten because the repository is immutable."));
        aws.Handle("inspector2", FindingsRoute, ListFindingsAnswer(new Dictionary<string, (string, string, string, double, string?)[][]>
        {
            [Digest('a')] = ThreePages,
        }, id => id == "CVE-2099-1001" ? "SUPPRESSED" : "ACTIVE"));
        aws.Handle("inspector-scan", ScanRoute, CycloneDxAnswer(TrixieVulnerabilities));

        using (var ecr = new EcrApiClient(aws.Context()))
        {
            await ecr.GetAuthorizationTokenAsync("123456789012");
            await ecr.EnsureRepositoryAsync("team/base", "alias/ecr-at-rest", "123456789012");
            await ecr.EnsureRepositoryAsync("team/base", null, "123456789012"); // exists: CreateRepository fails, DescribeRepositories answers
            Assert.Null(await ecr.DescribeImageScanStatusAsync("team/base", Digest('a'), "123456789012"));
            Assert.True((await ecr.DescribeImageScanStatusAsync("team/base", Digest('a'), "123456789012"))!.IsPending);
            Assert.True((await ecr.DescribeImageScanStatusAsync("team/base", Digest('a')))!.IsReady);
            await Assert.ThrowsAnyAsync<HardenImage.Common.HardenException>(() =>
                ecr.PutImageAsync("team/base", "1.0", "{}", "application/vnd.oci.image.manifest.v1+json"));
        }
        using (var inspector2 = new Inspector2FindingsClient(aws.Context()))
            Assert.Equal(4, (await inspector2.ListImageFindingsAsync(Digest('a'))).Count);
        using (var inspector = new InspectorFindingSource(aws.Context()))
            Assert.NotEmpty(await inspector.GetFindingsAsync(TrixieImage(), CancellationToken.None));

        var exchanges = aws.Exchanges;
        var operations = new HashSet<string>();
        var problems = new List<string>();
        foreach (var x in exchanges)
        {
            Assert.Null(x.RejectReason);
            var model = Models[x.Service!];
            var operation = model.OperationOf(x.Request.Method, x.Request.Path, x.Request.Header("X-Amz-Target"));
            Assert.True(operation != null, $"{x.Service} {x.Request.Method} {x.Request.Path}: no such operation in the model");
            operations.Add($"{x.Service}:{operation}");
            foreach (var p in model.Validate(model.InputShape(operation!)!, x.Request.Json()))
                if (!KnownDeprecated.ContainsKey($"{operation} {p.Split(':')[0]}")) problems.Add($"request {operation}: {p}");
            var answer = string.IsNullOrEmpty(x.ResponseBody) ? null : JsonNode.Parse(x.ResponseBody);
            if (x.Status is >= 200 and < 300)
            {
                foreach (var p in model.Validate(model.OutputShape(operation!)!, answer)) problems.Add($"answer to {operation}: {p}");
            }
            else
            {
                var type = answer?["__type"]?.GetValue<string>() ?? x.ErrorType ?? "";
                if (!model.Errors(operation!).Contains(type)) problems.Add($"answer to {operation}: error '{type}' is not one the model lets {operation} return");
            }
        }

        Assert.Empty(problems);
        // Every operation our clients implement was exercised (a new one without a loopback answer shows up here).
        Assert.Equal(new[]
        {
            "ecr:CreateRepository", "ecr:DescribeImageScanFindings", "ecr:DescribeRepositories", "ecr:GetAuthorizationToken", "ecr:PutImage",
            "inspector-scan:ScanSbom", "inspector2:ListFindings",
        }, operations.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("ecr", "CreateRepositoryRequest", """{"repositoryName":"team/base","imageTagMutability":"IMMUTABLE_WITH_EXCLUSIONS"}""", "is not one of")]
    [InlineData("ecr", "CreateRepositoryRequest", """{"repositoryName":"Team/Base"}""", "does not match")]
    [InlineData("ecr", "CreateRepositoryRequest", """{"repositoryName":"team/base","imageTagMutabilityExclusionFilters":[]}""", "below")]
    [InlineData("ecr", "CreateRepositoryRequest", """{"imageTagMutability":"IMMUTABLE"}""", "required member 'repositoryName'")]
    [InlineData("ecr", "CreateRepositoryRequest", """{"repositoryName":"team/base","scanOnPush":true}""", "is not a member")]
    [InlineData("ecr", "DescribeImageScanFindingsRequest", """{"repositoryName":"team/base","imageId":{},"registryId":"12345"}""", "does not match")]
    [InlineData("inspector2", "ListFindingsRequest", """{"maxResults":101}""", "above")]
    [InlineData("inspector2", "ListFindingsRequest", """{"filterCriteria":{"findingStatus":[{"comparison":"EQUALS","value":"OPEN"}]}}""", "")]
    [InlineData("ecr", "DescribeImageScanFindingsResponse", """{"imageScanStatus":{"status":"DONE"}}""", "is not one of")]
    public void Validator_RefusesWhatTheModelForbids(string service, string shape, string json, string reason)
    {
        var problems = Models[service].Validate(shape, JsonNode.Parse(json));
        if (reason.Length == 0)
        {
            // findingStatus values are free strings in the model (StringInput); the enum lives on Finding.status.
            Assert.Empty(problems);
            return;
        }
        Assert.Contains(problems, p => p.Contains(reason));
    }
}
