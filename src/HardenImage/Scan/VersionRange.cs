using HardenImage.Apt;
using HardenImage.Common;

namespace HardenImage.Scan;

/// <summary>A version ordering for one ecosystem: dpkg's for Debian, PEP 440's for PyPI.</summary>
public interface IVersionScheme
{
    /// <summary>Compares; null when either side does not parse.</summary>
    int? Compare(string a, string b);
}

/// <summary>dpkg ordering. A scheme made with <c>cache: true</c> parses each version string once (one scan's worth).</summary>
public sealed class DebianVersionScheme(bool cache = false) : IVersionScheme
{
    /// <summary>Stateless (no cache), safe to share.</summary>
    public static readonly DebianVersionScheme Instance = new();
    private readonly Dictionary<string, DebianVersion?>? _parsed = cache ? new(StringComparer.Ordinal) : null;

    private DebianVersion? Parse(string s)
    {
        if (_parsed is null) return DebianVersion.TryParse(s, out var v) ? v : null;
        if (!_parsed.TryGetValue(s, out var p)) _parsed[s] = p = DebianVersion.TryParse(s, out var v) ? v : null;
        return p;
    }

    public int? Compare(string a, string b) => Parse(a) is { } va && Parse(b) is { } vb ? va.CompareTo(vb) : null;
}

/// <summary>PEP 440 ordering, with the same optional per-scan parse cache.</summary>
public sealed class Pep440VersionScheme(bool cache = false) : IVersionScheme
{
    public static readonly Pep440VersionScheme Instance = new();
    private readonly Dictionary<string, Pep440Version?>? _parsed = cache ? new(StringComparer.Ordinal) : null;

    private Pep440Version? Parse(string s)
    {
        if (_parsed is null) return Pep440Version.TryParse(s, out var v) ? v : null;
        if (!_parsed.TryGetValue(s, out var p)) _parsed[s] = p = Pep440Version.TryParse(s, out var v) ? v : null;
        return p;
    }

    public int? Compare(string a, string b) => Parse(a) is { } va && Parse(b) is { } vb ? va.CompareTo(vb) : null;
}

/// <summary>
/// OSV's evaluation algorithm (ossf/osv-schema, "Evaluation"): a version is affected when it is listed in
/// <c>versions</c>, or when some range, walked in sorted event order, leaves it "vulnerable" (introduced ≤ v,
/// not yet fixed / beyond last_affected) and it is below a limit (an implicit "*" when none is given).
/// </summary>
public static class OsvEvaluator
{
    /// <summary>Affected? and, when so, the smallest fixed version above <paramref name="installed"/> in the matching range.</summary>
    public static (bool Affected, string? Fixed) Evaluate(string installed, IReadOnlyList<OsvRange> ranges, IReadOnlyList<string> versions, IVersionScheme scheme)
    {
        string? fixedAbove = null;
        bool affected = false;
        foreach (var range in ranges)
        {
            if (!BeforeLimits(installed, range, scheme)) continue;
            var events = range.Events.ToList();
            // Sort by version; "0" sorts first. Unparseable versions keep their record order.
            events.Sort((x, y) =>
            {
                if (x.Version == "0" && x.Kind == OsvEventKind.Introduced) return y.Version == "0" && y.Kind == OsvEventKind.Introduced ? 0 : -1;
                if (y.Version == "0" && y.Kind == OsvEventKind.Introduced) return 1;
                return scheme.Compare(x.Version, y.Version) ?? 0;
            });
            bool vulnerable = false;
            foreach (var e in events)
            {
                var c = e.Version == "0" ? 1 : scheme.Compare(installed, e.Version);
                if (c is null) continue;
                if (e.Kind == OsvEventKind.Introduced && (e.Version == "0" || c >= 0)) vulnerable = true;
                else if (e.Kind == OsvEventKind.Fixed && c >= 0) vulnerable = false;
                else if (e.Kind == OsvEventKind.LastAffected && c > 0) vulnerable = false;
            }
            if (!vulnerable) continue;
            affected = true;
            foreach (var e in events.Where(e => e.Kind == OsvEventKind.Fixed))
                if (scheme.Compare(installed, e.Version) < 0 && (fixedAbove is null || scheme.Compare(e.Version, fixedAbove) < 0))
                    fixedAbove = e.Version;
        }
        if (!affected && versions.Any(v => v == installed || scheme.Compare(v, installed) == 0)) affected = true;
        return (affected, affected ? fixedAbove : null);
    }

    private static bool BeforeLimits(string v, OsvRange range, IVersionScheme scheme)
    {
        var limits = range.Events.Where(e => e.Kind == OsvEventKind.Limit).ToList();
        if (limits.Count == 0) return true;
        return limits.Any(l => l.Version.Contains('*') || scheme.Compare(v, l.Version) < 0);
    }
}
