using System.Collections.Concurrent;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Signing;

namespace HardenImage.Tests.Signing;

// Test doubles for ISignatureStore. They lived in the library but no command used them: `harden sign` stores
// signatures through RegistrySignatureStore over the layout registry or a real registry.

/// <summary>An in-memory store. Keeps the manifest bytes as serialised, like a registry.</summary>
public sealed class InMemorySignatureStore : ISignatureStore
{
    private readonly ConcurrentDictionary<string, OciArtifact> _tags = new(StringComparer.Ordinal);

    public IReadOnlyCollection<string> Tags => _tags.Keys.ToList();

    public Task<OciArtifact?> GetAsync(string tag, CancellationToken ct = default)
    {
        if (!_tags.TryGetValue(tag, out var a)) return Task.FromResult<OciArtifact?>(null);
        var manifest = OciJson.Deserialize<ImageManifest>(a.ManifestBytes());
        return Task.FromResult<OciArtifact?>(new OciArtifact(manifest, a.Blobs.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray())));
    }

    public Task PutAsync(string tag, OciArtifact artifact, CancellationToken ct = default)
    {
        _tags[tag] = artifact;
        return Task.CompletedTask;
    }
}

/// <summary>Stores artifacts in an OCI image layout directory; tags are index.json ref names.</summary>
public sealed class OciLayoutSignatureStore : ISignatureStore
{
    private readonly OciLayout _layout;

    public OciLayoutSignatureStore(OciLayout layout) => _layout = layout;

    public Task<OciArtifact?> GetAsync(string tag, CancellationToken ct = default)
    {
        var descriptor = _layout.Resolve(tag);
        if (descriptor == null) return Task.FromResult<OciArtifact?>(null);
        var manifest = _layout.ReadJson<ImageManifest>(descriptor.Digest);
        var blobs = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var d in manifest.Layers.Append(manifest.Config))
        {
            // A missing or altered blob is left out; the verifier reports it per layer instead of aborting.
            if (_layout.VerifyBlob(d.Digest)) blobs[d.Digest] = _layout.ReadBlob(d.Digest);
        }
        return Task.FromResult<OciArtifact?>(new OciArtifact(manifest, blobs));
    }

    public Task PutAsync(string tag, OciArtifact artifact, CancellationToken ct = default)
    {
        foreach (var d in artifact.Manifest.Layers.Append(artifact.Manifest.Config))
        {
            var blob = artifact.VerifiedBlob(d.Digest)
                ?? throw new HardenException($"artifact for {tag}: blob {d.Digest} is missing or does not match its digest");
            _layout.WriteBlob(blob, d.MediaType);
        }
        var descriptor = _layout.WriteBlob(artifact.ManifestBytes(), artifact.Manifest.MediaType);
        _layout.Tag(tag, descriptor);
        return Task.CompletedTask;
    }
}
