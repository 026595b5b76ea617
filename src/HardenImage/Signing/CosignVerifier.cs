using System.Security.Cryptography;
using System.Text.Json.Nodes;
using HardenImage.Common;
using HardenImage.Oci;

namespace HardenImage.Signing;

/// <summary>The outcome for one layer of a .sig manifest.</summary>
public sealed record SignatureCheck(int Layer, bool Valid, string Reason, SimpleSigningClaim? Claim);

/// <summary>All layers of a .sig manifest; verified when at least one layer is valid for the key and image.</summary>
public sealed record SignatureVerification(IReadOnlyList<SignatureCheck> Checks)
{
    public bool Verified => Checks.Any(c => c.Valid);
}

/// <summary>The outcome for one layer of a .att manifest.</summary>
public sealed record AttestationCheck(int Layer, bool Valid, string Reason, string? PredicateType, JsonNode? Predicate);

/// <summary>All layers of a .att manifest.</summary>
public sealed record AttestationVerification(IReadOnlyList<AttestationCheck> Checks)
{
    /// <summary>Predicate types carried by valid attestations.</summary>
    public IReadOnlySet<string> PredicateTypes =>
        Checks.Where(c => c.Valid && c.PredicateType != null).Select(c => c.PredicateType!).ToHashSet(StringComparer.Ordinal);

    /// <summary>Predicates of valid attestations of one type (newest last).</summary>
    public IReadOnlyList<JsonNode> Predicates(string predicateType) =>
        Checks.Where(c => c.Valid && c.PredicateType == predicateType && c.Predicate != null).Select(c => c.Predicate!).ToList();
}

/// <summary>
/// Verifies cosign signatures and attestations with a public key. A signature counts only when it verifies over
/// the exact payload bytes AND the payload names the expected manifest digest, so a valid signature of another
/// image cannot be replayed (threat: Spoofing / Tampering). Attestations additionally need the in-toto subject
/// to carry the image digest.
/// </summary>
public sealed class CosignVerifier
{
    private readonly ECDsa _publicKey;

    /// <summary>Does not take ownership of <paramref name="publicKey"/>.</summary>
    public CosignVerifier(ECDsa publicKey) => _publicKey = publicKey;

    public SignatureVerification VerifySignatures(OciArtifact signatures, Digest imageDigest)
    {
        var checks = new List<SignatureCheck>();
        for (var i = 0; i < signatures.Manifest.Layers.Count; i++)
            checks.Add(CheckSignatureLayer(i, signatures, imageDigest));
        return new SignatureVerification(checks);
    }

    public AttestationVerification VerifyAttestations(OciArtifact attestations, Digest imageDigest)
    {
        var checks = new List<AttestationCheck>();
        for (var i = 0; i < attestations.Manifest.Layers.Count; i++)
            checks.Add(CheckAttestationLayer(i, attestations, imageDigest));
        return new AttestationVerification(checks);
    }

    /// <summary>Verifies one simple-signing payload and its base64 DER signature against the expected image.</summary>
    public SignatureCheck VerifyPayload(int layer, byte[] payload, string? signatureBase64, Digest imageDigest)
    {
        if (string.IsNullOrEmpty(signatureBase64))
            return new(layer, false, $"no {CosignSignatureManifest.SignatureAnnotation} annotation", null);
        byte[] sig;
        try { sig = Convert.FromBase64String(signatureBase64); }
        catch (FormatException) { return new(layer, false, "signature annotation is not base64", null); }
        if (!_publicKey.VerifyData(payload, sig, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence))
            return new(layer, false, "signature does not verify with the given public key", null);
        SimpleSigningClaim claim;
        try { claim = SimpleSigning.Parse(payload); }
        catch (HardenException e) { return new(layer, false, e.Message, null); }
        if (claim.Type != SimpleSigning.SignatureType)
            return new(layer, false, $"payload type is '{claim.Type}', not '{SimpleSigning.SignatureType}'", claim);
        if (!string.Equals(claim.ManifestDigest, imageDigest.ToString(), StringComparison.Ordinal))
            return new(layer, false, $"signature is for {claim.ManifestDigest}, not for the image {imageDigest}", claim);
        return new(layer, true, $"valid signature for {claim.DockerReference}@{claim.ManifestDigest}", claim);
    }

    private SignatureCheck CheckSignatureLayer(int i, OciArtifact artifact, Digest imageDigest)
    {
        var d = artifact.Manifest.Layers[i];
        if (d.MediaType != MediaTypes.CosignSimpleSigning)
            return new(i, false, $"layer media type {d.MediaType} is not {MediaTypes.CosignSimpleSigning}", null);
        var blob = artifact.VerifiedBlob(d.Digest);
        if (blob == null) return new(i, false, $"payload blob {d.Digest} missing or not matching its digest", null);
        string? sig = null;
        d.Annotations?.TryGetValue(CosignSignatureManifest.SignatureAnnotation, out sig);
        return VerifyPayload(i, blob, sig, imageDigest);
    }

    private AttestationCheck CheckAttestationLayer(int i, OciArtifact artifact, Digest imageDigest)
    {
        var d = artifact.Manifest.Layers[i];
        if (d.MediaType != MediaTypes.DsseEnvelope)
            return new(i, false, $"layer media type {d.MediaType} is not {MediaTypes.DsseEnvelope}", null, null);
        var blob = artifact.VerifiedBlob(d.Digest);
        if (blob == null) return new(i, false, $"envelope blob {d.Digest} missing or not matching its digest", null, null);
        DsseEnvelope envelope;
        try { envelope = Dsse.Parse(blob); }
        catch (HardenException e) { return new(i, false, e.Message, null, null); }
        if (envelope.PayloadType != Dsse.InTotoPayloadType)
            return new(i, false, $"payload type is '{envelope.PayloadType}', not {Dsse.InTotoPayloadType}", null, null);
        if (!Dsse.Verify(envelope, _publicKey))
            return new(i, false, "DSSE signature does not verify with the given public key", null, null);
        InTotoStatementData statement;
        try { statement = InTotoStatement.Parse(envelope.PayloadBytes()); }
        catch (Exception e) when (e is HardenException or FormatException) { return new(i, false, e.Message, null, null); }
        if (statement.Type is not (InTotoStatement.StatementType or "https://in-toto.io/Statement/v0.1"))
            return new(i, false, $"statement type '{statement.Type}' is not an in-toto Statement", statement.PredicateType, null);
        if (!statement.Subjects.Any(s => string.Equals(s.Sha256, imageDigest.Hex, StringComparison.OrdinalIgnoreCase)))
            return new(i, false, $"attestation subject does not name the image {imageDigest}", statement.PredicateType, null);
        if (d.Annotations != null && d.Annotations.TryGetValue(CosignSignatureManifest.PredicateTypeAnnotation, out var annotated)
            && annotated != statement.PredicateType)
            return new(i, false, $"layer annotation says {annotated} but the signed statement says {statement.PredicateType}", statement.PredicateType, null);
        return new(i, true, $"valid {statement.PredicateType} attestation", statement.PredicateType, statement.Predicate);
    }
}
