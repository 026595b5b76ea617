using HardenImage.Common;

namespace HardenImage.Python;

/// <summary>
/// PEP 508 environment markers (<c>python_version &gt;= "3.10" and platform_machine == "x86_64"</c>), evaluated for
/// one image and architecture. Version-valued variables compare as PEP 440 versions, the rest as strings, as
/// pypa/packaging's markers do. An unknown variable or malformed marker is an error, never "true".
/// </summary>
public static class EnvironmentMarker
{
    /// <summary>The marker environment of CPython <paramref name="pythonVersion"/> on glibc Linux.</summary>
    public static IReadOnlyDictionary<string, string> EnvironmentFor(string pythonVersion, string architecture) =>
        new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["python_version"] = pythonVersion,
            ["python_full_version"] = pythonVersion + ".0",
            ["os_name"] = "posix",
            ["sys_platform"] = "linux",
            ["platform_system"] = "Linux",
            ["platform_machine"] = WheelCompatibility.MachineOf(architecture),
            ["platform_python_implementation"] = "CPython",
            ["implementation_name"] = "cpython",
            ["implementation_version"] = pythonVersion + ".0",
            ["platform_release"] = "",
            ["platform_version"] = "",
            ["extra"] = "",
        };

    private static readonly HashSet<string> VersionVariables = new(StringComparer.Ordinal)
        { "python_version", "python_full_version", "implementation_version" };

    public static bool Evaluate(string marker, IReadOnlyDictionary<string, string> environment, string where)
    {
        var tokens = Tokenize(marker, where);
        var pos = 0;
        var result = Or(tokens, ref pos, environment, marker, where, 0);
        if (pos != tokens.Count) throw Bad(marker, where, $"unexpected '{tokens[pos].Text}'");
        return result;
    }

    private sealed record Token(string Text, bool Quoted);

    /// <summary>Parentheses nest at most this deep: the parser recurses, and a lock's marker is untrusted input.</summary>
    public const int MaxNesting = 32;

    private static bool Or(List<Token> t, ref int pos, IReadOnlyDictionary<string, string> env, string marker, string where, int depth)
    {
        var value = And(t, ref pos, env, marker, where, depth);
        while (pos < t.Count && t[pos] is { Quoted: false, Text: "or" }) { pos++; value = And(t, ref pos, env, marker, where, depth) | value; }
        return value;
    }

    private static bool And(List<Token> t, ref int pos, IReadOnlyDictionary<string, string> env, string marker, string where, int depth)
    {
        var value = Atom(t, ref pos, env, marker, where, depth);
        while (pos < t.Count && t[pos] is { Quoted: false, Text: "and" }) { pos++; value = Atom(t, ref pos, env, marker, where, depth) & value; }
        return value;
    }

    private static bool Atom(List<Token> t, ref int pos, IReadOnlyDictionary<string, string> env, string marker, string where, int depth)
    {
        if (pos >= t.Count) throw Bad(marker, where, "ends too early");
        if (t[pos] is { Quoted: false, Text: "(" })
        {
            if (depth >= MaxNesting) throw Bad(marker, where, $"parentheses nest deeper than {MaxNesting}");
            pos++;
            var inner = Or(t, ref pos, env, marker, where, depth + 1);
            if (pos >= t.Count || t[pos] is not { Quoted: false, Text: ")" }) throw Bad(marker, where, "missing ')'");
            pos++;
            return inner;
        }
        var left = t[pos++];
        if (pos >= t.Count) throw Bad(marker, where, "a comparison needs an operator and a value");
        var op = t[pos++].Text;
        if (op == "not")
        {
            if (pos >= t.Count || t[pos].Text != "in") throw Bad(marker, where, "'not' must be followed by 'in'");
            pos++; op = "not in";
        }
        if (pos >= t.Count) throw Bad(marker, where, $"'{op}' needs a value");
        var right = t[pos++];
        var variable = !left.Quoted ? left.Text : !right.Quoted ? right.Text : null;
        string Value(Token x)
        {
            if (x.Quoted) return x.Text;
            return env.TryGetValue(x.Text, out var v) ? v : throw Bad(marker, where, $"unknown variable '{x.Text}'");
        }
        var (l, r) = (Value(left), Value(right));
        switch (op)
        {
            case "in": return r.Contains(l, StringComparison.Ordinal);
            case "not in": return !r.Contains(l, StringComparison.Ordinal);
        }
        if (variable != null && VersionVariables.Contains(variable) && Pep440Version.TryParse(l, out var lv) && Pep440Version.TryParse(r, out var rv))
        {
            var c = lv!.CompareTo(rv);
            return op switch
            {
                "==" => c == 0, "!=" => c != 0, "<" => c < 0, "<=" => c <= 0, ">" => c > 0, ">=" => c >= 0,
                "~=" => c >= 0 && CompatibleUpper(rv!, lv),
                "===" => l == r,
                _ => throw Bad(marker, where, $"unknown operator '{op}'"),
            };
        }
        return op switch
        {
            "==" or "===" => l == r,
            "!=" => l != r,
            "<" or "<=" or ">" or ">=" or "~=" => throw Bad(marker, where, $"'{op}' compares versions, and '{l}' / '{r}' are not both versions"),
            _ => throw Bad(marker, where, $"unknown operator '{op}'"),
        };
    }

    /// <summary>~= V.N means == V.*: the installed version shares every release segment of V.N but the last.</summary>
    private static bool CompatibleUpper(Pep440Version spec, Pep440Version installed)
    {
        var prefix = spec.Release.Take(Math.Max(1, spec.Release.Count - 1)).ToList();
        return installed.Release.Count >= prefix.Count && installed.Release.Take(prefix.Count).SequenceEqual(prefix);
    }

    private static List<Token> Tokenize(string s, string where)
    {
        var list = new List<Token>();
        var i = 0;
        while (i < s.Length)
        {
            var c = s[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (c is '(' or ')') { list.Add(new(c.ToString(), false)); i++; continue; }
            if (c is '"' or '\'')
            {
                var end = s.IndexOf(c, i + 1);
                if (end < 0) throw Bad(s, where, "unterminated string");
                list.Add(new(s[(i + 1)..end], true)); i = end + 1; continue;
            }
            if (c is '<' or '>' or '=' or '!' or '~')
            {
                var j = i;
                while (j < s.Length && s[j] is '<' or '>' or '=' or '!' or '~') j++;
                list.Add(new(s[i..j], false)); i = j; continue;
            }
            var k = i;
            while (k < s.Length && (char.IsAsciiLetterOrDigit(s[k]) || s[k] is '_' or '.')) k++;
            if (k == i) throw Bad(s, where, $"unexpected character '{c}'");
            list.Add(new(s[i..k], false)); i = k;
        }
        return list;
    }

    private static HardenException Bad(string marker, string where, string why) =>
        new($"{where}: environment marker '{(marker.Length > 200 ? marker[..200] + "…" : marker)}' is not valid PEP 508 ({why}). Fix the marker.");
}
