using System.Net;

namespace HardenImage.Tests.Registry;

/// <summary>A small HTTP server on a free 127.0.0.1 port (HttpListener) for proxies and fakes in tests.</summary>
public sealed class LoopbackHttpServer : IDisposable
{
    private readonly HttpListener _listener;
    private readonly Func<HttpListenerContext, Task> _handle;
    private readonly CancellationTokenSource _stop = new();

    public LoopbackHttpServer(Func<HttpListenerContext, Task> handle)
    {
        _handle = handle;
        for (var attempt = 0; ; attempt++)
        {
            var port = DockerRegistryServer.FreePort();
            var listener = new HttpListener();
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            try
            {
                listener.Start();
                _listener = listener;
                Port = port;
                break;
            }
            catch (HttpListenerException) when (attempt < 5)
            {
                listener.Close();
            }
        }
        _ = Task.Run(AcceptLoop);
    }

    public int Port { get; }
    public string Authority => $"127.0.0.1:{Port}";

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch (Exception) when (_stop.IsCancellationRequested || !_listener.IsListening) { return; }
            catch (HttpListenerException) { continue; }
            _ = Task.Run(async () =>
            {
                try { await _handle(ctx); }
                catch (Exception)
                {
                    try { ctx.Response.Abort(); } catch (Exception) { }
                }
            });
        }
    }

    public static async Task<byte[]> ReadBodyAsync(HttpListenerRequest request)
    {
        using var ms = new MemoryStream();
        await request.InputStream.CopyToAsync(ms);
        return ms.ToArray();
    }

    public static async Task RespondAsync(HttpListenerContext ctx, int status, byte[]? body = null, string? contentType = null,
        IEnumerable<(string, string)>? headers = null, long? headContentLength = null)
    {
        var r = ctx.Response;
        r.StatusCode = status;
        if (headers != null) foreach (var (k, v) in headers) r.AddHeader(k, v);
        if (contentType != null) r.ContentType = contentType;
        body ??= [];
        r.ContentLength64 = ctx.Request.HttpMethod == "HEAD" && headContentLength is { } hl ? hl : body.Length;
        if (body.Length > 0 && ctx.Request.HttpMethod != "HEAD") await r.OutputStream.WriteAsync(body);
        r.Close();
    }

    public void Dispose()
    {
        _stop.Cancel();
        try { _listener.Stop(); _listener.Close(); } catch (ObjectDisposedException) { }
        _stop.Dispose();
    }
}
