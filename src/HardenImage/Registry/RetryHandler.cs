using System.Net;
using Polly;
using Polly.Retry;

namespace HardenImage.Registry;

/// <summary>How often and how patiently registry requests are retried.</summary>
public sealed record RetryOptions
{
    /// <summary>Retries after the first attempt.</summary>
    public int MaxRetries { get; init; } = 6;

    /// <summary>First back-off; doubles each retry, with jitter.</summary>
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Upper bound on one wait, also on a server's Retry-After.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// Retries throttling (429), server errors (5xx) and dropped connections with exponential back-off and jitter,
/// honouring Retry-After (seconds or HTTP date), a bounded number of times (threat: Denial of service — a flaky
/// or throttling registry must not fail a release, nor make us hammer it). Only requests whose body can be sent
/// again are retried here; blob chunk uploads opt out with <see cref="NoRetry"/> and are resumed by
/// <see cref="DistributionRegistry"/> from the upload's status instead, because a chunk the server half-received
/// cannot simply be sent again.
/// </summary>
public sealed class RetryHandler : DelegatingHandler
{
    /// <summary>Marks a request this handler must send once only.</summary>
    public static readonly HttpRequestOptionsKey<bool> NoRetry = new("HardenImage.Registry.NoRetry");

    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;

    public RetryHandler(RetryOptions options)
    {
        Options = options;
        _pipeline = new ResiliencePipelineBuilder<HttpResponseMessage>()
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = Math.Max(1, options.MaxRetries),
                Delay = options.BaseDelay,
                MaxDelay = options.MaxDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                ShouldHandle = args => ValueTask.FromResult(IsTransient(args.Outcome.Result, args.Outcome.Exception, args.Context.CancellationToken)),
                DelayGenerator = args => ValueTask.FromResult(args.Outcome.Result is { } r ? RetryAfter(r, options.MaxDelay) : null),
                OnRetry = args =>
                {
                    args.Outcome.Result?.Dispose();
                    return default;
                },
            })
            .Build();
    }

    public RetryOptions Options { get; }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var resendable = request.Content is null or ByteArrayContent or ReadOnlyMemoryContent or BlobRangeContent;
        if (!resendable || (request.Options.TryGetValue(NoRetry, out var noRetry) && noRetry))
            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        return await _pipeline.ExecuteAsync(
            async ct => await base.SendAsync(request, ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Whether a response or failure is worth another attempt.</summary>
    public static bool IsTransient(HttpResponseMessage? response, Exception? error, CancellationToken ct)
    {
        // A TLS failure (wrong certificate, or https spoken to an http registry) will not heal by waiting.
        if (error is HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError }) return false;
        if (error != null)
            return !ct.IsCancellationRequested && error is HttpRequestException or IOException
                || (error is TaskCanceledException { InnerException: TimeoutException } && !ct.IsCancellationRequested);
        return response != null && IsTransientStatus(response.StatusCode);
    }

    public static bool IsTransientStatus(HttpStatusCode status) =>
        status is HttpStatusCode.TooManyRequests or HttpStatusCode.InternalServerError or HttpStatusCode.BadGateway
            or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout or HttpStatusCode.RequestTimeout;

    /// <summary>The server's Retry-After as a delay (seconds or HTTP date), capped; null when absent.</summary>
    public static TimeSpan? RetryAfter(HttpResponseMessage response, TimeSpan max) => Net.RetryAfter.Of(response, max);

    /// <summary>Exponential back-off with full jitter for retry loops outside the handler (upload resumption).</summary>
    public static TimeSpan Backoff(int attempt, RetryOptions options)
    {
        var ceiling = Math.Min(options.MaxDelay.TotalMilliseconds, options.BaseDelay.TotalMilliseconds * Math.Pow(2, Math.Max(0, attempt - 1)));
        return TimeSpan.FromMilliseconds(ceiling / 2 + Random.Shared.NextDouble() * ceiling / 2);
    }
}
