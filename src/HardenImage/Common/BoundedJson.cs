using System.Collections;
using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace HardenImage.Common;

/// <summary>
/// The one way we read JSON documents: a size bound on the bytes, a depth bound, and no null where our model
/// requires a value (also inside lists and maps, which System.Text.Json does not check). Every failure is one
/// <see cref="HardenException"/> naming the input, the JSON path and the line.
/// </summary>
/// <remarks>
/// Denial of service / Tampering: a lock, build.json or OCI index with <c>null</c> in a required place used to
/// pass parsing and crash later with a NullReferenceException (exit 134); a 2 GB document exhausted memory.
/// </remarks>
public static class BoundedJson
{
    private static readonly ConditionalWeakTable<JsonSerializerOptions, JsonSerializerOptions> Strict = new();

    /// <summary>Reads <paramref name="path"/> (at most <paramref name="maxBytes"/>) into a <typeparamref name="T"/>.</summary>
    /// <param name="what">What the file is ("lock file", "build record"), for messages.</param>
    public static T ReadFile<T>(string path, string what, long maxBytes, JsonSerializerOptions options) =>
        Deserialize<T>(BoundedFile.ReadAllBytes(path, maxBytes, what), path, what, maxBytes, options);

    /// <summary>Parses <paramref name="utf8"/> into a <typeparamref name="T"/>; <paramref name="source"/> names it in messages.</summary>
    public static T Deserialize<T>(ReadOnlySpan<byte> utf8, string source, string what, long maxBytes, JsonSerializerOptions options)
    {
        if (utf8.Length > maxBytes) throw BoundedFile.TooLarge(source, what, maxBytes);
        RequireUtf8(utf8, source, what);
        var strict = Strict.GetValue(options, o => new JsonSerializerOptions(o)
        {
            MaxDepth = InputLimits.MaxJsonDepth,
            RespectNullableAnnotations = true,
            RespectRequiredConstructorParameters = true,
            // A key given twice is read differently by different parsers (first vs last wins): refuse it.
            AllowDuplicateProperties = false,
        });
        T? value;
        try
        {
            value = JsonSerializer.Deserialize<T>(utf8, strict);
        }
        catch (JsonException e) { throw Invalid(source, what, e); }
        catch (NotSupportedException e) { throw new HardenException($"{source}: the {what} is not valid: {OneLine(e.Message)}"); }
        if (value is null) throw new HardenException($"{source}: the {what} is empty (JSON null); expected a {typeof(T).Name} document.");
        RequiredValues.Check(value, source, what, strict);
        return value;
    }

    /// <summary>Parses a document for callers that read it by shape (advisories, scan reports).</summary>
    public static JsonDocument Parse(ReadOnlyMemory<byte> utf8, string source, string what, long maxBytes, bool allowTrailingCommas = false)
    {
        if (utf8.Length > maxBytes) throw BoundedFile.TooLarge(source, what, maxBytes);
        RequireUtf8(utf8.Span, source, what);
        try
        {
            return JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = InputLimits.MaxJsonDepth, AllowTrailingCommas = allowTrailingCommas, AllowDuplicateProperties = false });
        }
        catch (JsonException e) { throw Invalid(source, what, e); }
    }

    /// <summary>Parses a mutable JSON tree (reports that are re-shaped before use), with the same bounds.</summary>
    public static System.Text.Json.Nodes.JsonNode ParseNode(ReadOnlySpan<byte> utf8, string source, string what, long maxBytes)
    {
        if (utf8.Length > maxBytes) throw BoundedFile.TooLarge(source, what, maxBytes);
        RequireUtf8(utf8, source, what);
        try
        {
            return System.Text.Json.Nodes.JsonNode.Parse(utf8, documentOptions: new JsonDocumentOptions { MaxDepth = InputLimits.MaxJsonDepth, AllowDuplicateProperties = false })
                   ?? throw new HardenException($"{source}: the {what} is empty (JSON null).");
        }
        catch (JsonException e) { throw Invalid(source, what, e); }
    }

    // JSON must be UTF-8 (RFC 8259); System.Text.Json checks string contents only when a string is read, and then
    // throws InvalidOperationException, so the whole input is checked once, up front.
    private static void RequireUtf8(ReadOnlySpan<byte> utf8, string source, string what)
    {
        if (!System.Text.Unicode.Utf8.IsValid(utf8))
            throw new HardenException($"{source}: the {what} is not UTF-8 text; JSON must be UTF-8.");
    }

    public static HardenException Invalid(string source, string what, JsonException e)
    {
        // System.Text.Json appends "Path: … | LineNumber: … | BytePositionInLine: …"; we say it our way.
        var message = e.Message;
        var cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        if (cut < 0) cut = message.IndexOf(" LineNumber: ", StringComparison.Ordinal);
        if (cut > 0) message = message[..cut];
        var where = e.LineNumber is { } line ? $" (line {line + 1})" : "";
        // System.Text.Json words a forbidden null for the programmer ("Consider updating its nullability annotation");
        // the user needs the JSON path and what it must hold.
        if (!string.IsNullOrEmpty(e.Path) && message.Contains("null values", StringComparison.Ordinal))
            return new HardenException($"{source}: the {what} is not valid: {e.Path}: must not be null{where}.", inner: e);
        var path = string.IsNullOrEmpty(e.Path) ? "" : $" at {e.Path}";
        return new HardenException($"{source}: the {what} is not valid JSON for us{path}{where}: {OneLine(message).TrimEnd('.')}.", inner: e);
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");

    /// <summary>
    /// Finds nulls that the model's nullability annotations forbid, inside lists and dictionaries too, and names
    /// the first one by JSON path. Walks only our own model types (HardenImage.*); the object graph comes from a
    /// JSON tree, so it is a tree of bounded depth.
    /// </summary>
    private static class RequiredValues
    {
        private sealed record Member(PropertyInfo Property, string JsonName, NullabilityInfo Nullability);

        private static readonly ConcurrentDictionary<(Type, JsonNamingPolicy?), Member[]> Members = new();

        public static void Check(object value, string source, string what, JsonSerializerOptions options)
        {
            var problem = Walk(value, "$", options, 0);
            if (problem != null)
                throw new HardenException($"{source}: the {what} is not valid: {problem}.");
        }

        private static string? Walk(object value, string path, JsonSerializerOptions options, int depth)
        {
            if (depth > InputLimits.MaxJsonDepth) return null; // deeper than any document we parse
            var type = value.GetType();
            if (!IsModelType(type)) return null;
            foreach (var m in Members.GetOrAdd((type, options.PropertyNamingPolicy), k => MembersOf(k.Item1, options)))
            {
                var child = m.Property.GetValue(value);
                var childPath = $"{path}.{m.JsonName}";
                var problem = CheckValue(child, m.Nullability, childPath, options, depth);
                if (problem != null) return problem;
            }
            return null;
        }

        private static string? CheckValue(object? value, NullabilityInfo nullability, string path, JsonSerializerOptions options, int depth)
        {
            if (value is null)
                return nullability.ReadState == NullabilityState.NotNull && !nullability.Type.IsValueType
                    ? $"{path} is null, but a value is required there" : null;
            if (value is string) return null;
            if (value is IDictionary dict && nullability.GenericTypeArguments.Length == 2)
            {
                foreach (DictionaryEntry e in dict)
                {
                    var problem = CheckValue(e.Value, nullability.GenericTypeArguments[1], $"{path}.{e.Key}", options, depth + 1);
                    if (problem != null) return problem;
                }
                return null;
            }
            if (value is IEnumerable list)
            {
                var element = nullability.ElementType ?? (nullability.GenericTypeArguments.Length == 1 ? nullability.GenericTypeArguments[0] : null);
                if (element == null) return null;
                var i = 0;
                foreach (var item in list)
                {
                    var problem = CheckValue(item, element, $"{path}[{i++}]", options, depth + 1);
                    if (problem != null) return problem;
                }
                return null;
            }
            return Walk(value, path, options, depth + 1);
        }

        private static bool IsModelType(Type t) =>
            t.Namespace?.StartsWith("HardenImage", StringComparison.Ordinal) == true && !t.IsEnum && !t.IsPrimitive;

        private static Member[] MembersOf(Type type, JsonSerializerOptions options)
        {
            var context = new NullabilityInfoContext();
            return type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .Where(p => p.CanRead && p.GetIndexParameters().Length == 0 && p.SetMethod is { IsPublic: true }
                            && p.GetCustomAttribute<JsonIgnoreAttribute>() == null)
                .Select(p => new Member(p,
                    p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? options.PropertyNamingPolicy?.ConvertName(p.Name) ?? p.Name,
                    context.Create(p)))
                .ToArray();
        }
    }
}
