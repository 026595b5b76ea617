namespace HardenImage.Apt;

/// <summary>
/// One deb822 paragraph (a Packages stanza, a Release file, a .deb control file). Field names are matched
/// case-insensitively, as dpkg does; order and the raw multi-line value are kept so a paragraph can be
/// written back unchanged (status.d records).
/// </summary>
public sealed class Deb822Paragraph
{
    private readonly List<KeyValuePair<string, string>> _fields = new();

    public IReadOnlyList<KeyValuePair<string, string>> Fields => _fields;

    /// <summary>Line number (1-based) where the paragraph starts in its source, for error messages.</summary>
    public int Line { get; init; }

    public string? this[string name]
    {
        get
        {
            foreach (var kv in _fields)
                if (string.Equals(kv.Key, name, StringComparison.OrdinalIgnoreCase)) return kv.Value;
            return null;
        }
    }

    public void Add(string name, string value) => _fields.Add(new(name, value));

    /// <summary>The paragraph as deb822 text, fields in their original order, ending with a newline.</summary>
    public string ToText()
    {
        var sb = new System.Text.StringBuilder();
        foreach (var (k, v) in _fields)
        {
            sb.Append(k).Append(':');
            if (v.Length > 0 && v[0] != '\n') sb.Append(' ');
            sb.Append(v).Append('\n');
        }
        return sb.ToString();
    }
}

/// <summary>Streaming deb822 reader: yields paragraphs as it reads, never holding a whole index in memory.</summary>
public static class Deb822
{
    public static IEnumerable<Deb822Paragraph> Read(TextReader reader)
    {
        Deb822Paragraph? current = null;
        string? name = null;
        System.Text.StringBuilder? value = null;
        int lineNo = 0;
        string? line;
        while ((line = reader.ReadLine()) != null)
        {
            lineNo++;
            if (line.Length == 0 || IsBlank(line))
            {
                if (current != null)
                {
                    if (name != null) current.Add(name, value!.ToString());
                    yield return current;
                    current = null; name = null; value = null;
                }
                continue;
            }
            if (line[0] == '#') continue;
            if (line[0] == ' ' || line[0] == '\t')
            {
                if (name == null)
                    throw new FormatException($"line {lineNo}: continuation line without a field");
                value!.Append('\n').Append(line);
                continue;
            }
            var colon = line.IndexOf(':');
            if (colon <= 0) throw new FormatException($"line {lineNo}: expected 'Field: value', got '{Truncate(line)}'");
            current ??= new Deb822Paragraph { Line = lineNo };
            if (name != null) current.Add(name, value!.ToString());
            name = line.Substring(0, colon);
            value = new System.Text.StringBuilder(line.Length - colon);
            value.Append(line.AsSpan(colon + 1).Trim());
        }
        if (current != null)
        {
            if (name != null) current.Add(name, value!.ToString());
            yield return current;
        }
    }

    public static IReadOnlyList<Deb822Paragraph> Parse(string text) => Read(new StringReader(text)).ToList();

    private static bool IsBlank(string line)
    {
        foreach (var c in line) if (c != ' ' && c != '\t') return false;
        return true;
    }

    private static string Truncate(string s) => s.Length > 60 ? s[..60] + "…" : s;
}
