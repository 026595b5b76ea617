using System.Text;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace HardenImage.Common;

/// <summary>
/// The one way we load YAML: size, control bytes, nesting depth and node count (aliases expanded) are checked on
/// the parser's event stream, before YamlDotNet builds its (recursive) node tree; any failure is one
/// <see cref="HardenException"/> naming the file and line.
/// </summary>
/// <remarks>
/// Denial of service: YamlDotNet keeps an alias as a reference to its anchor's node, so loading "billion laughs"
/// is cheap, but every consumer that walks the tree (OSV YAML → JSON) expands it; and the tree builder recurses
/// once per nesting level, so a few KB of <c>[[[[…</c> overflow the stack, which kills the process. Both are
/// refused here from counters, at the event that crosses the bound.
/// </remarks>
public static class BoundedYaml
{
    /// <summary>Reads and loads <paramref name="path"/>; null when the file holds no document.</summary>
    public static YamlNode? LoadFile(string path, YamlLimits limits, string what) =>
        Load(BoundedFile.ReadAllBytes(path, limits.MaxBytes, what), path, limits);

    /// <summary>Loads the first document of <paramref name="utf8"/>; null when there is none.</summary>
    /// <param name="source">Names the input in messages (file path, zip entry).</param>
    public static YamlNode? Load(ReadOnlySpan<byte> utf8, string source, YamlLimits limits)
    {
        if (utf8.Length > limits.MaxBytes)
            throw new HardenException($"{source}: YAML larger than {BoundedFile.Size(limits.MaxBytes)}, the limit for it (docs/limits.md).");
        string text;
        try { text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(utf8); }
        catch (DecoderFallbackException) { throw new HardenException($"{source}: not UTF-8 text; YAML files must be UTF-8."); }
        return Load(text, source, limits);
    }

    public static YamlNode? Load(string text, string source, YamlLimits limits)
    {
        var documents = LoadAll(text, source, limits);
        return documents.Count == 0 ? null : documents[0];
    }

    /// <summary>Every document of a multi-document YAML text (the limits hold for the text as a whole).</summary>
    public static IReadOnlyList<YamlNode> LoadAll(string text, string source, YamlLimits limits)
    {
        if (text.Length > limits.MaxBytes)
            throw new HardenException($"{source}: YAML larger than {BoundedFile.Size(limits.MaxBytes)}, the limit for it (docs/limits.md).");
        RefuseControlCharacters(text, source);
        var stream = new YamlStream();
        try
        {
            stream.Load(new GuardedParser(new Parser(new StringReader(text)), source, limits));
        }
        catch (HardenException) { throw; }
        catch (YamlException e)
        {
            throw new HardenException($"{source}:{e.Start.Line}: not valid YAML: {OneLine(e.Message)}");
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or InvalidCastException)
        {
            // YamlDotNet reports some structural errors (a duplicate key in a mapping) outside YamlException.
            throw new HardenException($"{source}: not valid YAML: {OneLine(e.Message)}");
        }
        return stream.Documents.Select(d => d.RootNode).ToList();
    }

    /// <summary>The scalar text of a mapping key; any other key (a mapping or list used as a key) is a clear error.</summary>
    public static string KeyText(YamlNode key, string source) => key is YamlScalarNode s
        ? s.Value ?? ""
        : throw new HardenException($"{source}:{key.Start.Line}: a mapping key must be a plain value, not a {Kind(key)}.");

    public static string Kind(YamlNode n) => n switch
    {
        YamlMappingNode => "mapping",
        YamlSequenceNode => "list",
        _ => "value",
    };

    // C0 controls other than tab, LF and CR, and DEL: YAML 1.2 does not allow them unescaped, and in a field value
    // they would reach file names, labels and terminal output.
    private static void RefuseControlCharacters(string text, string source)
    {
        var line = 1;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\n') { line++; continue; }
            if ((c < 0x20 && c is not ('\t' or '\r')) || c == 0x7F)
                throw new HardenException($"{source}:{line}: control character U+{(int)c:X4} in YAML; remove it (write it escaped in a double-quoted string if it is meant).");
        }
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");

    /// <summary>Passes the parser's events through, counting depth and nodes (aliases by their anchor's size).</summary>
    private sealed class GuardedParser(IParser inner, string source, YamlLimits limits) : IParser
    {
        // Per open collection: its anchor (if any) and the node count when it started, to size the anchor.
        private readonly Stack<(string? Anchor, long StartCount)> _open = new();
        private readonly Dictionary<string, long> _anchorSizes = new(StringComparer.Ordinal);
        private long _nodes;

        public ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            if (!inner.MoveNext()) return false;
            switch (inner.Current)
            {
                case Scalar scalar:
                    Count(1, scalar);
                    if (!scalar.Anchor.IsEmpty) _anchorSizes[scalar.Anchor.Value] = 1;
                    break;
                case AnchorAlias alias:
                    if (!_anchorSizes.TryGetValue(alias.Value.Value, out var size))
                        throw new HardenException($"{source}:{alias.Start.Line}: alias '*{alias.Value.Value}' refers to no earlier anchor.");
                    Count(size, alias);
                    break;
                case NodeEvent start when start is MappingStart or SequenceStart:
                    Count(1, start);
                    _open.Push((start.Anchor.IsEmpty ? null : start.Anchor.Value, _nodes));
                    if (_open.Count > limits.MaxDepth)
                        throw new HardenException($"{source}:{start.Start.Line}: YAML nested deeper than {limits.MaxDepth} levels, the limit for it (docs/limits.md).");
                    break;
                case MappingEnd or SequenceEnd:
                    if (_open.TryPop(out var open) && open.Anchor != null)
                        _anchorSizes[open.Anchor] = _nodes - open.StartCount + 1;
                    break;
            }
            return true;
        }

        private void Count(long n, ParsingEvent at)
        {
            _nodes += n;
            if (_nodes > limits.MaxNodes)
                throw new HardenException($"{source}:{at.Start.Line}: YAML has more than {limits.MaxNodes} nodes" +
                                          (at is AnchorAlias ? " once its aliases are expanded (an alias bomb?)" : "") +
                                          ", the limit for it (docs/limits.md).");
        }
    }
}
