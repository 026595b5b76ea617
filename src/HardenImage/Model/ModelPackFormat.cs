using System.Text.Json.Serialization;

namespace HardenImage.Model;

/// <summary>
/// The CNCF ModelPack v0.0.7 vocabulary (https://github.com/modelpack/model-spec/blob/v0.0.7/specs-go/v1/mediatype.go, https://github.com/modelpack/model-spec/blob/v0.0.7/docs/annotations.md) and the one annotation we
/// add: the file's own SHA-256, which the spec's file metadata lacks, so a verifier of an extracted tree can check
/// every file against the pinned manifest without the layer blobs.
/// </summary>
public static class ModelPackFormat
{
    public const string ArtifactType = "application/vnd.cncf.model.manifest.v1+json";
    public const string ConfigMediaType = "application/vnd.cncf.model.config.v1+json";

    // Uncompressed tars: weights do not compress, and a runtime mounts them without a decompression pass (spec's
    // implementers' note); one file per layer so each weight shard is its own blob (spec: "SHOULD").
    public const string WeightLayer = "application/vnd.cncf.model.weight.v1.tar";
    public const string WeightConfigLayer = "application/vnd.cncf.model.weight.config.v1.tar";
    public const string DocLayer = "application/vnd.cncf.model.doc.v1.tar";
    public const string CodeLayer = "application/vnd.cncf.model.code.v1.tar";
    public const string DatasetLayer = "application/vnd.cncf.model.dataset.v1.tar";

    public static readonly IReadOnlySet<string> LayerMediaTypes = new HashSet<string>(StringComparer.Ordinal)
    {
        WeightLayer, WeightConfigLayer, DocLayer, CodeLayer, DatasetLayer,
    };

    public const string FilePathAnnotation = "org.cncf.model.filepath";
    public const string FileMetadataAnnotation = "org.cncf.model.file.metadata+json";
    public const string MediaTypeUntestedAnnotation = "org.cncf.model.file.mediatype.untested";

    /// <summary>Ours: lower-case hex SHA-256 of the file's bytes (the tar's only regular file).</summary>
    public const string FileSha256Annotation = "dev.hardenimage.model.file.sha256";

    /// <summary>Every packed file's mode: world-readable, so a server running as 65532 reads an image volume.</summary>
    public const int FileMode = 0b110_100_100;
    public const int DirectoryMode = 0b111_101_101;
}

/// <summary>The spec's FileMetadata (https://github.com/modelpack/model-spec/blob/v0.0.7/docs/annotations.md), serialised as Go's encoding/json does (field order kept).</summary>
public sealed record ModelFileMetadata
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("mode")] public required uint Mode { get; init; }
    [JsonPropertyName("uid")] public uint Uid { get; init; }
    [JsonPropertyName("gid")] public uint Gid { get; init; }
    [JsonPropertyName("size")] public required long Size { get; init; }
    [JsonPropertyName("mtime")] public required string ModTime { get; init; }
    [JsonPropertyName("typeflag")] public byte Typeflag { get; init; } = (byte)'0';
}

/// <summary>application/vnd.cncf.model.config.v1+json (https://github.com/modelpack/model-spec/blob/v0.0.7/docs/config.md, https://github.com/modelpack/model-spec/blob/v0.0.7/schema/config-schema.json).</summary>
public sealed record ModelConfigDocument
{
    [JsonPropertyName("descriptor")] public required ModelDescriptorFields Descriptor { get; init; }
    [JsonPropertyName("config")] public required ModelTechnicalFields Config { get; init; }
    [JsonPropertyName("modelfs")] public required ModelFs ModelFs { get; init; }
}

public sealed record ModelDescriptorFields
{
    [JsonPropertyName("createdAt")] public string? CreatedAt { get; init; }
    [JsonPropertyName("authors")] public List<string>? Authors { get; init; }
    [JsonPropertyName("vendor")] public string? Vendor { get; init; }
    [JsonPropertyName("family")] public string? Family { get; init; }
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("version")] public required string Version { get; init; }
    [JsonPropertyName("title")] public string? Title { get; init; }
    [JsonPropertyName("description")] public string? Description { get; init; }
    [JsonPropertyName("docURL")] public string? DocUrl { get; init; }
    [JsonPropertyName("sourceURL")] public string? SourceUrl { get; init; }
    [JsonPropertyName("revision")] public string? Revision { get; init; }
    [JsonPropertyName("licenses")] public List<string>? Licenses { get; init; }
}

public sealed record ModelTechnicalFields
{
    [JsonPropertyName("architecture")] public string? Architecture { get; init; }
    [JsonPropertyName("format")] public string? Format { get; init; }
    [JsonPropertyName("paramSize")] public string? ParamSize { get; init; }
    [JsonPropertyName("precision")] public string? Precision { get; init; }
    [JsonPropertyName("quantization")] public string? Quantization { get; init; }
}

public sealed record ModelFs
{
    [JsonPropertyName("type")] public string Type { get; init; } = "layers";
    [JsonPropertyName("diffIds")] public required List<string> DiffIds { get; init; }
}
