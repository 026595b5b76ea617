using System.Security.Cryptography;
using System.Text.Json.Nodes;
using HardenImage.Oci;

namespace HardenImage.Signing;

/// <summary>
/// Signs and attests one image into a <see cref="ISignatureStore"/> in cosign's tag layout. Existing signatures are
/// kept; signing again with the same key and the same payload is a no-op, so re-running a pipeline does not grow
/// the .sig manifest; an attestation replaces this key's earlier statement of the same predicate type.
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

    /// <summary>
    /// Attests <paramref name="imageDigest"/> with a DSSE-signed in-toto statement in its .att tag, replacing the
    /// statements of the same predicate type that this key signed before (as <c>cosign attest --replace</c>): a
    /// re-scan leaves exactly one vuln statement, so Kyverno (every statement of a type must pass), policy-controller
    /// (any one) and <c>harden verify</c> judge the same document. Statements of other keys, other types and layers
    /// we cannot read are kept (threat: Repudiation). Attesting the same statement again changes nothing.
    /// </summary>
    public async Task<OciArtifact> AttestAsync(string subjectName, Digest imageDigest, string predicateType, JsonNode predicate,
        CancellationToken ct = default)
    {
        var tag = CosignSignatureManifest.AttestationTag(imageDigest);
        var existing = await _store.GetAsync(tag, ct);
        var statement = InTotoStatement.Create([new InTotoSubject(subjectName, imageDigest.Hex)], predicateType, predicate);

        var kept = new List<CosignLayer>();
        CosignLayer? same = null;
        if (existing != null)
        {
            using var key = PemKeys.ReadPublicKey(_signer.PublicKeySpki, "signing key");
            foreach (var layer in CosignSignatureManifest.ReadLayers(existing))
            {
                switch (OwnStatement(layer, key))
                {
                    case { } own when own.AsSpan().SequenceEqual(statement):
                        same ??= layer; // DSSE signatures are randomised: keep the bytes we already have
                        break;
                    case { } own when StatementPredicateType(own) == predicateType:
                        break; // our older statement of this type: replaced
                    default:
                        kept.Add(layer);
                        break;
                }
            }
        }
        if (same == null)
        {
            var envelope = await Dsse.SignAsync(_signer, Dsse.InTotoPayloadType, statement, ct);
            same = CosignSignatureManifest.AttestationLayer(Dsse.Serialize(envelope), predicateType);
        }
        kept.Add(same);
        var artifact = CosignSignatureManifest.Build(kept);
        if (existing != null && artifact.ManifestDigest() == existing.ManifestDigest()) return existing;
        await _store.PutAsync(tag, artifact, ct);
        return artifact;
    }

    /// <summary>The statement bytes of a DSSE layer whose signature verifies with <paramref name="key"/>; null otherwise.</summary>
    private static byte[]? OwnStatement(CosignLayer layer, ECDsa key)
    {
        if (layer.MediaType != MediaTypes.DsseEnvelope) return null;
        try
        {
            var env = Dsse.Parse(layer.Blob);
            return env.PayloadType == Dsse.InTotoPayloadType && Dsse.Verify(env, key) ? env.PayloadBytes() : null;
        }
        catch (Exception e) when (e is Common.HardenException or FormatException or CryptographicException)
        {
            return null; // someone else's odd layer: keep it, it is simply not ours
        }
    }

    private static string? StatementPredicateType(byte[] statement)
    {
        try { return InTotoStatement.Parse(statement).PredicateType; }
        catch (Common.HardenException) { return null; }
    }

    private bool AlreadySigned(OciArtifact existing, byte[] payload, Digest imageDigest)
    {
        using var key = PemKeys.ReadPublicKey(_signer.PublicKeySpki, "signing key");
        var verifier = new CosignVerifier(key);
        return existing.Manifest.Layers.Select((d, i) => (d, i)).Any(x =>
            existing.VerifiedBlob(x.d.Digest) is { } blob && blob.AsSpan().SequenceEqual(payload)
            && verifier.VerifyPayload(x.i, blob, x.d.Annotations?.GetValueOrDefault(CosignSignatureManifest.SignatureAnnotation), imageDigest).Valid);
    }
}
