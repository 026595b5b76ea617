using System.Net;
using HardenImage.Common.Streams;

namespace HardenImage.Net;

/// <summary>
/// The one place where every HTTP call we make gets its deadlines and its size bound (registry, token realm, ECR,
/// Inspector, KMS, advisory feeds, apt mirrors). Sits directly above the transport, so each attempt of a retry has
/// its own deadlines:
/// <list type="bullet">
/// <item>connect + time to response headers (<see cref="NetworkDeadlines.Connect"/> +
/// <see cref="NetworkDeadlines.ResponseHeaders"/>; with a request body, the headers clock starts when the last
/// byte is sent and every body write must progress within <see cref="NetworkDeadlines.Stall"/>);</item>
/// <item>every read of the response body must return within <see cref="NetworkDeadlines.Stall"/>;</item>
/// <item>the response body may hold at most <see cref="MaxResponseBytes"/> (per request) or the handler's default,
/// counted on the stream — <c>Content-Length</c> is only a hint a hostile server need not send.</item>
/// </list>
/// Failures are <see cref="NetworkTimeoutException"/> / <see cref="ResponseTooLargeException"/> naming the host,
/// what was asked, the limit and the knob (threat: Denial of service).
/// </summary>
public sealed class DeadlineHandler : DelegatingHandler
{
    /// <summary>Largest response body a request accepts (bytes); <see cref="Unlimited"/> for streamed blobs.</summary>
    public static readonly HttpRequestOptionsKey<long> MaxResponseBytes = new("HardenImage.Net.MaxResponseBytes");

    /// <summary>What the request is for, in words ("manifest base:1.0", "token"), for error messages.</summary>
    public static readonly HttpRequestOptionsKey<string> Purpose = new("HardenImage.Net.Purpose");

    /// <summary>Time added to the response-header deadline for one request whose server legitimately works before
    /// answering (completing a large blob upload: the registry hashes or moves the blob first).</summary>
    public static readonly HttpRequestOptionsKey<TimeSpan> ExtraResponseTime = new("HardenImage.Net.ExtraResponseTime");

    public const long Unlimited = long.MaxValue;

    public DeadlineHandler(NetworkDeadlines deadlines, long defaultMaxResponseBytes, HttpMessageHandler? innerHandler = null)
    {
        Deadlines = deadlines;
        DefaultMaxResponseBytes = defaultMaxResponseBytes;
        if (innerHandler != null) InnerHandler = innerHandler;
    }

    public NetworkDeadlines Deadlines { get; }
    public long DefaultMaxResponseBytes { get; }

    /// <summary>A socket transport with the connect deadline and no automatic decompression.</summary>
    /// <param name="followRedirects">Registries send blob reads to a CDN or S3; signed AWS APIs never redirect.</param>
    public static SocketsHttpHandler CreateTransport(NetworkDeadlines deadlines, bool followRedirects = false,
        DecompressionMethods decompression = DecompressionMethods.None) => new()
    {
        ConnectTimeout = deadlines.Connect,
        AllowAutoRedirect = followRedirects,
        AutomaticDecompression = decompression,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        MaxConnectionsPerServer = 32,
    };

    /// <summary><see cref="CreateTransport"/> under a <see cref="DeadlineHandler"/>: the usual innermost pair.</summary>
    public static DeadlineHandler OverSockets(NetworkDeadlines deadlines, long defaultMaxResponseBytes, bool followRedirects = false,
        DecompressionMethods decompression = DecompressionMethods.None) =>
        new(deadlines, defaultMaxResponseBytes, CreateTransport(deadlines, followRedirects, decompression));

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        var uri = request.RequestUri ?? throw new InvalidOperationException("request without URI");
        var what = request.Options.TryGetValue(Purpose, out var p) ? p : $"{request.Method} {uri.AbsolutePath}";
        var max = request.Options.TryGetValue(MaxResponseBytes, out var m) ? m : DefaultMaxResponseBytes;
        var headersDeadline = Deadlines.ResponseHeaders + (request.Options.TryGetValue(ExtraResponseTime, out var extra) && extra > TimeSpan.Zero ? extra : TimeSpan.Zero);
        var original = request.Content;
        HttpResponseMessage response;
        using (var watchdog = new Watchdog(ct))
        {
            watchdog.Arm("connect and send the response headers", Deadlines.Connect + headersDeadline);
            if (original != null) request.Content = new WatchedContent(original, watchdog, Deadlines, headersDeadline);
            try
            {
                response = await base.SendAsync(request, watchdog.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (!ct.IsCancellationRequested && (watchdog.Fired || IsConnectTimeout(e)))
            {
                var (phase, limit) = watchdog.Fired ? watchdog.Current : ("connect", Deadlines.Connect);
                throw new NetworkTimeoutException($"{uri.Authority} did not {phase} within {Seconds(limit)} ({what}). " +
                    $"The server is unreachable or not answering; check it, or set {NetworkDeadlines.EnvironmentVariable} (seconds) to wait longer.", e);
            }
            finally
            {
                // The same request may be sent again (auth, retries): give it back its own content.
                request.Content = original;
            }
        }

        if (request.Method == HttpMethod.Head) return response;
        if (response.Content.Headers.ContentLength is { } declared && declared > max)
        {
            response.Dispose();
            throw TooLarge(uri, what, max, $"it declares {declared} bytes");
        }
        var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        var guarded = new StreamContent(new GuardedResponseStream(body, max, Deadlines.Stall, uri, what));
        foreach (var h in response.Content.Headers) guarded.Headers.TryAddWithoutValidation(h.Key, h.Value);
        response.Content = guarded;
        return response;
    }

    internal static ResponseTooLargeException TooLarge(Uri uri, string what, long max, string how) =>
        new($"{uri.Authority}: the answer to {what} is larger than the {max:N0}-byte limit for it ({how}); refusing it " +
            "(an endless or hostile body). Check the server, or the URL.");

    internal static string Seconds(TimeSpan t) => $"{t.TotalSeconds:0.###} s";

    private static bool IsConnectTimeout(Exception e) =>
        e is HttpRequestException { InnerException: TimeoutException } or OperationCanceledException { InnerException: TimeoutException };

    /// <summary>A cancellation that fires when the current phase takes longer than its limit; re-armed as the phase changes.</summary>
    internal sealed class Watchdog : IDisposable
    {
        private readonly CancellationTokenSource _cts;
        private readonly object _gate = new();
        private bool _disposed;

        public Watchdog(CancellationToken outer) => _cts = CancellationTokenSource.CreateLinkedTokenSource(outer);

        public CancellationToken Token => _cts.Token;
        public (string Phase, TimeSpan Limit) Current { get; private set; }

        /// <summary>Whether this watchdog (not the caller) cancelled; the caller's token is checked separately.</summary>
        public bool Fired
        {
            get { lock (_gate) return _disposed ? _firedAtDispose : _cts.IsCancellationRequested; }
        }

        private bool _firedAtDispose;

        public void Arm(string phase, TimeSpan limit)
        {
            lock (_gate)
            {
                if (_disposed || _cts.IsCancellationRequested) return;
                Current = (phase, limit);
                _cts.CancelAfter(limit);
            }
        }

        public void Dispose()
        {
            lock (_gate)
            {
                if (_disposed) return;
                _firedAtDispose = _cts.IsCancellationRequested;
                _disposed = true;
                _cts.Dispose();
            }
        }
    }

    /// <summary>Request content whose writes re-arm the watchdog (stall), then start the response-headers clock.</summary>
    private sealed class WatchedContent : HttpContent
    {
        private readonly HttpContent _inner;
        private readonly Watchdog _watchdog;
        private readonly NetworkDeadlines _deadlines;
        private readonly TimeSpan _headersDeadline;

        public WatchedContent(HttpContent inner, Watchdog watchdog, NetworkDeadlines deadlines, TimeSpan headersDeadline)
        {
            _inner = inner;
            _watchdog = watchdog;
            _deadlines = deadlines;
            _headersDeadline = headersDeadline;
            foreach (var h in inner.Headers) Headers.TryAddWithoutValidation(h.Key, h.Value);
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken ct)
        {
            _watchdog.Arm("accept the request body", _deadlines.Stall);
            await _inner.CopyToAsync(new ProgressStream(stream, _watchdog, _deadlines.Stall), context, ct).ConfigureAwait(false);
            _watchdog.Arm("send the response headers after the request was sent", _headersDeadline);
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = _inner.Headers.ContentLength ?? -1;
            return length >= 0;
        }

        // The inner content belongs to the request; the caller disposes it.
        protected override void Dispose(bool disposing) => base.Dispose(false);
    }

    /// <summary>A write-through stream that re-arms the stall deadline on every write.</summary>
    private sealed class ProgressStream(Stream inner, Watchdog watchdog, TimeSpan stall) : WriteOnlyStream
    {
        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken ct) => inner.FlushAsync(ct);

        public override void Write(byte[] buffer, int offset, int count)
        {
            watchdog.Arm("accept the request body", stall);
            inner.Write(buffer, offset, count);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            watchdog.Arm("accept the request body", stall);
            await inner.WriteAsync(buffer, ct).ConfigureAwait(false);
        }
    }
}

/// <summary>
/// A response body with a stall deadline on every read and a byte bound counted as it is read. Reads never ask
/// for more than one byte past the bound, so an endless body costs at most the bound in memory or on disk.
/// </summary>
public sealed class GuardedResponseStream : ReadOnlyWrapperStream
{
    private readonly long _max;
    private readonly TimeSpan _stall;
    private readonly Uri _uri;
    private readonly string _what;
    private long _read;

    public GuardedResponseStream(Stream inner, long max, TimeSpan stall, Uri uri, string what) : base(inner)
    {
        _max = max; _stall = stall; _uri = uri; _what = what;
    }

    public override long Position { get => _read; }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        if (buffer.Length == 0) return 0;
        var room = _max == DeadlineHandler.Unlimited ? buffer.Length : (int)Math.Min(buffer.Length, _max - _read + 1);
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stall.CancelAfter(_stall);
        int n;
        try
        {
            n = await Inner.ReadAsync(buffer[..room], stall.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException && stall.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new NetworkTimeoutException($"{_uri.Authority} stopped sending the answer to {_what} for {DeadlineHandler.Seconds(_stall)} " +
                $"after {_read:N0} bytes. The server or the link stalls; retry, or set {NetworkDeadlines.EnvironmentVariable} (seconds) to wait longer.", e);
        }
        _read += n;
        if (_read > _max) throw DeadlineHandler.TooLarge(_uri, _what, _max, "counted while reading");
        return n;
    }

}
