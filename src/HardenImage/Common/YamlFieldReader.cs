using YamlDotNet.RepresentationModel;

namespace HardenImage.Common;

/// <summary>
/// Typed, strict access to a YAML file's mappings for our declarative models (images/*.yaml, deploy/*.yaml): every
/// error names the file and line and says what is expected; unknown fields are errors with a "did you mean".
/// </summary>
public sealed class YamlFieldReader(string file)
{
    public string File { get; } = file;

    /// <summary>Loads the file and returns its top-level mapping; <paramref name="docs"/> names the reference page.</summary>
    public static YamlMappingNode ReadRoot(string file, string docs)
    {
        // Bounded: size, depth, node count and aliases are checked before the tree is built (docs/limits.md).
        if (BoundedYaml.LoadFile(file, InputLimits.DeclarativeYaml, "YAML file") is not YamlMappingNode root)
            throw new HardenException($"{file}: expected a YAML mapping at the top (see {docs})");
        return root;
    }

    public HardenException Error(YamlNode node, string message) => new($"{File}:{node.Start.Line}: {message}.");

    public void Fields(YamlMappingNode map, params string[] known)
    {
        foreach (var key in map.Children.Keys)
        {
            var k = BoundedYaml.KeyText(key, File);
            if (!known.Contains(k))
                throw Error(key, $"unknown field '{k}'{NameSuggestions.DidYouMean(k, known)}; known fields: {string.Join(", ", known)}");
        }
    }

    public YamlNode? Node(YamlMappingNode map, string field) =>
        map.Children.TryGetValue(new YamlScalarNode(field), out var v) ? v : null;

    public string? String(YamlMappingNode map, string field, bool required = false)
    {
        var v = Node(map, field);
        if (v == null) return required ? throw Error(map, $"field '{field}' is required") : null;
        if (v is not YamlScalarNode s) throw Error(v, $"field '{field}' must be a string");
        return s.Value;
    }

    public bool Bool(YamlMappingNode map, string field) => String(map, field) switch
    {
        null => false,
        "true" or "yes" => true,
        "false" or "no" => false,
        _ => throw Error(Node(map, field)!, $"field '{field}' must be true or false"),
    };

    public int? Int(YamlMappingNode map, string field, bool required = false)
    {
        var s = String(map, field, required);
        if (s == null) return null;
        return int.TryParse(s, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var i)
            ? i : throw Error(Node(map, field)!, $"field '{field}' must be an integer");
    }

    public YamlMappingNode? Mapping(YamlMappingNode map, string field, bool required = false)
    {
        var v = Node(map, field);
        if (v == null) return required ? throw Error(map, $"field '{field}' is required") : null;
        return v as YamlMappingNode ?? throw Error(v, $"field '{field}' must be a mapping");
    }

    public IEnumerable<YamlNode>? Sequence(YamlMappingNode map, string field)
    {
        var v = Node(map, field);
        if (v == null) return null;
        return v as YamlSequenceNode ?? throw Error(v, $"field '{field}' must be a list");
    }

    public List<string>? StringList(YamlMappingNode map, string field) =>
        Sequence(map, field)?.Select(n => n is YamlScalarNode s ? s.Value ?? "" : throw Error(n, $"'{field}' entries must be strings")).ToList();

    public SortedDictionary<string, string>? StringMap(YamlMappingNode map, string field)
    {
        var m = Mapping(map, field);
        if (m == null) return null;
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in m.Children)
            result[BoundedYaml.KeyText(k, File)] = v is YamlScalarNode s ? s.Value ?? "" : throw Error(v, $"'{field}' values must be strings");
        return result;
    }
}

/// <summary>"Did you mean" suggestions by edit distance, for unknown names in user input.</summary>
public static class NameSuggestions
{
    /// <summary>" (did you mean a or b?)" for up to three close names, or "" when none is close.</summary>
    public static string DidYouMean(string name, IEnumerable<string> candidates)
    {
        var limit = Math.Max(2, name.Length / 3);
        var best = candidates.Select(c => (c, d: EditDistance(name, c, limit))).Where(x => x.d <= limit)
            .OrderBy(x => x.d).ThenBy(x => x.c, StringComparer.Ordinal).Take(3).Select(x => x.c).ToList();
        return best.Count == 0 ? "" : $" (did you mean {string.Join(" or ", best)}?)";
    }

    /// <summary>Levenshtein distance, giving up (returning a value above <paramref name="limit"/>) once it exceeds it.</summary>
    public static int EditDistance(string a, string b, int limit = int.MaxValue)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            int rowMin = cur[0];
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                cur[j] = Math.Min(Math.Min(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + cost);
                rowMin = Math.Min(rowMin, cur[j]);
            }
            if (rowMin > limit) return limit + 1;
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
