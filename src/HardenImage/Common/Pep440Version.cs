using System.Text;
using System.Text.RegularExpressions;

namespace HardenImage.Common;

/// <summary>
/// A Python package version with PEP 440's total order: epoch, release (trailing zeros ignored), pre-release
/// (a &lt; b &lt; rc), post-release, dev-release, local label. <c>1.0.dev0 &lt; 1.0a0 &lt; 1.0 &lt; 1.0.post1</c>.
/// Alternate spellings (alpha, c, pre, rev, r, "1.0-1") are normalised as pypa/packaging does.
/// </summary>
public sealed partial class Pep440Version : IComparable<Pep440Version>, IEquatable<Pep440Version>
{
    private Pep440Version(long epoch, long[] release, (int Kind, long Number)? pre, long? post, long? dev, object[]? local)
    {
        Epoch = epoch; Release = release; Pre = pre; Post = post; Dev = dev; Local = local;
    }

    public long Epoch { get; }
    public IReadOnlyList<long> Release { get; }
    /// <summary>Kind 0 = a, 1 = b, 2 = rc.</summary>
    public (int Kind, long Number)? Pre { get; }
    public long? Post { get; }
    public long? Dev { get; }
    /// <summary>Local label segments: long or lower-case string.</summary>
    public IReadOnlyList<object>? Local { get; }

    [GeneratedRegex(@"^v?(?:(?<epoch>[0-9]+)!)?(?<release>[0-9]+(?:\.[0-9]+)*)(?:[-_\.]?(?<prel>alpha|a|beta|b|preview|pre|c|rc)[-_\.]?(?<pren>[0-9]+)?)?(?:(?:-(?<postn1>[0-9]+))|(?:[-_\.]?(?<postl>post|rev|r)[-_\.]?(?<postn2>[0-9]+)?))?(?:[-_\.]?(?<devl>dev)[-_\.]?(?<devn>[0-9]+)?)?(?:\+(?<local>[a-z0-9]+(?:[-_\.][a-z0-9]+)*))?$",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture)]
    private static partial Regex Pattern();

    public static Pep440Version Parse(string text) =>
        TryParse(text, out var v) ? v! : throw new FormatException($"'{text}' is not a PEP 440 version");

    public static bool TryParse(string? text, out Pep440Version? version)
    {
        version = null;
        if (text is null) return false;
        var s = text.Trim();
        // Python's str.strip() also removes non-ASCII white space; the pattern itself is ASCII-only.
        foreach (var c in s) if (c > 127) return false;
        var m = Pattern().Match(s);
        if (!m.Success) return false;
        if (!TryNum(m.Groups["epoch"], 0, out var epoch)) return false;
        var parts = m.Groups["release"].Value.Split('.');
        var release = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], System.Globalization.NumberStyles.None, null, out release[i])) return false;
        (int, long)? pre = null;
        if (m.Groups["prel"].Success)
        {
            var l = m.Groups["prel"].Value.ToLowerInvariant();
            int kind = l switch { "a" or "alpha" => 0, "b" or "beta" => 1, _ => 2 };
            if (!TryNum(m.Groups["pren"], 0, out var n)) return false;
            pre = (kind, n);
        }
        long? post = null;
        if (m.Groups["postn1"].Success)
        {
            if (!TryNum(m.Groups["postn1"], 0, out var n)) return false;
            post = n;
        }
        else if (m.Groups["postl"].Success)
        {
            if (!TryNum(m.Groups["postn2"], 0, out var n)) return false;
            post = n;
        }
        long? dev = null;
        if (m.Groups["devl"].Success)
        {
            if (!TryNum(m.Groups["devn"], 0, out var n)) return false;
            dev = n;
        }
        object[]? local = null;
        if (m.Groups["local"].Success)
        {
            local = m.Groups["local"].Value.ToLowerInvariant().Split('-', '_', '.')
                .Select(p => p.All(char.IsAsciiDigit) && long.TryParse(p, out var n) ? (object)n : p).ToArray();
        }
        version = new Pep440Version(epoch, release, pre, post, dev, local);
        return true;
    }

    private static bool TryNum(Group g, long dflt, out long value)
    {
        value = dflt;
        return !g.Success || long.TryParse(g.Value, System.Globalization.NumberStyles.None, null, out value);
    }

    public int CompareTo(Pep440Version? other)
    {
        if (other is null) return 1;
        int c = Epoch.CompareTo(other.Epoch);
        if (c != 0) return c;
        c = CompareRelease(TrimZeros(Release), TrimZeros(other.Release));
        if (c != 0) return c;
        c = PreKey(this).CompareTo(PreKey(other));
        if (c != 0) return c;
        c = (Post ?? -1).CompareTo(other.Post ?? -1);
        if (c != 0) return c;
        c = (Dev ?? long.MaxValue).CompareTo(other.Dev ?? long.MaxValue);
        if (c != 0) return c;
        return CompareLocal(Local, other.Local);
    }

    // No pre/post but a dev release sorts before every pre-release (1.0.dev0 < 1.0a0); no pre sorts after all.
    private static (int, long) PreKey(Pep440Version v) =>
        v.Pre is { } p ? (p.Kind, p.Number) : v.Post is null && v.Dev is not null ? (-1, 0) : (3, 0);

    private static ReadOnlySpan<long> TrimZeros(IReadOnlyList<long> r)
    {
        var arr = (long[])r;
        int n = arr.Length;
        while (n > 0 && arr[n - 1] == 0) n--;
        return arr.AsSpan(0, n);
    }

    private static int CompareRelease(ReadOnlySpan<long> a, ReadOnlySpan<long> b)
    {
        for (int i = 0; i < Math.Min(a.Length, b.Length); i++)
            if (a[i] != b[i]) return a[i].CompareTo(b[i]);
        return a.Length.CompareTo(b.Length);
    }

    // Numeric local segments sort after alphanumeric ones; a missing label sorts first.
    private static int CompareLocal(IReadOnlyList<object>? a, IReadOnlyList<object>? b)
    {
        if (a is null || b is null) return (a is null ? 0 : 1) - (b is null ? 0 : 1);
        for (int i = 0; i < Math.Min(a.Count, b.Count); i++)
        {
            int c = (a[i], b[i]) switch
            {
                (long x, long y) => x.CompareTo(y),
                (long, string) => 1,
                (string, long) => -1,
                (string x, string y) => string.CompareOrdinal(x, y),
                _ => 0,
            };
            if (c != 0) return Math.Sign(c);
        }
        return a.Count.CompareTo(b.Count);
    }

    public static int Compare(string a, string b) => Parse(a).CompareTo(Parse(b));

    public bool Equals(Pep440Version? other) => other is not null && CompareTo(other) == 0;
    public override bool Equals(object? obj) => obj is Pep440Version v && Equals(v);
    public override int GetHashCode() => HashCode.Combine(Epoch, TrimZeros(Release).Length > 0 ? TrimZeros(Release)[0] : 0);

    /// <summary>The normalised form (PEP 440 "canonical" spelling without trailing-zero stripping).</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        if (Epoch != 0) sb.Append(Epoch).Append('!');
        sb.AppendJoin('.', Release);
        if (Pre is { } p) sb.Append(p.Kind switch { 0 => "a", 1 => "b", _ => "rc" }).Append(p.Number);
        if (Post is { } post) sb.Append(".post").Append(post);
        if (Dev is { } dev) sb.Append(".dev").Append(dev);
        if (Local is { } l) sb.Append('+').AppendJoin('.', l);
        return sb.ToString();
    }

    /// <summary>PEP 503 name normalisation: lower case, runs of -_. become one hyphen.</summary>
    public static string NormalizeName(string name) => NameSeparators().Replace(name.Trim(), "-").ToLowerInvariant();

    [GeneratedRegex(@"[-_.]+")]
    private static partial Regex NameSeparators();

    public static bool operator <(Pep440Version a, Pep440Version b) => a.CompareTo(b) < 0;
    public static bool operator >(Pep440Version a, Pep440Version b) => a.CompareTo(b) > 0;
    public static bool operator <=(Pep440Version a, Pep440Version b) => a.CompareTo(b) <= 0;
    public static bool operator >=(Pep440Version a, Pep440Version b) => a.CompareTo(b) >= 0;
}
