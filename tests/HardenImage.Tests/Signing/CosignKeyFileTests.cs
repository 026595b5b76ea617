using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using HardenImage.Common;
using HardenImage.Signing;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Signing;

public class CosignKeyFileTests
{
    [Theory]
    [InlineData("zarf", "test")]            // ENCRYPTED SIGSTORE PRIVATE KEY, N=65536
    [InlineData("policy-controller", "")]   // ENCRYPTED COSIGN PRIVATE KEY, N=32768
    public void RealCosignKey_DecryptsToTheShippedPublicKey(string origin, string password)
    {
        var dir = SigningTestData.KeyDir(origin);
        using var key = PemKeys.LoadPrivateKey(File.ReadAllText(System.IO.Path.Combine(dir, "cosign.key")), () => password, origin);
        using var shipped = PemKeys.ReadPublicKey(File.ReadAllText(System.IO.Path.Combine(dir, "cosign.pub")), origin);
        Assert.Equal(shipped.ExportSubjectPublicKeyInfo(), key.ExportSubjectPublicKeyInfo());
    }

    [Theory]
    [InlineData("ecdsa_encrypted_private.key", "123",
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEI3sxu+p/GFrJyfgmSWr4qMzwbnd/pRAShSG6tHcrlhBSoRCAiVYOoQR7514Uz6ft2tQlnoJLHmHcFqqy0/ERJA==")]
    [InlineData("cosign_generated_encrypted_empty_private.key", "",
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGmsWpZNuu+SUX70n3lVK4JLsaoV7T+rhea2rQUu29EQiatoLB06QdsmSd+GsQGlQzfcDtsKPzb+B2zLggrWZjg==")]
    public void SigstoreRsKeys_DecryptToTheirPublicKeys(string file, string password, string spkiBase64)
    {
        var text = File.ReadAllText(System.IO.Path.Combine(SigningTestData.KeyDir("sigstore-rs"), file));
        using var key = PemKeys.LoadPrivateKey(text, () => password, file);
        Assert.Equal(spkiBase64, Convert.ToBase64String(key.ExportSubjectPublicKeyInfo()));
    }

    [Fact]
    public void OlderCosignLabel_WithPasswordFromExample_Decrypts()
    {
        var text = File.ReadAllText(System.IO.Path.Combine(SigningTestData.KeyDir("sigstore-rs-example"), "ECDSA_P256_ASN1_ENCRYPTED_PRIVATE_PEM.key"));
        Assert.Contains(CosignKeyFile.CosignLabel, text);
        using var key = PemKeys.LoadPrivateKey(text, () => "password", "example");
        Assert.Equal(256, key.KeySize);
    }

    [Fact]
    public void WrongPassword_FailsWithClearMessage()
    {
        var text = File.ReadAllText(System.IO.Path.Combine(SigningTestData.KeyDir("zarf"), "cosign.key"));
        var e = Assert.Throws<HardenException>(() => PemKeys.LoadPrivateKey(text, () => "not-test", "zarf/cosign.key"));
        Assert.Contains("zarf/cosign.key", e.Message);
        Assert.Contains("wrong password", e.Message);
        Assert.DoesNotContain("not-test", e.Message); // never echo the password
    }

    [Fact]
    public void Ed25519Key_InPkcs8V2_DecryptsButIsRefusedForSigning()
    {
        var text = File.ReadAllText(System.IO.Path.Combine(SigningTestData.KeyDir("sigstore-rs"), "ed25519_encrypted_private.key"));
        var der = CosignKeyFile.Decrypt(text, "123", "ed25519");
        Assert.Equal(1, Org.BouncyCastle.Asn1.Pkcs.PrivateKeyInfo.GetInstance(der).Version.IntValueExact); // PKCS#8 v2 (RFC 5958)
        Assert.Equal("Ed25519", PemKeys.DescribePkcs8(der));
        var e = Assert.Throws<HardenException>(() => PemKeys.LoadPrivateKey(text, () => "123", "ed25519.key"));
        Assert.Contains("Ed25519", e.Message);
        Assert.Contains("ECDSA P-256", e.Message);
    }

    [Fact]
    public void Pkcs8V2EcKey_IsAccepted()
    {
        // Build an RFC 5958 v2 PrivateKeyInfo (version 1 + [1] publicKey) around a P-256 key.
        using var ec = SigningTestData.NewKey();
        var v1 = Org.BouncyCastle.Asn1.Pkcs.PrivateKeyInfo.GetInstance(ec.ExportPkcs8PrivateKey());
        var pub = ec.ExportSubjectPublicKeyInfo()[^65..];
        var v2 = new Org.BouncyCastle.Asn1.Pkcs.PrivateKeyInfo(v1.PrivateKeyAlgorithm, v1.ParsePrivateKey(), null, pub).GetDerEncoded();
        Assert.Equal(1, Org.BouncyCastle.Asn1.Pkcs.PrivateKeyInfo.GetInstance(v2).Version.IntValueExact);
        using var back = PemKeys.ImportPkcs8(v2, "v2");
        Assert.Equal(ec.ExportSubjectPublicKeyInfo(), back.ExportSubjectPublicKeyInfo());
    }

    [Fact]
    public void RsaKey_IsRefused()
    {
        var text = File.ReadAllText(System.IO.Path.Combine(SigningTestData.KeyDir("sigstore-rs"), "rsa_encrypted_private.key"));
        var e = Assert.Throws<HardenException>(() => PemKeys.LoadPrivateKey(text, () => "123", "rsa.key"));
        Assert.Contains("RSA", e.Message);
    }

    [Fact]
    public void OwnKey_RoundTripsWithCosignDefaults()
    {
        var (privatePem, publicPem) = new KeyPairGenerator().Generate("s3cret");
        Assert.StartsWith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n", privatePem);
        var body = Convert.FromBase64String(string.Concat(privatePem.Split('\n').Where(l => l.Length > 0 && !l.StartsWith("-----"))));
        using var doc = JsonDocument.Parse(body);
        var kdf = doc.RootElement.GetProperty("kdf");
        Assert.Equal("scrypt", kdf.GetProperty("name").GetString());
        Assert.Equal(65536, kdf.GetProperty("params").GetProperty("N").GetInt32());
        Assert.Equal(8, kdf.GetProperty("params").GetProperty("r").GetInt32());
        Assert.Equal(1, kdf.GetProperty("params").GetProperty("p").GetInt32());
        Assert.Equal(32, Convert.FromBase64String(kdf.GetProperty("salt").GetString()!).Length);
        Assert.Equal("nacl/secretbox", doc.RootElement.GetProperty("cipher").GetProperty("name").GetString());
        Assert.Equal(24, Convert.FromBase64String(doc.RootElement.GetProperty("cipher").GetProperty("nonce").GetString()!).Length);
        Assert.Equal(["kdf", "cipher", "ciphertext"], doc.RootElement.EnumerateObject().Select(p => p.Name));

        using var key = PemKeys.LoadPrivateKey(privatePem, () => "s3cret", "own");
        using var pub = PemKeys.ReadPublicKey(publicPem, "own.pub");
        Assert.Equal(pub.ExportSubjectPublicKeyInfo(), key.ExportSubjectPublicKeyInfo());
    }

    [Trait("Category", "Integration")]
    [Fact]
    public void OwnKey_DecryptedPkcs8_IsReadByOpenssl()
    {
        var openssl = RequiredService.Tool("openssl", "openssl");
        using var dir = new TempDir();
        var (privatePem, publicPem) = new KeyPairGenerator(new ScryptParameters(1024, 8, 1)).Generate("pw");
        var der = CosignKeyFile.Decrypt(privatePem, "pw", "own");
        File.WriteAllBytes(dir.Combine("key.der"), der);
        var pub = RequiredService.RunOk(openssl, ["pkey", "-inform", "DER", "-in", dir.Combine("key.der"), "-pubout"]);
        Assert.Equal(publicPem.Trim(), pub.Trim());
    }

    [Fact]
    public void PlainPemKeys_Pkcs8AndSec1_Load()
    {
        using var ec = SigningTestData.NewKey();
        using var a = PemKeys.LoadPrivateKey(ec.ExportPkcs8PrivateKeyPem(), () => throw new InvalidOperationException("no password needed"), "pkcs8");
        using var b = PemKeys.LoadPrivateKey(ec.ExportECPrivateKeyPem(), () => throw new InvalidOperationException("no password needed"), "sec1");
        Assert.Equal(ec.ExportSubjectPublicKeyInfo(), a.ExportSubjectPublicKeyInfo());
        Assert.Equal(ec.ExportSubjectPublicKeyInfo(), b.ExportSubjectPublicKeyInfo());

        var shipped = File.ReadAllText(System.IO.Path.Combine(SigningTestData.KeyDir("sigstore-rs"), "ecdsa_private.key"));
        using var c = PemKeys.LoadPrivateKey(shipped, () => "", "ecdsa_private.key");
        Assert.Equal(256, c.KeySize);
    }

    [Fact]
    public void HostileScryptCost_IsRefusedBeforeDerivation()
    {
        var json = "{\"kdf\":{\"name\":\"scrypt\",\"params\":{\"N\":1073741824,\"r\":8,\"p\":1},\"salt\":\"AAAA\"},"
            + "\"cipher\":{\"name\":\"nacl/secretbox\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"},\"ciphertext\":\"AAAA\"}";
        var pem = new string(PemEncoding.Write(CosignKeyFile.SigstoreLabel, Encoding.UTF8.GetBytes(json)));
        var e = Assert.Throws<HardenException>(() => CosignKeyFile.Decrypt(pem, "", "hostile.key"));
        Assert.Contains("too costly", e.Message);
    }

    [Fact]
    public void PasswordSource_PrefersHardenThenCosignVariable_AndFailsClearlyWithoutTerminal()
    {
        var both = new KeyPasswordSource(n => n switch { "HARDEN_KEY_PASSWORD" => "h", "COSIGN_PASSWORD" => "c", _ => null }, null, false);
        Assert.Equal("h", both.GetPassword("k"));
        var cosignOnly = new KeyPasswordSource(n => n == "COSIGN_PASSWORD" ? "c" : null, null, false);
        Assert.Equal("c", cosignOnly.GetPassword("k"));
        var emptyAllowed = new KeyPasswordSource(n => n == "HARDEN_KEY_PASSWORD" ? "" : null, null, false);
        Assert.Equal("", emptyAllowed.GetPassword("k"));
        var none = new KeyPasswordSource(_ => null, null, false);
        var e = Assert.Throws<HardenException>(() => none.GetPassword("my.key"));
        Assert.Contains("HARDEN_KEY_PASSWORD", e.Message);
        Assert.Contains("my.key", e.Message);
    }

    [Fact]
    public async Task SignerFactory_LoadsCosignKeyFile_AndSignaturesVerify()
    {
        var dir = SigningTestData.KeyDir("zarf");
        var factory = new SignerFactory(SigningTestData.Passwords("test"));
        var signer = await factory.FromReferenceAsync(System.IO.Path.Combine(dir, "cosign.key"));
        using var pub = PemKeys.ReadPublicKey(File.ReadAllText(System.IO.Path.Combine(dir, "cosign.pub")), "pub");
        var data = "hello"u8.ToArray();
        var sig = await signer.SignAsync(data);
        Assert.True(pub.VerifyData(data, sig, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
        Assert.Null(signer.KeyId);

        var missing = await Assert.ThrowsAsync<HardenException>(() => factory.FromReferenceAsync("/nonexistent/cosign.key"));
        Assert.Contains("harden keygen", missing.Message);
    }

    [Fact]
    public async Task PublicKeyFromReference_ReadsPubFile_OrDerivesFromPrivateKey()
    {
        var dir = SigningTestData.KeyDir("policy-controller");
        var factory = new SignerFactory(SigningTestData.Passwords(""));
        using var fromPub = await factory.PublicKeyFromReferenceAsync(System.IO.Path.Combine(dir, "cosign.pub"));
        using var fromKey = await factory.PublicKeyFromReferenceAsync(System.IO.Path.Combine(dir, "cosign.key"));
        Assert.Equal(fromPub.ExportSubjectPublicKeyInfo(), fromKey.ExportSubjectPublicKeyInfo());
    }
}
