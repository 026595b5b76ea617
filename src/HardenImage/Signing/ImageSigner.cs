using System.Security.Cryptography;
using System.Text.Json.Nodes;
using HardenImage.Oci;

namespace HardenImage.Signing;

/// <summary>
/// Signs and attests one image into a <see cref="ISignatureStore"/> in cosign's tag layout. Existing signatures are
/// kept; signing again with the same key and the same payload is a no-op, so re-running a pipeline does not grow
/// the .sig/.att manifests.
/// </summary>
public sealed class ImageSigner
{
    private readonly ISigner _signer;
    private readonly ISignatureStore _store;

    public ImageSigner(ISigner signer, ISignatureStore store)
    {
        _signer = signer;
        _store = store;
    }

    /// <summary>Adds a simple-signing signature of <paramref name="imageDigest"/> as <paramref name="dockerReference"/> to the .sig tag.</summary>
    public async Task<OciArtifact> SignAsync(string dockerReference, Digest imageDigest,
        IReadOnlyDictionary<string, string>? annotations = null, CancellationToken ct = default)
    {
        var tag = CosignSignatureManifest.SignatureTag(imageDigest);
        var existing = await _store.GetAsync(tag, ct);
        var payload = SimpleSigning.CreatePayload(dockerReference, imageDigest, annotations);
        if (existing != null && AlreadySigned(existing, payload, imageDigest)) return existing;

        var signature = await _signer.SignAsync(payload, ct);
        var artifact = CosignSignatureManifest.Append(existing, CosignSignatureManifest.SignatureLayer(payload, signature));
        await _store.PutAsync(tag, artifact, ct);
        return artifact;
    }

    /// <summary>Adds a DSSE-signed in-toto statement about <paramref name="imageDigest"/> to the .att tag.</summary>
    public async Task<OciArtifact> AttestAsync(string subjectName, Digest imageDigest, string predicateType, JsonNode predicate,
        CancellationToken ct = default)
    {
        var tag = CosignSignatureManifest.AttestationTag(imageDigest);
        var existing = await _store.GetAsync(tag, ct);
        var statement = InTotoStatement.Create([new InTotoSubject(subjectName, imageDigest.Hex)], predicateType, predicate);
        if (existing != null && AlreadyAttested(existing, statement, imageDigest)) return existing;

        var envelope = await Dsse.SignAsync(_signer, Dsse.InTotoPayloadType, statement, ct);
        var layer = CosignSignatureManifest.AttestationLayer(Dsse.Serialize(envelope), predicateType);
        var artifact = CosignSignatureManifest.Append(existing, layer);
        await _store.PutAsync(tag, artifact, ct);
        return artifact;
    }

    private bool AlreadySigned(OciArtifact existing, byte[] payload, Digest imageDigest)
    {
        using var key = PemKeys.ReadPublicKey(_signer.PublicKeySpki, "signing key");
        var verifier = new CosignVerifier(key);
        return existing.Manifest.Layers.Select((d, i) => (d, i)).Any(x =>
            existing.VerifiedBlob(x.d.Digest) is { } blob && blob.AsSpan().SequenceEqual(payload)
            && verifier.VerifyPayload(x.i, blob, x.d.Annotations?.GetValueOrDefault(CosignSignatureManifest.SignatureAnnotation), imageDigest).Valid);
    }

    private bool AlreadyAttested(OciArtifact existing, byte[] statement, Digest imageDigest)
    {
        using var key = PemKeys.ReadPublicKey(_signer.PublicKeySpki, "signing key");
        foreach (var d in existing.Manifest.Layers)
        {
            if (d.MediaType != MediaTypes.DsseEnvelope || existing.VerifiedBlob(d.Digest) is not { } blob) continue;
            try
            {
                var env = Dsse.Parse(blob);
                if (env.PayloadBytes().AsSpan().SequenceEqual(statement) && Dsse.Verify(env, key)) return true;
            }
            catch (Exception e) when (e is Common.HardenException or FormatException or CryptographicException)
            {
                // someone else's odd layer: keep it, it is simply not ours
            }
        }
        return false;
    }
}
