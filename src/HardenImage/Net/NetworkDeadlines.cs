using System.Globalization;
using HardenImage.Common;

namespace HardenImage.Net;

/// <summary>
/// How long any network call may wait: to connect, for response headers once the request is sent, and between two
/// pieces of a body (in either direction). One value, <c>HARDEN_HTTP_TIMEOUT</c> (seconds), sets all three so a
/// user on a slow link has one knob; options and tests set them one by one. Answers Denial of service: a server
/// that accepts the connection and never answers (or trickles) ends in a clear error within a bounded time.
/// </summary>
public sealed record NetworkDeadlines
{
    public const string EnvironmentVariable = "HARDEN_HTTP_TIMEOUT";

    /// <summary>TCP (and TLS) connect.</summary>
    public TimeSpan Connect { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>From the last request byte sent to the response headers.</summary>
    public TimeSpan ResponseHeaders { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest pause between two reads of a response body or two writes of a request body.</summary>
    public TimeSpan Stall { get; init; } = TimeSpan.FromSeconds(30);

    public static NetworkDeadlines Default { get; } = new();

    /// <summary>All three deadlines set to the same value.</summary>
    public static NetworkDeadlines All(TimeSpan each) => new() { Connect = each, ResponseHeaders = each, Stall = each };

    /// <summary>The defaults, or <c>HARDEN_HTTP_TIMEOUT</c> seconds for all three when it is set.</summary>
    public static NetworkDeadlines FromEnvironment(Func<string, string?>? environment = null)
    {
        var text = (environment ?? Environment.GetEnvironmentVariable)(EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(text)) return Default;
        if (!double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds)
            || double.IsNaN(seconds) || seconds < 0.1 || seconds > 3600)
            throw new HardenException($"{EnvironmentVariable}='{text}' is not a number of seconds between 0.1 and 3600; " +
                $"unset it for the defaults (connect 10 s, response headers 30 s, stall 30 s).");
        return All(TimeSpan.FromSeconds(seconds));
    }
}
