using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using HardenImage.Oci;
using HardenImage.Signing;

namespace HardenImage.Tests.Signing;

/// <summary>
/// Every reason <see cref="CosignVerifier"/> and <see cref="ImageVerifier"/> give for not counting a signature or an
/// attestation, each reached with a crafted artifact that is valid in every other respect (signed with the key under
/// test), so the reason asserted is the only thing wrong. A deploy-time gate that accepts any of these would let an
/// unsigned, re-pointed or unscanned image through (Spoofing / Tampering / Elevation of privilege).
/// </summary>
public sealed class SignatureRejectionTests : IDisposable
{
    private readonly ECDsa _key = SigningTestData.NewKey();
    private readonly ECDsa _stranger = SigningTestData.NewKey();
    private static readonly Digest Image = Digest.Of("the image"u8);
    private static readonly Digest OtherImage = Digest.Of("another image"u8);

    public void Dispose() { _key.Dispose(); _stranger.Dispose(); }

    private byte[] Der(byte[] data, ECDsa? key = null) =>
        (key ?? _key).SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);

    private CosignVerifier Verifier => new(_key);

    private static byte[] Payload(string type = SimpleSigning.SignatureType, Digest? digest = null) =>
        Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(SimpleSigning.CreatePayload("r.example/app", digest ?? Image))
            .Replace($"\"{SimpleSigning.SignatureType}\"", $"\"{type}\""));

    // ---- simple-signing payloads ----

    [Fact]
    public void Control_ValidSignatureNamesReferenceAndDigest()
    {
        var c = Verifier.VerifyPayload(3, Payload(), Convert.ToBase64String(Der(Payload())), Image);
        Assert.True(c.Valid);
        Assert.Equal((3, $"valid signature for r.example/app@{Image}"), (c.Layer, c.Reason));
        Assert.Equal(Image.ToString(), c.Claim!.ManifestDigest);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void MissingSignatureAnnotation_IsNotASignature(string? annotation)
    {
        var c = Verifier.VerifyPayload(0, Payload(), annotation, Image);
        Assert.Equal((false, "no dev.cosignproject.cosign/signature annotation", (SimpleSigningClaim?)null), (c.Valid, c.Reason, c.Claim));
    }

    [Theory]
    [InlineData("not base64!")]
    [InlineData("AAA")]
    public void NonBase64SignatureAnnotation_IsRefused(string annotation)
    {
        var c = Verifier.VerifyPayload(0, Payload(), annotation, Image);
        Assert.Equal((false, "signature annotation is not base64"), (c.Valid, c.Reason));
    }

    [Fact]
    public void BadSignature_ByAnotherKeyOrOverOtherBytes()
    {
        Assert.Equal("signature does not verify with the given public key",
            Verifier.VerifyPayload(0, Payload(), Convert.ToBase64String(Der(Payload(), _stranger)), Image).Reason);
        var tampered = Payload();
        tampered[^2] ^= 0x20;
        var c = Verifier.VerifyPayload(0, tampered, Convert.ToBase64String(Der(Payload())), Image);
        Assert.Equal((false, "signature does not verify with the given public key"), (c.Valid, c.Reason));
        Assert.Equal("signature does not verify with the given public key",
            Verifier.VerifyPayload(0, Payload(), Convert.ToBase64String([0x30, 0x00]), Image).Reason);
    }

    [Fact]
    public void PayloadType_OtherThanCosignsIsRefusedEvenWhenSigned()
    {
        var payload = Payload("atomic container signature");
        var c = Verifier.VerifyPayload(0, payload, Convert.ToBase64String(Der(payload)), Image);
        Assert.False(c.Valid);
        Assert.Equal("payload type is 'atomic container signature', not 'cosign container image signature'", c.Reason);
        Assert.NotNull(c.Claim);
    }

    [Fact]
    public void PayloadThatIsNotSimpleSigning_IsRefusedEvenWhenSigned()
    {
        var payload = "{\"critical\":{}}"u8.ToArray();
        var c = Verifier.VerifyPayload(0, payload, Convert.ToBase64String(Der(payload)), Image);
        Assert.False(c.Valid);
        Assert.StartsWith("not a cosign simple-signing payload:", c.Reason);
        Assert.Null(c.Claim);
    }

    [Fact]
    public void SignatureOfAnotherImage_IsRefused()
    {
        var payload = Payload(digest: OtherImage);
        var c = Verifier.VerifyPayload(0, payload, Convert.ToBase64String(Der(payload)), Image);
        Assert.Equal((false, $"signature is for {OtherImage}, not for the image {Image}"), (c.Valid, c.Reason));
    }

    // ---- .sig manifests ----

    [Fact]
    public void WrongMediaType_SignatureLayerIsNotRead()
    {
        var layer = CosignSignatureManifest.SignatureLayer(Payload(), Der(Payload())) with { MediaType = MediaTypes.DsseEnvelope };
        var v = Verifier.VerifySignatures(CosignSignatureManifest.Build([layer]), Image);
        Assert.False(v.Verified);
        Assert.Equal($"layer media type {MediaTypes.DsseEnvelope} is not {MediaTypes.CosignSimpleSigning}", v.Checks.Single().Reason);
    }

    [Fact]
    public void MissingSignatureAnnotation_OnALayer()
    {
        var layer = new CosignLayer(MediaTypes.CosignSimpleSigning, Payload(), new Dictionary<string, string> { ["other"] = "x" });
        var v = Verifier.VerifySignatures(CosignSignatureManifest.Build([layer]), Image);
        Assert.Equal("no dev.cosignproject.cosign/signature annotation", v.Checks.Single().Reason);
        var bare = CosignSignatureManifest.Build([layer]);
        bare = bare with { Manifest = bare.Manifest with { Layers = [bare.Manifest.Layers[0] with { Annotations = null }] } };
        Assert.Equal("no dev.cosignproject.cosign/signature annotation", Verifier.VerifySignatures(bare, Image).Checks.Single().Reason);
    }

    [Fact]
    public void MissingPayloadBlob_IsReportedByDigest()
    {
        var artifact = CosignSignatureManifest.Build([CosignSignatureManifest.SignatureLayer(Payload(), Der(Payload()))]);
        var digest = artifact.Manifest.Layers[0].Digest;
        var v = Verifier.VerifySignatures(artifact with { Blobs = artifact.Blobs.Where(b => b.Key != digest).ToDictionary() }, Image);
        Assert.Equal($"payload blob {digest} missing or not matching its digest", v.Checks.Single().Reason);
    }

    [Fact]
    public void OneGoodLayerAmongBadOnesVerifies_AndEveryLayerIsReported()
    {
        var bad = CosignSignatureManifest.SignatureLayer(Payload(digest: OtherImage), Der(Payload(digest: OtherImage)));
        var good = CosignSignatureManifest.SignatureLayer(Payload(), Der(Payload()));
        var v = Verifier.VerifySignatures(CosignSignatureManifest.Build([bad, good]), Image);
        Assert.True(v.Verified);
        Assert.Equal([(0, false), (1, true)], v.Checks.Select(c => (c.Layer, c.Valid)));
        Assert.False(Verifier.VerifySignatures(CosignSignatureManifest.Build([bad]), Image).Verified);
        Assert.False(new SignatureVerification([]).Verified);
    }

    // ---- .att manifests (DSSE + in-toto) ----

    private async Task<byte[]> Envelope(byte[] statement, string payloadType = Dsse.InTotoPayloadType, ECDsa? key = null)
    {
        using var signer = new EcdsaFileSigner(ECDsa.Create((key ?? _key).ExportParameters(true)));
        return Dsse.Serialize(await Dsse.SignAsync(signer, payloadType, statement));
    }

    private static byte[] Statement(string predicateType = PredicateTypes.CosignVuln, Digest? subject = null, string? type = null, string predicate = "{\"scanner\":{\"result\":{}}}")
    {
        var bytes = InTotoStatement.Create([new InTotoSubject("r.example/app", (subject ?? Image).Hex)], predicateType, JsonNode.Parse(predicate)!);
        return type == null ? bytes : Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(bytes).Replace(InTotoStatement.StatementType, type));
    }

    private AttestationCheck Check(byte[] envelope, string predicateAnnotation = PredicateTypes.CosignVuln, string? mediaType = null)
    {
        var layer = CosignSignatureManifest.AttestationLayer(envelope, predicateAnnotation);
        if (mediaType != null) layer = layer with { MediaType = mediaType };
        return Verifier.VerifyAttestations(CosignSignatureManifest.Build([layer]), Image).Checks.Single();
    }

    [Fact]
    public async Task Control_ValidAttestation()
    {
        var c = Check(await Envelope(Statement()));
        Assert.Equal((true, $"valid {PredicateTypes.CosignVuln} attestation", PredicateTypes.CosignVuln), (c.Valid, c.Reason, c.PredicateType));
        Assert.NotNull(c.Predicate);
        // in-toto Statement v0.1 (what older cosign writes) is still a Statement.
        Assert.True(Check(await Envelope(Statement(type: "https://in-toto.io/Statement/v0.1"))).Valid);
    }

    [Fact]
    public async Task WrongMediaType_AttestationLayerIsNotRead()
    {
        var c = Check(await Envelope(Statement()), mediaType: MediaTypes.CosignSimpleSigning);
        Assert.Equal((false, $"layer media type {MediaTypes.CosignSimpleSigning} is not {MediaTypes.DsseEnvelope}"), (c.Valid, c.Reason));
        Assert.Null(c.PredicateType);
    }

    [Fact]
    public async Task MissingEnvelopeBlob_IsReportedByDigest()
    {
        var artifact = CosignSignatureManifest.Build([CosignSignatureManifest.AttestationLayer(await Envelope(Statement()), PredicateTypes.CosignVuln)]);
        var digest = artifact.Manifest.Layers[0].Digest;
        var c = Verifier.VerifyAttestations(artifact with { Blobs = artifact.Blobs.Where(b => b.Key != digest).ToDictionary() }, Image).Checks.Single();
        Assert.Equal((false, $"envelope blob {digest} missing or not matching its digest"), (c.Valid, c.Reason));
    }

    [Fact]
    public void EnvelopeThatIsNotDsse_IsRefused()
    {
        var c = Check("{\"payloadType\":\"x\"}"u8.ToArray());
        Assert.False(c.Valid);
        Assert.StartsWith("not a DSSE envelope:", c.Reason);
    }

    [Fact]
    public async Task PayloadType_OtherThanInTotoIsRefusedEvenWhenSigned()
    {
        var c = Check(await Envelope(Statement(), "application/json"));
        Assert.Equal((false, "payload type is 'application/json', not application/vnd.in-toto+json"), (c.Valid, c.Reason));
    }

    [Fact]
    public async Task BadDsseSignature_ByAnotherKeyOrOverAnotherPayload()
    {
        var c = Check(await Envelope(Statement(), key: _stranger));
        Assert.Equal((false, "DSSE signature does not verify with the given public key", (string?)null), (c.Valid, c.Reason, c.PredicateType));
        // A signature moved onto another statement (same payload type) does not verify either.
        var good = Dsse.Parse(await Envelope(Statement()));
        var swapped = good with { Payload = Convert.ToBase64String(Statement(subject: OtherImage)) };
        Assert.Equal("DSSE signature does not verify with the given public key", Check(Dsse.Serialize(swapped)).Reason);
    }

    [Fact]
    public async Task StatementType_OtherThanInTotoIsRefusedEvenWhenSigned()
    {
        var c = Check(await Envelope(Statement(type: "https://example.org/Statement/v1")));
        Assert.Equal((false, "statement type 'https://example.org/Statement/v1' is not an in-toto Statement"), (c.Valid, c.Reason));
        Assert.Equal(PredicateTypes.CosignVuln, c.PredicateType);
        Assert.Null(c.Predicate);
    }

    [Fact]
    public async Task StatementThatIsNotJson_IsRefusedEvenWhenSigned()
    {
        var c = Check(await Envelope("not json"u8.ToArray()));
        Assert.False(c.Valid);
        Assert.StartsWith("the attestation payload is not JSON", c.Reason);
    }

    [Fact]
    public async Task SubjectOfAnotherImage_IsRefused()
    {
        var c = Check(await Envelope(Statement(subject: OtherImage)));
        Assert.Equal((false, $"attestation subject does not name the image {Image}"), (c.Valid, c.Reason));
        // The digest comparison ignores hex case (some producers write upper case).
        var upper = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(Statement()).Replace(Image.Hex, Image.Hex.ToUpperInvariant()));
        Assert.True(Check(await Envelope(upper)).Valid);
    }

    [Fact]
    public async Task PredicateAnnotationThatContradictsTheSignedStatement_IsRefused()
    {
        var c = Check(await Envelope(Statement()), PredicateTypes.CycloneDx);
        Assert.Equal((false, $"layer annotation says {PredicateTypes.CycloneDx} but the signed statement says {PredicateTypes.CosignVuln}"), (c.Valid, c.Reason));
        Assert.Null(c.Predicate);
    }

    [Fact]
    public async Task AttestationVerification_ExposesOnlyValidPredicates_NewestLast()
    {
        var first = CosignSignatureManifest.AttestationLayer(await Envelope(Statement(predicate: "{\"n\":1}")), PredicateTypes.CosignVuln);
        var forged = CosignSignatureManifest.AttestationLayer(await Envelope(Statement(predicate: "{\"n\":2}"), key: _stranger), PredicateTypes.CosignVuln);
        var second = CosignSignatureManifest.AttestationLayer(await Envelope(Statement(predicate: "{\"n\":3}")), PredicateTypes.CosignVuln);
        var sbomForged = CosignSignatureManifest.AttestationLayer(await Envelope(Statement(PredicateTypes.CycloneDx), key: _stranger), PredicateTypes.CycloneDx);
        // Signed by our key, but for another image: the check knows its predicate type and is still invalid.
        var sbomOtherImage = CosignSignatureManifest.AttestationLayer(await Envelope(Statement(PredicateTypes.OpenVex, subject: OtherImage)), PredicateTypes.OpenVex);
        var v = Verifier.VerifyAttestations(CosignSignatureManifest.Build([first, forged, second, sbomForged, sbomOtherImage]), Image);
        Assert.Equal(PredicateTypes.OpenVex, v.Checks[4].PredicateType);
        Assert.Equal([PredicateTypes.CosignVuln], v.PredicateTypes);
        Assert.Equal([1, 3], v.Predicates(PredicateTypes.CosignVuln).Select(p => (int)p["n"]!));
        Assert.Empty(v.Predicates(PredicateTypes.CycloneDx));
        Assert.Empty(v.Predicates(PredicateTypes.OpenVex));
    }

    // ---- ImageVerifier: the gate over a store ----

    private async Task<InMemorySignatureStore> Store(bool signature = true, params CosignLayer[] attestations)
    {
        var store = new InMemorySignatureStore();
        if (signature)
            await store.PutAsync(CosignSignatureManifest.SignatureTag(Image), CosignSignatureManifest.Build([CosignSignatureManifest.SignatureLayer(Payload(), Der(Payload()))]));
        if (attestations.Length > 0)
            await store.PutAsync(CosignSignatureManifest.AttestationTag(Image), CosignSignatureManifest.Build(attestations));
        return store;
    }

    private async Task<CosignLayer> Vuln(string predicate, ECDsa? key = null) =>
        CosignSignatureManifest.AttestationLayer(await Envelope(Statement(predicate: predicate), key: key), PredicateTypes.CosignVuln);

    [Fact]
    public async Task ImageVerifier_UnsignedImageFailsNamingTheTag()
    {
        var r = await new ImageVerifier(await Store(signature: false), _key).VerifyAsync(Image, new VerificationPolicy());
        Assert.False(r.Passed);
        Assert.Equal($"no signature: tag sha256-{Image.Hex}.sig is absent. Run 'harden sign'.", Assert.Single(r.Failures));
        Assert.Empty(r.Signatures.Checks);
    }

    [Fact]
    public async Task ImageVerifier_SignatureByAnotherKeyFailsWithEveryLayersReason()
    {
        var r = await new ImageVerifier(await Store(), _stranger).VerifyAsync(Image, new VerificationPolicy());
        Assert.Equal("no valid signature for this key and image: layer 0: signature does not verify with the given public key", Assert.Single(r.Failures));
        var ok = await new ImageVerifier(await Store(), _key).VerifyAsync(Image, new VerificationPolicy());
        Assert.True(ok.Passed);
        Assert.Empty(ok.Attestations.Checks); // no attestation asked for: none read
    }

    [Fact]
    public async Task ImageVerifier_RequiredAttestationAbsentOrInvalid()
    {
        var policy = new VerificationPolicy { RequiredAttestations = ["sbom", "vuln"] };
        var absent = await new ImageVerifier(await Store(), _key).VerifyAsync(Image, policy);
        Assert.Equal([$"required attestation 'sbom' ({PredicateTypes.CycloneDx}) is missing or invalid (tag sha256-{Image.Hex}.att is absent)",
                      $"required attestation 'vuln' ({PredicateTypes.CosignVuln}) is missing or invalid (tag sha256-{Image.Hex}.att is absent)"], absent.Failures);
        var forged = await new ImageVerifier(await Store(true, await Vuln("{}", _stranger), await Vuln("{}")), _key).VerifyAsync(Image, policy);
        Assert.Equal([$"required attestation 'sbom' ({PredicateTypes.CycloneDx}) is missing or invalid"], forged.Failures);
    }

    private async Task<CosignLayer> Sbom(string predicate) =>
        CosignSignatureManifest.AttestationLayer(await Envelope(Statement(PredicateTypes.CycloneDx, predicate: predicate)), PredicateTypes.CycloneDx);

    [Fact]
    public async Task ImageVerifier_SbomAttestationThatIsNotCycloneDx_FailsWhenAnSbomIsRequired_AndIsNotJudgedOtherwise()
    {
        var store = await Store(true, await Sbom("{\"bomFormat\":\"SPDX\"}"), await Vuln("{\"scanner\":{\"result\":{}}}"));
        var sbomRequired = await new ImageVerifier(store, _key).VerifyAsync(Image, new VerificationPolicy { RequiredAttestations = ["vuln", "sbom"] });
        Assert.Equal("an SBOM attestation's predicate is not a CycloneDX document (bomFormat != CycloneDX)", Assert.Single(sbomRequired.Failures));
        // Only what the policy asks for is judged: a vuln-only policy does not fail on the SBOM's content.
        Assert.True((await new ImageVerifier(store, _key).VerifyAsync(Image, new VerificationPolicy { RequiredAttestations = ["vuln"] })).Passed);
        var good = await Store(true, await Sbom("{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.6\"}"));
        Assert.True((await new ImageVerifier(good, _key).VerifyAsync(Image, new VerificationPolicy { RequiredAttestations = ["sbom"] })).Passed);
    }

    [Fact]
    public async Task ImageVerifier_ReadsNoAttestations_WhenThePolicyAsksForNone()
    {
        var store = await Store(true, await Vuln("{\"scanner\":{\"result\":{}}}"));
        var r = await new ImageVerifier(store, _key).VerifyAsync(Image, new VerificationPolicy());
        Assert.True(r.Passed);
        Assert.Empty(r.Attestations.Checks);
        var asked = await new ImageVerifier(store, _key).VerifyAsync(Image, new VerificationPolicy { ForbidCriticalVulnerabilities = true });
        Assert.Single(asked.Attestations.Checks);
    }

    [Fact]
    public async Task ImageVerifier_CriticalFindingsInSeveralStatements_AreCountedOnceAndTheStatementsNamed()
    {
        const string one = "{\"scanner\":{\"result\":{\"vulnerabilities\":[{\"id\":\"CVE-1\",\"severity\":\"critical\"}]}}}";
        var r = await new ImageVerifier(await Store(true, await Vuln(one), await Vuln(one)), _key)
            .VerifyAsync(Image, new VerificationPolicy { ForbidCriticalVulnerabilities = true });
        Assert.Equal("the vuln attestations (2 statements) report 1 critical vulnerability: CVE-1", Assert.Single(r.Failures));
    }

    [Fact]
    public async Task ImageVerifier_CriticalFindingsInAnyValidVulnAttestationFail()
    {
        var policy = new VerificationPolicy { ForbidCriticalVulnerabilities = true };
        var none = await new ImageVerifier(await Store(), _key).VerifyAsync(Image, policy);
        Assert.Equal("no valid vuln attestation to check for critical vulnerabilities. Run 'harden scan' and 'harden sign'.", Assert.Single(none.Failures));

        const string one = "{\"scanner\":{\"result\":{\"vulnerabilities\":[{\"id\":\"CVE-1\",\"ratings\":[{\"severity\":\"critical\"}]}]}}}";
        const string two = "{\"scanner\":{\"result\":{\"vulnerabilities\":[{\"id\":\"CVE-1\",\"severity\":\"critical\"},{\"id\":\"CVE-2\",\"severity\":\"CRITICAL\"}]}}}";
        const string clean = "{\"scanner\":{\"result\":{\"vulnerabilities\":[{\"id\":\"CVE-3\",\"severity\":\"high\"}]}}}";

        var r1 = await new ImageVerifier(await Store(true, await Vuln(one)), _key).VerifyAsync(Image, policy);
        Assert.Equal("the vuln attestation reports 1 critical vulnerability: CVE-1", Assert.Single(r1.Failures));
        Assert.Equal(["CVE-1"], r1.CriticalFindings);
        var r2 = await new ImageVerifier(await Store(true, await Vuln(two)), _key).VerifyAsync(Image, policy);
        Assert.Equal("the vuln attestation reports 2 critical vulnerabilities: CVE-1, CVE-2", Assert.Single(r2.Failures));
        // Every valid statement counts, as Kyverno checks each one: a clean report beside a critical one does not hide it
        // (re-attesting replaces the statement of the same type, so one current report remains; docs/signing.md).
        Assert.False((await new ImageVerifier(await Store(true, await Vuln(one), await Vuln(clean)), _key).VerifyAsync(Image, policy)).Passed);
        Assert.True((await new ImageVerifier(await Store(true, await Vuln(clean)), _key).VerifyAsync(Image, policy)).Passed);
        Assert.False((await new ImageVerifier(await Store(true, await Vuln(clean), await Vuln(one)), _key).VerifyAsync(Image, policy)).Passed);
        // A forged clean report after a real critical one does not count.
        Assert.False((await new ImageVerifier(await Store(true, await Vuln(one), await Vuln(clean, _stranger)), _key).VerifyAsync(Image, policy)).Passed);
    }
}
