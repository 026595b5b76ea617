using System.Diagnostics;
using HardenImage.Apt;
using HardenImage.Common;

namespace HardenImage.Tests.Apt;

/// <summary>Denial of service by a flaky mirror: transient failures are retried with back-off, bounded.</summary>
[Trait("Category", "Integration")]
public class FetchRetryTests : IDisposable
{
    private readonly string _cacheDir = Directory.CreateTempSubdirectory("hi-fetch-").FullName;
    private readonly HttpClient _http = new();

    public void Dispose()
    {
        _http.Dispose();
        Directory.Delete(_cacheDir, recursive: true);
    }

    [Fact]
    public async Task Fetch_RetriesServerErrors_ThenSucceeds()
    {
        await using var server = new LoopbackDebServer();
        var body = FetchFixture.RandomBytes(2048, 1);
        var url = server.Serve("/flaky.deb", ScriptedResponse.Error(500), ScriptedResponse.Error(500), ScriptedResponse.Ok(body));
        var progress = new RecordingProgress();
        var fetcher = new DebFetcher(_http, new DebCache(_cacheDir), FetchFixture.FastRetries);

        var result = (await fetcher.FetchAsync(new[] { FetchFixture.Deb("flaky", url, body) }, progress))[0];

        Assert.Equal(3, result.Attempts);
        Assert.Equal(3, server.HitsOn("/flaky.deb"));
        Assert.Equal(body, await File.ReadAllBytesAsync(result.Path));
        Assert.Equal(3, progress.Reports.Count(p => p.BytesSoFar == 0 && !p.Completed)); // each attempt restarts the bar
    }

    [Fact]
    public async Task Fetch_HonoursRetryAfterOn429()
    {
        await using var server = new LoopbackDebServer();
        var body = FetchFixture.RandomBytes(512, 2);
        var url = server.Serve("/busy.deb", ScriptedResponse.Error(429, retryAfter: "1"), ScriptedResponse.Ok(body));
        var fetcher = new DebFetcher(_http, new DebCache(_cacheDir), FetchFixture.FastRetries); // back-off alone: 10 ms

        var result = (await fetcher.FetchAsync(new[] { FetchFixture.Deb("busy", url, body) }))[0];

        Assert.Equal(2, result.Attempts);
        var times = server.RequestTimes.ToArray();
        Assert.True(times[1] - times[0] >= TimeSpan.FromMilliseconds(950), $"retried after {(times[1] - times[0]).TotalMilliseconds:F0} ms, Retry-After said 1 s");
    }

    [Fact]
    public async Task Fetch_CapsAnExcessiveRetryAfter()
    {
        await using var server = new LoopbackDebServer();
        var body = FetchFixture.RandomBytes(512, 3);
        var url = server.Serve("/slow.deb", ScriptedResponse.Error(503, retryAfter: "86400"), ScriptedResponse.Ok(body));
        var fetcher = new DebFetcher(_http, new DebCache(_cacheDir), FetchFixture.FastRetries with { MaxRetryAfter = TimeSpan.FromMilliseconds(200) });
        var sw = Stopwatch.StartNew();

        await fetcher.FetchAsync(new[] { FetchFixture.Deb("slow", url, body) });

        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), "a day-long Retry-After must not be obeyed");
    }

    [Fact]
    public async Task Fetch_ConnectionDroppedMidBody_IsRetried()
    {
        await using var server = new LoopbackDebServer();
        var body = FetchFixture.RandomBytes(200_000, 4);
        var url = server.Serve("/cut.deb", new ScriptedResponse(200, body, DropAfterBytes: 70_000), ScriptedResponse.Ok(body));
        var fetcher = new DebFetcher(_http, new DebCache(_cacheDir), FetchFixture.FastRetries);

        var result = (await fetcher.FetchAsync(new[] { FetchFixture.Deb("cut", url, body) }))[0];

        Assert.Equal(2, result.Attempts);
        Assert.Equal(body, await File.ReadAllBytesAsync(result.Path));
        Assert.Single(FetchFixture.FilesIn(_cacheDir)); // the partial temp file was removed
    }

    [Fact]
    public async Task Fetch_BodyThatStopsFlowing_TimesOutAndIsRetried()
    {
        await using var server = new LoopbackDebServer();
        var body = FetchFixture.RandomBytes(50_000, 8);
        var url = server.Serve("/stall.deb", new ScriptedResponse(200, body, StallAfterBytes: 10_000), ScriptedResponse.Ok(body));
        var fetcher = new DebFetcher(_http, new DebCache(_cacheDir), FetchFixture.FastRetries with { StallTimeout = TimeSpan.FromSeconds(3) });

        var result = (await fetcher.FetchAsync(new[] { FetchFixture.Deb("stall", url, body) }))[0];

        Assert.Equal(2, result.Attempts);
        Assert.Equal(body, await File.ReadAllBytesAsync(result.Path));
        Assert.Single(FetchFixture.FilesIn(_cacheDir));
    }

    [Fact]
    public async Task Fetch_GivesUpAfterTheRetryBudget_WithAClearError()
    {
        await using var server = new LoopbackDebServer();
        var body = FetchFixture.RandomBytes(100, 5);
        var url = server.Serve("/down.deb", ScriptedResponse.Error(503));
        var fetcher = new DebFetcher(_http, new DebCache(_cacheDir), FetchFixture.FastRetries with { MaxRetries = 2 });

        var e = await Assert.ThrowsAsync<HardenException>(() => fetcher.FetchAsync(new[] { FetchFixture.Deb("down", url, body) }));

        Assert.Equal(3, server.HitsOn("/down.deb"));
        Assert.Contains("could not download down 1.0-1", e.Message);
        Assert.Contains("after 3 attempts", e.Message);
        Assert.Contains("503", e.Message);
        Assert.Empty(FetchFixture.FilesIn(_cacheDir));
    }

    [Fact]
    public async Task Fetch_NotFound_IsNotRetried_AndSuggestsRelocking()
    {
        await using var server = new LoopbackDebServer();
        var body = FetchFixture.RandomBytes(100, 6);
        var fetcher = new DebFetcher(_http, new DebCache(_cacheDir), FetchFixture.FastRetries);

        var e = await Assert.ThrowsAsync<HardenException>(() =>
            fetcher.FetchAsync(new[] { FetchFixture.Deb("gone", server.BaseUrl + "/gone.deb", body) }));

        Assert.Equal(1, server.HitsOn("/gone.deb"));
        Assert.Contains("404", e.Message);
        Assert.Contains("harden lock --update", e.Message);
    }

    [Fact]
    public async Task Fetch_StalledTransfer_TimesOutAndIsRetried()
    {
        // A listener that accepts and never answers: the first attempt stalls, the retry goes to a live server.
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var silentUrl = $"http://127.0.0.1:{((System.Net.IPEndPoint)silent.LocalEndpoint).Port}/x.deb";
        var body = FetchFixture.RandomBytes(100, 7);
        var fetcher = new DebFetcher(_http, new DebCache(_cacheDir),
            FetchFixture.FastRetries with { AttemptTimeout = TimeSpan.FromMilliseconds(300), MaxRetries = 1 });

        var e = await Assert.ThrowsAsync<HardenException>(() => fetcher.FetchAsync(new[] { FetchFixture.Deb("x", silentUrl, body) }));

        Assert.Contains("after 2 attempts", e.Message);
        Assert.Contains("timed out", e.Message);
    }
}
