using System.Text;
using System.Text.Json.Nodes;
using Amazon.Runtime;
using HardenImage.Aws;
using HardenImage.Common;

namespace HardenImage.Tests.Aws;

/// <summary>ECR control-plane calls against <see cref="SigV4LoopbackServer"/>, which verifies every signature independently.</summary>
public class EcrApiClientTests
{
    private const string Target = EcrApiClient.TargetPrefix;
    private const string Password = "eyJwYXlsb2FkIjoiZmFrZS1lY3ItcGFzc3dvcmQifQ==";

    private static LoopbackResponse TokenAnswer(DateTimeOffset expiresAt, string account = "123456789012", string region = "us-east-1") =>
        LoopbackResponse.Json(new JsonObject
        {
            ["authorizationData"] = new JsonArray(new JsonObject
            {
                ["authorizationToken"] = Convert.ToBase64String(Encoding.UTF8.GetBytes("AWS:" + Password)),
                ["expiresAt"] = expiresAt.ToUnixTimeMilliseconds() / 1000.0,
                ["proxyEndpoint"] = $"https://{account}.dkr.ecr.{region}.amazonaws.com",
            }),
        });

    private static JsonObject RepositoryJson(string name, string mutability = "IMMUTABLE") => new()
    {
        ["repositoryArn"] = $"arn:aws:ecr:us-east-1:123456789012:repository/{name}",
        ["registryId"] = "123456789012",
        ["repositoryName"] = name,
        ["repositoryUri"] = $"123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}",
        ["imageTagMutability"] = mutability,
        ["imageScanningConfiguration"] = new JsonObject { ["scanOnPush"] = true },
        ["encryptionConfiguration"] = new JsonObject { ["encryptionType"] = "AES256" },
    };

    [Trait("Category", "Integration")]
    [Fact]
    public async Task GetAuthorizationToken_DecodesPasswordAndCachesUntilFiveMinutesBeforeExpiry()
    {
        await using var aws = new SigV4LoopbackServer();
        var clock = new SigV4SuiteTests.FixedClock(DateTimeOffset.UtcNow);
        aws.Clock = () => clock.Now;
        var expiresAt = clock.Now.AddHours(12);
        aws.Handle("ecr", Target + "GetAuthorizationToken", _ => TokenAnswer(expiresAt));
        using var ecr = new EcrApiClient(aws.Context(clock));

        var auth = await ecr.GetAuthorizationTokenAsync("123456789012");
        Assert.Equal("AWS", auth.Username);
        Assert.Equal(Password, auth.Password);
        Assert.Equal(new Uri("https://123456789012.dkr.ecr.us-east-1.amazonaws.com"), auth.ProxyEndpoint);
        Assert.Equal(expiresAt.ToUnixTimeSeconds(), auth.ExpiresAt.ToUnixTimeSeconds());
        Assert.DoesNotContain(Password, auth.ToString());

        var sent = aws.ExchangesFor(Target + "GetAuthorizationToken").Single();
        Assert.Equal(200, sent.Status);
        Assert.Equal("123456789012", sent.Request.Json()!["registryIds"]![0]!.GetValue<string>());

        clock.Now = expiresAt - TimeSpan.FromMinutes(6);
        Assert.Same(auth, await ecr.GetAuthorizationTokenAsync("123456789012"));
        Assert.Single(aws.ExchangesFor(Target + "GetAuthorizationToken"));

        clock.Now = expiresAt - TimeSpan.FromMinutes(4);
        expiresAt = clock.Now.AddHours(12);
        var renewed = await ecr.GetAuthorizationTokenAsync("123456789012");
        Assert.NotSame(auth, renewed);
        Assert.Equal(2, aws.ExchangesFor(Target + "GetAuthorizationToken").Count);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task CreateRepository_SendsImmutableTagsExceptSignatureTags_ScanOnPushKmsKeyAndRegistryId()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("ecr", Target + "CreateRepository", r =>
            LoopbackResponse.Json(new JsonObject { ["repository"] = RepositoryJson(r.Json()!["repositoryName"]!.GetValue<string>(), "IMMUTABLE_WITH_EXCLUSION") }));
        using var ecr = new EcrApiClient(aws.Context());

        var repo = await ecr.CreateRepositoryAsync("hardened/python", "alias/harden-images", registryId: "210987654321");

        Assert.Equal("hardened/python", repo.Name);
        Assert.Equal("IMMUTABLE_WITH_EXCLUSION", repo.ImageTagMutability);
        var request = aws.ExchangesFor(Target + "CreateRepository").Single().Request;
        Assert.Equal("POST", request.Method);
        Assert.Equal("/", request.Target);
        Assert.Equal("application/x-amz-json-1.1", request.Header("Content-Type"));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""
            {"registryId":"210987654321","repositoryName":"hardened/python","imageTagMutability":"IMMUTABLE_WITH_EXCLUSION",
             "imageTagMutabilityExclusionFilters":[{"filterType":"WILDCARD","filter":"sha256-*"}],
             "imageScanningConfiguration":{"scanOnPush":true},
             "encryptionConfiguration":{"encryptionType":"KMS","kmsKey":"alias/harden-images"}}
            """), request.Json()), request.BodyText);
        Assert.Contains("x-amz-content-sha256", request.Header("Authorization"));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task CreateRepository_WithoutKmsKey_SendsNoEncryptionConfiguration()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("ecr", Target + "CreateRepository", r => LoopbackResponse.Json(new JsonObject { ["repository"] = RepositoryJson("base") }));
        using var ecr = new EcrApiClient(aws.Context());
        await ecr.CreateRepositoryAsync("base");
        Assert.Null(aws.ExchangesFor(Target + "CreateRepository").Single().Request.Json()!["encryptionConfiguration"]);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task EnsureRepository_ToleratesRepositoryAlreadyExists()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("ecr", Target + "CreateRepository", _ =>
            LoopbackResponse.AwsError(400, "RepositoryAlreadyExistsException", "The repository with name 'base' already exists"));
        aws.Handle("ecr", Target + "DescribeRepositories", r =>
        {
            Assert.Equal("base", r.Json()!["repositoryNames"]![0]!.GetValue<string>());
            return LoopbackResponse.Json(new JsonObject { ["repositories"] = new JsonArray(RepositoryJson("base")) });
        });
        IEcrRepositories ecr = new EcrApiClient(aws.Context());

        var repo = await ecr.EnsureRepositoryAsync("base");

        Assert.Equal("base", repo.Name);
        Assert.Equal("123456789012.dkr.ecr.us-east-1.amazonaws.com/base", repo.Uri);
        Assert.Single(aws.ExchangesFor(Target + "CreateRepository"));
        Assert.Single(aws.ExchangesFor(Target + "DescribeRepositories"));
        ((IDisposable)ecr).Dispose();
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task PutImage_OnExistingImmutableTag_SaysTagIsImmutable()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("ecr", Target + "PutImage", _ => LoopbackResponse.AwsError(400, "ImageTagAlreadyExistsException",
            "The image tag '1.0' already exists in the 'base' repository and cannot be overwritten because the repository is immutable."));
        using var ecr = new EcrApiClient(aws.Context());

        var e = await Assert.ThrowsAsync<HardenException>(() =>
            ecr.PutImageAsync("base", "1.0", "{}", "application/vnd.oci.image.manifest.v1+json"));

        Assert.Contains("tag is immutable", e.Message);
        Assert.Contains("base:1.0", e.Message);
        Assert.Single(aws.ExchangesFor(Target + "PutImage")); // not retried
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task DescribeRepositories_MissingRepository_SaysCreateItFirst()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("ecr", Target + "DescribeRepositories", _ =>
            LoopbackResponse.AwsError(400, "RepositoryNotFoundException", "The repository with name 'nope' does not exist"));
        using var ecr = new EcrApiClient(aws.Context());
        var e = await Assert.ThrowsAsync<HardenException>(() => ecr.DescribeRepositoriesAsync(["nope"]));
        Assert.Contains("'nope' does not exist in us-east-1", e.Message);
        Assert.Contains("Create it first", e.Message);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Throttling_IsRetriedWithBackoffThenSucceeds()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("ecr", Target + "GetAuthorizationToken", _ => TokenAnswer(DateTimeOffset.UtcNow.AddHours(12)));
        aws.InjectThrottling(Target + "GetAuthorizationToken", 3, LoopbackThrottle.ThrottlingException400);
        using var ecr = new EcrApiClient(aws.Context());

        var auth = await ecr.GetAuthorizationTokenAsync();

        Assert.Equal(Password, auth.Password);
        var calls = aws.ExchangesFor(Target + "GetAuthorizationToken");
        Assert.Equal(new[] { 400, 400, 400, 200 }, calls.Select(c => c.Status));
        Assert.All(calls, c => Assert.Null(c.RejectReason)); // every retry was freshly and correctly signed
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Throttling429And5xx_AreRetriedToo()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("ecr", Target + "DescribeRepositories", _ => LoopbackResponse.Json(new JsonObject { ["repositories"] = new JsonArray() }));
        aws.InjectThrottling(Target + "DescribeRepositories", 1, LoopbackThrottle.TooManyRequests429);
        using var ecr = new EcrApiClient(aws.Context());
        Assert.Empty(await ecr.DescribeRepositoriesAsync());
        aws.InjectThrottling(Target + "DescribeRepositories", 1, LoopbackThrottle.ServiceUnavailable503);
        Assert.Empty(await ecr.DescribeRepositoriesAsync());
        Assert.Equal(new[] { 429, 200, 503, 200 }, aws.ExchangesFor(Target + "DescribeRepositories").Select(c => c.Status));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Throttling_GivesUpAfterBoundedRetries()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("ecr", Target + "GetAuthorizationToken", _ => TokenAnswer(DateTimeOffset.UtcNow.AddHours(12)));
        aws.InjectThrottling(Target + "GetAuthorizationToken", 100);
        using var ecr = new EcrApiClient(aws.Context(maxRetryAttempts: 2));

        var e = await Assert.ThrowsAsync<AwsServiceException>(() => ecr.GetAuthorizationTokenAsync());

        Assert.Equal("ThrottlingException", e.ErrorCode);
        Assert.Equal(3, aws.ExchangesFor(Target + "GetAuthorizationToken").Count);
        Assert.Equal(3, ecr.Attempts);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task WrongSecret_IsRejectedByServerWith403_AndClientReportsSignatureProblem()
    {
        await using var aws = new SigV4LoopbackServer();
        var handled = 0;
        aws.Handle("ecr", Target + "GetAuthorizationToken", _ => { handled++; return TokenAnswer(DateTimeOffset.UtcNow.AddHours(12)); });
        var wrong = new BasicAWSCredentials(SigV4LoopbackServer.DefaultAccessKeyId, "wrong-secret-wrong-secret-wrong-secret00");
        using var ecr = new EcrApiClient(aws.Context(credentials: wrong));

        var e = await Assert.ThrowsAsync<AwsServiceException>(() => ecr.GetAuthorizationTokenAsync());

        Assert.Equal("InvalidSignatureException", e.ErrorCode);
        Assert.Contains("signature", e.Message);
        Assert.DoesNotContain("wrong-secret", e.Message);
        var exchange = Assert.Single(aws.Exchanges); // 403 is not retried
        Assert.Equal(403, exchange.Status);
        Assert.Contains("does not match", exchange.RejectReason);
        Assert.Equal(0, handled);

        // Same server, right secret: accepted. The server is checking, not refusing everything.
        using var good = new EcrApiClient(aws.Context());
        Assert.Equal(Password, (await good.GetAuthorizationTokenAsync()).Password);
        Assert.Equal(1, handled);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task SessionCredentials_SignTheSecurityToken()
    {
        var session = new TestCredential("ASIALOOPBACKSESSION", "session/secret/for/loopback/tests000000", "FQoGZXIvYXdzEXAMPLETOKEN//+==");
        await using var aws = new SigV4LoopbackServer(credential: session);
        aws.Handle("ecr", Target + "GetAuthorizationToken", _ => TokenAnswer(DateTimeOffset.UtcNow.AddHours(12)));
        using var ecr = new EcrApiClient(aws.Context());
        await ecr.GetAuthorizationTokenAsync();
        var request = aws.Exchanges.Single().Request;
        Assert.Equal(session.SessionToken, request.Header("X-Amz-Security-Token"));
        Assert.Contains("x-amz-security-token", request.Header("Authorization"));

        using var noToken = new EcrApiClient(aws.Context(credentials: new BasicAWSCredentials(session.AccessKeyId, session.SecretAccessKey)));
        var e = await Assert.ThrowsAsync<AwsServiceException>(() => noToken.GetAuthorizationTokenAsync());
        Assert.Equal(403, (int)e.StatusCode);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task RequestSignedForAnotherService_IsRejected()
    {
        await using var aws = new SigV4LoopbackServer();
        // The route belongs to "inspector2"; the ECR client signs for "ecr".
        aws.Handle("inspector2", Target + "GetAuthorizationToken", _ => TokenAnswer(DateTimeOffset.UtcNow.AddHours(12)));
        using var ecr = new EcrApiClient(aws.Context());
        var e = await Assert.ThrowsAsync<AwsServiceException>(() => ecr.GetAuthorizationTokenAsync());
        Assert.Equal("InvalidSignatureException", e.ErrorCode);
        Assert.Equal("ecr", aws.Exchanges.Single().Service);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task CredentialProvider_UsesAccountAndRegionFromRegistryHost()
    {
        await using var aws = new SigV4LoopbackServer(region: "eu-west-1");
        aws.Handle("ecr", Target + "GetAuthorizationToken", r => TokenAnswer(DateTimeOffset.UtcNow.AddHours(12),
            r.Json()!["registryIds"]![0]!.GetValue<string>(), "eu-west-1"));
        using var provider = new EcrCredentialProvider(new AwsContext(aws.Credentials, "us-east-1", aws.Endpoint, 0, TimeSpan.FromMilliseconds(5)));

        var auth = await provider.GetCredentialAsync("210987654321.dkr.ecr.eu-west-1.amazonaws.com");
        Assert.Equal(("AWS", Password), (auth.Username, auth.Password));
        Assert.Equal("210987654321", aws.Exchanges.Single().Request.Json()!["registryIds"]![0]!.GetValue<string>());
        await provider.GetCredentialAsync("210987654321.dkr.ecr.eu-west-1.amazonaws.com/some/repo");
        Assert.Single(aws.Exchanges); // cached

        // A host in another region is signed for that region, which this eu-west-1 server refuses.
        await Assert.ThrowsAsync<AwsServiceException>(() => provider.GetCredentialAsync("210987654321.dkr.ecr.us-east-2.amazonaws.com"));
        Assert.Contains("us-east-2", aws.Exchanges[^1].RejectReason);
        Assert.Throws<HardenException>(() => { provider.GetCredentialAsync("registry.example.com").GetAwaiter().GetResult(); });
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task UnreachableEndpoint_FailsWithMessageNamingIt()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there now
        using var ecr = new EcrApiClient(new AwsContext(new BasicAWSCredentials("AKIDX", "secret"), "us-east-1",
            new Uri($"http://127.0.0.1:{port}/"), 1, TimeSpan.FromMilliseconds(5)));

        var e = await Assert.ThrowsAsync<HardenException>(() => ecr.GetAuthorizationTokenAsync());

        Assert.Contains("Cannot reach AWS ecr", e.Message);
        Assert.Contains($"127.0.0.1:{port}", e.Message);
        Assert.Contains("after 2 attempt(s)", e.Message);
    }

    [Theory]
    [InlineData("123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012", "us-east-1", null)]
    [InlineData("123456789012.dkr.ecr.eu-central-1.amazonaws.com/hardened/python", "123456789012", "eu-central-1", "hardened/python")]
    [InlineData("https://123456789012.dkr.ecr.us-gov-west-1.amazonaws.com/base:1.0", "123456789012", "us-gov-west-1", "base")]
    [InlineData("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com/base@sha256:abc", "123456789012", "us-east-1", "base")]
    [InlineData("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app", "123456789012", "cn-north-1", "app")]
    public void RegistryHost_ParsesAccountRegionAndRepository(string reference, string account, string region, string? repo)
    {
        var host = EcrRegistryHost.Parse(reference);
        Assert.Equal((account, region, repo), (host.AccountId, host.Region, host.Repository));
    }

    [Theory]
    [InlineData("docker.io/library/python")]
    [InlineData("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example/repo")]
    [InlineData("12345.dkr.ecr.us-east-1.amazonaws.com")]
    [InlineData("123456789012.dkr.ecr.us-east-1.example.com")]
    [InlineData("123456789012.dkr.ecr.US_EAST.amazonaws.com")]
    public void RegistryHost_RejectsLookAlikes(string reference) => Assert.False(EcrRegistryHost.TryParse(reference, out _));

    [Theory]
    [InlineData("team/python-base")]
    [InlineData("a__b")]
    [InlineData("a---b")]
    [InlineData("team.x/py_thon/v1.2")]
    public void RepositoryName_FollowsEcrsModelPattern_Accepted(string name) => Assert.Equal(name, EcrApiClient.ValidateRepositoryName(name));

    [Theory]
    [InlineData("a___b")]
    [InlineData("a..b")]
    [InlineData("Team/base")]
    [InlineData("-team")]
    [InlineData("team/")]
    [InlineData("team//base")]
    [InlineData("a")]
    [InlineData("team/base:1.0")]
    public void RepositoryName_OutsideEcrsModelPattern_IsRefusedBeforeAnyCall(string name)
    {
        var e = Assert.Throws<HardenException>(() => EcrApiClient.ValidateRepositoryName(name));
        Assert.Contains($"'{name}' is not a valid ECR repository name", e.Message);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Throttled_WithRetryAfter_WaitsAsToldBeforeTheNextAttempt()
    {
        await using var aws = new SigV4LoopbackServer();
        var calls = 0;
        aws.Handle("ecr", Target + "DescribeRepositories", _ => Interlocked.Increment(ref calls) == 1
            ? LoopbackResponse.AwsError(429, "ThrottlingException", "Rate exceeded") with
            {
                Headers = new Dictionary<string, string> { ["x-amzn-ErrorType"] = "ThrottlingException", ["Retry-After"] = "2" },
            }
            : LoopbackResponse.Json(new JsonObject { ["repositories"] = new JsonArray() }));
        using var ecr = new EcrApiClient(aws.Context()); // own back-off: 5 ms
        var sw = System.Diagnostics.Stopwatch.StartNew();

        Assert.Empty(await ecr.DescribeRepositoriesAsync());

        Assert.Equal(2, calls);
        // A lower bound only: the wait cannot be shorter than what the server asked for.
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(1.9), $"retried after {sw.Elapsed}, Retry-After said 2 s");
    }
}
