using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using HardenImage.Signing;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Signing;

public class DsseTests
{
    private static JsonElement Vector() => JsonDocument.Parse(SigningTestData.Text("dsse", "protocol-vector.json")).RootElement;

    private static byte[] Coordinate(string decimalText)
    {
        var bytes = BigInteger.Parse(decimalText).ToByteArray(isUnsigned: true, isBigEndian: true);
        return [.. new byte[32 - bytes.Length], .. bytes];
    }

    private static ECDsa VectorKey()
    {
        var v = Vector();
        return ECDsa.Create(new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256,
            Q = new ECPoint { X = Coordinate(v.GetProperty("x").GetString()!), Y = Coordinate(v.GetProperty("y").GetString()!) },
        });
    }

    [Fact]
    public void Pae_MatchesSpecVector()
    {
        var v = Vector();
        var pae = Dsse.Pae(v.GetProperty("payloadType").GetString()!, Encoding.UTF8.GetBytes(v.GetProperty("payload").GetString()!));
        Assert.Equal(v.GetProperty("pae").GetString(), Encoding.UTF8.GetString(pae));
    }

    [Fact]
    public void Pae_CountsBytesNotCharacters() =>
        Assert.Equal("DSSEv1 2 é 2 ø"u8.ToArray(), Dsse.Pae("é", "ø"u8));

    [Fact]
    public void SpecVector_RawRsSignature_Verifies_AndTamperedPayloadDoesNot()
    {
        var v = Vector();
        using var key = VectorKey();
        var envelope = new DsseEnvelope
        {
            PayloadType = v.GetProperty("payloadType").GetString()!,
            Payload = Convert.ToBase64String(Encoding.UTF8.GetBytes(v.GetProperty("payload").GetString()!)),
            Signatures = [new DsseSignature { Sig = v.GetProperty("sigRawRS").GetString()! }],
        };
        Assert.True(Dsse.Verify(envelope, key, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));
        Assert.False(Dsse.Verify(envelope with { Payload = Convert.ToBase64String("hello worle"u8) }, key, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));
        Assert.False(Dsse.Verify(envelope with { PayloadType = "http://example.com/HelloWorlD" }, key, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));
    }

    [Fact]
    public void SigstoreBundleV03_DsseSignature_VerifiesWithCertificateKey()
    {
        using var doc = JsonDocument.Parse(SigningTestData.Text("dsse", "sigstore-rs", "tests", "data", "bundle_v03.json"));
        var root = doc.RootElement;
        var certDer = Convert.FromBase64String(root.GetProperty("verificationMaterial").GetProperty("certificate").GetProperty("rawBytes").GetString()!);
        using var cert = X509CertificateLoader.LoadCertificate(certDer);
        using var key = cert.GetECDsaPublicKey()!;
        var envelope = Dsse.Parse(Encoding.UTF8.GetBytes(root.GetProperty("dsseEnvelope").GetRawText()));
        Assert.Equal(Dsse.InTotoPayloadType, envelope.PayloadType);
        Assert.True(Dsse.Verify(envelope, key));

        var statement = InTotoStatement.Parse(envelope.PayloadBytes());
        Assert.Equal(InTotoStatement.StatementType, statement.Type);
        Assert.Equal("https://sigstore.dev/cosign/sign/v1", statement.PredicateType);

        var payload = envelope.PayloadBytes();
        payload[^2] ^= 1;
        Assert.False(Dsse.Verify(envelope with { Payload = Convert.ToBase64String(payload) }, key));
    }

    [Fact]
    public async Task OwnEnvelope_HasCosignJsonShape_AndRoundTrips()
    {
        using var signer = new EcdsaFileSigner(SigningTestData.NewKey());
        var statement = InTotoStatement.Create([new InTotoSubject("r.example/app", new string('a', 64))], PredicateTypes.CycloneDx,
            Predicates.CycloneDx("{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.6\"}"u8));
        var envelope = await Dsse.SignAsync(signer, Dsse.InTotoPayloadType, statement);
        var json = Encoding.UTF8.GetString(Dsse.Serialize(envelope));
        Assert.StartsWith("{\"payloadType\":\"application/vnd.in-toto+json\",\"payload\":\"", json);
        Assert.EndsWith("\"signatures\":[{\"keyid\":\"\",\"sig\":\"" + envelope.Signatures[0].Sig + "\"}]}", json);

        Assert.Equal("{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"name\":\"r.example/app\",\"digest\":{\"sha256\":\"" + new string('a', 64)
            + "\"}}],\"predicateType\":\"https://cyclonedx.org/bom\",\"predicate\":{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.6\"}}",
            Encoding.UTF8.GetString(statement));

        using var pub = PemKeys.ReadPublicKey(signer.PublicKeySpki, "pub");
        Assert.True(Dsse.Verify(Dsse.Parse(Encoding.UTF8.GetBytes(json)), pub));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task OwnDsseSignature_VerifiesWithRealOpensslOverPae()
    {
        var openssl = RequiredService.Tool("openssl", "openssl");
        using var dir = new TempDir();
        using var signer = new EcdsaFileSigner(SigningTestData.NewKey());
        var statement = InTotoStatement.Create([new InTotoSubject("r.example/app", new string('c', 64))], PredicateTypes.SlsaProvenanceV1,
            new System.Text.Json.Nodes.JsonObject { ["buildDefinition"] = new System.Text.Json.Nodes.JsonObject() });
        var envelope = await Dsse.SignAsync(signer, Dsse.InTotoPayloadType, statement);
        File.WriteAllBytes(dir.Combine("pae"), Dsse.Pae(envelope.PayloadType, envelope.PayloadBytes()));
        File.WriteAllBytes(dir.Combine("sig.der"), Convert.FromBase64String(envelope.Signatures[0].Sig));
        File.WriteAllText(dir.Combine("pub.pem"), PemKeys.PublicKeyPem(signer.PublicKeySpki));
        var ok = RequiredService.RunOk(openssl, ["dgst", "-sha256", "-verify", dir.Combine("pub.pem"), "-signature", dir.Combine("sig.der"), dir.Combine("pae")]);
        Assert.Contains("Verified OK", ok);
    }
}
