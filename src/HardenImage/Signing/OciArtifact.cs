using HardenImage.Oci;

namespace HardenImage.Signing;

/// <summary>
/// An OCI manifest together with the blobs it names (config and layers), keyed by digest: what a signature
/// or attestation "image" is before it is pushed anywhere. Small by nature (kilobytes).
/// </summary>
public sealed record OciArtifact(ImageManifest Manifest, IReadOnlyDictionary<string, byte[]> Blobs)
{
    /// <summary>The manifest bytes as pushed (the one OCI JSON spelling).</summary>
    public byte[] ManifestBytes() => OciJson.Serialize(Manifest);

    public Digest ManifestDigest() => Digest.Of(ManifestBytes());

    public Descriptor ManifestDescriptor()
    {
        var bytes = ManifestBytes();
        return new Descriptor { MediaType = Manifest.MediaType, Digest = Digest.Of(bytes).ToString(), Size = bytes.Length };
    }

    /// <summary>The blob for <paramref name="digest"/> if present and matching its digest, else null.</summary>
    public byte[]? VerifiedBlob(string digest) =>
        Blobs.TryGetValue(digest, out var bytes) && Digest.Of(bytes).ToString() == digest ? bytes : null;
}
