using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using HardenImage.Common;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace HardenImage.Deploy;

/// <summary>
/// JSON documents ⇄ YAML for manifests. Writing sorts every mapping's keys (ordinal) and picks one scalar style per
/// value, so the same object always gives the same bytes (Tampering: reviewers and GitOps diffs see only real
/// changes). Reading types plain scalars (int, float, bool, null) and keeps quoted ones as strings.
/// </summary>
public static partial class ManifestYaml
{
    /// <summary>The YAML text of <paramref name="document"/> (LF line ends, trailing newline).</summary>
    public static string Write(JsonNode document)
    {
        var stream = new YamlStream(new YamlDocument(ToYaml(document)));
        var sb = new StringBuilder();
        using (var writer = new StringWriter(sb, CultureInfo.InvariantCulture) { NewLine = "\n" })
            stream.Save(writer, assignAnchors: false);
        var text = sb.ToString().Replace("\r\n", "\n", StringComparison.Ordinal);
        // YamlStream ends documents with "...": drop it, a manifest file holds one document.
        if (text.EndsWith("...\n", StringComparison.Ordinal)) text = text[..^4];
        return text.TrimEnd('\n') + "\n";
    }

    /// <summary>Parses one YAML document into JSON (plain scalars typed as YAML 1.2 core schema does).</summary>
    public static JsonNode? Read(string yaml, string source = "manifest")
    {
        var root = BoundedYaml.Load(yaml, source, InputLimits.ManifestYaml);
        return root == null ? null : ToJson(root);
    }

    /// <summary>Every document of a multi-document YAML text (CRD files, kubectl bundles) as JSON.</summary>
    public static IReadOnlyList<JsonNode?> ReadAll(string yaml, string source = "manifest") =>
        BoundedYaml.LoadAll(yaml, source, InputLimits.ManifestYaml).Select(ToJson).ToList();

    /// <summary>A deep copy of <paramref name="node"/> with every object's keys in ordinal order.</summary>
    public static JsonNode? Sorted(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => KeyValuePair.Create(kv.Key, Sorted(kv.Value)))),
        JsonArray a => new JsonArray(a.Select(Sorted).ToArray()),
        null => null,
        _ => node.DeepClone(),
    };

    private static YamlNode ToYaml(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                var map = new YamlMappingNode();
                foreach (var (k, v) in o.OrderBy(kv => kv.Key, StringComparer.Ordinal)) map.Add(Scalar(k), ToYaml(v));
                return map;
            case JsonArray a:
                var seq = new YamlSequenceNode();
                foreach (var v in a) seq.Add(ToYaml(v));
                return seq;
            case null:
                return new YamlScalarNode("null") { Style = ScalarStyle.Plain };
            case JsonValue v:
                switch (v.GetValueKind())
                {
                    case JsonValueKind.String: return Scalar(v.GetValue<string>());
                    case JsonValueKind.True: return new YamlScalarNode("true") { Style = ScalarStyle.Plain };
                    case JsonValueKind.False: return new YamlScalarNode("false") { Style = ScalarStyle.Plain };
                    case JsonValueKind.Number: return new YamlScalarNode(v.ToJsonString()) { Style = ScalarStyle.Plain };
                    default: return new YamlScalarNode("null") { Style = ScalarStyle.Plain };
                }
            default:
                throw new InvalidOperationException($"unexpected JSON node {node.GetType().Name}");
        }
    }

    /// <summary>Plain when the text cannot be read back as anything but this string; literal for PEM blocks; else double-quoted.</summary>
    private static YamlScalarNode Scalar(string text)
    {
        if (text.Contains('\n') && !text.Contains('\r') && !text.Contains('\t') && !text.EndsWith(' ') && !text.StartsWith(' '))
            return new YamlScalarNode(text) { Style = ScalarStyle.Literal };
        var style = SafePlain().IsMatch(text) && !IsTyped(text) ? ScalarStyle.Plain : ScalarStyle.DoubleQuoted;
        return new YamlScalarNode(text) { Style = style };
    }

    // Starts with a letter, '/' or '_' and holds no character YAML gives meaning to (": ", " #", flow indicators).
    [GeneratedRegex(@"^[A-Za-z_/][A-Za-z0-9_./@=+-]*$")]
    private static partial Regex SafePlain();

    [GeneratedRegex(@"^([-+]?(\d[\d_]*)?\.?\d+([eE][-+]?\d+)?|0x[0-9a-fA-F]+|0o[0-7]+|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$")]
    private static partial Regex Number();

    // YAML 1.1 readers (still common: PyYAML, older Go yaml) type these words; quote them for every reader.
    private static bool IsTyped(string text) =>
        text is "" or "~" or "null" or "Null" or "NULL" or "true" or "True" or "TRUE" or "false" or "False" or "FALSE"
            or "y" or "Y" or "yes" or "Yes" or "YES" or "n" or "N" or "no" or "No" or "NO" or "on" or "On" or "ON" or "off" or "Off" or "OFF"
        || Number().IsMatch(text);

    private static JsonNode? ToJson(YamlNode node)
    {
        switch (node)
        {
            case YamlMappingNode m:
                var o = new JsonObject();
                foreach (var (k, v) in m.Children)
                {
                    var key = (k as YamlScalarNode)?.Value ?? throw new HardenException($"line {k.Start.Line}: mapping keys must be scalars");
                    o[key] = ToJson(v);
                }
                return o;
            case YamlSequenceNode s:
                return new JsonArray(s.Children.Select(ToJson).ToArray());
            case YamlScalarNode sc:
                var text = sc.Value ?? "";
                if (sc.Style != ScalarStyle.Plain) return JsonValue.Create(text);
                if (text is "" or "~" or "null" or "Null" or "NULL") return null;
                if (text is "true" or "True" or "TRUE") return JsonValue.Create(true);
                if (text is "false" or "False" or "FALSE") return JsonValue.Create(false);
                if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)) return JsonValue.Create(l);
                if (Number().IsMatch(text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) return JsonValue.Create(d);
                return JsonValue.Create(text);
            default:
                return null;
        }
    }
}
