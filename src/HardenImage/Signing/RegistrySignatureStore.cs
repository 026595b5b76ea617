using HardenImage.Oci;
using HardenImage.Registry;

namespace HardenImage.Signing;

/// <summary>
/// cosign's tag layout (<c>sha256-&lt;hex&gt;.sig</c> / <c>.att</c>) in one repository of any <see cref="IRegistry"/>: an
/// OCI layout directory, a distribution registry or ECR. Blobs go up before the manifest that names them.
/// </summary>
public sealed class RegistrySignatureStore(IRegistry registry, string repository) : ISignatureStore
{
    public async Task<OciArtifact?> GetAsync(string tag, CancellationToken ct = default)
    {
        var manifest = await registry.GetManifestAsync(repository, tag, ct);
        if (manifest == null) return null;
        var parsed = OciJson.Deserialize<ImageManifest>(manifest.Bytes);
        var blobs = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var d in parsed.Layers.Append(parsed.Config))
        {
            await using var s = await registry.GetBlobAsync(repository, d.Digest, ct);
            using var ms = new MemoryStream();
            await s.CopyToAsync(ms, ct);
            blobs[d.Digest] = ms.ToArray();
        }
        return new OciArtifact(parsed, blobs);
    }

    public async Task PutAsync(string tag, OciArtifact artifact, CancellationToken ct = default)
    {
        foreach (var d in artifact.Manifest.Layers.Append(artifact.Manifest.Config))
        {
            if (await registry.BlobExistsAsync(repository, d.Digest, ct)) continue;
            using var ms = new MemoryStream(artifact.Blobs[d.Digest], writable: false);
            await registry.PushBlobAsync(repository, d, ms, null, ct);
        }
        await registry.PutManifestAsync(repository, tag, artifact.ManifestBytes(), artifact.Manifest.MediaType, ct);
    }
}
