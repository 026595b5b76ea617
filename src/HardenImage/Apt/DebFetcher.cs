using System.Buffers;
using System.Net;
using System.Security.Cryptography;
using HardenImage.Common;
using HardenImage.Contracts;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace HardenImage.Apt;

/// <summary>One .deb to fetch, as the lock names it.</summary>
public sealed record DebDownload(string Name, string Version, string Url, string Sha256, long Size)
{
    public static DebDownload From(LockedPackage p) => new(p.Name, p.Version, p.Url, p.Sha256, p.Size);

    public override string ToString() => $"{Name} {Version}";
}

/// <summary>Progress of one package: reported when it starts (0 bytes), as bytes arrive, on each retry (back to 0) and when done.</summary>
public sealed record FetchProgress(string Package, long BytesSoFar, long TotalBytes, bool Completed = false, bool CacheHit = false);

/// <summary>A fetched and verified .deb.</summary>
/// <param name="Path">The verified file in the cache.</param>
/// <param name="Bytes">Size of the .deb.</param>
/// <param name="Attempts">Download attempts made (0 on a cache hit).</param>
/// <param name="EvictedCorruptCopy">A cached copy existed but failed verification and was replaced.</param>
public sealed record FetchedDeb(DebDownload Deb, string Path, bool CacheHit, long Bytes, int Attempts, bool EvictedCorruptCopy);

/// <summary>Knobs for <see cref="DebFetcher"/>; the defaults suit the Debian mirrors.</summary>
public sealed record DebFetcherOptions
{
    /// <summary>Downloads in flight at once (and cache verifications).</summary>
    public int MaxParallelDownloads { get; init; } = 6;
    /// <summary>Retries after the first attempt.</summary>
    public int MaxRetries { get; init; } = 4;
    /// <summary>First back-off delay; doubles each retry (with jitter).</summary>
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromSeconds(1);
    public bool UseJitter { get; init; } = true;
    /// <summary>Longest Retry-After we honour; a server asking for more gets this (Denial of service: no unbounded waits).</summary>
    public TimeSpan MaxRetryAfter { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Upper bound of one attempt, headers and body.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromMinutes(15);
    /// <summary>An attempt fails when no byte arrives for this long.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// Downloads locked .debs into a <see cref="DebCache"/>: in parallel (bounded), retried with exponential
/// back-off (Polly) on network errors, 5xx, 408 and 429 (honouring Retry-After), streamed to a temp file
/// while hashed, and renamed into the cache only when size and SHA-256 match the lock.
/// <para>
/// Threat: Tampering — a .deb whose bytes differ from the signed index is refused and never cached; a cached
/// copy is re-verified before use. Denial of service — a body longer than the locked size is cut off at the
/// first extra byte, stalled transfers time out, Retry-After is capped, and retries are bounded.
/// </para>
/// </summary>
public sealed class DebFetcher
{
    private const int BufferSize = 1 << 17;
    private readonly HttpClient _http;
    private readonly DebCache _cache;
    private readonly DebFetcherOptions _options;
    private readonly ResiliencePipeline _pipeline;

    /// <param name="http">Owned by the caller (shared handler, proxy settings, user agent).</param>
    public DebFetcher(HttpClient http, DebCache cache, DebFetcherOptions? options = null)
    {
        _http = http;
        _cache = cache;
        _options = options ?? new DebFetcherOptions();
        _pipeline = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = _options.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = _options.UseJitter,
                Delay = _options.BaseDelay,
                MaxDelay = TimeSpan.FromMinutes(2),
                ShouldHandle = new PredicateBuilder()
                    .Handle<HttpRequestException>()
                    .Handle<IOException>()
                    .Handle<TimeoutException>()
                    .Handle<TimeoutRejectedException>()
                    .Handle<TransientHttpStatusException>(),
                DelayGenerator = args =>
                    new ValueTask<TimeSpan?>(args.Outcome.Exception is TransientHttpStatusException { RetryAfter: { } after }
                        ? (after > _options.MaxRetryAfter ? _options.MaxRetryAfter : after)
                        : null),
            })
            .AddTimeout(_options.AttemptTimeout)
            .Build();
    }

    /// <summary>
    /// Makes every .deb of <paramref name="debs"/> present and verified in the cache. Results are in input order;
    /// the same SHA-256 listed twice is fetched once. Throws <see cref="HardenException"/> on a tampered .deb, a
    /// non-retryable HTTP status, or when retries are exhausted. <paramref name="arrived"/> is told of each verified
    /// .deb as soon as it is in the cache (from the downloading thread), so its caller can start on it early.
    /// </summary>
    public async Task<IReadOnlyList<FetchedDeb>> FetchAsync(IReadOnlyList<DebDownload> debs,
        IProgress<FetchProgress>? progress = null, CancellationToken ct = default, Action<FetchedDeb>? arrived = null)
    {
        foreach (var d in debs) Validate(d);
        var firstIndexOf = new Dictionary<string, int>(StringComparer.Ordinal);
        var unique = new List<int>();
        for (int i = 0; i < debs.Count; i++)
            if (firstIndexOf.TryAdd(debs[i].Sha256.ToLowerInvariant(), i)) unique.Add(i);

        var results = new FetchedDeb[debs.Count];
        await Parallel.ForEachAsync(unique,
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, _options.MaxParallelDownloads), CancellationToken = ct },
            async (i, token) =>
            {
                results[i] = await FetchOneAsync(debs[i], progress, token);
                arrived?.Invoke(results[i]);
            });
        for (int i = 0; i < debs.Count; i++)
            results[i] ??= results[firstIndexOf[debs[i].Sha256.ToLowerInvariant()]] with { Deb = debs[i] };
        return results;
    }

    private static void Validate(DebDownload d)
    {
        if (!Sha256Hex.IsValid(d.Sha256.ToLowerInvariant()))
            throw new HardenException($"{d}: the lock gives '{d.Sha256}' as SHA-256, which is not 64 hex digits. Run 'harden lock --update'.");
        if (d.Size < 0)
            throw new HardenException($"{d}: the lock gives a negative size. Run 'harden lock --update'.");
        if (!Uri.TryCreate(d.Url, UriKind.Absolute, out var u) || (u.Scheme != Uri.UriSchemeHttp && u.Scheme != Uri.UriSchemeHttps))
            throw new HardenException($"{d}: the lock gives '{d.Url}' as URL; only http(s) URLs are fetched. Run 'harden lock --update'.");
    }

    private async Task<FetchedDeb> FetchOneAsync(DebDownload deb, IProgress<FetchProgress>? progress, CancellationToken ct)
    {
        var sha = deb.Sha256.ToLowerInvariant();
        var state = await _cache.VerifyAsync(sha, deb.Size, ct);
        if (state == DebCacheState.Verified)
        {
            progress?.Report(new FetchProgress(deb.Name, deb.Size, deb.Size, Completed: true, CacheHit: true));
            return new FetchedDeb(deb, _cache.PathFor(sha), CacheHit: true, deb.Size, Attempts: 0, EvictedCorruptCopy: false);
        }

        int attempts = 0;
        try
        {
            var path = await _pipeline.ExecuteAsync(async token =>
            {
                attempts++;
                return await DownloadAsync(deb, sha, progress, token);
            }, ct);
            progress?.Report(new FetchProgress(deb.Name, deb.Size, deb.Size, Completed: true));
            return new FetchedDeb(deb, path, CacheHit: false, deb.Size, attempts, EvictedCorruptCopy: state == DebCacheState.Evicted);
        }
        catch (Exception e) when (e is not HardenException && !ct.IsCancellationRequested)
        {
            // The pipeline rethrows the last attempt's failure (a TimeoutRejectedException when the attempt timed out).
            throw new HardenException(
                $"could not download {deb} from {deb.Url} after {attempts} attempt{(attempts == 1 ? "" : "s")}: {Describe(e)}. " +
                "Check that the mirror is reachable (proxy, DNS), then run the command again; cached packages are kept.", 2, e);
        }
    }

    private async Task<string> DownloadAsync(DebDownload deb, string sha, IProgress<FetchProgress>? progress, CancellationToken token)
    {
        progress?.Report(new FetchProgress(deb.Name, 0, deb.Size));
        using var request = new HttpRequestMessage(HttpMethod.Get, deb.Url);
        HttpResponseMessage response;
        try { response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token); }
        catch (OperationCanceledException) when (!token.IsCancellationRequested)
        {
            throw new TimeoutException("no response headers within the HTTP client's timeout"); // HttpClient.Timeout
        }
        using var _ = response;

        var status = (int)response.StatusCode;
        if (status >= 500 || status is 408 or 429)
            throw new TransientHttpStatusException(response.StatusCode, RetryAfter(response));
        if (!response.IsSuccessStatusCode)
            throw new HardenException(
                $"{deb}: {deb.Url} answered {status} {response.ReasonPhrase}. The mirror no longer serves the locked file " +
                "(superseded by a newer version?): run 'harden lock --update', or point the source at a snapshot mirror.");
        if (response.Content.Headers.ContentLength is long announced && announced != deb.Size)
            throw Tampered(deb, $"the server announces {announced} bytes, the lock says {deb.Size}");

        var temp = _cache.NewTempPath(sha);
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
            long received = 0;
            try
            {
                await using var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
                await using var body = await response.Content.ReadAsStreamAsync(token);
                using var stall = CancellationTokenSource.CreateLinkedTokenSource(token);
                while (true)
                {
                    stall.CancelAfter(_options.StallTimeout);
                    int n;
                    try { n = await body.ReadAsync(buffer.AsMemory(0, BufferSize), stall.Token); }
                    catch (OperationCanceledException) when (!token.IsCancellationRequested)
                    {
                        throw new TimeoutException($"no data for {_options.StallTimeout.TotalSeconds:0} s after {received} of {deb.Size} bytes");
                    }
                    if (n == 0) break;
                    received += n;
                    // Stop at the first byte beyond the locked size: an endless body must not fill the disk.
                    if (received > deb.Size) throw Tampered(deb, $"the server sent more than the locked {deb.Size} bytes");
                    hash.AppendData(buffer, 0, n);
                    await file.WriteAsync(buffer.AsMemory(0, n), token);
                    progress?.Report(new FetchProgress(deb.Name, received, deb.Size));
                }
                if (received < deb.Size)
                    throw new IOException($"the connection ended after {received} of {deb.Size} bytes");
                await file.FlushAsync(token);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
            var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (actual != sha)
                throw Tampered(deb, $"its SHA-256 is {actual}, the signed index says {sha}");
            return _cache.Commit(temp, sha);
        }
        catch
        {
            AtomicFile.TryDelete(temp);
            throw;
        }
    }

    private static HardenException Tampered(DebDownload deb, string detail) => new(
        $"refusing tampered .deb {deb} from {deb.Url}: {detail}. Nothing was cached. The mirror or a proxy served " +
        "bytes that differ from the signed repository index; try another mirror, and report it if it persists.");

    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var h = response.Headers.RetryAfter;
        if (h?.Delta is { } delta) return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        if (h?.Date is { } date)
        {
            var wait = date - DateTimeOffset.UtcNow;
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
        }
        return null;
    }

    private static string Describe(Exception e) => e switch
    {
        TransientHttpStatusException h => $"the server answered {(int)h.StatusCode} {h.StatusCode}",
        TimeoutRejectedException => "the attempt timed out",
        _ => e.Message,
    };

    /// <summary>A status worth retrying (5xx, 408, 429), with the server's Retry-After when it sent one.</summary>
    private sealed class TransientHttpStatusException(HttpStatusCode status, TimeSpan? retryAfter)
        : Exception($"HTTP {(int)status} {status}")
    {
        public HttpStatusCode StatusCode { get; } = status;
        public TimeSpan? RetryAfter { get; } = retryAfter;
    }
}
