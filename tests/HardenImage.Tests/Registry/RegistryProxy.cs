using System.Collections.Concurrent;

namespace HardenImage.Tests.Registry;

/// <summary>Fault rates of a <see cref="RegistryProxy"/>; a seeded random picks which requests fail.</summary>
/// Besides the random faults, the first upload body is always cut, the 2nd request always gets 500 and the 3rd 429,
/// so every kind of fault happens in every run whatever the scheduling.
public sealed record FaultPlan(int Seed, double DropMidUpload = 0, double DropAfterForward = 0, double ServerError = 0, double Throttle = 0,
    string RetryAfter = "1");

/// <summary>One request seen by the proxy.</summary>
public sealed record ProxiedRequest(string Method, string PathAndQuery, long BodyBytes, int Status, string Fault);

/// <summary>
/// An HTTP proxy on loopback between the client and a real registry: logs every request (so tests count uploads,
/// HEADs and mounts) and, with a <see cref="FaultPlan"/>, drops connections half-way through request bodies,
/// drops them after the registry did the work, answers 500, or 429 with Retry-After.
/// </summary>
public sealed class RegistryProxy : IDisposable
{
    private static readonly HashSet<string> SkipRequestHeaders = new(StringComparer.OrdinalIgnoreCase)
        { "Host", "Connection", "Content-Length", "Transfer-Encoding", "Expect", "Keep-Alive" };
    private static readonly HashSet<string> SkipResponseHeaders = new(StringComparer.OrdinalIgnoreCase)
        { "Connection", "Content-Length", "Transfer-Encoding", "Keep-Alive", "Date", "Server" };

    private readonly string _upstream;
    private readonly HttpClient _client = new(new SocketsHttpHandler { AllowAutoRedirect = false, AutomaticDecompression = System.Net.DecompressionMethods.None });
    private readonly LoopbackHttpServer _server;
    private readonly Random _random;
    private readonly object _randomLock = new();
    private int _requests;
    private int _uploadBodies;

    public RegistryProxy(string upstreamAuthority, FaultPlan? faults = null)
    {
        _upstream = upstreamAuthority;
        Faults = faults;
        _random = new Random(faults?.Seed ?? 0);
        _server = new LoopbackHttpServer(HandleAsync);
    }

    public FaultPlan? Faults { get; set; }

    /// <summary>Rewrites the forwarded path (a substituting man-in-the-middle).</summary>
    public Func<string, string>? Rewrite { get; init; }
    public string Authority => _server.Authority;
    public ConcurrentQueue<ProxiedRequest> Log { get; } = new();

    /// <summary>Bytes of blob data that reached the registry through uploads (PATCH and PUT bodies).</summary>
    public long UploadedBytes => Log.Where(r => IsUpload(r) && r.Fault == "").Sum(r => r.BodyBytes);

    public static bool IsUpload(ProxiedRequest r) =>
        r.Method is "PATCH" or "PUT" && r.PathAndQuery.Contains("/blobs/uploads/", StringComparison.Ordinal);

    public void ClearLog() => Log.Clear();

    private double Next()
    {
        lock (_randomLock) return _random.NextDouble();
    }

    private async Task HandleAsync(LoopbackContext ctx)
    {
        var path = ctx.PathAndQuery;
        var isUploadBody = ctx.Method is "PATCH" or "PUT" && path.Contains("/blobs/uploads/") && ctx.ContentLength > 0;
        var f = Faults;
        if (f != null)
        {
            var nth = Interlocked.Increment(ref _requests);
            var firstUpload = isUploadBody && Interlocked.Increment(ref _uploadBodies) == 1;
            string fault;
            if (firstUpload) fault = "drop-mid-upload";
            else if (nth == 2) fault = "500";
            else if (nth == 3) fault = "429";
            else
            {
                var roll = Next();
                var (a, b, c, d) = (f.DropMidUpload, f.ServerError, f.Throttle, f.DropAfterForward);
                fault = roll < a ? (isUploadBody ? "drop-mid-upload" : "")
                    : roll < a + b ? "500"
                    : roll < a + b + c ? "429"
                    : roll < a + b + c + d ? "drop-after-forward"
                    : "";
            }
            switch (fault)
            {
                case "drop-mid-upload":
                {
                    // Take half the body, then cut the connection: the client's request dies mid-stream.
                    var half = await ctx.ReadBodyAsync(Math.Max(1, ctx.ContentLength / 2));
                    Log.Enqueue(new ProxiedRequest(ctx.Method, path, half.Length, 0, fault));
                    ctx.Abort();
                    return;
                }
                case "500":
                    await ctx.ReadBodyAsync();
                    Log.Enqueue(new ProxiedRequest(ctx.Method, path, 0, 500, fault));
                    await ctx.RespondAsync(500, "{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"injected\"}]}"u8.ToArray(), "application/json");
                    return;
                case "429":
                    await ctx.ReadBodyAsync();
                    Log.Enqueue(new ProxiedRequest(ctx.Method, path, 0, 429, fault));
                    await ctx.RespondAsync(429, "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"slow down\"}]}"u8.ToArray(),
                        "application/json", [("Retry-After", f.RetryAfter)]);
                    return;
                case "drop-after-forward":
                {
                    // The registry did the work; the client never hears so.
                    var b = await ctx.ReadBodyAsync();
                    using var fwd = await ForwardAsync(ctx, b);
                    Log.Enqueue(new ProxiedRequest(ctx.Method, path, b.Length, (int)fwd.StatusCode, fault));
                    ctx.Abort();
                    return;
                }
            }
        }

        var body = await ctx.ReadBodyAsync();
        using var response = await ForwardAsync(ctx, body);
        Log.Enqueue(new ProxiedRequest(ctx.Method, path, body.Length, (int)response.StatusCode, ""));
        var bytes = await response.Content.ReadAsByteArrayAsync();
        var headers = response.Headers.Concat(response.Content.Headers)
            .Where(h => !SkipResponseHeaders.Contains(h.Key))
            .SelectMany(h => h.Value.Select(v => (h.Key, h.Key == "Location" ? v.Replace(_upstream, Authority) : v)))
            .Where(h => h.Key != "Content-Type");
        await ctx.RespondAsync((int)response.StatusCode, bytes, response.Content.Headers.ContentType?.ToString(), headers,
            response.Content.Headers.ContentLength);
    }

    private async Task<HttpResponseMessage> ForwardAsync(LoopbackContext ctx, byte[] body)
    {
        var message = new HttpRequestMessage(new HttpMethod(ctx.Method), $"http://{_upstream}{Rewrite?.Invoke(ctx.PathAndQuery) ?? ctx.PathAndQuery}");
        if (body.Length > 0 || ctx.Method is "PUT" or "PATCH" or "POST") message.Content = new ByteArrayContent(body);
        foreach (var (key, value) in ctx.Headers)
        {
            if (SkipRequestHeaders.Contains(key)) continue;
            var values = new[] { value };
            if (!message.Headers.TryAddWithoutValidation(key, values)) message.Content?.Headers.TryAddWithoutValidation(key, values);
        }
        // The registry builds Location URLs from Host: keep them pointing at the proxy.
        message.Headers.Host = Authority;
        return await _client.SendAsync(message);
    }

    public void Dispose()
    {
        _server.Dispose();
        _client.Dispose();
    }
}
