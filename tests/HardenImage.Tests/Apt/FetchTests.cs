using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using HardenImage.Apt;
using HardenImage.Common;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Apt;

/// <summary>What the loopback server answers to one request.</summary>
/// <param name="DropAfterBytes">Send this much of the body, then reset the connection.</param>
/// <param name="StallAfterBytes">Send this much of the body, then go silent (connection left open).</param>
internal sealed record ScriptedResponse(int Status, byte[] Body, IReadOnlyDictionary<string, string>? Headers = null,
    int? DropAfterBytes = null, int? StallAfterBytes = null)
{
    public static ScriptedResponse Ok(byte[] body) => new(200, body);
    public static ScriptedResponse Error(int status, string? retryAfter = null) =>
        new(status, Encoding.ASCII.GetBytes($"status {status}"),
            retryAfter is null ? null : new Dictionary<string, string> { ["Retry-After"] = retryAfter });
}

/// <summary>
/// A tiny HTTP/1.1 server on 127.0.0.1 (port 0) written on raw sockets, so a test can script exactly what goes
/// on the wire: statuses, Retry-After, wrong bytes, and a connection closed in the middle of a body.
/// Each path has a queue of responses; the last one repeats.
/// </summary>
internal sealed class LoopbackDebServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly ConcurrentDictionary<string, List<ScriptedResponse>> _scripts = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public LoopbackDebServer()
    {
        _listener.Start();
        BaseUrl = $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
        _accepting = AcceptLoop();
    }

    public string BaseUrl { get; }
    public ConcurrentDictionary<string, int> Hits { get; } = new();
    public ConcurrentQueue<DateTimeOffset> RequestTimes { get; } = new();

    /// <summary>Serves <paramref name="responses"/> in order at <paramref name="path"/>; returns the full URL.</summary>
    public string Serve(string path, params ScriptedResponse[] responses)
    {
        _scripts[path] = responses.ToList();
        return BaseUrl + path;
    }

    public int HitsOn(string path) => Hits.TryGetValue(path, out var n) ? n : 0;

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(() => Handle(client));
        }
    }

    private async Task Handle(TcpClient client)
    {
        using var _ = client;
        try
        {
            var stream = client.GetStream();
            var head = new StringBuilder();
            var one = new byte[1];
            while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
            {
                if (await stream.ReadAsync(one, _stop.Token) == 0) return;
                head.Append((char)one[0]);
            }
            var path = head.ToString().Split(' ')[1];
            RequestTimes.Enqueue(DateTimeOffset.UtcNow);
            var n = Hits.AddOrUpdate(path, 1, (_, v) => v + 1);
            var response = _scripts.TryGetValue(path, out var list) ? list[Math.Min(n, list.Count) - 1] : ScriptedResponse.Error(404);
            var sb = new StringBuilder($"HTTP/1.1 {response.Status} Scripted\r\nContent-Length: {response.Body.Length}\r\nConnection: close\r\n");
            foreach (var (k, v) in response.Headers ?? new Dictionary<string, string>()) sb.Append($"{k}: {v}\r\n");
            sb.Append("\r\n");
            await stream.WriteAsync(Encoding.ASCII.GetBytes(sb.ToString()), _stop.Token);
            var cut = response.DropAfterBytes ?? response.StallAfterBytes;
            await stream.WriteAsync(cut is int n0 ? response.Body.AsMemory(0, n0) : response.Body, _stop.Token);
            await stream.FlushAsync(_stop.Token);
            if (response.StallAfterBytes != null) await Task.Delay(Timeout.Infinite, _stop.Token);
            if (response.DropAfterBytes != null) client.Client.LingerState = new LingerOption(true, 0); // reset, not a clean close
        }
        catch (Exception) { /* the client went away: nothing to serve */ }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        try { await _accepting; } catch (Exception) { }
        _stop.Dispose();
    }
}

/// <summary>Collects progress synchronously (Progress&lt;T&gt; would post to the thread pool and race the asserts).</summary>
internal sealed class RecordingProgress : IProgress<FetchProgress>
{
    public ConcurrentQueue<FetchProgress> Reports { get; } = new();
    public void Report(FetchProgress value) => Reports.Enqueue(value);
}

internal static class FetchFixture
{
    /// <summary>Options with millisecond back-off so retry tests stay fast.</summary>
    public static DebFetcherOptions FastRetries => new() { BaseDelay = TimeSpan.FromMilliseconds(10), UseJitter = false, MaxRetries = 3 };

    public static DebDownload Deb(string name, string url, byte[] content) =>
        new(name, "1.0-1", url, Sha256Hex.Of(content), content.Length);

    public static byte[] RandomBytes(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    public static string[] FilesIn(string dir) =>
        Directory.Exists(dir) ? Directory.GetFiles(dir, "*", SearchOption.AllDirectories) : Array.Empty<string>();
}

public class FetchTests : IDisposable
{
    private readonly string _cacheDir = Directory.CreateTempSubdirectory("hi-fetch-").FullName;
    private readonly HttpClient _http = new();

    public void Dispose()
    {
        _http.Dispose();
        Directory.Delete(_cacheDir, recursive: true);
    }

    private static byte[] BuildRealDeb(string dir, string name)
    {
        var dpkgDeb = RequiredService.Tool("dpkg-deb", "dpkg");
        var root = Path.Combine(dir, name);
        Directory.CreateDirectory(Path.Combine(root, "DEBIAN"));
        Directory.CreateDirectory(Path.Combine(root, "usr", "share", "doc", name));
        File.WriteAllText(Path.Combine(root, "DEBIAN", "control"),
            $"Package: {name}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: Fixture <f@example.invalid>\nDescription: fetch fixture\n");
        File.WriteAllText(Path.Combine(root, "usr", "share", "doc", name, "copyright"), "public domain\n");
        var deb = Path.Combine(dir, $"{name}_1.0-1_all.deb");
        var (code, _, err) = RequiredService.Run(dpkgDeb, new[] { "-Zxz", "--root-owner-group", "--build", root, deb });
        Assert.True(code == 0, err);
        return File.ReadAllBytes(deb);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Fetch_DownloadsVerifiesAndCaches_ThenHitsTheCache()
    {
        var work = Directory.CreateTempSubdirectory("hi-debs-").FullName;
        try
        {
            await using var server = new LoopbackDebServer();
            var alpha = BuildRealDeb(work, "alpha");
            var beta = FetchFixture.RandomBytes(300_000, 2); // bigger than one read buffer
            var debs = new[]
            {
                FetchFixture.Deb("alpha", server.Serve("/pool/a/alpha_1.0-1_all.deb", ScriptedResponse.Ok(alpha)), alpha),
                FetchFixture.Deb("beta", server.Serve("/pool/b/beta_1.0-1_amd64.deb", ScriptedResponse.Ok(beta)), beta),
            };
            var cache = new DebCache(_cacheDir);
            var fetcher = new DebFetcher(_http, cache, FetchFixture.FastRetries);
            var progress = new RecordingProgress();

            var first = await fetcher.FetchAsync(debs, progress);

            Assert.All(first, f => Assert.False(f.CacheHit));
            Assert.Equal(new[] { "alpha", "beta" }, first.Select(f => f.Deb.Name));
            Assert.Equal(Path.Combine(_cacheDir, "debs", "sha256", debs[0].Sha256), first[0].Path);
            Assert.Equal(alpha, await File.ReadAllBytesAsync(first[0].Path));
            Assert.Equal(beta, await File.ReadAllBytesAsync(first[1].Path));
            Assert.Contains(progress.Reports, p => p.Package == "beta" && p.BytesSoFar > 0 && p.BytesSoFar < beta.Length);
            Assert.Contains(progress.Reports, p => p.Package == "beta" && p.Completed && p.BytesSoFar == beta.Length && p.TotalBytes == beta.Length);
            Assert.Equal(2, FetchFixture.FilesIn(_cacheDir).Length); // no temp files left behind

            var second = await fetcher.FetchAsync(debs);

            Assert.All(second, f => Assert.True(f.CacheHit));
            Assert.Equal(new long[] { alpha.Length, beta.Length }, second.Select(f => f.Bytes));
            Assert.Equal(1, server.HitsOn("/pool/a/alpha_1.0-1_all.deb"));
            Assert.Equal(1, server.HitsOn("/pool/b/beta_1.0-1_amd64.deb"));
        }
        finally { Directory.Delete(work, recursive: true); }
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Fetch_SameDigestListedTwice_DownloadsOnce()
    {
        await using var server = new LoopbackDebServer();
        var body = FetchFixture.RandomBytes(1000, 3);
        var url = server.Serve("/x.deb", ScriptedResponse.Ok(body));
        var fetcher = new DebFetcher(_http, new DebCache(_cacheDir), FetchFixture.FastRetries);

        var results = await fetcher.FetchAsync(new[] { FetchFixture.Deb("x", url, body), FetchFixture.Deb("x-again", url, body) });

        Assert.Equal(new[] { "x", "x-again" }, results.Select(r => r.Deb.Name));
        Assert.Equal(1, server.HitsOn("/x.deb"));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Fetch_ManyPackages_AreFetchedInParallelWithinTheBound()
    {
        await using var server = new LoopbackDebServer();
        var debs = Enumerable.Range(0, 20).Select(i =>
        {
            var body = FetchFixture.RandomBytes(5000 + i, 100 + i);
            return FetchFixture.Deb($"p{i}", server.Serve($"/p{i}.deb", ScriptedResponse.Ok(body)), body);
        }).ToList();
        var fetcher = new DebFetcher(_http, new DebCache(_cacheDir), FetchFixture.FastRetries with { MaxParallelDownloads = 4 });

        var results = await fetcher.FetchAsync(debs);

        Assert.Equal(debs.Select(d => d.Name), results.Select(r => r.Deb.Name));
        Assert.Equal(20, FetchFixture.FilesIn(_cacheDir).Length);
        Assert.All(results, r => Assert.Equal(r.Deb.Sha256, Sha256Hex.OfFile(r.Path)));
    }

    [Fact]
    public void Cache_RefusesADigestThatIsNotHex()
    {
        var cache = new DebCache(_cacheDir);

        Assert.Throws<ArgumentException>(() => cache.PathFor("../../etc/passwd" + new string('0', 48)));
    }
}
