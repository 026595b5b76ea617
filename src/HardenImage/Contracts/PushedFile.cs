using System.Text.Json;
using System.Text.Json.Serialization;
using HardenImage.Common;

namespace HardenImage.Contracts;

/// <summary>artifacts/pushed.json: image → repository, tags, index and per-arch manifest digests, for verify and deploy.</summary>
public sealed record PushedFile
{
    [JsonPropertyName("registry")] public required string Registry { get; init; }
    [JsonPropertyName("images")] public SortedDictionary<string, PushedImage> Images { get; init; } = new(StringComparer.Ordinal);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>Null when the file is absent; a present but unreadable record is an error naming it and the fix
    /// (treating it as absent made 'sign' say "run push first" about a file that is there). Push itself rewrites
    /// an unreadable record (Registry/PushedFileWriter).</summary>
    public static PushedFile? TryLoad(string path)
    {
        if (!File.Exists(path)) return null;
        try { return BoundedJson.ReadFile<PushedFile>(path, "push record", InputLimits.MaxRecordBytes, Json); }
        catch (HardenException e) { throw new HardenException($"{e.Message.TrimEnd('.')}. Re-run 'harden push' to write it again.", e.ExitCode, e); }
    }

    /// <summary>Reads a pushed.json; <paramref name="strict"/> throws on a malformed file, otherwise it counts as absent.</summary>
    public static PushedFile? Parse(string text, string path, bool strict)
    {
        try { return JsonSerializer.Deserialize<PushedFile>(text); }
        catch (JsonException e) when (strict)
        {
            throw new HardenException($"{path}: not a valid push record ({e.Message}). Run 'harden push' again.");
        }
        catch (JsonException) { return null; }
    }

    /// <summary>
    /// <c>harden merge</c>: the union of several pushed.json files that name one registry. The same image pushed to
    /// two different digests is a conflict (two builds disagree), never silently resolved.
    /// </summary>
    public static PushedFile Merge(IReadOnlyList<(string Path, PushedFile File)> parts)
    {
        var registries = parts.Select(p => p.File.Registry).Distinct().ToList();
        if (registries.Count > 1)
            throw new HardenException($"pushed.json files name different registries ({string.Join(", ", parts.Select(p => $"{p.Path}: {p.File.Registry}"))}); merge records of one registry only.");
        var merged = new PushedFile { Registry = registries.FirstOrDefault() ?? "" };
        var from = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (path, file) in parts)
            foreach (var (name, image) in file.Images)
            {
                if (merged.Images.TryGetValue(name, out var seen) && seen.Index != image.Index)
                    throw new HardenException($"image '{name}' was pushed as {seen.Index} ({from[name]}) and as {image.Index} ({path}); rebuild so both jobs agree, or merge only one of them.");
                merged.Images[name] = image;
                from[name] = path;
            }
        return merged;
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);
}

public sealed record PushedImage
{
    [JsonPropertyName("repository")] public required string Repository { get; init; }
    [JsonPropertyName("index")] public required string Index { get; init; }
    /// <summary>The pushed index as one Registry/ImageReference: <c>host/repository@sha256:…</c> or <c>oci:DIR/repository@sha256:…</c>.</summary>
    [JsonPropertyName("reference")] public string? Reference { get; init; }
    [JsonPropertyName("tags")] public List<string> Tags { get; init; } = [];
    [JsonPropertyName("manifests")] public SortedDictionary<string, string> Manifests { get; init; } = new(StringComparer.Ordinal);
}
