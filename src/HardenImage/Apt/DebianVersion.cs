namespace HardenImage.Apt;

/// <summary>
/// A Debian package version with dpkg's total order (lib/dpkg/version.c: epoch, upstream, revision; in
/// non-digit runs '~' sorts before the end, the end before letters, letters before everything else; digit runs
/// compare numerically). Revision is what follows the LAST hyphen.
/// </summary>
public sealed class DebianVersion : IComparable<DebianVersion>, IEquatable<DebianVersion>
{
    public DebianVersion(long epoch, string upstream, string revision)
    {
        Epoch = epoch; Upstream = upstream; Revision = revision;
    }

    public long Epoch { get; }
    public string Upstream { get; }
    public string Revision { get; }

    public static DebianVersion Parse(string text)
    {
        if (!TryParse(text, out var v)) throw new FormatException($"'{text}' is not a Debian version");
        return v!;
    }

    public static bool TryParse(string? text, out DebianVersion? version)
    {
        version = null;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var s = text.Trim();
        long epoch = 0;
        var colon = s.IndexOf(':');
        if (colon >= 0)
        {
            if (!long.TryParse(s.AsSpan(0, colon), System.Globalization.NumberStyles.None, null, out epoch)) return false;
            s = s[(colon + 1)..];
        }
        var hyphen = s.LastIndexOf('-');
        string upstream = hyphen >= 0 ? s[..hyphen] : s;
        string revision = hyphen >= 0 ? s[(hyphen + 1)..] : "";
        if (upstream.Length == 0) return false;
        version = new DebianVersion(epoch, upstream, revision);
        return true;
    }

    /// <summary>Compares two version strings the way <c>dpkg --compare-versions</c> does.</summary>
    public static int Compare(string a, string b) => Parse(a).CompareTo(Parse(b));

    public int CompareTo(DebianVersion? other)
    {
        if (other is null) return 1;
        if (Epoch != other.Epoch) return Epoch < other.Epoch ? -1 : 1;
        var c = VerRevCmp(Upstream, other.Upstream);
        if (c != 0) return c;
        return VerRevCmp(Revision, other.Revision);
    }

    private static int Order(char c)
    {
        if (char.IsAsciiDigit(c)) return 0;
        if (char.IsAsciiLetter(c)) return c;
        if (c == '~') return -1;
        if (c != 0) return c + 256;
        return 0;
    }

    // A direct port of the algorithm's shape (not its code): alternate non-digit and digit runs.
    private static int VerRevCmp(string a, string b)
    {
        int i = 0, j = 0;
        while (i < a.Length || j < b.Length)
        {
            int firstDiff = 0;
            while ((i < a.Length && !char.IsAsciiDigit(a[i])) || (j < b.Length && !char.IsAsciiDigit(b[j])))
            {
                int ac = i < a.Length ? Order(a[i]) : 0;
                int bc = j < b.Length ? Order(b[j]) : 0;
                if (ac != bc) return ac < bc ? -1 : 1;
                i++; j++;
            }
            while (i < a.Length && a[i] == '0') i++;
            while (j < b.Length && b[j] == '0') j++;
            while (i < a.Length && char.IsAsciiDigit(a[i]) && j < b.Length && char.IsAsciiDigit(b[j]))
            {
                if (firstDiff == 0) firstDiff = a[i] - b[j];
                i++; j++;
            }
            if (i < a.Length && char.IsAsciiDigit(a[i])) return 1;
            if (j < b.Length && char.IsAsciiDigit(b[j])) return -1;
            if (firstDiff != 0) return firstDiff < 0 ? -1 : 1;
        }
        return 0;
    }

    public bool Equals(DebianVersion? other) => other is not null && CompareTo(other) == 0;
    public override bool Equals(object? obj) => obj is DebianVersion v && Equals(v);
    // Equal versions may be spelled differently (1.0000 == 1.0), so only the epoch can feed the hash.
    public override int GetHashCode() => Epoch.GetHashCode();

    public override string ToString() =>
        (Epoch != 0 ? $"{Epoch}:" : "") + Upstream + (Revision.Length > 0 ? "-" + Revision : "");

    public static bool operator <(DebianVersion a, DebianVersion b) => a.CompareTo(b) < 0;
    public static bool operator >(DebianVersion a, DebianVersion b) => a.CompareTo(b) > 0;
    public static bool operator <=(DebianVersion a, DebianVersion b) => a.CompareTo(b) <= 0;
    public static bool operator >=(DebianVersion a, DebianVersion b) => a.CompareTo(b) >= 0;
}
