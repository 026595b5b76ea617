using System.Diagnostics;
using System.Text;
using HardenImage.Apt;
using HardenImage.Aws;
using HardenImage.Common;
using HardenImage.Net;
using HardenImage.Registry;
using HardenImage.Scan;
using HardenImage.Tests.Aws;
using HardenImage.Tests.Infrastructure;
using HardenImage.Tests.Registry;

namespace HardenImage.Tests.Net;

/// <summary>
/// Denial of service by a server: one that accepts and never answers, one that answers with an endless body, one
/// that stops half-way. Registry, token realm, AWS API, advisory feed and apt mirror each end in a clear error
/// naming the host and the limit, within a bounded time (deadlines injected short; the bound asserted generously).
/// The hostile servers are bounded themselves: silence ends after 20 s, endless bodies after 64 MiB.
/// </summary>
public sealed class NetworkDeadlineTests
{
    private static readonly NetworkDeadlines Short = NetworkDeadlines.All(TimeSpan.FromSeconds(1));
    private static readonly TimeSpan Silence = TimeSpan.FromSeconds(20);
    private const long EndlessCap = 64L << 20;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(12);

    private static IRegistry Registry(LoopbackHttpServer server, int maxRetries = 1) =>
        RegistryFactory.Create(new RegistryTarget(RegistryKind.Distribution, server.Authority, ""), new RegistryClientOptions
        {
            Insecure = true,
            Credentials = RegistryTestKit.NoCredentials,
            Retry = RegistryTestKit.FastRetry with { MaxRetries = maxRetries },
            Deadlines = Short,
        });

    private static async Task<(T Error, TimeSpan Elapsed)> Timed<T>(Func<Task> action) where T : Exception
    {
        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<T>(action);
        return (e, sw.Elapsed);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Registry_ThatNeverAnswers_FailsWithinTheResponseDeadline()
    {
        using var server = new LoopbackHttpServer(ctx => ctx.NeverAnswerAsync(Silence));
        var (e, elapsed) = await Timed<NetworkTimeoutException>(() => Registry(server).GetManifestAsync("team/base", "1.0"));

        Assert.True(elapsed < Bound, $"took {elapsed}");
        Assert.Contains(server.Authority, e.Message);
        Assert.Contains("manifest team/base:1.0", e.Message);
        Assert.Contains("within 2 s", e.Message); // connect + response headers
        Assert.Contains(NetworkDeadlines.EnvironmentVariable, e.Message);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Registry_ManifestWithEndlessBody_IsRefusedAtTheManifestLimit_CountedOnTheStream()
    {
        long sent = 0;
        using var server = new LoopbackHttpServer(async ctx => sent = await ctx.RespondEndlessAsync(200, "application/vnd.oci.image.manifest.v1+json", EndlessCap));
        var (e, elapsed) = await Timed<ResponseTooLargeException>(() => Registry(server).GetManifestAsync("team/base", "1.0"));

        Assert.True(elapsed < Bound, $"took {elapsed}");
        Assert.Contains("manifest team/base:1.0", e.Message);
        Assert.Contains("4,194,304-byte limit", e.Message);
        Assert.Contains("counted while reading", e.Message); // no Content-Length was sent: the stream itself was bounded
        await WaitUntil(() => sent > 0);
        Assert.True(sent < EndlessCap, $"the client read {sent} bytes of an endless body instead of hanging up at the limit");
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Registry_BodyThatStallsHalfWay_FailsWithinTheStallDeadline()
    {
        using var server = new LoopbackHttpServer(ctx => ctx.RespondThenStallAsync(200, "{\"schemaVersion\":"u8.ToArray(), 4000, Silence,
            "application/vnd.oci.image.manifest.v1+json"));
        var (e, elapsed) = await Timed<NetworkTimeoutException>(() => Registry(server).GetManifestAsync("team/base", "1.0"));

        Assert.True(elapsed < Bound, $"took {elapsed}");
        Assert.Contains("stopped sending", e.Message);
        Assert.Contains("after 17 bytes", e.Message);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task BlobUpload_ToARegistryThatStopsAnswering_GivesUpAfterBoundedResumes()
    {
        using var server = new LoopbackHttpServer(async ctx =>
        {
            if (ctx.Method == "HEAD") { await ctx.RespondAsync(404); return; }
            if (ctx.Method == "POST") { await ctx.RespondAsync(202, headers: [("Location", "/v2/team/base/blobs/uploads/u1")]); return; }
            await ctx.NeverAnswerAsync(Silence); // the upload PUT and its status GET
        });
        var blob = new byte[64 * 1024];
        var descriptor = new HardenImage.Oci.Descriptor { MediaType = "application/octet-stream", Digest = HardenImage.Oci.Digest.Of(blob).ToString(), Size = blob.Length };
        var sw = Stopwatch.StartNew();

        var e = await Assert.ThrowsAsync<RegistryException>(() => Registry(server, maxRetries: 1).PushBlobAsync("team/base", descriptor, new MemoryStream(blob)));

        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(25), $"took {sw.Elapsed}");
        Assert.Contains("failed 2 times in a row", e.Message);
        Assert.Contains("did not", e.Message);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task TokenRealm_ThatNeverAnswers_OrSendsAnEndlessToken_FailsClearly()
    {
        foreach (var endless in new[] { false, true })
        {
            using var server = new LoopbackHttpServer(async ctx =>
            {
                if (ctx.Path == "/token")
                {
                    if (endless) await ctx.RespondEndlessAsync(200, "application/json", EndlessCap);
                    else await ctx.NeverAnswerAsync(Silence);
                    return;
                }
                var challenge = $"Bearer realm=\"http://{ctx.Header("Host")}/token\",service=\"hostile\"";
                await ctx.RespondAsync(401, "{}"u8.ToArray(), "application/json", [("WWW-Authenticate", challenge)]);
            });
            var sw = Stopwatch.StartNew();
            var e = await Assert.ThrowsAnyAsync<HardenException>(() => Registry(server).GetManifestAsync("team/base", "1.0"));

            Assert.True(sw.Elapsed < Bound, $"took {sw.Elapsed}");
            Assert.Contains($"a token for {server.Authority}", e.Message);
            if (endless) Assert.Contains("1,048,576-byte limit", e.Message);
            else Assert.Contains("did not", e.Message);
        }
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task AwsEndpoint_ThatNeverAnswers_FailsWithinTheDeadline_WithoutRetryingTheHang()
    {
        using var server = new LoopbackHttpServer(ctx => ctx.NeverAnswerAsync(Silence));
        var context = new AwsContext(new Amazon.Runtime.BasicAWSCredentials("AKIDLOOPBACK", "secret"), "eu-west-1",
            new Uri($"http://{server.Authority}/"), maxRetryAttempts: 4, retryBaseDelay: TimeSpan.FromMilliseconds(5), deadlines: Short);
        using var ecr = new EcrApiClient(context);

        var (e, elapsed) = await Timed<NetworkTimeoutException>(() => ecr.DescribeRepositoriesAsync());

        Assert.True(elapsed < Bound, $"took {elapsed}");
        Assert.Contains(server.Authority, e.Message);
        Assert.Equal(1, ecr.Attempts); // a silent endpoint is not asked four more times
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task KmsEndpoint_ThatNeverAnswers_FailsClearly_WithinTheBound()
    {
        using var server = new LoopbackHttpServer(ctx => ctx.NeverAnswerAsync(Silence));
        var sw = Stopwatch.StartNew();

        var e = await Assert.ThrowsAsync<HardenException>(() => HardenImage.Signing.AwsKmsSigner.CreateAsync(
            HardenImage.Signing.AwsKmsKeyReference.Parse("awskms:///alias/harden"), new HardenImage.Signing.AwsKmsOptions
            {
                ServiceUrl = $"http://{server.Authority}", Region = "eu-west-1",
                Credentials = new Amazon.Runtime.BasicAWSCredentials("AKIDLOOPBACK", "secret"), Deadlines = Short,
            }));

        // Connect + headers (2 s) for the first try and each of 3 SDK retries, with back-off: far below the SDK's 100 s each.
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"took {sw.Elapsed}");
        Assert.Contains("AWS KMS (awskms:///alias/harden)", e.Message);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task AwsEndpoint_EndlessAnswer_IsBoundedInMemory()
    {
        long sent = 0;
        using var server = new LoopbackHttpServer(async ctx =>
        {
            await ctx.ReadBodyAsync();
            sent = await ctx.RespondEndlessAsync(200, "application/x-amz-json-1.1", 2 * AwsJsonTransport.MaxResponseBytes);
        });
        var context = new AwsContext(new Amazon.Runtime.BasicAWSCredentials("AKIDLOOPBACK", "secret"), "eu-west-1",
            new Uri($"http://{server.Authority}/"), maxRetryAttempts: 0, deadlines: Short);
        using var ecr = new EcrApiClient(context);

        var e = await Assert.ThrowsAsync<ResponseTooLargeException>(() => ecr.DescribeRepositoriesAsync());

        Assert.Contains("67,108,864-byte limit", e.Message);
        await WaitUntil(() => sent > 0);
        Assert.True(sent < 2 * AwsJsonTransport.MaxResponseBytes, $"sent {sent}");
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task AdvisoryDbUrl_EndlessBody_StopsAtTheLimit_AndLeavesNothingInTheCache()
    {
        using var dir = new TempDir("hi-net-db");
        long sent = 0;
        using var server = new LoopbackHttpServer(async ctx => sent = await ctx.RespondEndlessAsync(200, "application/json", EndlessCap));
        using var http = AdvisoryFeedUpdater.CreateHttpClient(deadlines: Short);
        var locator = new AdvisoryDataLocator(http, dir.Path, maxBytes: 8L << 20, deadlines: Short);

        var e = await Assert.ThrowsAsync<ResponseTooLargeException>(() => locator.ResolveAsync($"http://{server.Authority}/feeds/advisories.json"));

        Assert.Contains("advisory feed advisories.json", e.Message);
        Assert.Contains("8,388,608-byte limit", e.Message);
        Assert.Empty(Directory.GetFiles(dir.Path, "*", SearchOption.AllDirectories)); // no temp file, no truncated feed
        await WaitUntil(() => sent > 0);
        Assert.True(sent < EndlessCap, $"sent {sent}");
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task AdvisoryFeed_ThatStallsAfterTheHeaders_FailsWithinTheStallDeadline()
    {
        using var dir = new TempDir("hi-net-feed");
        using var server = new LoopbackHttpServer(ctx => ctx.RespondThenStallAsync(200, "{\"CVE-"u8.ToArray(), 1_000_000, Silence));
        using var http = new HttpClient(); // whatever client the caller passes, the updater bounds the stream itself
        var sw = Stopwatch.StartNew();

        var e = await Assert.ThrowsAsync<NetworkTimeoutException>(() => new AdvisoryFeedUpdater(http, deadlines: Short)
            .UpdateAsync(dir.Path, [("debian-tracker.json", $"http://{server.Authority}/tracker/data/json")]));

        Assert.True(sw.Elapsed < Bound, $"took {sw.Elapsed}");
        Assert.Contains("stopped sending the answer to advisory feed debian-tracker.json", e.Message);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task AptMirror_ThatStallsInTheMiddleOfInRelease_FailsWithinTheStallDeadline()
    {
        using var dir = new TempDir("hi-net-apt");
        using var server = new LoopbackHttpServer(ctx => ctx.RespondThenStallAsync(200, Encoding.ASCII.GetBytes("-----BEGIN PGP SIGNED MESSAGE-----\n"),
            100_000, Silence, "text/plain"));
        using var http = new HttpClient(new DeadlineHandler(Short, DeadlineHandler.Unlimited, new SocketsHttpHandler())) { Timeout = Timeout.InfiniteTimeSpan };
        var client = new AptRepositoryClient(http, new AptIndexCache(dir.Combine("cache")));
        var source = new AptSource
        {
            Name = "stalling", BaseUrl = $"http://{server.Authority}/debian", Suite = "trixie", Architectures = ["amd64"],
            KeyringPaths = [Path.Combine(AppContext.BaseDirectory, "TestData", "Apt", "debian-archive-trixie-stable.gpg")],
        };
        var sw = Stopwatch.StartNew();

        var e = await Assert.ThrowsAnyAsync<HardenException>(() => client.FetchAsync(source));

        Assert.True(sw.Elapsed < Bound, $"took {sw.Elapsed}");
        Assert.Contains(server.Authority, e.Message);
        Assert.True(e.Message.Contains("stopped sending"), e.Message);
    }

    [Fact]
    public void Deadlines_FromTheEnvironment_AreValidated()
    {
        Assert.Equal(NetworkDeadlines.Default, NetworkDeadlines.FromEnvironment(_ => null));
        Assert.Equal(TimeSpan.FromSeconds(2.5), NetworkDeadlines.FromEnvironment(_ => "2.5").Stall);
        foreach (var bad in new[] { "abc", "0", "-1", "NaN", "100000" })
        {
            var e = Assert.Throws<HardenException>(() => NetworkDeadlines.FromEnvironment(_ => bad));
            Assert.Contains($"HARDEN_HTTP_TIMEOUT='{bad}'", e.Message);
        }
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (var i = 0; i < 200 && !condition(); i++) await Task.Delay(25);
        Assert.True(condition(), "the hostile server did not finish");
    }
}
