using System.Text.RegularExpressions;
using HardenImage.Common;

namespace HardenImage.Python;

/// <summary>
/// A file's Requires-Python (PEP 503 data-requires-python, PEP 691 requires-python: a PEP 440 specifier set such as
/// <c>&gt;=3.9,&lt;3.14</c>) against the image's CPython minor version. pip and uv skip a file whose Requires-Python
/// the interpreter does not satisfy; so do we. The patch release is not known at lock time, so a file is kept when
/// some 3.X.z satisfies it (z = 0, a patch the specifier names, or a late one). An unparsable value is ignored, as
/// pip ignores it.
/// </summary>
public static partial class RequiresPython
{
    public static bool Admits(string specifier, string minorVersion)
    {
        var clauses = specifier.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(c => Clause().Match(c)).ToList();
        if (clauses.Count == 0 || clauses.Any(m => !m.Success)) return true;
        var candidates = new List<string> { minorVersion + ".0", minorVersion + ".9999" };
        candidates.AddRange(clauses.Select(m => m.Groups["v"].Value.TrimEnd('*').TrimEnd('.'))
            .Where(v => v.StartsWith(minorVersion + ".", StringComparison.Ordinal)));
        foreach (var text in candidates)
        {
            if (!Pep440Version.TryParse(text, out var candidate)) continue;
            var all = true;
            foreach (var m in clauses)
            {
                var ok = Satisfies(candidate!, m.Groups["op"].Value, m.Groups["v"].Value);
                if (ok == null) return true; // a version that does not parse: ignored, as pip does
                if (!ok.Value) { all = false; break; }
            }
            if (all) return true;
        }
        return false;
    }

    private static bool? Satisfies(Pep440Version candidate, string op, string version)
    {
        if (version.EndsWith(".*", StringComparison.Ordinal))
        {
            if (op is not ("==" or "!=") || !Pep440Version.TryParse(version[..^2], out var prefix)) return null;
            var match = candidate.Release.Count >= prefix!.Release.Count && candidate.Release.Take(prefix.Release.Count).SequenceEqual(prefix.Release);
            return op == "==" ? match : !match;
        }
        if (!Pep440Version.TryParse(version, out var v)) return null;
        var c = candidate.CompareTo(v);
        return op switch
        {
            "==" or "===" => c == 0,
            "!=" => c != 0,
            "<" => c < 0,
            "<=" => c <= 0,
            ">" => c > 0,
            ">=" => c >= 0,
            // ~= V.N: >= V.N and == V.* (every release segment but the last)
            "~=" => c >= 0 && v!.Release.Count >= 2 && candidate.Release.Take(v.Release.Count - 1).SequenceEqual(v.Release.Take(v.Release.Count - 1)),
            _ => null,
        };
    }

    [GeneratedRegex(@"^(?<op>===|~=|==|!=|<=|>=|<|>)\s*(?<v>[A-Za-z0-9.*+!_-]+)$")]
    private static partial Regex Clause();
}
