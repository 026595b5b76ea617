using System.Diagnostics;
using System.Net;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Registry;

/// <summary>
/// The danger: a flaky network or a throttling registry fails a release, or worse leaves a half-pushed image that
/// looks complete. A proxy in front of the real registry drops connections mid-upload, answers 500 and 429.
/// </summary>
public sealed class FaultInjectionTests
{
    [Trait("Category", "Integration")]
    [Fact]
    public async Task Push_ThroughDroppedConnections500sAnd429s_CompletesAndEveryDigestChecksOut()
    {
        using var dir = new TempDir();
        using var server = RegistryFixture.Start();
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        var parent = TestImages.WriteLayer(layout, "base.bin", 3 * 1024 * 1024 + 123, 7);
        var baseIndex = TestImages.WriteImage(layout, "base", ["amd64", "arm64"], 200 * 1024, [parent], seed: 3, ownLayers: 2);
        var appIndex = TestImages.WriteImage(layout, "app", ["amd64", "arm64"], 1536 * 1024, [parent], seed: 4);
        using var proxy = new RegistryProxy(server.Host,
            new FaultPlan(Seed: 20261126, DropMidUpload: 0.15, DropAfterForward: 0.05, ServerError: 0.08, Throttle: 0.04, RetryAfter: "0"));
        // Small chunks so large blobs go as several PATCHes and drops land mid-upload.
        var registry = RegistryTestKit.Client(proxy.Authority, monolithicLimit: 512 * 1024, chunkSize: 1024 * 1024);

        var results = await new ImagePusher(layout, registry, "flaky").PushAsync(ImagePusher.ImagesInLayout(layout));

        Assert.Equal(2, results.Count);
        Assert.Contains(proxy.Log, r => r.Fault == "drop-mid-upload");
        Assert.Contains(proxy.Log, r => r.Fault == "500");
        Assert.Contains(proxy.Log, r => r.Fault == "429");
        Assert.Contains(proxy.Log, r => r.Method == "PATCH" && r.Fault == "");
        var direct = RegistryTestKit.Client(server.Host);
        await RegistryTestKit.AssertAllBlobsVerify(direct, "flaky/base", layout, baseIndex);
        await RegistryTestKit.AssertAllBlobsVerify(direct, "flaky/app", layout, appIndex);
        Assert.Equal(baseIndex.Digest, (await direct.ResolveManifestAsync("flaky/base", "latest"))?.Digest);
        Assert.Equal(appIndex.Digest, (await direct.ResolveManifestAsync("flaky/app", "latest"))?.Digest);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task ChunkedUpload_DroppedMidChunk_ResumesFromTheRegistrysRange_SendingEachChunkOnce()
    {
        using var dir = new TempDir();
        using var fake = new FakeRegistry(new FakeRegistryMode());
        // Cut bodies and 500/429 answers never reach the registry; nothing that did reach it is lost.
        using var proxy = new RegistryProxy(fake.Authority, new FaultPlan(Seed: 7, DropMidUpload: 0.3, ServerError: 0.1, Throttle: 0.05, RetryAfter: "0"));
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        var layer = TestImages.WriteLayer(layout, "weights.bin", 4 * 1024 * 1024, 11);
        var registry = RegistryTestKit.Client(proxy.Authority, monolithicLimit: 64 * 1024, chunkSize: 256 * 1024);

        await using (var content = layout.OpenBlob(layer.Descriptor.Digest))
            await registry.PushBlobAsync("weights", layer.Descriptor, content);

        Assert.True(fake.HasBlob("weights", layer.Descriptor.Digest));
        Assert.Contains(proxy.Log, r => r.Fault == "drop-mid-upload" && r.Method == "PATCH");
        Assert.Contains(proxy.Log, r => r.Method == "GET" && r.PathAndQuery.Contains("/blobs/uploads/") && r.Status == 204);
        // Resumed, not restarted: the registry received every byte exactly once (a restart would resend from 0).
        Assert.Equal(layer.Descriptor.Size, proxy.UploadedBytes);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Push_CancelledHalfWay_RerunCompletesWithoutReuploadingWhatIsThere()
    {
        using var dir = new TempDir();
        using var server = RegistryFixture.Start();
        using var proxy = new RegistryProxy(server.Host);
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        var index = TestImages.WriteImage(layout, "big", ["amd64"], 2 * 1024 * 1024, seed: 9, ownLayers: 6);
        var total = TestImages.BlobsOf(layout, index).Sum(b => b.Size);
        var registry = RegistryTestKit.Client(proxy.Authority, monolithicLimit: 1024 * 1024, chunkSize: 512 * 1024);
        var pusher = new ImagePusher(layout, registry, parallelism: 1);
        var images = ImagePusher.ImagesInLayout(layout);

        using var cts = new CancellationTokenSource();
        var done = 0;
        var progress = new SyncProgress(p =>
        {
            if (p.State == BlobTransfer.Uploaded && Interlocked.Increment(ref done) == 3) cts.Cancel();
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pusher.PushAsync(images, progress, cts.Token));
        Assert.Null(await registry.ResolveManifestAsync("big", "latest"));
        var firstRun = proxy.UploadedBytes;
        proxy.ClearLog();

        var rerun = await pusher.PushAsync(images);

        var r = Assert.Single(rerun);
        Assert.Equal(3, r.SkippedBlobs);
        Assert.Equal(total - r.SkippedBytes, r.UploadedBytes);
        Assert.True(proxy.UploadedBytes <= total - r.SkippedBytes, $"rerun sent {proxy.UploadedBytes} bytes, only {total - r.SkippedBytes} were missing");
        Assert.True(firstRun >= r.SkippedBytes);
        await RegistryTestKit.AssertAllBlobsVerify(RegistryTestKit.Client(server.Host), "big", layout, index);
    }

    [Fact]
    public async Task RetryHandler_HonoursRetryAfterSeconds()
    {
        var inner = new ScriptedHandler(
            () => Throttled(r => r.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(1))),
            () => new HttpResponseMessage(HttpStatusCode.OK));
        using var client = new HttpClient(new RetryHandler(RegistryTestKit.FastRetry) { InnerHandler = inner });
        var sw = Stopwatch.StartNew();
        using var response = await client.GetAsync("http://127.0.0.1:9/v2/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(950), $"retried after {sw.Elapsed}");
        Assert.Equal(2, inner.Calls);
    }

    [Fact]
    public async Task RetryHandler_HonoursRetryAfterHttpDate()
    {
        var inner = new ScriptedHandler(
            () => Throttled(r => r.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(DateTimeOffset.UtcNow.AddSeconds(2))),
            () => new HttpResponseMessage(HttpStatusCode.OK));
        using var client = new HttpClient(new RetryHandler(RegistryTestKit.FastRetry) { InnerHandler = inner });
        var sw = Stopwatch.StartNew();
        using var response = await client.GetAsync("http://127.0.0.1:9/v2/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // HTTP dates have one-second resolution: at least ~1 s of the 2 s must have been waited.
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(900), $"retried after {sw.Elapsed}");
    }

    [Fact]
    public async Task RetryHandler_GivesUpAfterBoundedAttempts_AndRetriesDroppedConnections()
    {
        var failing = new ScriptedHandler(() => new HttpResponseMessage(HttpStatusCode.ServiceUnavailable));
        using (var client = new HttpClient(new RetryHandler(RegistryTestKit.FastRetry with { MaxRetries = 3 }) { InnerHandler = failing }))
        using (var response = await client.GetAsync("http://127.0.0.1:9/v2/"))
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(4, failing.Calls);

        var dropped = new ScriptedHandler(() => throw new HttpRequestException("connection reset"), () => new HttpResponseMessage(HttpStatusCode.OK));
        using var c2 = new HttpClient(new RetryHandler(RegistryTestKit.FastRetry) { InnerHandler = dropped });
        using var ok = await c2.GetAsync("http://127.0.0.1:9/v2/");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

        // A chunk upload is never re-sent by the handler: the uploader resumes it from the upload's status.
        var once = new ScriptedHandler(() => new HttpResponseMessage(HttpStatusCode.InternalServerError));
        using var c3 = new HttpClient(new RetryHandler(RegistryTestKit.FastRetry) { InnerHandler = once });
        using var patch = new HttpRequestMessage(HttpMethod.Patch, "http://127.0.0.1:9/v2/a/blobs/uploads/x") { Content = new ByteArrayContent([1]) };
        patch.Options.Set(RetryHandler.NoRetry, true);
        using var _ = await c3.SendAsync(patch);
        Assert.Equal(1, once.Calls);
    }

    private static HttpResponseMessage Throttled(Action<HttpResponseMessage> set)
    {
        var r = new HttpResponseMessage(HttpStatusCode.TooManyRequests);
        set(r);
        return r;
    }

    /// <summary>Answers requests from a script; the last step repeats.</summary>
    private sealed class ScriptedHandler(params Func<HttpResponseMessage>[] steps) : HttpMessageHandler
    {
        private int _calls;
        public int Calls => _calls;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            var i = Interlocked.Increment(ref _calls) - 1;
            return Task.FromResult(steps[Math.Min(i, steps.Length - 1)]());
        }
    }
}

/// <summary>IProgress that reports synchronously on the caller's thread.</summary>
public sealed class SyncProgress(Action<BlobProgress> report) : IProgress<BlobProgress>
{
    public void Report(BlobProgress value) => report(value);
}
