using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Registry;

namespace HardenImage.Tests.Registry;

/// <summary>Issue 11 §3: one reference grammar for push, sign, verify, deploy, pushed.json and the Cake script.</summary>
public sealed class ImageReferenceGrammarTests
{
    private const string D = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Theory]
    [InlineData("docker://reg.example/ns/app:1", "reg.example", "ns/app", "1", null, null)]
    [InlineData("DOCKER://reg.example/app", "reg.example", "app", null, null, null)]
    [InlineData("https://127.0.0.1:5000/app@" + D, "127.0.0.1:5000", "app", null, D, "https")]
    [InlineData("http://reg.example:8080/a/b:v", "reg.example:8080", "a/b", "v", null, "http")]
    [InlineData("Reg.Example/app", "reg.example", "app", null, null, null)]
    [InlineData("[::1]:5000/ns/app:1", "[::1]:5000", "ns/app", "1", null, null)]
    [InlineData("localhost/app", "localhost", "app", null, null, null)]
    public void Parses(string text, string host, string repository, string? tag, string? digest, string? scheme)
    {
        var r = ImageReference.Parse(text);
        Assert.Equal((host, repository, tag, digest, scheme), (r.Host, r.Repository, r.Tag, r.Digest, r.Scheme));
        Assert.False(r.IsLayout);
    }

    [Fact]
    public void Parses_LayoutReference_AndPrintsItBack()
    {
        var r = ImageReference.Parse("oci:artifacts/registry/base@" + D);
        Assert.Equal(("artifacts/registry", "base", D), (r.LayoutDirectory, r.Repository, r.Digest));
        Assert.Equal("oci:artifacts/registry/base@" + D, r.ToString());
        Assert.Equal(RegistryKind.OciLayout, RegistryTarget.For(r).Kind);
    }

    [Theory]
    [InlineData("ftp://reg.example/app", "unknown transport 'ftp://'")]
    [InlineData("HTTP://bad ref", "contains a space")]
    [InlineData("https://app:1", "is not a registry host")]
    [InlineData("reg.example:0/app", "port '0'")]
    [InlineData("reg.example:70000/app", "port '70000'")]
    [InlineData("[::zz]:5000/app", "not a valid registry host")]
    [InlineData("-reg.example/app", "not a valid registry host")]
    [InlineData("reg..example/app", "not a valid registry host")]
    [InlineData("oci:base", "expected oci:DIR/REPOSITORY")]
    [InlineData("oci:dir/Upper", "repository name")]
    [InlineData("reg.example/app\u0000", "control character")]
    public void Refuses(string text, string reason)
    {
        var e = Assert.Throws<HardenException>(() => ImageReference.Parse(text));
        Assert.Contains(reason, e.Message);
        Assert.Equal(2, e.ExitCode);
    }

    [Theory]
    [InlineData("localhost:5000", true)]
    [InlineData("localhost", true)]
    [InlineData("127.0.0.1:5000", true)]
    [InlineData("127.255.1.2", true)]
    [InlineData("[::1]:5000", true)]
    [InlineData("10.0.0.5:5000", false)]
    [InlineData("192.168.1.1", false)]
    [InlineData("registry.local:5000", false)]
    [InlineData("localhost.evil.example", false)]
    [InlineData("127.0.0.1.nip.io", false)]
    public void Loopback_SpeaksPlainHttpWithoutInsecure_OthersDoNot(string host, bool plain)
    {
        Assert.Equal(plain, ImageReference.UsePlainHttp(host, null, insecure: false, "test"));
        Assert.True(ImageReference.UsePlainHttp(host, null, insecure: true, "test"));
        Assert.False(ImageReference.UsePlainHttp(host, "https", insecure: true, "test"));
    }

    [Fact]
    public void ExplicitHttp_ToANonLoopbackHost_NeedsInsecure()
    {
        var e = Assert.Throws<HardenException>(() => ImageReference.UsePlainHttp("registry.example", "http", insecure: false, "--registry http://registry.example/ns"));
        Assert.Contains("refused without --insecure", e.Message);
        Assert.True(ImageReference.UsePlainHttp("registry.example", "http", insecure: true, "x"));
        Assert.True(ImageReference.UsePlainHttp("127.0.0.1:5000", "http", insecure: false, "x"));
    }

    [Theory]
    [InlineData("reg.example:5000/ns/sub", RegistryKind.Distribution, "reg.example:5000", "ns/sub")]
    [InlineData("docker://reg.example/ns/", RegistryKind.Distribution, "reg.example", "ns")]
    [InlineData("123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml", RegistryKind.Ecr, "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "ml")]
    [InlineData("oci:artifacts/registry", RegistryKind.OciLayout, "artifacts/registry", "")]
    public void RegistryTarget_UsesTheSameGrammar(string text, RegistryKind kind, string location, string ns)
    {
        var t = RegistryTarget.Parse(text);
        Assert.Equal((kind, location, ns), (t.Kind, t.Location, t.Namespace));
    }

    [Fact]
    public void PushedJson_RecordsEachImagesReference_InTheGrammar()
    {
        using var dir = new HardenImage.Tests.Infrastructure.TempDir();
        var path = dir.Combine("pushed.json");
        PushedFile.Save(path, "127.0.0.1:5000/ns", [new ImagePushResult("base", "ns/base", D, ["latest"], new Dictionary<string, string>(), 0, 0, 0, 0, 0, 0)]);
        var reference = PushedFile.TryLoad(path)!.Images["base"].Reference!;
        Assert.Equal("127.0.0.1:5000/ns/base@" + D, reference);
        var parsed = ImageReference.Parse(reference);
        Assert.Equal(("127.0.0.1:5000", "ns/base", D), (parsed.Host, parsed.Repository, parsed.Digest));
    }
}
