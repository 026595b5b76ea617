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
