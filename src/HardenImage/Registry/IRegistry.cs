using HardenImage.Oci;

namespace HardenImage.Registry;

/// <summary>A manifest or index as a registry holds it: the exact bytes (they are what the digest covers).</summary>
public sealed record RegistryManifest(byte[] Bytes, string MediaType, string Digest);

/// <summary>
/// One registry, three targets: an OCI layout directory per repository (<see cref="OciLayoutRegistry"/>), any OCI
/// distribution registry (<see cref="DistributionRegistry"/>) and ECR (a distribution registry with
/// <see cref="EcrQuirksHandler"/> and ECR credentials). Every read is checked against its digest.
/// </summary>
public interface IRegistry
{
    /// <summary>How the user names this registry (e.g. "127.0.0.1:5000" or "oci:artifacts/registry").</summary>
    string Name { get; }

    /// <summary>Whether <paramref name="repository"/> already holds the blob (HEAD).</summary>
    Task<bool> BlobExistsAsync(string repository, string digest, CancellationToken ct = default);

    /// <summary>
    /// Uploads a blob. <paramref name="content"/> must be seekable: a failed upload is resumed or restarted from it.
    /// The registry checks the digest; a mismatch fails the push. Progress reports bytes confirmed so far.
    /// </summary>
    Task PushBlobAsync(string repository, Descriptor blob, Stream content, IProgress<long>? progress = null, CancellationToken ct = default);

    /// <summary>Cross-repository mount; false when the registry declined (caller uploads instead).</summary>
    Task<bool> MountBlobAsync(string repository, string digest, string fromRepository, CancellationToken ct = default);

    /// <summary>Opens a blob; the stream throws at its end when the bytes do not hash to <paramref name="digest"/>.</summary>
    Task<Stream> GetBlobAsync(string repository, string digest, CancellationToken ct = default);

    /// <summary>Fetches a manifest or index by tag or digest; null when absent.</summary>
    Task<RegistryManifest?> GetManifestAsync(string repository, string reference, CancellationToken ct = default);

    /// <summary>Digest, media type and size of a manifest by tag or digest without its body (HEAD); null when absent.</summary>
    Task<Descriptor?> ResolveManifestAsync(string repository, string reference, CancellationToken ct = default);

    /// <summary>Stores a manifest under a tag or under its digest; returns the digest.</summary>
    Task<string> PutManifestAsync(string repository, string reference, byte[] bytes, string mediaType, CancellationToken ct = default);

    /// <summary>Tags of a repository (empty when the repository does not exist).</summary>
    Task<IReadOnlyList<string>> ListTagsAsync(string repository, CancellationToken ct = default);

    /// <summary>
    /// OCI 1.1 referrers of <paramref name="digest"/>; null when the registry has no referrers API, and the caller
    /// falls back to the tag <see cref="ReferrersFallbackTag"/>.
    /// </summary>
    Task<ImageIndex?> GetReferrersAsync(string repository, string digest, string? artifactType = null, CancellationToken ct = default);

    /// <summary>The cosign/OCI fallback tag for a subject: <c>sha256-&lt;hex&gt;</c> plus a suffix such as ".sig".</summary>
    public static string ReferrersFallbackTag(string digest, string suffix = "") => "sha256-" + Digest.Parse(digest).Hex + suffix;
}
