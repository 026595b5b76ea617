using System.Collections.Concurrent;

namespace HardenImage.Tests.Registry;

/// <summary>Fault rates of a <see cref="RegistryProxy"/>; a seeded random picks which requests fail.</summary>
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

    public RegistryProxy(string upstreamAuthority, FaultPlan? faults = null)
    {
        _upstream = upstreamAuthority;
        Faults = faults;
        _random = new Random(faults?.Seed ?? 0);
        _server = new LoopbackHttpServer(HandleAsync);
    }

    public FaultPlan? Faults { get; set; }
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
            var roll = Next();
            if (isUploadBody && roll < f.DropMidUpload)
            {
                // Take half the body, then cut the connection: the client's request dies mid-stream.
                var half = await ctx.ReadBodyAsync(Math.Max(1, ctx.ContentLength / 2));
                Log.Enqueue(new ProxiedRequest(ctx.Method, path, half.Length, 0, "drop-mid-upload"));
                ctx.Abort();
                return;
            }
            roll -= f.DropMidUpload;
            if (roll >= 0 && roll < f.ServerError)
            {
                await ctx.ReadBodyAsync();
                Log.Enqueue(new ProxiedRequest(ctx.Method, path, 0, 500, "500"));
                await ctx.RespondAsync(500, "{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"injected\"}]}"u8.ToArray(), "application/json");
                return;
            }
            roll -= f.ServerError;
            if (roll >= 0 && roll < f.Throttle)
            {
                await ctx.ReadBodyAsync();
                Log.Enqueue(new ProxiedRequest(ctx.Method, path, 0, 429, "429"));
                await ctx.RespondAsync(429, "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"slow down\"}]}"u8.ToArray(),
                    "application/json", [("Retry-After", f.RetryAfter)]);
                return;
            }
            roll -= f.Throttle;
            if (roll >= 0 && roll < f.DropAfterForward)
            {
                var b = await ctx.ReadBodyAsync();
                using var fwd = await ForwardAsync(ctx, b);
                Log.Enqueue(new ProxiedRequest(ctx.Method, path, b.Length, (int)fwd.StatusCode, "drop-after-forward"));
                ctx.Abort();
                return;
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
        var message = new HttpRequestMessage(new HttpMethod(ctx.Method), $"http://{_upstream}{ctx.PathAndQuery}");
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
