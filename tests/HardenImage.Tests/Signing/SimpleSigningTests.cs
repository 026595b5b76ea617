using System.Security.Cryptography;
using System.Text;
using HardenImage.Oci;
using HardenImage.Signing;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Signing;

public class SimpleSigningTests
{
    private static readonly Digest Image = Digest.Parse("sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00");

    [Fact]
    public void Payload_IsByteForByteWhatCosignWrites()
    {
        // The exact bytes cosign produced in containers/image's dir-img-cosign-valid fixture.
        var (cosignPayload, _) = SigningTestData.ReadContainersImageSignature(SigningTestData.Fixtures("dir-img-cosign-valid", "signature-1"));
        var ours = SimpleSigning.CreatePayload("192.168.64.2:5000/cosign-signed-single-sample", Image);
        Assert.Equal(Encoding.UTF8.GetString(cosignPayload), Encoding.UTF8.GetString(ours));
        Assert.NotEqual((byte)'\n', ours[^1]);
    }

    [Fact]
    public void Payload_WithAnnotations_CarriesSortedOptionalObject()
    {
        var payload = SimpleSigning.CreatePayload("r.example/app", Image, new Dictionary<string, string> { ["z"] = "1", ["a"] = "2" });
        Assert.EndsWith(",\"optional\":{\"a\":\"2\",\"z\":\"1\"}}", Encoding.UTF8.GetString(payload));
        var claim = SimpleSigning.Parse(payload);
        Assert.Equal("r.example/app", claim.DockerReference);
        Assert.Equal(Image.ToString(), claim.ManifestDigest);
        Assert.Equal("2", claim.Optional!["a"]);
    }

    [Fact]
    public void SignatureManifest_HasCosignShape()
    {
        using var key = SigningTestData.NewKey();
        var payload = SimpleSigning.CreatePayload("r.example/app", Image);
        var sig = key.SignData(payload, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        var artifact = CosignSignatureManifest.Build([CosignSignatureManifest.SignatureLayer(payload, sig)]);

        Assert.Equal("sha256-634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00.sig", CosignSignatureManifest.SignatureTag(Image));
        var layer = Assert.Single(artifact.Manifest.Layers);
        Assert.Equal("application/vnd.dev.cosign.simplesigning.v1+json", layer.MediaType);
        Assert.Equal(Digest.Of(payload).ToString(), layer.Digest);
        Assert.Equal(Convert.ToBase64String(sig), layer.Annotations!["dev.cosignproject.cosign/signature"]);
        Assert.Equal(MediaTypes.ImageConfig, artifact.Manifest.Config.MediaType);
        Assert.Equal(MediaTypes.ImageManifest, artifact.Manifest.MediaType);

        var config = Encoding.UTF8.GetString(artifact.Blobs[artifact.Manifest.Config.Digest]);
        Assert.Equal("{\"architecture\":\"\",\"created\":\"0001-01-01T00:00:00Z\",\"history\":[{\"created\":\"0001-01-01T00:00:00Z\"}],"
            + "\"os\":\"\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" + layer.Digest + "\"]},\"config\":{}}", config);
    }

    [Fact]
    public void Append_KeepsExistingLayers_AndDropsExactDuplicates()
    {
        var first = CosignSignatureManifest.SignatureLayer(SimpleSigning.CreatePayload("a/one", Image), [1, 2, 3]);
        var second = CosignSignatureManifest.SignatureLayer(SimpleSigning.CreatePayload("a/two", Image), [4, 5, 6]);
        var foreign = new CosignLayer("application/vnd.example.other", "x"u8.ToArray(), new Dictionary<string, string>());
        var a = CosignSignatureManifest.Build([first, foreign]);
        var b = CosignSignatureManifest.Append(a, second);
        Assert.Equal([first.Digest, foreign.Digest, second.Digest], b.Manifest.Layers.Select(l => l.Digest));
        var c = CosignSignatureManifest.Append(b, second);
        Assert.Equal(3, c.Manifest.Layers.Count);
        Assert.Equal(b.ManifestDigest(), c.ManifestDigest());
        // Same payload, different signature: a second signer's layer is kept.
        var d = CosignSignatureManifest.Append(c, CosignSignatureManifest.SignatureLayer(SimpleSigning.CreatePayload("a/two", Image), [7]));
        Assert.Equal(4, d.Manifest.Layers.Count);
        var config = Encoding.UTF8.GetString(d.Blobs[d.Manifest.Config.Digest]);
        Assert.Equal(4, config.Split("\"created\"").Length - 2); // one history entry per layer
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task OurSignature_VerifiesWithRealOpenssl()
    {
        var openssl = RequiredService.Tool("openssl", "openssl");
        using var dir = new TempDir();
        using var key = SigningTestData.NewKey();
        using var signer = new EcdsaFileSigner(ECDsa.Create(key.ExportParameters(true)));
        var payload = SimpleSigning.CreatePayload("registry.example/harden/base", Image);
        var sig = await signer.SignAsync(payload);
        File.WriteAllBytes(dir.Combine("payload"), payload);
        File.WriteAllBytes(dir.Combine("sig.der"), sig);
        File.WriteAllText(dir.Combine("pub.pem"), PemKeys.PublicKeyPem(signer.PublicKeySpki));

        var ok = RequiredService.RunOk(openssl, ["dgst", "-sha256", "-verify", dir.Combine("pub.pem"), "-signature", dir.Combine("sig.der"), dir.Combine("payload")]);
        Assert.Contains("Verified OK", ok);

        payload[10] ^= 1;
        File.WriteAllBytes(dir.Combine("payload"), payload);
        var (code, stdout, _) = RequiredService.Run(openssl, ["dgst", "-sha256", "-verify", dir.Combine("pub.pem"), "-signature", dir.Combine("sig.der"), dir.Combine("payload")]);
        Assert.NotEqual(0, code);
        Assert.Contains("Verification failure", stdout);
    }
}
