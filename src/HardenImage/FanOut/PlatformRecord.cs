using System.Text.Json;
using System.Text.Json.Serialization;
using HardenImage.Common;
using HardenImage.Contracts;

namespace HardenImage.FanOut;

/// <summary>
/// What one fan-out job leaves behind (<c>artifacts/fanout/&lt;image&gt;.&lt;arch&gt;.json</c>): the manifest it built or
/// reused for one image × platform, keyed by its inputs digest, with what the fan-in needs to write the image's
/// multi-arch index and build.json entry. The blobs are in the registry (and, when built, in the job's layout).
/// </summary>
public sealed record PlatformRecord
{
    [JsonPropertyName("version")] public int Version { get; init; } = 1;
    [JsonPropertyName("image")] public required string Image { get; init; }
    [JsonPropertyName("platform")] public required string Platform { get; init; }
    [JsonPropertyName("inputs")] public required string Inputs { get; init; }
    /// <summary>The registry (<c>--registry</c> form) and repository the manifest was pushed to or found in.</summary>
    [JsonPropertyName("registry")] public required string Registry { get; init; }
    [JsonPropertyName("repository")] public required string Repository { get; init; }
    /// <summary>The manifest as build.json describes an architecture (digest, size, config, layers).</summary>
    [JsonPropertyName("manifest")] public required BuiltArchitecture Manifest { get; init; }
    /// <summary>What the job did: <see cref="CacheState.Hit"/> (reused), or built after miss / unsigned / another key / not consulted.</summary>
    [JsonPropertyName("cache")] public required string Cache { get; init; }
    /// <summary>The log line about the cache (which tag, which key, which mismatch).</summary>
    [JsonPropertyName("cacheReason")] public required string CacheReason { get; init; }
    [JsonPropertyName("uploadedBlobs")] public int UploadedBlobs { get; init; }
    [JsonPropertyName("uploadedBytes")] public long UploadedBytes { get; init; }

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>artifacts/fanout/: one file per image × architecture, so job directories merge without conflicts.</summary>
    public static string PathFor(string artifactsDir, string image, string architecture) =>
        ArtifactPaths.PlatformRecord(artifactsDir, image, architecture);

    public void Save(string artifactsDir) =>
        AtomicFile.WriteAllText(PathFor(artifactsDir, Image, Manifest.Architecture), JsonSerializer.Serialize(this, Json) + "\n");

    /// <summary>
    /// Every record under DIR/fanout/ — or directly in DIR when it has no fanout/ (a CI artifact of just the
    /// records downloads that way) — bounded and strict: a damaged record is an error naming its file.
    /// </summary>
    public static IReadOnlyList<(string Path, PlatformRecord Record)> LoadAll(string artifactsDir)
    {
        var dir = ArtifactPaths.FanOutDirectory(artifactsDir);
        if (!Directory.Exists(dir)) dir = artifactsDir;
        if (!Directory.Exists(dir)) return [];
        var result = new List<(string, PlatformRecord)>();
        foreach (var file in Directory.EnumerateFiles(dir, "*.json").Order(StringComparer.Ordinal))
        {
            var r = BoundedJson.ReadFile<PlatformRecord>(file, "fan-out job record", InputLimits.MaxRecordBytes, Json);
            if (System.IO.Path.GetFileName(file) != $"{r.Image}.{r.Manifest.Architecture}.json")
                throw new HardenException($"{file}: records image '{r.Image}' ({r.Manifest.Architecture}) under another file name; it was moved or edited. Re-run that job.");
            result.Add((file, r));
        }
        return result;
    }
}
