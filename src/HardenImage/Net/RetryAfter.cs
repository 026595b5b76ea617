namespace HardenImage.Net;

/// <summary>A server's <c>Retry-After</c> (seconds or an HTTP date) as a wait, capped; shared by the registry and AWS retries.</summary>
public static class RetryAfter
{
    /// <summary>The wait the server asked for, between zero and <paramref name="max"/>; null when it asked nothing.</summary>
    public static TimeSpan? Of(HttpResponseMessage response, TimeSpan max, TimeProvider? time = null)
    {
        var ra = response.Headers.RetryAfter;
        TimeSpan? delay = ra?.Delta ?? (ra?.Date is { } date ? date - (time ?? TimeProvider.System).GetUtcNow() : null);
        if (delay == null) return null;
        if (delay < TimeSpan.Zero) delay = TimeSpan.Zero;
        return delay > max ? max : delay;
    }
}
