using System.Security.Cryptography;
using System.Text.Json.Nodes;
using HardenImage.Oci;
using HardenImage.Signing;

namespace HardenImage.Tests.Signing;

public class CosignVerifierTests
{
    private static ECDsa PublicKey(string file) => PemKeys.ReadPublicKey(File.ReadAllText(SigningTestData.Fixtures(file)), file);

    /// <summary>A .sig artifact holding the real cosign signature from a containers/image fixture.</summary>
    private static (OciArtifact Sig, Digest Image) Fixture(string dir, string signatureFile = "signature-1")
    {
        var (payload, sig) = SigningTestData.ReadContainersImageSignature(SigningTestData.Fixtures(dir, signatureFile));
        var image = Digest.Of(File.ReadAllBytes(SigningTestData.Fixtures(dir, "manifest.json")));
        var layer = new CosignLayer(MediaTypes.CosignSimpleSigning, payload,
            new Dictionary<string, string> { [CosignSignatureManifest.SignatureAnnotation] = sig });
        return (CosignSignatureManifest.Build([layer]), image);
    }

    [Theory]
    [InlineData("dir-img-cosign-valid", "cosign.pub")]
    [InlineData("dir-img-cosign-valid-with-tag", "cosign.pub")]
    [InlineData("dir-img-cosign-key-rekor-valid", "cosign2.pub")]
    public void RealCosignSignatures_Verify(string dir, string key)
    {
        using var pub = PublicKey(key);
        var (sig, image) = Fixture(dir);
        var result = new CosignVerifier(pub).VerifySignatures(sig, image);
        Assert.True(result.Verified, string.Join("; ", result.Checks.Select(c => c.Reason)));
        Assert.StartsWith("192.168.64.2:5000/", result.Checks[0].Claim!.DockerReference);
    }

    [Fact]
    public void SignatureFromUnknownKey_Fails()
    {
        var (payload, sig) = SigningTestData.ReadContainersImageSignature(SigningTestData.Fixtures("unknown-cosign-key.signature"));
        var claim = SimpleSigning.Parse(payload);
        var layer = CosignSignatureManifest.SignatureLayer(payload, Convert.FromBase64String(sig));
        foreach (var key in new[] { "cosign.pub", "cosign2.pub" })
        {
            using var pub = PublicKey(key);
            var result = new CosignVerifier(pub).VerifySignatures(CosignSignatureManifest.Build([layer]), Digest.Parse(claim.ManifestDigest));
            Assert.False(result.Verified);
            Assert.Contains("does not verify", result.Checks[0].Reason);
        }
    }

    [Fact]
    public void WrongKey_Fails()
    {
        using var pub = PublicKey("cosign2.pub");
        var (sig, image) = Fixture("dir-img-cosign-valid");
        var result = new CosignVerifier(pub).VerifySignatures(sig, image);
        Assert.False(result.Verified);
        Assert.Equal("signature does not verify with the given public key", result.Checks.Single().Reason);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(60)]
    [InlineData(150)]
    public void OneByteChangeInPayload_Fails(int index)
    {
        using var pub = PublicKey("cosign.pub");
        var (payload, sig) = SigningTestData.ReadContainersImageSignature(SigningTestData.Fixtures("dir-img-cosign-valid", "signature-1"));
        var image = Digest.Of(File.ReadAllBytes(SigningTestData.Fixtures("dir-img-cosign-valid", "manifest.json")));
        payload[index] ^= 0x01;
        var artifact = CosignSignatureManifest.Build([CosignSignatureManifest.SignatureLayer(payload, Convert.FromBase64String(sig))]);
        var result = new CosignVerifier(pub).VerifySignatures(artifact, image);
        Assert.False(result.Verified);
        Assert.Equal("signature does not verify with the given public key", result.Checks.Single().Reason);
    }

    [Fact]
    public void OneByteChangeInSignature_Fails()
    {
        using var pub = PublicKey("cosign.pub");
        var (payload, sig) = SigningTestData.ReadContainersImageSignature(SigningTestData.Fixtures("dir-img-cosign-valid", "signature-1"));
        var image = Digest.Of(File.ReadAllBytes(SigningTestData.Fixtures("dir-img-cosign-valid", "manifest.json")));
        var der = Convert.FromBase64String(sig);
        der[^3] ^= 0x01;
        var artifact = CosignSignatureManifest.Build([CosignSignatureManifest.SignatureLayer(payload, der)]);
        var result = new CosignVerifier(pub).VerifySignatures(artifact, image);
        Assert.False(result.Verified);
        Assert.Equal("signature does not verify with the given public key", result.Checks.Single().Reason);
    }

    [Fact]
    public void ValidSignatureOfAnotherImage_IsNotAcceptedForThisOne()
    {
        using var pub = PublicKey("cosign.pub");
        var (sig, _) = Fixture("dir-img-cosign-valid");
        var other = Digest.Of(File.ReadAllBytes(SigningTestData.Fixtures("dir-img-cosign-key-rekor-valid", "manifest.json")));
        var result = new CosignVerifier(pub).VerifySignatures(sig, other);
        Assert.False(result.Verified);
        Assert.Contains("not for the image", result.Checks[0].Reason);
    }

    [Fact]
    public void SwappedLayerBlob_IsDetected()
    {
        using var pub = PublicKey("cosign.pub");
        var (sig, image) = Fixture("dir-img-cosign-valid");
        var layerDigest = sig.Manifest.Layers[0].Digest;
        var blobs = sig.Blobs.ToDictionary();
        blobs[layerDigest] = [.. blobs[layerDigest], (byte)' '];
        var result = new CosignVerifier(pub).VerifySignatures(sig with { Blobs = blobs }, image);
        Assert.False(result.Verified);
        Assert.Contains("not matching its digest", result.Checks[0].Reason);
    }

    [Fact]
    public async Task Attestations_VerifyAndExposePredicates_SubjectMustMatch()
    {
        using var key = SigningTestData.NewKey();
        using var signer = new EcdsaFileSigner(ECDsa.Create(key.ExportParameters(true)));
        var image = Digest.Of("image"u8);
        var statement = InTotoStatement.Create([new InTotoSubject("r.example/app", image.Hex)], PredicateTypes.CosignVuln,
            JsonNode.Parse("{\"scanner\":{\"result\":{}}}")!);
        var env = await Dsse.SignAsync(signer, Dsse.InTotoPayloadType, statement);
        var att = CosignSignatureManifest.Build([CosignSignatureManifest.AttestationLayer(Dsse.Serialize(env), PredicateTypes.CosignVuln)]);

        var ok = new CosignVerifier(key).VerifyAttestations(att, image);
        Assert.Contains(PredicateTypes.CosignVuln, ok.PredicateTypes);
        Assert.Single(ok.Predicates(PredicateTypes.CosignVuln));

        var other = new CosignVerifier(key).VerifyAttestations(att, Digest.Of("other"u8));
        Assert.Empty(other.PredicateTypes);
        Assert.Equal($"attestation subject does not name the image {Digest.Of("other"u8)}", other.Checks[0].Reason);

        using var stranger = SigningTestData.NewKey();
        var forged = new CosignVerifier(stranger).VerifyAttestations(att, image);
        Assert.Empty(forged.PredicateTypes);
        Assert.Equal("DSSE signature does not verify with the given public key", forged.Checks.Single().Reason);

        // An annotation that lies about the signed predicate type is caught.
        var lying = CosignSignatureManifest.Build([CosignSignatureManifest.AttestationLayer(Dsse.Serialize(env), PredicateTypes.CycloneDx)]);
        var r = new CosignVerifier(key).VerifyAttestations(lying, image);
        Assert.Empty(r.PredicateTypes);
        Assert.StartsWith($"layer annotation says {PredicateTypes.CycloneDx} but the signed statement says", r.Checks.Single().Reason);
    }
}
