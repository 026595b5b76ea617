using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Amazon.Runtime;
using HardenImage.Common;
using HardenImage.Signing;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Signing;

/// <summary>
/// A stand-in for AWS KMS on 127.0.0.1 speaking the JSON 1.1 protocol (X-Amz-Target TrentService.Sign /
/// TrentService.GetPublicKey), signing with a local P-256 key.
/// </summary>
internal sealed class FakeKmsServer : IDisposable
{
    public const string KeyArn = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    private readonly HttpListener _listener = new();
    private readonly Task _loop;

    public FakeKmsServer(ECDsa key)
    {
        Key = key;
        Port = LoopbackPort.Free();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(Serve);
    }

    public ECDsa Key { get; }
    public int Port { get; }
    public string Url => $"http://127.0.0.1:{Port}";
    public List<string> Targets { get; } = [];
    public List<string> Problems { get; } = [];

    private async Task Serve()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException) { return; }
            try { Handle(ctx); }
            catch (Exception e) { lock (Problems) Problems.Add(e.ToString()); ctx.Response.StatusCode = 500; ctx.Response.Close(); }
        }
    }

    private void Handle(HttpListenerContext ctx)
    {
        var target = ctx.Request.Headers["X-Amz-Target"] ?? "";
        lock (Targets) Targets.Add(target);
        var auth = ctx.Request.Headers["Authorization"] ?? "";
        // SigV4-shaped: algorithm, credential scope for the kms service, signed headers, 64-hex signature.
        if (!Regex.IsMatch(auth, @"^AWS4-HMAC-SHA256 Credential=AKIDTEST/\d{8}/us-west-2/kms/aws4_request, ?SignedHeaders=[a-z0-9;-]+, ?Signature=[0-9a-f]{64}$"))
        {
            lock (Problems) Problems.Add("bad Authorization: " + auth);
            Reply(ctx, 400, new JsonObject { ["__type"] = "IncompleteSignatureException", ["message"] = "bad signature" });
            return;
        }
        using var reader = new StreamReader(ctx.Request.InputStream, Encoding.UTF8);
        var body = JsonNode.Parse(reader.ReadToEnd())!;
        var keyId = (string?)body["KeyId"];
        if (keyId is not (KeyArn or "alias/harden"))
        {
            Reply(ctx, 400, new JsonObject { ["__type"] = "NotFoundException", ["message"] = $"Key '{keyId}' does not exist" });
            return;
        }
        switch (target)
        {
            case "TrentService.GetPublicKey":
                Reply(ctx, 200, new JsonObject
                {
                    ["KeyId"] = KeyArn,
                    ["PublicKey"] = Convert.ToBase64String(Key.ExportSubjectPublicKeyInfo()),
                    ["KeySpec"] = "ECC_NIST_P256",
                    ["KeyUsage"] = "SIGN_VERIFY",
                    ["SigningAlgorithms"] = new JsonArray("ECDSA_SHA_256"),
                });
                break;
            case "TrentService.Sign":
                var digest = Convert.FromBase64String((string)body["Message"]!);
                if ((string?)body["MessageType"] != "DIGEST" || (string?)body["SigningAlgorithm"] != "ECDSA_SHA_256" || digest.Length != 32)
                {
                    Reply(ctx, 400, new JsonObject { ["__type"] = "ValidationException", ["message"] = "expected a SHA-256 DIGEST and ECDSA_SHA_256" });
                    return;
                }
                Reply(ctx, 200, new JsonObject
                {
                    ["KeyId"] = KeyArn,
                    ["Signature"] = Convert.ToBase64String(Key.SignHash(digest, DSASignatureFormat.Rfc3279DerSequence)),
                    ["SigningAlgorithm"] = "ECDSA_SHA_256",
                });
                break;
            default:
                Reply(ctx, 400, new JsonObject { ["__type"] = "UnknownOperationException", ["message"] = target });
                break;
        }
    }

    private static void Reply(HttpListenerContext ctx, int status, JsonNode body)
    {
        var bytes = Encoding.UTF8.GetBytes(body.ToJsonString());
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/x-amz-json-1.1";
        ctx.Response.ContentLength64 = bytes.Length;
        ctx.Response.OutputStream.Write(bytes);
        ctx.Response.Close();
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
    }
}

public class AwsKmsSignerTests
{
    private static AwsKmsOptions Options(FakeKmsServer server) => new()
    {
        ServiceUrl = server.Url,
        Region = "us-west-2",
        Credentials = new BasicAWSCredentials("AKIDTEST", "secret-for-tests-only"),
    };

    [Theory]
    [InlineData("awskms:///1234abcd-12ab-34cd-56ef-1234567890ab", null, "1234abcd-12ab-34cd-56ef-1234567890ab", null)]
    [InlineData("awskms:///alias/harden", null, "alias/harden", null)]
    [InlineData("awskms:///" + FakeKmsServer.KeyArn, null, FakeKmsServer.KeyArn, "us-west-2")]
    [InlineData("awskms:///arn:aws:kms:eu-west-1:111122223333:alias/x", null, "arn:aws:kms:eu-west-1:111122223333:alias/x", "eu-west-1")]
    [InlineData("awskms://localhost:4566/alias/harden", "localhost:4566", "alias/harden", null)]
    public void Reference_ParsesCosignForms(string text, string? endpoint, string keyId, string? region)
    {
        var r = AwsKmsKeyReference.Parse(text);
        Assert.Equal(endpoint, r.Endpoint);
        Assert.Equal(keyId, r.KeyId);
        Assert.Equal(region, r.Region);
        Assert.Equal(text, r.ToString());
    }

    [Theory]
    [InlineData("awskms://")]
    [InlineData("awskms:///not-a-key")]
    [InlineData("awskms:///alias/")]
    [InlineData("awskms:///arn:aws:kms:us-east-1:1234:key/x")]
    public void Reference_RejectsMalformed(string text) =>
        Assert.Contains("awskms:///", Assert.Throws<HardenException>(() => AwsKmsKeyReference.Parse(text)).Message);

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Sign_ThroughKmsJsonProtocol_ProducesDerSignatureThatVerifies()
    {
        using var key = SigningTestData.NewKey();
        using var server = new FakeKmsServer(key);
        using var signer = await AwsKmsSigner.CreateAsync(AwsKmsKeyReference.Parse("awskms:///" + FakeKmsServer.KeyArn), Options(server));
        Assert.Equal(key.ExportSubjectPublicKeyInfo(), signer.PublicKeySpki);
        Assert.Equal(FakeKmsServer.KeyArn, signer.KeyId);

        var payload = SimpleSigning.CreatePayload("registry.example/app", HardenImage.Oci.Digest.Of("image"u8));
        var sig = await signer.SignAsync(payload);
        Assert.True(key.VerifyData(payload, sig, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
        Assert.Equal(["TrentService.GetPublicKey", "TrentService.Sign"], server.Targets);
        Assert.Empty(server.Problems);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task UnknownKey_FailsWithKmsErrorNamed()
    {
        using var key = SigningTestData.NewKey();
        using var server = new FakeKmsServer(key);
        var e = await Assert.ThrowsAsync<HardenException>(() =>
            AwsKmsSigner.CreateAsync(AwsKmsKeyReference.Parse("awskms:///alias/missing"), Options(server)));
        Assert.Contains("NotFoundException", e.Message);
        Assert.Contains("alias/missing", e.Message);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task UnreachableKms_FailsClearly()
    {
        var port = LoopbackPort.Free();
        var options = new AwsKmsOptions { ServiceUrl = $"http://127.0.0.1:{port}", Region = "us-west-2", Credentials = new BasicAWSCredentials("AKIDTEST", "x") };
        var e = await Assert.ThrowsAsync<HardenException>(() => AwsKmsSigner.CreateAsync(AwsKmsKeyReference.Parse("awskms:///alias/harden"), options));
        Assert.Contains("KMS", e.Message);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task SignerFactory_ResolvesAwsKmsReference()
    {
        using var key = SigningTestData.NewKey();
        using var server = new FakeKmsServer(key);
        var factory = new SignerFactory(SigningTestData.Passwords(null), Options(server));
        var signer = await factory.FromReferenceAsync("awskms:///alias/harden");
        Assert.IsType<AwsKmsSigner>(signer);
        var envelope = await Dsse.SignAsync(signer, Dsse.InTotoPayloadType, "{}"u8.ToArray());
        Assert.True(Dsse.Verify(envelope, key));
        Assert.Equal("", envelope.Signatures[0].KeyId);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task PublicKeyFromReference_ReadsKmsPublicKey()
    {
        using var key = SigningTestData.NewKey();
        using var server = new FakeKmsServer(key);
        var factory = new SignerFactory(SigningTestData.Passwords(null), Options(server));
        using var pub = await factory.PublicKeyFromReferenceAsync("awskms:///" + FakeKmsServer.KeyArn);
        Assert.Equal(key.ExportSubjectPublicKeyInfo(), pub.ExportSubjectPublicKeyInfo());
        Assert.DoesNotContain("TrentService.Sign", server.Targets);
    }
}
