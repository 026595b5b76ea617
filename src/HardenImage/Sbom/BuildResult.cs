using System.Text.Json;
using System.Text.Json.Serialization;
using HardenImage.Common;

namespace HardenImage.Sbom;

/// <summary>
/// artifacts/build.json as written by <c>harden build</c>: per image its index digest and per architecture the
/// manifest, config and layer digests. Later stages find images in the OCI layout through it.
/// </summary>
public sealed record BuildResult
{
    [JsonPropertyName("images")] public List<BuiltImage> Images { get; init; } = new();

    private static readonly JsonSerializerOptions Options = new() { PropertyNameCaseInsensitive = true };

    public static BuildResult Load(string path)
    {
        if (!File.Exists(path)) throw new HardenException($"{path}: no build result. Run 'harden build' first.");
        try
        {
            return JsonSerializer.Deserialize<BuildResult>(File.ReadAllText(path), Options)
                   ?? throw new HardenException($"{path}: empty build result. Run 'harden build' again.");
        }
        catch (JsonException e)
        {
            throw new HardenException($"{path}: not a build result ({e.Message}). Run 'harden build' again.");
        }
    }
}

public sealed record BuiltImage
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("index")] public string? Index { get; init; }
    [JsonPropertyName("architectures")] public List<BuiltArchitecture> Architectures { get; init; } = new();
}

public sealed record BuiltArchitecture
{
    [JsonPropertyName("architecture")] public required string Architecture { get; init; }
    [JsonPropertyName("manifest")] public required string Manifest { get; init; }
    [JsonPropertyName("config")] public string? Config { get; init; }
    /// <summary>Layer descriptors or digests; not needed here (the manifest lists the layers).</summary>
    [JsonPropertyName("layers")] public JsonElement? Layers { get; init; }
}
