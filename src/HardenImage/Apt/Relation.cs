namespace HardenImage.Apt;

/// <summary>The version operator of a relation (Debian Policy §7.1). <see cref="None"/> means any version.</summary>
public enum RelationOperator
{
    None,
    /// <summary><c>&lt;&lt;</c></summary>
    StrictlyEarlier,
    /// <summary><c>&lt;=</c> (and the obsolete <c>&lt;</c>)</summary>
    EarlierOrEqual,
    /// <summary><c>=</c></summary>
    Exactly,
    /// <summary><c>&gt;=</c> (and the obsolete <c>&gt;</c>)</summary>
    LaterOrEqual,
    /// <summary><c>&gt;&gt;</c></summary>
    StrictlyLater,
}

/// <summary>
/// One alternative of a Depends/Pre-Depends entry, or one Provides entry:
/// <c>name[:archqual] [(op version)] [[arch restrictions]] [&lt;build profiles&gt;...]</c>.
/// </summary>
public sealed record Relation
{
    public required string Name { get; init; }
    /// <summary><c>any</c>, <c>native</c>, an architecture name, or null when the relation has no qualifier.</summary>
    public string? ArchQualifier { get; init; }
    public RelationOperator Operator { get; init; }
    /// <summary>The version after the operator; null when <see cref="Operator"/> is <see cref="RelationOperator.None"/>.</summary>
    public DebianVersion? Version { get; init; }
    /// <summary>Entries of <c>[...]</c>, e.g. <c>amd64</c> or <c>!i386</c>; empty when unrestricted.</summary>
    public IReadOnlyList<string> ArchRestrictions { get; init; } = Array.Empty<string>();
    /// <summary>Each <c>&lt;...&gt;</c> group as its terms (e.g. <c>!nocheck</c>); the groups are OR'ed.</summary>
    public IReadOnlyList<IReadOnlyList<string>> BuildProfiles { get; init; } = Array.Empty<IReadOnlyList<string>>();

    /// <summary>True when <paramref name="candidate"/> meets the version part of this relation.</summary>
    public bool AcceptsVersion(DebianVersion candidate)
    {
        if (Operator == RelationOperator.None) return true;
        var c = candidate.CompareTo(Version);
        return Operator switch
        {
            RelationOperator.StrictlyEarlier => c < 0,
            RelationOperator.EarlierOrEqual => c <= 0,
            RelationOperator.Exactly => c == 0,
            RelationOperator.LaterOrEqual => c >= 0,
            RelationOperator.StrictlyLater => c > 0,
            _ => true,
        };
    }

    /// <summary>
    /// Whether the relation applies when building for <paramref name="architecture"/> with no build profile
    /// active (a binary package is installed, not built, so no profile is ever active).
    /// </summary>
    public bool AppliesTo(string architecture)
    {
        if (ArchRestrictions.Count > 0)
        {
            bool negated = ArchRestrictions[0].StartsWith('!');
            bool matched = ArchRestrictions.Any(r => ArchitectureMatches(r.TrimStart('!'), architecture));
            if (negated ? matched : !matched) return false;
        }
        if (BuildProfiles.Count > 0)
        {
            // With no active profile a positive term is false and a negated one true; a group is an AND.
            if (!BuildProfiles.Any(group => group.All(term => term.StartsWith('!')))) return false;
        }
        return true;
    }

    /// <summary>Debian architecture wildcards: <c>any</c>, <c>os-any</c>, <c>any-cpu</c>, or an exact name.</summary>
    public static bool ArchitectureMatches(string pattern, string architecture)
    {
        if (pattern == "any" || pattern == architecture) return true;
        var (os, cpu) = SplitArchitecture(architecture);
        var dash = pattern.IndexOf('-');
        if (dash < 0) return false;
        var (pOs, pCpu) = (pattern[..dash], pattern[(dash + 1)..]);
        return (pOs == "any" || pOs == os) && (pCpu == "any" || pCpu == cpu);
    }

    private static (string Os, string Cpu) SplitArchitecture(string arch)
    {
        var dash = arch.IndexOf('-');
        return dash < 0 ? ("linux", arch) : (arch[..dash], arch[(dash + 1)..]);
    }

    /// <summary>The relation as Debian spells it, e.g. <c>libc6 (&gt;= 2.38)</c> or <c>python3:any</c>.</summary>
    public override string ToString()
    {
        var s = ArchQualifier is null ? Name : Name + ":" + ArchQualifier;
        if (Operator != RelationOperator.None) s += $" ({OperatorText(Operator)} {Version})";
        if (ArchRestrictions.Count > 0) s += " [" + string.Join(' ', ArchRestrictions) + "]";
        foreach (var g in BuildProfiles) s += " <" + string.Join(' ', g) + ">";
        return s;
    }

    public static string OperatorText(RelationOperator op) => op switch
    {
        RelationOperator.StrictlyEarlier => "<<",
        RelationOperator.EarlierOrEqual => "<=",
        RelationOperator.Exactly => "=",
        RelationOperator.LaterOrEqual => ">=",
        RelationOperator.StrictlyLater => ">>",
        _ => "",
    };

    /// <summary>
    /// Parses a Depends/Pre-Depends field: comma-separated groups of <c>|</c>-separated alternatives.
    /// Empty groups (a trailing comma) are ignored. Throws <see cref="FormatException"/> naming the bad part.
    /// </summary>
    public static IReadOnlyList<RelationGroup> ParseField(string? field)
    {
        if (string.IsNullOrWhiteSpace(field)) return Array.Empty<RelationGroup>();
        var groups = new List<RelationGroup>();
        foreach (var rawGroup in field.Split(','))
        {
            var groupText = NormalizeSpace(rawGroup);
            if (groupText.Length == 0) continue;
            var alternatives = new List<Relation>();
            foreach (var alt in groupText.Split('|'))
                alternatives.Add(Parse(alt));
            groups.Add(new RelationGroup(alternatives, groupText));
        }
        return groups;
    }

    /// <summary>
    /// Parses a Provides field: comma-separated <c>name [(= version)]</c>. Policy allows only <c>=</c> here;
    /// anything else is a malformed index and is refused.
    /// </summary>
    public static IReadOnlyList<Relation> ParseProvides(string? field)
    {
        if (string.IsNullOrWhiteSpace(field)) return Array.Empty<Relation>();
        var result = new List<Relation>();
        foreach (var raw in field.Split(','))
        {
            if (string.IsNullOrWhiteSpace(raw)) continue;
            if (raw.Contains('|')) throw new FormatException($"Provides entry '{raw.Trim()}' has alternatives ('|'), which Provides does not allow");
            var r = Parse(raw);
            if (r.Operator is not (RelationOperator.None or RelationOperator.Exactly))
                throw new FormatException($"Provides entry '{raw.Trim()}' uses '{OperatorText(r.Operator)}'; only '=' is allowed");
            result.Add(r);
        }
        return result;
    }

    /// <summary>Parses one alternative.</summary>
    public static Relation Parse(string text)
    {
        var s = text.AsSpan().Trim();
        var original = new LazyText(text);
        int i = 0;
        while (i < s.Length && !char.IsWhiteSpace(s[i]) && s[i] is not ('(' or '[' or '<')) i++;
        var nameToken = s[..i].ToString();
        if (nameToken.Length == 0) throw new FormatException($"relation '{original}' has no package name");
        string name = nameToken;
        string? archQualifier = null;
        var colon = nameToken.IndexOf(':');
        if (colon >= 0)
        {
            name = nameToken[..colon];
            archQualifier = nameToken[(colon + 1)..];
            if (name.Length == 0 || archQualifier.Length == 0)
                throw new FormatException($"relation '{original}' has an empty name or architecture qualifier");
        }
        var op = RelationOperator.None;
        DebianVersion? version = null;
        var arches = new List<string>();
        var profiles = new List<IReadOnlyList<string>>();
        while (true)
        {
            while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
            if (i >= s.Length) break;
            char open = s[i];
            char close = open switch { '(' => ')', '[' => ']', '<' => '>', _ => '\0' };
            if (close == '\0') throw new FormatException($"relation '{original}': unexpected '{s[i..].ToString()}'");
            // '<' opens a profile but is also the start of '<<' inside parentheses; parentheses are handled first.
            var end = s[(i + 1)..].IndexOf(close);
            if (end < 0) throw new FormatException($"relation '{original}': '{open}' is not closed");
            var inner = s.Slice(i + 1, end).Trim().ToString();
            i += end + 2;
            switch (open)
            {
                case '(':
                    if (op != RelationOperator.None) throw new FormatException($"relation '{original}' has two version constraints");
                    (op, version) = ParseVersionConstraint(inner, original);
                    break;
                case '[':
                    arches.AddRange(inner.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
                    if (arches.Count == 0 || arches.Any(a => a.StartsWith('!')) != arches.All(a => a.StartsWith('!')))
                        throw new FormatException($"relation '{original}': architecture list must be all positive or all negated");
                    break;
                default:
                    var terms = inner.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                    if (terms.Length == 0) throw new FormatException($"relation '{original}': empty build profile");
                    profiles.Add(terms);
                    break;
            }
        }
        return new Relation
        {
            Name = name,
            ArchQualifier = archQualifier,
            Operator = op,
            Version = version,
            ArchRestrictions = arches,
            BuildProfiles = profiles,
        };
    }

    // Error messages quote the relation; only build that string when there is an error.
    private readonly struct LazyText(string text)
    {
        public override string ToString() => text.Trim();
    }

    private static (RelationOperator, DebianVersion) ParseVersionConstraint(string inner, LazyText original)
    {
        int k = 0;
        while (k < inner.Length && inner[k] is '<' or '>' or '=') k++;
        var opText = inner[..k];
        var op = opText switch
        {
            "<<" => RelationOperator.StrictlyEarlier,
            "<=" or "<" => RelationOperator.EarlierOrEqual, // '<' is the obsolete spelling of '<='
            "=" => RelationOperator.Exactly,
            ">=" or ">" => RelationOperator.LaterOrEqual,   // '>' is the obsolete spelling of '>='
            ">>" => RelationOperator.StrictlyLater,
            _ => throw new FormatException($"relation '{original}': unknown version operator '{opText}'"),
        };
        var versionText = inner[k..].Trim();
        if (!DebianVersion.TryParse(versionText, out var v))
            throw new FormatException($"relation '{original}': '{versionText}' is not a Debian version");
        return (op, v!);
    }

    private static string NormalizeSpace(string s)
    {
        var sb = new System.Text.StringBuilder(s.Length);
        bool space = false;
        foreach (var c in s.Trim())
        {
            if (char.IsWhiteSpace(c)) { space = true; continue; }
            if (space && sb.Length > 0) sb.Append(' ');
            space = false;
            sb.Append(c);
        }
        return sb.ToString();
    }
}

/// <summary>One comma-separated entry of a Depends field: alternatives tried in order.</summary>
/// <param name="Text">The entry as written (whitespace normalised), for reports and error messages.</param>
public sealed record RelationGroup(IReadOnlyList<Relation> Alternatives, string Text)
{
    public override string ToString() => Text;
}
