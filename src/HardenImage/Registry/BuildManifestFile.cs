using System.Text.Json;
using System.Text.Json.Serialization;
using HardenImage.Common;

namespace HardenImage.Registry;

/// <summary>
/// The part of artifacts/build.json that push reads: image names and their index and per-arch manifest digests.
/// Other fields are ignored (the build stage owns the file).
/// </summary>
public sealed record BuildManifestFile
{
    [JsonPropertyName("images")] public List<BuiltImage> Images { get; init; } = [];

    public static BuildManifestFile Load(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<BuildManifestFile>(File.ReadAllBytes(path))
                ?? throw new HardenException($"{path}: empty build manifest. Run 'harden build' again.");
        }
        catch (JsonException e)
        {
            throw new HardenException($"{path}: not a valid build manifest ({e.Message}). Run 'harden build' again.");
        }
    }
}

public sealed record BuiltImage
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("index")] public required string Index { get; init; }
    [JsonPropertyName("tags")] public List<string>? Tags { get; init; }
    [JsonPropertyName("architectures")] public List<BuiltArchitecture> Architectures { get; init; } = [];
}

public sealed record BuiltArchitecture
{
    [JsonPropertyName("architecture")] public required string Architecture { get; init; }
    [JsonPropertyName("manifest")] public required string Manifest { get; init; }
}
