using System.Text.Json;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;
using static HardenImage.Tests.Oci.OciTestImages;

namespace HardenImage.Tests.Oci;

/// <summary>Our layouts read by independent tools: skopeo, umoci and a distribution registry.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
[Trait("Category", "Integration")]
public class OciInteropTests : IClassFixture<RegistryFixture>
{
    private readonly RegistryFixture _registry;

    public OciInteropTests(RegistryFixture registry) => _registry = registry;

    [Fact]
    public void Skopeo_InspectsOurLayout()
    {
        var skopeo = RequiredService.Tool("skopeo", "skopeo");
        using var dir = new TempDir();
        var image = WriteImage(OciLayout.OpenOrCreate(dir.Path), "base", "1.0", SampleEntries(), "amd64");
        var json = RequiredService.RunOk(skopeo, ["inspect", $"oci:{dir.Path}:base:1.0"]);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal("amd64", doc.RootElement.GetProperty("Architecture").GetString());
        Assert.Equal(image.Index.Digest, doc.RootElement.GetProperty("Digest").GetString()); // skopeo reports the top-level digest
        Assert.Equal(image.Manifests[0].Manifest.Layers[0].Digest, doc.RootElement.GetProperty("Layers")[0].GetString());
        Assert.StartsWith("2025-05-17T00:00:00", doc.RootElement.GetProperty("Created").GetString());
    }

    [Fact]
    public void Skopeo_SeesBothArchitecturesOfAMultiArchIndex()
    {
        var skopeo = RequiredService.Tool("skopeo", "skopeo");
        using var dir = new TempDir();
        var image = WriteImage(OciLayout.OpenOrCreate(dir.Path), "base", "1.0", SampleEntries(), "amd64", "arm64");
        var raw = RequiredService.RunOk(skopeo, ["inspect", "--raw", $"oci:{dir.Path}:base"]);
        using var doc = JsonDocument.Parse(raw);
        Assert.Equal(MediaTypes.ImageIndex, doc.RootElement.GetProperty("mediaType").GetString());
        var archs = doc.RootElement.GetProperty("manifests").EnumerateArray()
            .Select(m => m.GetProperty("platform").GetProperty("architecture").GetString()).ToList();
        Assert.Equal(["amd64", "arm64"], archs);
        var arm = RequiredService.RunOk(skopeo, ["--override-arch", "arm64", "inspect", $"oci:{dir.Path}:base"]);
        Assert.Equal("arm64", JsonDocument.Parse(arm).RootElement.GetProperty("Architecture").GetString());
        var armConfig = RequiredService.RunOk(skopeo, ["--override-arch", "arm64", "inspect", "--config", "--raw", $"oci:{dir.Path}:base"]);
        Assert.Equal(File.ReadAllBytes(OciLayout.Open(dir.Path).BlobPath(image.Manifests[1].ConfigDescriptor.Digest)), System.Text.Encoding.UTF8.GetBytes(armConfig));
    }

    [Fact]
    public void Umoci_UnpacksFilesModesLinksAndOwners()
    {
        var umoci = RequiredService.Tool("umoci", "umoci");
        using var dir = new TempDir();
        var layoutDir = dir.Combine("layout");
        WriteImage(OciLayout.OpenOrCreate(layoutDir), "base", "1.0", SampleEntries(), "amd64");
        var bundle = dir.Combine("bundle");
        RequiredService.RunOk(umoci, ["unpack", "--image", $"{layoutDir}:base:1.0", bundle]);
        var rootfs = Path.Combine(bundle, "rootfs");

        Assert.Equal("usr/bin", new FileInfo(Path.Combine(rootfs, "bin")).LinkTarget);
        Assert.StartsWith("root:x:0:0", File.ReadAllText(Path.Combine(rootfs, "etc/passwd")));
        Assert.Equal(Octal("4755"), (int)File.GetUnixFileMode(Path.Combine(rootfs, "usr/bin/tool")));
        Assert.Equal(Octal("2755"), (int)File.GetUnixFileMode(Path.Combine(rootfs, "usr/bin/group-tool")));
        Assert.Equal(Octal("1777"), (int)File.GetUnixFileMode(Path.Combine(rootfs, "tmp")));
        Assert.Equal(Octal("700"), (int)File.GetUnixFileMode(Path.Combine(rootfs, "home/nonroot")));
        var stat = RequiredService.RunOk("stat", ["-c", "%u:%g %h", Path.Combine(rootfs, "home/nonroot"), Path.Combine(rootfs, "usr/bin/tool-alias")]);
        var lines = stat.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("65532:65532", lines[0]);
        Assert.Equal("0:0 2", lines[1]); // hard link: two names for one inode
        Assert.Equal("x", File.ReadAllText(Path.Combine(rootfs, "usr/lib/a-c")));
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(bundle, "config.json")));
        Assert.Equal(65532, config.RootElement.GetProperty("process").GetProperty("user").GetProperty("uid").GetInt32());
    }

    [Fact]
    public void Umoci_AppliesWhiteoutsOfAnUpperLayer()
    {
        var umoci = RequiredService.Tool("umoci", "umoci");
        using var dir = new TempDir();
        var layout = OciLayout.OpenOrCreate(dir.Combine("layout"));
        var lower = Writer().WriteLayer(layout, new LayerSpec("lower", SampleEntries()));
        var upper = Writer().WriteLayer(layout, new LayerSpec("upper",
            [LayerEntry.Whiteout("usr/bin/group-tool"), LayerEntry.OpaqueWhiteout("etc"), LayerEntry.File("etc/hostname", [(byte)'h'])]));
        new ImageWriter(layout, Epoch).WriteAndTag(new ImageSpec
        {
            Name = "child",
            Platforms = [new PlatformImageSpec { Platform = new Platform { Architecture = "amd64" }, Layers = [lower, upper] }],
        });
        Assert.Empty(new OciLayoutReader(layout).Verify("child", checkDiffIds: true));
        var bundle = dir.Combine("bundle");
        RequiredService.RunOk(umoci, ["unpack", "--image", $"{layout.Root}:child", bundle]);
        var rootfs = Path.Combine(bundle, "rootfs");
        Assert.False(File.Exists(Path.Combine(rootfs, "usr/bin/group-tool")));
        Assert.True(File.Exists(Path.Combine(rootfs, "usr/bin/tool")));
        Assert.Equal(["hostname"], Directory.GetFileSystemEntries(Path.Combine(rootfs, "etc")).Select(Path.GetFileName));
    }

    [Fact]
    public void Skopeo_CopiesOurLayoutIntoARealRegistry_WithTheSameDigests()
    {
        var skopeo = RequiredService.Tool("skopeo", "skopeo");
        using var dir = new TempDir();
        var image = WriteImage(OciLayout.OpenOrCreate(dir.Path), "base", "1.0", SampleEntries(), "amd64", "arm64");
        var dest = $"docker://{_registry.Host}/hardened/base:1.0";
        RequiredService.RunOk(skopeo, ["copy", "--all", "--preserve-digests", "--dest-tls-verify=false", $"oci:{dir.Path}:base:1.0", dest]);

        var raw = RequiredService.RunOk(skopeo, ["inspect", "--raw", "--tls-verify=false", dest]);
        Assert.Equal(File.ReadAllBytes(OciLayout.Open(dir.Path).BlobPath(image.Index.Digest)), System.Text.Encoding.UTF8.GetBytes(raw));
        var byDigest = RequiredService.RunOk(skopeo, ["inspect", "--raw", "--tls-verify=false",
            $"docker://{_registry.Host}/hardened/base@{image.Manifests[1].Descriptor.Digest}"]);
        Assert.Equal(File.ReadAllBytes(OciLayout.Open(dir.Path).BlobPath(image.Manifests[1].Descriptor.Digest)), System.Text.Encoding.UTF8.GetBytes(byDigest));
    }
}
