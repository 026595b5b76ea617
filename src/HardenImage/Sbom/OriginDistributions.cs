using HardenImage.Apt;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Lock;

namespace HardenImage.Sbom;

/// <summary>The release one lock origin (e.g. "debian-security/trixie-security") belongs to, or why none is known.</summary>
public sealed record OriginDistribution(string Origin, string? Distro, string? UnknownReason);

/// <summary>
/// Decides which distribution release a package belongs to from where it was locked — the lock's source (its
/// suite) and images/sources.yaml — and never from a file inside the image: an image without os-release, or with a
/// forged one, must still be matched against its real release (threat: Spoofing of a clean scan result).
/// </summary>
public static class OriginDistributions
{
    // Debian archive suites are "<codename>" plus these pockets; every pocket gets the release's advisories.
    private static readonly string[] DebianPockets = ["-security", "-updates", "-backports-sloppy", "-backports", "-proposed-updates"];

    /// <summary>"trixie" for trixie, trixie-security, trixie-updates, …; null when the suite names no Debian release.</summary>
    public static string? DebianCodenameOfSuite(string suite)
    {
        var s = suite.Trim().TrimEnd('/');
        foreach (var pocket in DebianPockets)
            if (s.EndsWith(pocket, StringComparison.Ordinal)) { s = s[..^pocket.Length]; break; }
        return DebianReleases.NumberOf(s) != null ? s : null;
    }

    /// <summary>
    /// <paramref name="origin"/> is a lock entry's <c>origin</c> ("&lt;source&gt;/&lt;suite&gt;"). The suite comes from
    /// the lock's source record when there is one. A source whose sources.yaml <c>distro</c> is not Debian keeps that
    /// distro (no Debian data applies to it). Otherwise the suite must name a Debian release by codename: a flat
    /// third-party repository ("./") or an alias such as "stable" is not a release, so its packages are reported
    /// as unscanned rather than matched against data about other packages.
    /// </summary>
    public static OriginDistribution Resolve(string origin, LockedSource? locked = null, SourceDefinition? definition = null)
    {
        var slash = origin.IndexOf('/');
        var suite = locked?.Suite ?? (slash >= 0 ? origin[(slash + 1)..] : "");
        if (definition != null && !definition.Distro.StartsWith("debian-", StringComparison.Ordinal))
            return new(origin, definition.Distro, null);
        if (DebianCodenameOfSuite(suite) is { } codename)
            return new(origin, "debian-" + DebianReleases.NumberOf(codename), null);
        return new(origin, null,
            $"its lock origin '{origin}' (suite '{suite}') is not a Debian release suite, so no Debian advisory data applies to it");
    }

    /// <summary>A resolver over a lock's sources and (when available) the image set's sources.yaml definitions.</summary>
    public static Func<string, OriginDistribution> For(LockFile? lockFile, IReadOnlyDictionary<string, SourceDefinition>? definitions)
    {
        var cache = new Dictionary<string, OriginDistribution>(StringComparer.Ordinal);
        return origin =>
        {
            if (cache.TryGetValue(origin, out var known)) return known;
            var locked = lockFile?.Sources.FirstOrDefault(s => s.Name == origin);
            // A hand-edited entry naming a source the lock does not record proves nothing about its release.
            if (lockFile != null && locked is null)
                return cache[origin] = new(origin, null,
                    $"its lock origin '{origin}' is not among the lock's sources ({string.Join(", ", lockFile.Sources.Select(s => s.Name))}); re-lock with 'harden lock'");
            var slash = origin.IndexOf('/');
            SourceDefinition? definition = null;
            if (slash > 0) definitions?.TryGetValue(origin[..slash], out definition);
            return cache[origin] = Resolve(origin, locked, definition);
        };
    }
}
