using System.Text.Json;
using System.Text.Json.Serialization;
using HardenImage.Common;
using HardenImage.Oci;

namespace HardenImage.Registry;

/// <summary>One image to push: its name (→ repository NS/name), the tags to give it and its root in the source layout.</summary>
public sealed record ImageToPush(string Name, IReadOnlyList<string> Tags, Descriptor Root);

/// <summary>What happened to one blob.</summary>
public enum BlobTransfer { Checking, Uploading, Uploaded, Skipped, Mounted }

/// <summary>Progress of one blob: bytes confirmed so far of its size.</summary>
public sealed record BlobProgress(string Image, string Repository, string Digest, long Size, long Transferred, BlobTransfer State);

/// <summary>What a push did for one image.</summary>
public sealed record ImagePushResult(
    string Image,
    string Repository,
    string IndexDigest,
    IReadOnlyList<string> Tags,
    IReadOnlyDictionary<string, string> ManifestDigests,
    long UploadedBytes,
    long SkippedBytes,
    long MountedBytes,
    int UploadedBlobs,
    int SkippedBlobs,
    int MountedBlobs);

/// <summary>artifacts/pushed.json: image → repository, tags, index and per-arch manifest digests, for verify and deploy.</summary>
public sealed record PushedFile
{
    [JsonPropertyName("registry")] public required string Registry { get; init; }
    [JsonPropertyName("images")] public SortedDictionary<string, PushedImage> Images { get; init; } = new(StringComparer.Ordinal);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static PushedFile? TryLoad(string path)
    {
        if (!File.Exists(path)) return null;
        try { return BoundedJson.ReadFile<PushedFile>(path, "push record", InputLimits.MaxRecordBytes, Json); }
        catch (HardenException) { return null; } // unreadable: rewritten from this push
    }

    /// <summary>Merges <paramref name="results"/> into the file at <paramref name="path"/> (same registry) and writes it atomically.</summary>
    public static PushedFile Save(string path, string registry, IEnumerable<ImagePushResult> results)
    {
        var existing = TryLoad(path);
        var file = existing != null && existing.Registry == registry ? existing : new PushedFile { Registry = registry };
        foreach (var r in results)
            file.Images[r.Image] = new PushedImage
            {
                Repository = r.Repository,
                Index = r.IndexDigest,
                Tags = r.Tags.ToList(),
                Manifests = new SortedDictionary<string, string>(r.ManifestDigests.ToDictionary(), StringComparer.Ordinal),
            };
        AtomicFile.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(file, Json));
        return file;
    }
}

public sealed record PushedImage
{
    [JsonPropertyName("repository")] public required string Repository { get; init; }
    [JsonPropertyName("index")] public required string Index { get; init; }
    [JsonPropertyName("tags")] public List<string> Tags { get; init; } = [];
    [JsonPropertyName("manifests")] public SortedDictionary<string, string> Manifests { get; init; } = new(StringComparer.Ordinal);
}
