using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Registry;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Registry;

public sealed class ReferenceTests
{
    private const string D = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Theory]
    [InlineData("127.0.0.1:5000/ns/app:1.0", "127.0.0.1:5000", "ns/app", "1.0", null)]
    [InlineData("registry.example/app", "registry.example", "app", null, null)]
    [InlineData("localhost/a/b/c@" + D, "localhost", "a/b/c", null, D)]
    [InlineData("reg.example:443/ns/app:v1@" + D, "reg.example:443", "ns/app", "v1", D)]
    [InlineData("debian:trixie", "docker.io", "library/debian", "trixie", null)]
    [InlineData("team/app", "docker.io", "team/app", null, null)]
    public void ImageReference_Parses(string text, string host, string repo, string? tag, string? digest)
    {
        var r = ImageReference.Parse(text);
        Assert.Equal((host, repo, tag, digest), (r.Host, r.Repository, r.Tag, r.Digest));
    }

    [Theory]
    [InlineData("reg.example/UPPER/app")]
    [InlineData("reg.example/app@sha256:short")]
    [InlineData("reg.example/../etc")]
    [InlineData("reg.example/app:bad/tag")]
    [InlineData("")]
    public void ImageReference_RejectsInvalid(string text) => Assert.Throws<HardenException>(() => ImageReference.Parse(text));

    [Theory]
    [InlineData("oci:artifacts/oci:base", "artifacts/oci", "base")]
    [InlineData("oci:/tmp/layout", "/tmp/layout", null)]
    [InlineData("oci:C:/x/y", "C:/x/y", null)]
    public void OciLayoutReference_Parses(string text, string dir, string? tag)
    {
        var r = OciLayoutReference.Parse(text);
        Assert.Equal((dir, tag), (r.Directory, r.Tag));
    }

    [Fact]
    public async Task PushedFile_MergesImagesAndIsReplacedAtomically()
    {
        using var dir = new TempDir();
        var path = dir.Combine("pushed.json");
        var a = new ImagePushResult("a", "ns/a", D, ["latest"], new Dictionary<string, string> { ["amd64"] = D }, 1, 0, 0, 1, 0, 0);
        PushedFile.Save(path, "reg.example/ns", [a]);
        PushedFile.Save(path, "reg.example/ns", [a with { Image = "b", Repository = "ns/b" }]);
        var file = PushedFile.TryLoad(path);
        Assert.Equal(["a", "b"], file!.Images.Keys);
        Assert.Equal(D, file.Images["a"].Manifests["amd64"]);
        Assert.Empty(Directory.GetFiles(dir.Path, ".tmp-*"));
        await Task.CompletedTask;
    }
}
