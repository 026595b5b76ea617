using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace HardenImage.Tests.Aws;

/// <summary>
/// One AWS service's botocore model (<c>TestData/Aws/models/&lt;service&gt;/&lt;version&gt;/service-2.json</c>) and a
/// small validator of JSON bodies against its shapes: structure (required members, no unknown or deprecated
/// members, unions with one member), list and map (min/max entries), string (enum, pattern as a full match,
/// min/max length), integer/long (min/max), double, boolean, timestamp (epoch seconds, as the JSON protocols
/// send them), blob (base64) and document (anything). Members bound to headers, URI or query are not in the
/// body and are skipped.
/// </summary>
public sealed class BotocoreModel
{
    private readonly JsonObject _shapes;
    private readonly JsonObject _operations;
    private readonly Dictionary<string, Regex> _patterns = new(StringComparer.Ordinal);

    private BotocoreModel(string service, JsonObject model)
    {
        Service = service;
        _shapes = model["shapes"]!.AsObject();
        _operations = model["operations"]!.AsObject();
        Protocol = model["metadata"]!["protocol"]!.GetValue<string>();
        TargetPrefix = model["metadata"]!["targetPrefix"]?.GetValue<string>();
    }

    public string Service { get; }
    public string Protocol { get; }
    public string? TargetPrefix { get; }

    public static BotocoreModel Load(string service)
    {
        var dir = Directory.GetDirectories(Path.Combine(AppContext.BaseDirectory, "TestData", "Aws", "models", service)).Single();
        return new BotocoreModel(service, JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "service-2.json")))!.AsObject());
    }

    /// <summary>The operation an exchange belongs to: by X-Amz-Target (JSON 1.1) or by method and request URI (REST-JSON).</summary>
    public string? OperationOf(string method, string path, string? target)
    {
        if (target != null)
            return TargetPrefix != null && target.StartsWith(TargetPrefix + ".", StringComparison.Ordinal) && _operations.ContainsKey(target[(TargetPrefix.Length + 1)..])
                ? target[(TargetPrefix.Length + 1)..] : null;
        foreach (var (name, op) in _operations)
            if (op!["http"]!["method"]!.GetValue<string>() == method && op["http"]!["requestUri"]!.GetValue<string>().Split('?')[0] == path)
                return name;
        return null;
    }

    public string? InputShape(string operation) => _operations[operation]!["input"]?["shape"]?.GetValue<string>();
    public string? OutputShape(string operation) => _operations[operation]!["output"]?["shape"]?.GetValue<string>();

    /// <summary>The error shapes the operation may answer with (plus the errors every AWS JSON service can send).</summary>
    public IReadOnlySet<string> Errors(string operation) =>
        (_operations[operation]!["errors"] as JsonArray ?? []).Select(e => e!["shape"]!.GetValue<string>())
            .Concat(["ThrottlingException", "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException"])
            .ToHashSet(StringComparer.Ordinal);

    /// <summary>Every way <paramref name="value"/> departs from shape <paramref name="shape"/>, as "path: reason" lines.</summary>
    public IReadOnlyList<string> Validate(string shape, JsonNode? value)
    {
        var problems = new List<string>();
        Check(shape, value, "$", problems);
        return problems;
    }

    private void Check(string shapeName, JsonNode? value, string path, List<string> problems)
    {
        var shape = _shapes[shapeName]!.AsObject();
        if (value == null) return; // absent optional members are checked by the parent's "required"
        var type = shape["type"]!.GetValue<string>();
        switch (type)
        {
            case "structure":
                if (shape["document"]?.GetValue<bool>() == true) return;
                if (value is not JsonObject obj) { problems.Add($"{path}: expected an object ({shapeName})"); return; }
                var members = shape["members"]!.AsObject();
                foreach (var required in (shape["required"] as JsonArray ?? []).Select(r => r!.GetValue<string>()))
                    if (members[required]?["location"] == null && obj[required] == null)
                        problems.Add($"{path}: required member '{required}' of {shapeName} is missing");
                foreach (var (name, child) in obj)
                {
                    if (members[name] is not JsonObject member) { problems.Add($"{path}: '{name}' is not a member of {shapeName}"); continue; }
                    if (member["location"] != null) { problems.Add($"{path}: '{name}' belongs in the {member["location"]}, not the body"); continue; }
                    if (member["deprecated"]?.GetValue<bool>() == true) problems.Add($"{path}.{name}: deprecated in the model ({member["deprecatedMessage"]})");
                    Check(member["shape"]!.GetValue<string>(), child, $"{path}.{name}", problems);
                }
                if (shape["union"]?.GetValue<bool>() == true && obj.Count(kv => kv.Value != null) != 1)
                    problems.Add($"{path}: union {shapeName} must set exactly one member");
                return;
            case "list":
                if (value is not JsonArray list) { problems.Add($"{path}: expected a list ({shapeName})"); return; }
                CheckCount(shape, list.Count, path, shapeName, problems);
                for (var i = 0; i < list.Count; i++) Check(shape["member"]!["shape"]!.GetValue<string>(), list[i], $"{path}[{i}]", problems);
                return;
            case "map":
                if (value is not JsonObject map) { problems.Add($"{path}: expected a map ({shapeName})"); return; }
                CheckCount(shape, map.Count, path, shapeName, problems);
                foreach (var (k, v) in map)
                {
                    Check(shape["key"]!["shape"]!.GetValue<string>(), JsonValue.Create(k), $"{path}<key {k}>", problems);
                    Check(shape["value"]!["shape"]!.GetValue<string>(), v, $"{path}.{k}", problems);
                }
                return;
            case "string":
                if (value is not JsonValue sv || !sv.TryGetValue<string>(out var s)) { problems.Add($"{path}: expected a string ({shapeName})"); return; }
                if (shape["enum"] is JsonArray values && !values.Any(e => e!.GetValue<string>() == s))
                    problems.Add($"{path}: '{s}' is not one of {shapeName}'s values ({string.Join(", ", values)})");
                CheckCount(shape, s.Length, path, shapeName, problems);
                if (shape["pattern"]?.GetValue<string>() is { } pattern && !Pattern(pattern).IsMatch(s))
                    problems.Add($"{path}: '{s}' does not match {shapeName}'s pattern {pattern}");
                return;
            case "integer" or "long":
                if (value is not JsonValue iv || !iv.TryGetValue<long>(out var n)) { problems.Add($"{path}: expected an integer ({shapeName})"); return; }
                if (shape["min"] is { } min && n < min.GetValue<long>()) problems.Add($"{path}: {n} is below {shapeName}'s minimum {min}");
                if (shape["max"] is { } max && n > max.GetValue<long>()) problems.Add($"{path}: {n} is above {shapeName}'s maximum {max}");
                return;
            case "double" or "float":
                if (value is not JsonValue dv || !dv.TryGetValue<double>(out _)) problems.Add($"{path}: expected a number ({shapeName})");
                return;
            case "boolean":
                if (value is not JsonValue bv || !bv.TryGetValue<bool>(out _)) problems.Add($"{path}: expected a boolean ({shapeName})");
                return;
            case "timestamp":
                if (value is not JsonValue tv || !tv.TryGetValue<double>(out _)) problems.Add($"{path}: expected epoch seconds ({shapeName})");
                return;
            case "blob":
                if (value is not JsonValue blob || !blob.TryGetValue<string>(out var b64) || !IsBase64(b64)) problems.Add($"{path}: expected base64 ({shapeName})");
                return;
            default:
                problems.Add($"{path}: shape type '{type}' is not known to the validator");
                return;
        }
    }

    private static void CheckCount(JsonObject shape, long count, string path, string shapeName, List<string> problems)
    {
        if (shape["min"] is { } min && count < min.GetValue<long>()) problems.Add($"{path}: {count} is below {shapeName}'s minimum size {min}");
        if (shape["max"] is { } max && count > max.GetValue<long>()) problems.Add($"{path}: {count} is above {shapeName}'s maximum size {max}");
    }

    // botocore patterns are meant to match the whole value.
    private Regex Pattern(string pattern)
    {
        lock (_patterns)
        {
            if (!_patterns.TryGetValue(pattern, out var regex))
                _patterns[pattern] = regex = new Regex("^(?:" + pattern + ")$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            return regex;
        }
    }

    private static bool IsBase64(string s)
    {
        Span<byte> buffer = new byte[s.Length];
        return Convert.TryFromBase64String(s, buffer, out _);
    }
}
