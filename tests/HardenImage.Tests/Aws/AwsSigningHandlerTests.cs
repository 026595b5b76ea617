using System.Text;
using System.Text.Json.Nodes;
using HardenImage.Aws;

namespace HardenImage.Tests.Aws;

/// <summary>
/// Dangers the signature must catch on the way: a body or header changed after signing (Tampering) and a replayed or
/// badly clocked request (Spoofing). A handler below <see cref="AwsSigningHandler"/> plays the man in the middle.
/// </summary>
[Trait("Category", "Integration")]
public class AwsSigningHandlerTests
{
    private const string Operation = EcrApiClient.TargetPrefix + "DescribeRepositories";

    private static void Register(SigV4LoopbackServer aws) =>
        aws.Handle("ecr", Operation, _ => LoopbackResponse.Json(new JsonObject { ["repositories"] = new JsonArray() }));

    [Fact]
    public async Task BodyChangedAfterSigning_IsRejected()
    {
        await using var aws = new SigV4LoopbackServer();
        Register(aws);
        var tamper = new Tamper(async r =>
        {
            var body = await r.Content!.ReadAsStringAsync();
            var changed = new ByteArrayContent(Encoding.UTF8.GetBytes(body.Replace("{", "{\"registryId\":\"999999999999\",")));
            changed.Headers.TryAddWithoutValidation("Content-Type", EcrApiClient.ContentType);
            r.Content = changed;
        });
        using var ecr = new EcrApiClient(new AwsContext(aws.Credentials, aws.Region, aws.Endpoint, 0, null, null, tamper));

        var e = await Assert.ThrowsAsync<AwsServiceException>(() => ecr.DescribeRepositoriesAsync());

        Assert.Equal("InvalidSignatureException", e.ErrorCode);
        Assert.Contains("x-amz-content-sha256", aws.Exchanges.Single().RejectReason);
    }

    [Fact]
    public async Task BodyAndHashHeaderChangedAfterSigning_IsRejected()
    {
        await using var aws = new SigV4LoopbackServer();
        Register(aws);
        var tamper = new Tamper(r =>
        {
            var bytes = Encoding.UTF8.GetBytes("{\"registryId\":\"999999999999\"}");
            r.Content = new ByteArrayContent(bytes);
            r.Content.Headers.TryAddWithoutValidation("Content-Type", EcrApiClient.ContentType);
            r.Headers.Remove("X-Amz-Content-SHA256");
            r.Headers.TryAddWithoutValidation("X-Amz-Content-SHA256", SigV4Verifier.PayloadHash(bytes));
            return Task.CompletedTask;
        });
        using var ecr = new EcrApiClient(new AwsContext(aws.Credentials, aws.Region, aws.Endpoint, 0, null, null, tamper));

        var e = await Assert.ThrowsAsync<AwsServiceException>(() => ecr.DescribeRepositoriesAsync());

        Assert.Equal("InvalidSignatureException", e.ErrorCode);
        Assert.Contains("does not match", aws.Exchanges.Single().RejectReason);
    }

    [Fact]
    public async Task TargetHeaderChangedAfterSigning_IsRejected()
    {
        await using var aws = new SigV4LoopbackServer();
        Register(aws);
        aws.Handle("ecr", EcrApiClient.TargetPrefix + "DeleteRepository", _ => throw new InvalidOperationException("must not run"));
        var tamper = new Tamper(r =>
        {
            r.Headers.Remove("X-Amz-Target");
            r.Headers.TryAddWithoutValidation("X-Amz-Target", EcrApiClient.TargetPrefix + "DeleteRepository");
            return Task.CompletedTask;
        });
        using var ecr = new EcrApiClient(new AwsContext(aws.Credentials, aws.Region, aws.Endpoint, 0, null, null, tamper));

        await Assert.ThrowsAsync<AwsServiceException>(() => ecr.DescribeRepositoriesAsync());

        var exchange = aws.Exchanges.Single();
        Assert.Equal(403, exchange.Status);
        Assert.Contains("does not match", exchange.RejectReason);
    }

    [Fact]
    public async Task ClockSkewBeyondFifteenMinutes_IsRejected()
    {
        await using var aws = new SigV4LoopbackServer();
        Register(aws);
        var late = new SigV4SuiteTests.FixedClock(DateTimeOffset.UtcNow.AddMinutes(-20));
        using var ecr = new EcrApiClient(aws.Context(late, maxRetryAttempts: 0));

        var e = await Assert.ThrowsAsync<AwsServiceException>(() => ecr.DescribeRepositoriesAsync());

        Assert.Contains("system clock", e.Message);
        Assert.Contains("Signature expired", aws.Exchanges.Single().RejectReason);
        late.Now = DateTimeOffset.UtcNow.AddMinutes(-10);
        Assert.Empty(await ecr.DescribeRepositoriesAsync());
    }

    /// <summary>Changes the already signed request, then sends it for real.</summary>
    private sealed class Tamper(Func<HttpRequestMessage, Task> change) : DelegatingHandler(new SocketsHttpHandler())
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            await change(request);
            return await base.SendAsync(request, cancellationToken);
        }
    }
}
