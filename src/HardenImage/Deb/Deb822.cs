using HardenImage.Common;

namespace HardenImage.Deb;

/// <summary>
/// One deb822 paragraph (a Packages stanza, a Release file, a .deb control file). Field names are matched
/// case-insensitively, as dpkg does; order and the raw multi-line value are kept so a paragraph can be
/// written back unchanged (status.d records).
/// </summary>
public sealed class Deb822Paragraph
{
    private readonly List<KeyValuePair<string, string>> _fields = new(16); // a Packages stanza has ~15-20 fields

    public IReadOnlyList<KeyValuePair<string, string>> Fields => _fields;

    /// <summary>Line number (1-based) where the paragraph starts in its source, for error messages.</summary>
    public int Line { get; init; }

    public string? this[string name]
    {
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
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
    // Hot path: trixie main has ~69k stanzas and ~1.4M fields. Lines are scanned as spans in a reused buffer (no
    // string per line), field names are interned per read, and a value becomes one string (continuation lines are
    // joined in one reused builder), which keeps allocation close to what the parsed packages retain.
    public static IEnumerable<Deb822Paragraph> Read(TextReader reader)
    {
        var parser = new ParagraphParser(reader);
        Deb822Paragraph? p;
        while ((p = parser.Next()) != null) yield return p;
    }

    /// <summary>The parsing state between paragraphs. Not an iterator, so the hot method can be compiled fully
    /// optimised at once (an index is one long call; tier-0 code would run for most of it).</summary>
    private sealed class ParagraphParser(TextReader reader)
    {
        private readonly LineScanner _lines = new(reader);
        private readonly Dictionary<string, string> _names = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);
        private readonly System.Text.StringBuilder _joined = new();
        private int _lineNo;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public Deb822Paragraph? Next()
        {
            var nameLookup = _names.GetAlternateLookup<ReadOnlySpan<char>>();
            var valueLookup = _values.GetAlternateLookup<ReadOnlySpan<char>>();
            Deb822Paragraph? current = null;
            string? name = null;
            string? value = null;
            bool continued = false;
            while (_lines.MoveNext())
            {
                _lineNo++;
                var line = _lines.Current;
                if (line.Length == 0 || IsBlank(line))
                {
                    if (current != null)
                    {
                        if (name != null) current.Add(name, continued ? _joined.ToString() : value!);
                        return current;
                    }
                    continue;
                }
                if (line[0] == '#') continue;
                if (line[0] == ' ' || line[0] == '\t')
                {
                    if (name == null)
                        throw new FormatException($"line {_lineNo}: continuation line without a field");
                    if (!continued) { _joined.Clear().Append(value); continued = true; }
                    _joined.Append('\n').Append(line);
                    continue;
                }
                var colon = line.IndexOf(':');
                if (colon <= 0) throw new FormatException($"line {_lineNo}: expected 'Field: value', got '{Truncate(line.ToString())}'");
                current ??= new Deb822Paragraph { Line = _lineNo };
                if (name != null) current.Add(name, continued ? _joined.ToString() : value!);
                var nameSpan = line[..colon];
                if (!nameLookup.TryGetValue(nameSpan, out name))
                {
                    name = nameSpan.ToString();
                    _names[name] = name;
                }
                var valueSpan = line[(colon + 1)..].Trim();
                if (SharedValueFields.Contains(name))
                {
                    // Low-cardinality fields (Architecture, Section, Maintainer...): one string per distinct value.
                    if (!valueLookup.TryGetValue(valueSpan, out value))
                    {
                        value = valueSpan.ToString();
                        _values[value] = value;
                    }
                }
                else value = valueSpan.ToString();
                continued = false;
            }
            if (current != null && name != null) current.Add(name, continued ? _joined.ToString() : value!);
            return current;
        }
    }

    // Fields whose values repeat across a Packages index; sharing their strings cuts the objects a parsed index
    // retains (and so the GC's copying) by about a third.
    private static readonly System.Collections.Frozen.FrozenSet<string> SharedValueFields = System.Collections.Frozen.FrozenSet.ToFrozenSet(
        ["Architecture", "Section", "Priority", "Multi-Arch", "Maintainer", "Essential", "Protected", "Build-Essential", "Important",
         "Origin", "Bugs", "Installed-Size", "Homepage", "Source", "Status", "Original-Maintainer"], StringComparer.Ordinal);

    public static IReadOnlyList<Deb822Paragraph> Parse(string text) => Read(new StringReader(text)).ToList();

    private static bool IsBlank(ReadOnlySpan<char> line)
    {
        foreach (var c in line) if (c != ' ' && c != '\t') return false;
        return true;
    }

    private static string Truncate(string s) => UntrustedText.Escape(s, 60);

    /// <summary>Yields lines (without \n, \r\n or \r) as spans over one growing char buffer.</summary>
    private sealed class LineScanner(TextReader reader)
    {
        private char[] _buffer = new char[1 << 16];
        private int _start, _end, _lineStart, _lineLength;
        private bool _eof, _skipLf;

        public ReadOnlySpan<char> Current => _buffer.AsSpan(_lineStart, _lineLength);

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public bool MoveNext()
        {
            int scanFrom = _start;
            while (true)
            {
                if (_skipLf && scanFrom < _end)
                {
                    if (_buffer[scanFrom] == '\n') { _start++; scanFrom++; }
                    _skipLf = false;
                }
                var idx = _buffer.AsSpan(scanFrom, _end - scanFrom).IndexOfAny('\n', '\r');
                if (idx >= 0)
                {
                    var stop = scanFrom + idx;
                    _lineStart = _start;
                    _lineLength = stop - _start;
                    if (_buffer[stop] == '\r') _skipLf = true;
                    _start = stop + 1;
                    return true;
                }
                if (_eof)
                {
                    if (_start >= _end) return false;
                    _lineStart = _start;
                    _lineLength = _end - _start;
                    _start = _end;
                    return true;
                }
                // Keep the partial line: move it to the front (or grow), then read more.
                var pending = _end - _start;
                if (pending == _buffer.Length) Array.Resize(ref _buffer, _buffer.Length * 2);
                else if (_start > 0) Array.Copy(_buffer, _start, _buffer, 0, pending);
                _start = 0; _end = pending;
                scanFrom = pending;
                var n = reader.Read(_buffer, _end, _buffer.Length - _end);
                if (n == 0) _eof = true;
                else _end += n;
            }
        }
    }
}
