using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace HardenImage.Tests.Fixtures;

/// <summary>A fault the test server injects for one path.</summary>
public abstract record HttpFault
{
    /// <summary>Answer with this status code and an empty body.</summary>
    public sealed record Status(int Code) : HttpFault;
    /// <summary>Reset the TCP connection without answering.</summary>
    public sealed record DropConnection : HttpFault;
    /// <summary>Send the headers and the first <paramref name="Bytes"/> bytes of the body, then reset.</summary>
    public sealed record TruncateBody(int Bytes) : HttpFault;
    /// <summary>Accept, read the request, never answer (timeout tests).</summary>
    public sealed record Hang : HttpFault;
    /// <summary>Serve these bytes instead of the file (a tampering mirror).</summary>
    public sealed record Replace(byte[] Body) : HttpFault;
}

/// <summary>
/// A minimal in-process static HTTP/1.1 server over a directory, for tests: binds 127.0.0.1 on a free port,
/// serves GET and HEAD byte-exact with Content-Length, one request per connection (Connection: close), refuses
/// paths that escape the root, and lets a test inject <see cref="HttpFault"/>s per path. Every request is logged
/// in <see cref="Requests"/> as "METHOD /path".
/// </summary>
public sealed class StaticHttpServer : IDisposable
{
    private readonly string _root;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, HttpFault> _faults = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _requests = new();
    private readonly Task _acceptLoop;

    public StaticHttpServer(string rootDirectory)
    {
        _root = Path.GetFullPath(rootDirectory).TrimEnd('/') + "/";
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }

    /// <summary>http://127.0.0.1:PORT/ (with the trailing slash).</summary>
    public string BaseUrl => $"http://127.0.0.1:{Port}/";

    /// <summary>"GET /dists/stable/InRelease", in arrival order.</summary>
    public IReadOnlyCollection<string> Requests => _requests;

    /// <summary>Injects a fault for a path relative to the root (e.g. "dists/stable/InRelease").</summary>
    public void SetFault(string relativePath, HttpFault fault) => _faults[Normalize(relativePath)] = fault;

    public void ClearFault(string relativePath) => _faults.TryRemove(Normalize(relativePath), out _);

    public void ClearFaults() => _faults.Clear();

    private static string Normalize(string p) => "/" + p.TrimStart('/');

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (SocketException) { continue; }
            _ = Task.Run(() => HandleAsync(client));
        }
    }

    private async Task HandleAsync(TcpClient client)
    {
        using var _ = client;
        try
        {
            var stream = client.GetStream();
            var head = await ReadHeadAsync(stream);
            if (head == null) return;
            var requestLine = head.Split("\r\n")[0].Split(' ');
            if (requestLine.Length < 2) { await WriteStatusAsync(stream, 400, "Bad Request"); return; }
            var method = requestLine[0];
            var rawPath = requestLine[1];
            var q = rawPath.IndexOf('?');
            var path = Uri.UnescapeDataString(q >= 0 ? rawPath[..q] : rawPath);
            _requests.Enqueue($"{method} {path}");

            if (_faults.TryGetValue(path, out var fault))
            {
                switch (fault)
                {
                    case HttpFault.Status s: await WriteStatusAsync(stream, s.Code, "Injected"); return;
                    case HttpFault.DropConnection: Reset(client); return;
                    case HttpFault.Hang: await Task.Delay(Timeout.Infinite, _stop.Token); return;
                    case HttpFault.Replace r: await WriteBodyAsync(stream, method, r.Body, r.Body.Length); return;
                    case HttpFault.TruncateBody t:
                        var full = File.ReadAllBytes(MapPath(path) ?? throw new FileNotFoundException(path));
                        await WriteBodyAsync(stream, method, full.AsSpan(0, Math.Min(t.Bytes, full.Length)).ToArray(), full.Length);
                        Reset(client);
                        return;
                }
            }
            if (method != "GET" && method != "HEAD") { await WriteStatusAsync(stream, 405, "Method Not Allowed"); return; }
            var file = MapPath(path);
            if (file == null || !File.Exists(file)) { await WriteStatusAsync(stream, 404, "Not Found"); return; }
            var bytes = await File.ReadAllBytesAsync(file);
            await WriteBodyAsync(stream, method, bytes, bytes.Length);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException) { }
    }

    private string? MapPath(string urlPath)
    {
        var full = Path.GetFullPath(Path.Combine(_root, urlPath.TrimStart('/')));
        return full.StartsWith(_root, StringComparison.Ordinal) ? full : null; // no ../ escapes
    }

    private static void Reset(TcpClient client)
    {
        client.Client.LingerState = new LingerOption(true, 0); // close with RST, like a dropped connection
        client.Client.Close();
    }

    private static async Task<string?> ReadHeadAsync(NetworkStream stream)
    {
        var buffer = new byte[16 * 1024];
        int filled = 0;
        while (filled < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(filled));
            if (n == 0) return null;
            filled += n;
            var text = Encoding.ASCII.GetString(buffer, 0, filled);
            if (text.Contains("\r\n\r\n", StringComparison.Ordinal)) return text;
        }
        return null;
    }

    private static async Task WriteStatusAsync(NetworkStream stream, int code, string reason)
    {
        var head = $"HTTP/1.1 {code} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
    }

    private static async Task WriteBodyAsync(NetworkStream stream, string method, byte[] body, long announcedLength)
    {
        var head = $"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {announcedLength}\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        if (method != "HEAD") await stream.WriteAsync(body);
        await stream.FlushAsync();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try { _acceptLoop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _stop.Dispose();
    }
}
