using System.Text.Json;
using System.Text.Json.Serialization;

namespace HardenImage.Oci;

/// <summary>OCI content descriptor.</summary>
public sealed record Descriptor
{
    [JsonPropertyName("mediaType")] public required string MediaType { get; init; }
    [JsonPropertyName("digest")] public required string Digest { get; init; }
    [JsonPropertyName("size")] public required long Size { get; init; }
    [JsonPropertyName("platform")] public Platform? Platform { get; init; }
    [JsonPropertyName("artifactType")] public string? ArtifactType { get; init; }
    [JsonPropertyName("annotations")] public SortedDictionary<string, string>? Annotations { get; init; }
}

public sealed record Platform
{
    [JsonPropertyName("architecture")] public required string Architecture { get; init; }
    [JsonPropertyName("os")] public string Os { get; init; } = "linux";
    [JsonPropertyName("variant")] public string? Variant { get; init; }
}

public sealed record ImageManifest
{
    [JsonPropertyName("schemaVersion")] public int SchemaVersion { get; init; } = 2;
    [JsonPropertyName("mediaType")] public string MediaType { get; init; } = MediaTypes.ImageManifest;
    [JsonPropertyName("artifactType")] public string? ArtifactType { get; init; }
    [JsonPropertyName("config")] public required Descriptor Config { get; init; }
    [JsonPropertyName("layers")] public required List<Descriptor> Layers { get; init; }
    [JsonPropertyName("subject")] public Descriptor? Subject { get; init; }
    [JsonPropertyName("annotations")] public SortedDictionary<string, string>? Annotations { get; init; }
}

public sealed record ImageIndex
{
    [JsonPropertyName("schemaVersion")] public int SchemaVersion { get; init; } = 2;
    [JsonPropertyName("mediaType")] public string MediaType { get; init; } = MediaTypes.ImageIndex;
    [JsonPropertyName("manifests")] public required List<Descriptor> Manifests { get; init; }
    [JsonPropertyName("annotations")] public SortedDictionary<string, string>? Annotations { get; init; }
}

/// <summary>OCI image config (image-spec config.md). Field names are the spec's.</summary>
public sealed record ImageConfig
{
    [JsonPropertyName("created")] public string? Created { get; init; }
    [JsonPropertyName("author")] public string? Author { get; init; }
    [JsonPropertyName("architecture")] public required string Architecture { get; init; }
    [JsonPropertyName("os")] public string Os { get; init; } = "linux";
    [JsonPropertyName("variant")] public string? Variant { get; init; }
    [JsonPropertyName("config")] public ContainerConfig? Config { get; init; }
    [JsonPropertyName("rootfs")] public required RootFs RootFs { get; init; }
    [JsonPropertyName("history")] public List<HistoryEntry>? History { get; init; }
}

public sealed record ContainerConfig
{
    [JsonPropertyName("User")] public string? User { get; init; }
    [JsonPropertyName("ExposedPorts")] public SortedDictionary<string, object>? ExposedPorts { get; init; }
    [JsonPropertyName("Env")] public List<string>? Env { get; init; }
    [JsonPropertyName("Entrypoint")] public List<string>? Entrypoint { get; init; }
    [JsonPropertyName("Cmd")] public List<string>? Cmd { get; init; }
    [JsonPropertyName("WorkingDir")] public string? WorkingDir { get; init; }
    [JsonPropertyName("Labels")] public SortedDictionary<string, string>? Labels { get; init; }
    [JsonPropertyName("StopSignal")] public string? StopSignal { get; init; }
}

public sealed record RootFs
{
    [JsonPropertyName("type")] public string Type { get; init; } = "layers";
    [JsonPropertyName("diff_ids")] public required List<string> DiffIds { get; init; }
}

public sealed record HistoryEntry
{
    [JsonPropertyName("created")] public string? Created { get; init; }
    [JsonPropertyName("created_by")] public string? CreatedBy { get; init; }
    [JsonPropertyName("comment")] public string? Comment { get; init; }
    [JsonPropertyName("empty_layer")] public bool? EmptyLayer { get; init; }
}

/// <summary>
/// The one JSON spelling of OCI documents: compact, UTF-8, nulls omitted, declared property order. The bytes
/// are what gets hashed, so every writer of manifests, indexes and configs goes through here.
/// </summary>
public static class OciJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = false,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static byte[] Serialize<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, Options);

    /// <summary>
    /// Parses an OCI document with the bounds of docs/limits.md (4 MiB, depth 64, no null where the spec requires a
    /// value); anything else is a <see cref="Common.HardenException"/> naming <paramref name="source"/> and the JSON path.
    /// </summary>
    public static T Deserialize<T>(ReadOnlySpan<byte> bytes, string? source = null) =>
        Common.BoundedJson.Deserialize<T>(bytes, source ?? $"OCI {typeof(T).Name}", $"OCI {typeof(T).Name}",
            Common.InputLimits.MaxOciDocumentBytes, Options);
}
