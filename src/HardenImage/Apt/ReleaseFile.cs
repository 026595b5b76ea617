using System.Globalization;
using HardenImage.Common;
using HardenImage.Deb;

namespace HardenImage.Apt;

/// <summary>One <c>SHA256:</c> line of a Release file: an index file the signature vouches for.</summary>
public sealed record ReleaseFileEntry(string Path, string Sha256, long Size);

/// <summary>
/// The Release paragraph of a repository (the signed text of InRelease): what the archive says it is and the
/// SHA-256 and size of every index it publishes. Dates are parsed from RFC 2822 form (<c>Sat, 15 Nov 2025 09:21:48 UTC</c>).
/// </summary>
public sealed record ReleaseFile
{
    public string Origin { get; init; } = "";
    public string Label { get; init; } = "";
    public string Suite { get; init; } = "";
    public string Codename { get; init; } = "";
    public string Version { get; init; } = "";
    public required DateTimeOffset Date { get; init; }
    public DateTimeOffset? ValidUntil { get; init; }
    public IReadOnlyList<string> Architectures { get; init; } = [];
    public IReadOnlyList<string> Components { get; init; } = [];
    public bool AcquireByHash { get; init; }
    /// <summary>SHA256 entries by path (relative to the Release file's directory).</summary>
    public IReadOnlyDictionary<string, ReleaseFileEntry> Sha256 { get; init; } = new Dictionary<string, ReleaseFileEntry>();

    /// <summary>Parses the Release text. A Release without Date or without SHA256 lines is rejected: we cannot
    /// pin or verify anything from it (apt stopped trusting MD5/SHA1-only Release files too).</summary>
    public static ReleaseFile Parse(string text, string source)
    {
        Deb822Paragraph p;
        try
        {
            var paragraphs = Deb822.Parse(text);
            if (paragraphs.Count == 0) throw new FormatException("empty");
            p = paragraphs[0];
        }
        catch (FormatException e)
        {
            throw new HardenException($"Release file of {source} is not a deb822 paragraph: {e.Message}", inner: e);
        }

        var dateText = p["Date"] ?? throw new HardenException($"Release file of {source} has no Date field; cannot check its freshness.");
        var date = ParseDate(dateText) ?? throw new HardenException($"Release file of {source}: Date '{dateText}' is not an RFC 2822 date.");
        DateTimeOffset? validUntil = null;
        if (p["Valid-Until"] is { Length: > 0 } vu)
            validUntil = ParseDate(vu) ?? throw new HardenException($"Release file of {source}: Valid-Until '{vu}' is not an RFC 2822 date.");

        var entries = new Dictionary<string, ReleaseFileEntry>(StringComparer.Ordinal);
        foreach (var line in (p["SHA256"] ?? "").Split('\n'))
        {
            var parts = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 0) continue;
            if (parts.Length != 3 || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var size))
                throw new HardenException($"Release file of {source}: SHA256 line '{line.Trim()}' is not '<hash> <size> <path>'.");
            var hash = parts[0].ToLowerInvariant();
            if (!Sha256Hex.IsValid(hash))
                throw new HardenException($"Release file of {source}: '{parts[0]}' is not a SHA-256 hash (line for {parts[2]}).");
            entries[parts[2]] = new ReleaseFileEntry(parts[2], hash, size);
        }
        if (entries.Count == 0)
            throw new HardenException($"Release file of {source} lists no SHA256 hashes; its indices cannot be verified. The repository must publish SHA256 (apt-ftparchive does by default).");

        static IReadOnlyList<string> Words(string? v) => (v ?? "").Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        return new ReleaseFile
        {
            Origin = p["Origin"] ?? "",
            Label = p["Label"] ?? "",
            Suite = p["Suite"] ?? "",
            Codename = p["Codename"] ?? "",
            Version = p["Version"] ?? "",
            Date = date,
            ValidUntil = validUntil,
            Architectures = Words(p["Architectures"]),
            Components = Words(p["Components"]),
            AcquireByHash = string.Equals(p["Acquire-By-Hash"], "yes", StringComparison.OrdinalIgnoreCase),
            Sha256 = entries,
        };
    }

    /// <summary>
    /// Rejects a Release whose Date lies in the future (beyond <paramref name="maxClockSkew"/>) or whose Valid-Until
    /// has passed. Answers Tampering by replay: a mirror or attacker serving old, correctly signed metadata
    /// (a "freeze attack") to keep known-vulnerable packages in place. <paramref name="allowExpired"/> is for snapshot
    /// archives whose metadata is old on purpose (apt's Check-Valid-Until=false); it skips only the Valid-Until check.
    /// </summary>
    public void CheckFreshness(DateTimeOffset now, TimeSpan maxClockSkew, bool allowExpired, string source)
    {
        if (Date - now > maxClockSkew)
            throw new HardenException(
                $"Release file of {source} is dated {Format(Date)}, in the future (now {Format(now)}). " +
                "Check this machine's clock; a Release from the future is not accepted.");
        if (!allowExpired && ValidUntil is { } until && until < now)
            throw new HardenException(
                $"Release file of {source} expired at {Format(until)} (Valid-Until; now {Format(now)}): the repository or mirror serves stale metadata. " +
                "Refresh the mirror or pick another one; for a snapshot archive whose metadata is old on purpose, set AllowExpiredRelease " +
                "(AptRepositoryOptions.AllowExpiredRelease / 'check-valid-until: false' on the source).");
    }

    private static string Format(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);

    /// <summary>Parses apt's RFC 2822 form: optional weekday, day, month name, year, time, and UTC/GMT/Z/±hhmm.</summary>
    public static DateTimeOffset? ParseDate(string text)
    {
        var s = text.Trim();
        var comma = s.IndexOf(',');
        if (comma >= 0) s = s[(comma + 1)..].Trim();
        var parts = s.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 5) return null;
        var offset = parts[4] switch
        {
            "UTC" or "GMT" or "Z" or "UT" => TimeSpan.Zero,
            var z when z.Length == 5 && (z[0] == '+' || z[0] == '-')
                && int.TryParse(z.AsSpan(1, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var hh)
                && int.TryParse(z.AsSpan(3, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var mm)
                => (z[0] == '-' ? -1 : 1) * new TimeSpan(hh, mm, 0),
            _ => (TimeSpan?)null,
        };
        if (offset == null) return null;
        if (!DateTime.TryParseExact($"{parts[0]} {parts[1]} {parts[2]} {parts[3]}", ["d MMM yyyy HH:mm:ss", "d MMM yyyy H:mm:ss"],
                CultureInfo.InvariantCulture, DateTimeStyles.None, out var local))
            return null;
        return new DateTimeOffset(local, offset.Value).ToUniversalTime();
    }
}
