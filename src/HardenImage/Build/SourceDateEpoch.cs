using HardenImage.Common;

namespace HardenImage.Build;

/// <summary>
/// $SOURCE_DATE_EPOCH as reproducible-builds.org defines it: a non-negative whole number of seconds since 1970.
/// Set but invalid is an error (silently ignoring it would give other digests than the user asked for).
/// </summary>
public static class SourceDateEpoch
{
    public const string Variable = "SOURCE_DATE_EPOCH";

    /// <summary>Latest time an OCI "created" field and a tar header can carry here: 9999-12-31T23:59:59Z.</summary>
    public const long Max = 253402300799;

    public static long? FromEnvironment() => Parse(Environment.GetEnvironmentVariable(Variable));

    public static long? Parse(string? value)
    {
        if (value == null || value.Length == 0) return null;
        if (!long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds) || seconds > Max)
            throw new HardenException($"{Variable}='{(value.Length > 40 ? value[..40] + "…" : value)}' in the environment is not a whole number of seconds since 1970 (0 to {Max}); " +
                "unset it to use each image's own suite dates, or set it e.g. to $(git log -1 --format=%ct)");
        return seconds;
    }
}
