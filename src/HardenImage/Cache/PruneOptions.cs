using System.Globalization;
using System.Text.RegularExpressions;
using HardenImage.Common;

namespace HardenImage.Cache;

/// <summary>
/// What <c>harden cache prune</c> removes: entries unused for <see cref="UnusedFor"/> (zero: every entry), then, with
/// <see cref="MaxBytes"/>, the least recently used until the cache holds no more than that.
/// </summary>
public sealed partial record PruneOptions(TimeSpan UnusedFor, long? MaxBytes = null)
{
    public static readonly TimeSpan DefaultUnusedFor = TimeSpan.FromDays(30);

    public static PruneOptions Default { get; } = new(DefaultUnusedFor);

    /// <summary>What the age forms accept, for help texts and errors.</summary>
    public const string AgeForms = "a whole number of days, hours or minutes: 30d, 12h, 90m (0 = everything)";

    /// <summary>What the size forms accept, for help texts and errors.</summary>
    public const string SizeForms = "a size with its unit such as 500MB, 10GB, 1.5TB or 8GiB (B, KB, MB, GB, TB: powers of 1000; KiB, MiB, GiB, TiB: of 1024), or 0";

    /// <summary>"30d", "12h", "90m" or "0"; anything else is one line naming <paramref name="option"/> and the forms.</summary>
    public static TimeSpan ParseAge(string text, string option = "--unused-for")
    {
        if (text.Trim() == "0") return TimeSpan.Zero;
        var m = Age().Match(text.Trim());
        if (!m.Success || !int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            throw new HardenException($"{option} '{UntrustedText.Escape(text)}': expected {AgeForms}");
        return m.Groups[2].Value switch { "d" => TimeSpan.FromDays(n), "h" => TimeSpan.FromHours(n), _ => TimeSpan.FromMinutes(n) };
    }

    /// <summary>"10GB", "500MB", "8GiB", "1.5TB", "4096B" or "0"; a bare number other than 0, or anything else, is one line naming <paramref name="option"/> and the forms.</summary>
    public static long ParseSize(string text, string option = "--max-size")
    {
        var m = Size().Match(text.Trim());
        if (m.Success && decimal.TryParse(m.Groups[1].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n))
        {
            var unit = m.Groups[2].Value.ToUpperInvariant();
            // A bare number is bytes to us and gigabytes to ccache's max_size: a unit, not a guess (0 needs none).
            if (unit == "" && n != 0)
                throw new HardenException($"{option} '{UntrustedText.Escape(text)}': give a unit ({n}GB? {n}MB? {n}B for bytes); expected {SizeForms}");
            decimal? factor = unit switch
            {
                "" or "B" => 1m,
                "K" or "KB" => 1e3m, "M" or "MB" => 1e6m, "G" or "GB" => 1e9m, "T" or "TB" => 1e12m,
                "KIB" => 1m * (1L << 10), "MIB" => 1m * (1L << 20), "GIB" => 1m * (1L << 30), "TIB" => 1m * (1L << 40),
                _ => null,
            };
            if (factor is { } f && n * f <= long.MaxValue) return (long)Math.Floor(n * f);
        }
        throw new HardenException($"{option} '{UntrustedText.Escape(text)}': expected {SizeForms}");
    }

    /// <summary>The age the way the options take it ("30d", "12h", "90m", "0").</summary>
    public static string FormatAge(TimeSpan age) =>
        age == TimeSpan.Zero ? "0"
        : age.TotalDays == Math.Floor(age.TotalDays) ? $"{age.TotalDays:0}d"
        : age.TotalHours == Math.Floor(age.TotalHours) ? $"{age.TotalHours:0}h" : $"{age.TotalMinutes:0}m";

    [GeneratedRegex(@"^([0-9]{1,6})([dhm])$", RegexOptions.CultureInvariant)]
    private static partial Regex Age();

    [GeneratedRegex(@"^([0-9]{1,15}(?:\.[0-9]{1,6})?)\s*([A-Za-z]{0,3})$", RegexOptions.CultureInvariant)]
    private static partial Regex Size();
}
