namespace HardenImage.Common;

/// <summary>
/// Wall-clock spans of the build and lock phases, printed to stderr when <c>HARDEN_TIMINGS=1</c> (docs/performance.md:
/// where a cold build or a relock spends its time). Off, a span costs one environment check at start-up and nothing else.
/// </summary>
public static class Timings
{
    public static bool Enabled { get; } = Environment.GetEnvironmentVariable("HARDEN_TIMINGS") == "1";
    // Offsets are from the process start, so the runtime's own start-up shows as the gap before the first span.
    private static readonly DateTime Started = System.Diagnostics.Process.GetCurrentProcess().StartTime.ToUniversalTime();
    private static TimeSpan Now => DateTime.UtcNow - Started;

    /// <summary>Times the block: <c>using (Timings.Span("unpack 28 packages")) { … }</c>.</summary>
    public static IDisposable? Span(string what) => Enabled ? new Scope(what) : null;

    private sealed class Scope(string what) : IDisposable
    {
        private readonly TimeSpan _start = Now;
        public void Dispose()
        {
            var end = Now;
            Console.Error.WriteLine($"timing: {what}: {(end - _start).TotalSeconds:0.000} s (from {_start.TotalSeconds:0.000} s to {end.TotalSeconds:0.000} s)");
        }
    }
}
