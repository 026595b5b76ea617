using System.Collections.Specialized;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace HardenImage.Tests.Registry;

/// <summary>
/// A minimal HTTP/1.1 server on a free 127.0.0.1 port for proxies and fakes in tests. Hand-written over sockets
/// (HttpListener cannot drop a connection without first sending a response), so a handler can cut a connection
/// half-way through a request body with a TCP reset, as a flaky network or ECR does.
/// </summary>
public sealed class LoopbackHttpServer : IDisposable
{
    private readonly TcpListener _listener;
    private readonly Func<LoopbackContext, Task> _handle;
    private readonly CancellationTokenSource _stop = new();

    public LoopbackHttpServer(Func<LoopbackContext, Task> handle)
    {
        _handle = handle;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = Task.Run(AcceptLoop);
    }

    public int Port { get; }
    public string Authority => $"127.0.0.1:{Port}";

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try { socket = await _listener.AcceptSocketAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(() => ServeConnection(socket));
        }
    }

    private async Task ServeConnection(Socket socket)
    {
        using var _ = socket;
        socket.NoDelay = true;
        await using var network = new NetworkStream(socket, ownsSocket: false);
        var stream = new BufferedStream(network, 64 * 1024);
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var ctx = await LoopbackContext.ReadAsync(stream, socket);
                if (ctx == null) return;
                try
                {
                    await _handle(ctx);
                }
                catch (Exception) when (!ctx.Responded && !ctx.Aborted)
                {
                    ctx.Abort();
                }
                if (ctx.Aborted) return;
                if (!ctx.Responded) await ctx.RespondAsync(500);
                await ctx.DrainBodyAsync();
                if (ctx.CloseAfter) return;
            }
        }
        catch (IOException) { }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _stop.Dispose();
    }
}

/// <summary>One request: method, path, headers, a body read on demand, and the ways to answer it.</summary>
public sealed class LoopbackContext
{
    private readonly Stream _stream;
    private readonly Socket _socket;
    private long _bodyRead;

    private LoopbackContext(Stream stream, Socket socket, string method, string pathAndQuery, Dictionary<string, string> headers)
    {
        _stream = stream;
        _socket = socket;
        Method = method;
        PathAndQuery = pathAndQuery;
        Headers = headers;
        var q = pathAndQuery.IndexOf('?');
        Path = Uri.UnescapeDataString(q < 0 ? pathAndQuery : pathAndQuery[..q]);
        Query = System.Web.HttpUtility.ParseQueryString(q < 0 ? "" : pathAndQuery[(q + 1)..]);
        ContentLength = headers.TryGetValue("Content-Length", out var cl) && long.TryParse(cl, out var n) ? n : 0;
        CloseAfter = headers.TryGetValue("Connection", out var c) && c.Equals("close", StringComparison.OrdinalIgnoreCase);
    }

    public string Method { get; }
    public string PathAndQuery { get; }
    public string Path { get; }
    public NameValueCollection Query { get; }
    public IReadOnlyDictionary<string, string> Headers { get; }
    public long ContentLength { get; }
    public bool Responded { get; private set; }
    public bool Aborted { get; private set; }
    internal bool CloseAfter { get; }

    public string? Header(string name) => Headers.TryGetValue(name, out var v) ? v : null;

    internal static async Task<LoopbackContext?> ReadAsync(Stream stream, Socket socket)
    {
        var requestLine = await ReadLineAsync(stream);
        if (string.IsNullOrEmpty(requestLine)) return null;
        var parts = requestLine.Split(' ');
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        string? line;
        while (!string.IsNullOrEmpty(line = await ReadLineAsync(stream)))
        {
            var colon = line.IndexOf(':');
            if (colon <= 0) continue;
            var key = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            headers[key] = headers.TryGetValue(key, out var prev) ? prev + ", " + value : value;
        }
        return new LoopbackContext(stream, socket, parts[0], parts.Length > 1 ? parts[1] : "/", headers);
    }

    private static async Task<string?> ReadLineAsync(Stream stream)
    {
        var sb = new StringBuilder();
        var one = new byte[1];
        while (true)
        {
            var n = await stream.ReadAsync(one);
            if (n == 0) return sb.Length == 0 ? null : sb.ToString();
            if (one[0] == '\n') return sb.ToString().TrimEnd('\r');
            sb.Append((char)one[0]);
        }
    }

    /// <summary>Reads the rest of the body (or at most <paramref name="max"/> bytes of it).</summary>
    public async Task<byte[]> ReadBodyAsync(long? max = null)
    {
        var want = ContentLength - _bodyRead;
        if (max is { } m && m < want) want = m;
        var buffer = new byte[want];
        await _stream.ReadExactlyAsync(buffer);
        _bodyRead += want;
        return buffer;
    }

    internal async Task DrainBodyAsync()
    {
        if (_bodyRead < ContentLength) await ReadBodyAsync();
    }

    public async Task RespondAsync(int status, byte[]? body = null, string? contentType = null,
        IEnumerable<(string, string)>? headers = null, long? headContentLength = null)
    {
        body ??= [];
        var head = new StringBuilder();
        head.Append($"HTTP/1.1 {status} {ReasonPhrase(status)}\r\n");
        if (contentType != null) head.Append($"Content-Type: {contentType}\r\n");
        var length = Method == "HEAD" && headContentLength is { } hl ? hl : body.Length;
        head.Append($"Content-Length: {length}\r\n");
        if (headers != null) foreach (var (k, v) in headers) head.Append($"{k}: {v}\r\n");
        if (CloseAfter) head.Append("Connection: close\r\n");
        head.Append("\r\n");
        await _stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()));
        if (Method != "HEAD" && body.Length > 0) await _stream.WriteAsync(body);
        await _stream.FlushAsync();
        Responded = true;
    }

    /// <summary>
    /// A hostile answer: headers without Content-Length, then a chunked body that never ends — until the client
    /// hangs up or <paramref name="maxBytes"/> were sent (so the test server itself stays bounded). Returns the
    /// bytes sent; the connection is closed afterwards.
    /// </summary>
    public async Task<long> RespondEndlessAsync(int status, string contentType, long maxBytes)
    {
        var head = $"HTTP/1.1 {status} {ReasonPhrase(status)}\r\nContent-Type: {contentType}\r\nTransfer-Encoding: chunked\r\n\r\n";
        await _stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        var chunk = Encoding.ASCII.GetBytes(new string(' ', 64 * 1024));
        var frame = Encoding.ASCII.GetBytes($"{chunk.Length:x}\r\n").Concat(chunk).Concat("\r\n"u8.ToArray()).ToArray();
        long sent = 0;
        Responded = true;
        try
        {
            while (sent < maxBytes)
            {
                await _stream.WriteAsync(frame);
                await _stream.FlushAsync();
                sent += chunk.Length;
            }
        }
        catch (IOException) { }
        catch (ObjectDisposedException) { }
        Abort();
        return sent;
    }

    /// <summary>Headers promising <paramref name="declaredLength"/> bytes, the first part of the body, then silence for <paramref name="stall"/>.</summary>
    public async Task RespondThenStallAsync(int status, byte[] firstPart, long declaredLength, TimeSpan stall, string contentType = "application/json")
    {
        var head = $"HTTP/1.1 {status} {ReasonPhrase(status)}\r\nContent-Type: {contentType}\r\nContent-Length: {declaredLength}\r\n\r\n";
        await _stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        await _stream.WriteAsync(firstPart);
        await _stream.FlushAsync();
        Responded = true;
        await Task.Delay(stall);
        Abort();
    }

    /// <summary>Reads the request and never answers for <paramref name="silence"/> (bounded, so the test server ends), then hangs up.</summary>
    public async Task NeverAnswerAsync(TimeSpan silence)
    {
        await DrainBodyAsync();
        await Task.Delay(silence);
        Abort();
    }

    /// <summary>Cuts the connection with a TCP reset: the client sees a dropped connection, no response.</summary>
    public void Abort()
    {
        Aborted = true;
        try
        {
            _socket.LingerState = new LingerOption(true, 0);
            _socket.Close();
        }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
    }

    private static string ReasonPhrase(int status) => status switch
    {
        200 => "OK", 201 => "Created", 202 => "Accepted", 204 => "No Content", 400 => "Bad Request", 401 => "Unauthorized",
        404 => "Not Found", 429 => "Too Many Requests", 500 => "Internal Server Error", _ => "Status",
    };
}
