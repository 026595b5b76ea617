using Spectre.Console;

namespace HardenImage.Cli;

/// <summary>
/// Progress for CI logs (no terminal): a plain line at most every <see cref="Interval"/> with counts and bytes,
/// e.g. "fetch: 120/229 packages, 45.2 of 120.0 MB", and always a final line — instead of redrawn bars that a log
/// shows once ("229 packages: 45%") or not at all. Thread-safe; the clock is injected for tests.
/// </summary>
public sealed class ProgressLines(string stage, TimeProvider? clock = null, TextWriter? output = null)
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly object _gate = new();
    private DateTimeOffset _last = DateTimeOffset.MinValue;

    /// <summary>Prints <paramref name="text"/> when the interval has passed since the last line (or when <paramref name="force"/>).</summary>
    public void Report(Func<string> text, bool force = false)
    {
        lock (_gate)
        {
            var now = _clock.GetUtcNow();
            if (!force && now - _last < Interval) return;
            _last = now;
            var line = $"{stage}: {text()}";
            if (output != null) output.WriteLine(line);
            else AnsiConsole.Console.WriteLine(line);
        }
    }

    public static string Megabytes(long bytes) => (bytes / 1e6).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
}
