using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Amazon.Runtime;

namespace HardenImage.Tests.Aws;

/// <summary>What a registered operation handler answers.</summary>
public sealed record LoopbackResponse(int Status, string Body, string ContentType = "application/x-amz-json-1.1",
    IReadOnlyDictionary<string, string>? Headers = null)
{
    public static LoopbackResponse Json(JsonNode body, int status = 200, string contentType = "application/x-amz-json-1.1") =>
        new(status, body.ToJsonString(), contentType);

    /// <summary>An AWS JSON error: <c>{"__type": type, "message": ...}</c> plus the x-amzn-ErrorType header REST-JSON services send.</summary>
    public static LoopbackResponse AwsError(int status, string type, string message) =>
        new(status, new JsonObject { ["__type"] = type, ["message"] = message }.ToJsonString(), "application/x-amz-json-1.1",
            new Dictionary<string, string> { ["x-amzn-ErrorType"] = type });
}

/// <summary>One request the server saw, with what it answered.</summary>
public sealed record LoopbackExchange(RawHttpRequest Request, string? Operation, string? Service, int Status, string? ErrorType, string? RejectReason,
    string? ResponseBody = null);

/// <summary>How injected throttling looks on the wire.</summary>
public enum LoopbackThrottle
{
    /// <summary>HTTP 400 with <c>{"__type":"ThrottlingException"}</c> (JSON 1.1 services such as ECR).</summary>
    ThrottlingException400,

    /// <summary>HTTP 429 with x-amzn-ErrorType ThrottlingException (REST-JSON services such as Inspector).</summary>
    TooManyRequests429,

    /// <summary>HTTP 503 ServiceUnavailableException.</summary>
    ServiceUnavailable503,
}

/// <summary>
/// A stand-in AWS endpoint for tests, on 127.0.0.1 with a free port: it reads each raw HTTP/1.1 request from a
/// <see cref="TcpListener"/>, recomputes its SigV4 signature with <see cref="SigV4Verifier"/> (an implementation
/// independent of AWSSDK.Core), answers 403 <c>{"__type":"InvalidSignatureException"}</c> (or the matching AWS error)
/// when it does not verify, and otherwise dispatches to the handler registered for the request's
/// <c>X-Amz-Target</c> (JSON 1.1) or <c>"METHOD /path"</c> (REST-JSON). It can answer throttling N times first and
/// records every exchange.
/// </summary>
/// <remarks>
/// Reuse from other stages' tests: <c>await using var aws = new SigV4LoopbackServer();</c>, register handlers with
/// <see cref="Handle"/>, then build clients with <c>aws.Context()</c> (or <see cref="Options"/>) so requests are signed
/// with <see cref="Credentials"/> for <see cref="Region"/> and sent to <see cref="Endpoint"/>. A request signed for
/// a different service than the handler's is rejected, so the service name is checked too.
/// </remarks>
public sealed class SigV4LoopbackServer : IAsyncDisposable
{
    public const string DefaultAccessKeyId = "AKIDLOOPBACKEXAMPLE";
    public const string DefaultSecretAccessKey = "loopback/K7MDENG+bPxRfiCYSECRETKEYEXAMPLE";

    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private readonly object _gate = new();
    private readonly Dictionary<string, TestCredential> _keys = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Service, Func<RawHttpRequest, LoopbackResponse> Handler)> _routes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (int Remaining, LoopbackThrottle Kind)> _throttles = new(StringComparer.Ordinal);
    private readonly List<LoopbackExchange> _exchanges = [];
    private readonly List<Task> _connections = [];

    public SigV4LoopbackServer(string region = "us-east-1", TestCredential? credential = null)
    {
        Region = region;
        Credential = credential ?? new TestCredential(DefaultAccessKeyId, DefaultSecretAccessKey);
        _keys[Credential.AccessKeyId] = Credential;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Endpoint = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public Uri Endpoint { get; }
    public string Region { get; }
    public TestCredential Credential { get; }

    /// <summary>SDK credentials matching <see cref="Credential"/> (session credentials when it has a token).</summary>
    public AWSCredentials Credentials => Credential.SessionToken == null
        ? new BasicAWSCredentials(Credential.AccessKeyId, Credential.SecretAccessKey)
        : new SessionAWSCredentials(Credential.AccessKeyId, Credential.SecretAccessKey, Credential.SessionToken);

    /// <summary>The server's idea of "now" for the clock-skew check (default: the system clock).</summary>
    public Func<DateTimeOffset> Clock { get; set; } = () => DateTimeOffset.UtcNow;

    public TimeSpan MaxClockSkew { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>Client options pointing at this server with the test credentials and fast retries.</summary>
    public HardenImage.Aws.AwsClientOptions Options => new()
    {
        Region = Region,
        Credentials = Credentials,
        EndpointOverride = Endpoint,
        MaxRetryAttempts = 4,
        RetryBaseDelay = TimeSpan.FromMilliseconds(5),
    };

    /// <summary>A resolved context for this server; pass a clock to sign at a chosen time (set <see cref="Clock"/> to match).</summary>
    public HardenImage.Aws.AwsContext Context(TimeProvider? clock = null, AWSCredentials? credentials = null, int maxRetryAttempts = 4) =>
        new(credentials ?? Credentials, Region, Endpoint, maxRetryAttempts, TimeSpan.FromMilliseconds(5), clock);

    /// <summary>Accepts another key (e.g. a session credential).</summary>
    public void AddCredential(TestCredential credential)
    {
        lock (_gate) _keys[credential.AccessKeyId] = credential;
    }

    /// <summary>Registers the handler for <paramref name="operation"/>: an X-Amz-Target value or "POST /scan/sbom".</summary>
    public void Handle(string service, string operation, Func<RawHttpRequest, LoopbackResponse> handler)
    {
        lock (_gate) _routes[operation] = (service, handler);
    }

    /// <summary>The next <paramref name="times"/> correctly signed calls of <paramref name="operation"/> get throttled.</summary>
    public void InjectThrottling(string operation, int times, LoopbackThrottle kind = LoopbackThrottle.ThrottlingException400)
    {
        lock (_gate) _throttles[operation] = (times, kind);
    }

    public IReadOnlyList<LoopbackExchange> Exchanges
    {
        get { lock (_gate) return _exchanges.ToList(); }
    }

    /// <summary>Exchanges for one operation, in arrival order.</summary>
    public IReadOnlyList<LoopbackExchange> ExchangesFor(string operation) => Exchanges.Where(e => e.Operation == operation).ToList();

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException) { return; }
            var task = Task.Run(() => ServeConnectionAsync(client));
            lock (_gate) _connections.Add(task);
        }
    }

    private async Task ServeConnectionAsync(TcpClient client)
    {
        using var _ = client;
        var stream = client.GetStream();
        var reader = new ByteReader(stream);
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var request = await ReadRequestAsync(reader, _stop.Token);
                if (request == null) return;
                var response = Process(request);
                await WriteResponseAsync(stream, response, _stop.Token);
                if (string.Equals(request.Header("Connection"), "close", StringComparison.OrdinalIgnoreCase)) return;
            }
        }
        catch (IOException) { }
        catch (OperationCanceledException) { }
        catch (ObjectDisposedException) { }
    }

    private LoopbackResponse Process(RawHttpRequest request)
    {
        var operation = request.Header("X-Amz-Target") ?? $"{request.Method} {request.Path}";
        Dictionary<string, TestCredential> keys;
        lock (_gate) keys = new Dictionary<string, TestCredential>(_keys);
        var check = SigV4Verifier.Verify(request, keys, Region, Clock(), MaxClockSkew);

        (string Service, Func<RawHttpRequest, LoopbackResponse> Handler) route;
        bool known;
        lock (_gate) known = _routes.TryGetValue(operation, out route);

        LoopbackResponse response;
        string? reject = null;
        if (!check.Valid)
        {
            reject = check.Reason;
            response = LoopbackResponse.AwsError(403, check.ErrorType, check.Reason);
        }
        else if (!known)
        {
            response = LoopbackResponse.AwsError(400, "UnknownOperationException", $"no handler for '{operation}'");
        }
        else if (check.Service != route.Service)
        {
            reject = $"signed for service '{check.Service}', operation belongs to '{route.Service}'";
            response = LoopbackResponse.AwsError(403, "InvalidSignatureException", $"Credential should be scoped to correct service: '{route.Service}'.");
        }
        else if (TakeThrottle(operation) is { } kind)
        {
            response = kind switch
            {
                LoopbackThrottle.TooManyRequests429 => LoopbackResponse.AwsError(429, "ThrottlingException", "Rate exceeded"),
                LoopbackThrottle.ServiceUnavailable503 => LoopbackResponse.AwsError(503, "ServiceUnavailableException", "Service unavailable"),
                _ => LoopbackResponse.AwsError(400, "ThrottlingException", "Rate exceeded"),
            };
        }
        else
        {
            try { response = route.Handler(request); }
            catch (Exception e) { response = LoopbackResponse.AwsError(500, "InternalServerException", "test handler threw: " + e.Message); }
        }

        string? errorType = response.Status >= 300 && response.Headers?.TryGetValue("x-amzn-ErrorType", out var t) == true ? t : null;
        lock (_gate) _exchanges.Add(new LoopbackExchange(request, operation, check.Service, response.Status, errorType, reject, response.Body));
        return response;
    }

    private LoopbackThrottle? TakeThrottle(string operation)
    {
        lock (_gate)
        {
            if (!_throttles.TryGetValue(operation, out var t) || t.Remaining <= 0) return null;
            _throttles[operation] = (t.Remaining - 1, t.Kind);
            return t.Kind;
        }
    }

    private static async Task<RawHttpRequest?> ReadRequestAsync(ByteReader reader, CancellationToken ct)
    {
        var requestLine = await reader.ReadLineAsync(ct);
        if (requestLine == null) return null;
        while (requestLine.Length == 0)
        {
            requestLine = await reader.ReadLineAsync(ct);
            if (requestLine == null) return null;
        }
        var parts = requestLine.Split(' ');
        if (parts.Length < 3) throw new IOException("bad request line: " + requestLine);
        var headers = new List<KeyValuePair<string, string>>();
        while (true)
        {
            var line = await reader.ReadLineAsync(ct) ?? throw new IOException("connection closed inside headers");
            if (line.Length == 0) break;
            if (char.IsWhiteSpace(line[0]) && headers.Count > 0)
            {
                headers[^1] = new(headers[^1].Key, headers[^1].Value.TrimEnd() + " " + line.Trim());
                continue;
            }
            var colon = line.IndexOf(':');
            if (colon <= 0) throw new IOException("bad header line: " + line);
            headers.Add(new(line[..colon], line[(colon + 1)..].Trim()));
        }
        var request = new RawHttpRequest(parts[0], string.Join(' ', parts[1..^1]), headers, []);
        byte[] body;
        if (string.Equals(request.Header("Transfer-Encoding"), "chunked", StringComparison.OrdinalIgnoreCase))
        {
            using var ms = new MemoryStream();
            while (true)
            {
                var sizeLine = await reader.ReadLineAsync(ct) ?? throw new IOException("connection closed inside chunked body");
                var size = Convert.ToInt32(sizeLine.Split(';')[0].Trim(), 16);
                if (size == 0)
                {
                    while ((await reader.ReadLineAsync(ct))?.Length > 0) { }
                    break;
                }
                ms.Write(await reader.ReadExactlyAsync(size, ct));
                await reader.ReadLineAsync(ct);
            }
            body = ms.ToArray();
        }
        else
        {
            var length = int.TryParse(request.Header("Content-Length"), out var n) ? n : 0;
            body = length > 0 ? await reader.ReadExactlyAsync(length, ct) : [];
        }
        return request with { Body = body };
    }

    private static async Task WriteResponseAsync(NetworkStream stream, LoopbackResponse response, CancellationToken ct)
    {
        var body = Encoding.UTF8.GetBytes(response.Body);
        var head = new StringBuilder();
        head.Append($"HTTP/1.1 {response.Status} {ReasonPhrase(response.Status)}\r\n");
        head.Append($"Content-Type: {response.ContentType}\r\n");
        head.Append($"Content-Length: {body.Length}\r\n");
        head.Append($"x-amzn-RequestId: {Guid.NewGuid()}\r\n");
        foreach (var (k, v) in response.Headers ?? new Dictionary<string, string>()) head.Append($"{k}: {v}\r\n");
        head.Append("\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()), ct);
        await stream.WriteAsync(body, ct);
        await stream.FlushAsync(ct);
    }

    private static string ReasonPhrase(int status) => status switch
    {
        200 => "OK", 400 => "Bad Request", 403 => "Forbidden", 404 => "Not Found", 429 => "Too Many Requests",
        500 => "Internal Server Error", 503 => "Service Unavailable", _ => "Status",
    };

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        try { await _acceptLoop; } catch (Exception) { }
        Task[] open;
        lock (_gate) open = _connections.ToArray();
        try { await Task.WhenAll(open).WaitAsync(TimeSpan.FromSeconds(5)); } catch (Exception) { }
        _stop.Dispose();
    }

    /// <summary>Buffered reads of CRLF lines and exact byte counts from a socket stream.</summary>
    private sealed class ByteReader(Stream stream)
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        private int _start, _end;

        private async Task<bool> FillAsync(CancellationToken ct)
        {
            if (_start > 0 && _start == _end) _start = _end = 0;
            if (_end == _buffer.Length)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
                if (_end == _buffer.Length) throw new IOException("header line too long");
            }
            var n = await stream.ReadAsync(_buffer.AsMemory(_end), ct);
            _end += n;
            return n > 0;
        }

        public async Task<string?> ReadLineAsync(CancellationToken ct)
        {
            while (true)
            {
                var idx = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
                if (idx >= 0)
                {
                    var len = idx - _start;
                    if (len > 0 && _buffer[idx - 1] == '\r') len--;
                    var line = Encoding.UTF8.GetString(_buffer, _start, len);
                    _start = idx + 1;
                    return line;
                }
                if (!await FillAsync(ct)) return null;
            }
        }

        public async Task<byte[]> ReadExactlyAsync(int count, CancellationToken ct)
        {
            var result = new byte[count];
            var copied = 0;
            while (copied < count)
            {
                if (_start == _end && !await FillAsync(ct)) throw new IOException("connection closed inside body");
                var n = Math.Min(count - copied, _end - _start);
                Buffer.BlockCopy(_buffer, _start, result, copied, n);
                _start += n;
                copied += n;
            }
            return result;
        }
    }
}
