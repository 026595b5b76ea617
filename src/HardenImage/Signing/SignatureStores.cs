using HardenImage.Oci;

namespace HardenImage.Signing;

/// <summary>
/// Where .sig/.att artifacts of one repository live, addressed by tag. Registry clients (distribution, ECR) and the
/// OCI layout implement it; signing and verifying only speak this.
/// </summary>
public interface ISignatureStore
{
    /// <summary>The artifact tagged <paramref name="tag"/> with its config and layer blobs, or null when the tag is absent.</summary>
    Task<OciArtifact?> GetAsync(string tag, CancellationToken ct = default);

    /// <summary>Stores every blob of <paramref name="artifact"/>, then its manifest, then points <paramref name="tag"/> at it.</summary>
    Task PutAsync(string tag, OciArtifact artifact, CancellationToken ct = default);
}
