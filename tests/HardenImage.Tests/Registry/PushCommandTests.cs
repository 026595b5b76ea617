using System.Text.Json;
using HardenImage.Cli.Commands;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;
using Spectre.Console.Cli;

namespace HardenImage.Tests.Registry;

/// <summary>The CLI verb end to end: build.json + layout in, registry content and pushed.json out.</summary>
public sealed class PushCommandTests
{
    private static int Run(params string[] args)
    {
        var app = new CommandApp();
        app.Configure(c =>
        {
            c.PropagateExceptions();
            c.AddRegistryCommands();
        });
        return app.Run(args);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public void Push_ToRealRegistry_WritesPushedJsonMatchingBuildJson()
    {
        using var dir = new TempDir();
        using var server = RegistryFixture.Start();
        var (layout, baseIndex, appIndex) = RegistryTestKit.TwoImages(dir);
        var artifacts = dir.Combine("artifacts");
        Directory.CreateDirectory(artifacts);
        var arch = (Descriptor i) => layout.ReadJson<ImageIndex>(i.Digest).Manifests
            .Select(m => new { architecture = m.Platform!.Architecture, manifest = m.Digest }).ToList();
        File.WriteAllText(Path.Combine(artifacts, "build.json"), JsonSerializer.Serialize(new
        {
            images = new object[]
            {
                new { name = "base", index = baseIndex.Digest, architectures = arch(baseIndex), extra = "ignored" },
                new { name = "app", index = appIndex.Digest, architectures = arch(appIndex) },
            },
        }));

        var code = Run("push", "--registry", server.Host + "/hardened", "--insecure", "--layout", layout.Root, "--artifacts", artifacts, "--parallel", "2");

        Assert.Equal(0, code);
        using var pushed = JsonDocument.Parse(File.ReadAllText(Path.Combine(artifacts, "pushed.json")));
        var images = pushed.RootElement.GetProperty("images");
        Assert.Equal(baseIndex.Digest, images.GetProperty("base").GetProperty("index").GetString());
        Assert.Equal("hardened/app", images.GetProperty("app").GetProperty("repository").GetString());
        Assert.Equal(arch(appIndex)[1].manifest, images.GetProperty("app").GetProperty("manifests").GetProperty("linux/arm64").GetString());
        var skopeo = RequiredService.Tool("skopeo", "skopeo");
        var raw = RequiredService.RunOk(skopeo, ["inspect", "--raw", "--tls-verify=false", $"docker://{server.Host}/hardened/app:latest"]);
        Assert.Equal(appIndex.Digest, Digest.Of(System.Text.Encoding.UTF8.GetBytes(raw)).ToString());
    }

    [Fact]
    public void Push_StaleLayout_FailsNamingBuildJson()
    {
        using var dir = new TempDir();
        var (layout, _, _) = RegistryTestKit.TwoImages(dir);
        var artifacts = dir.Combine("artifacts");
        Directory.CreateDirectory(artifacts);
        File.WriteAllText(Path.Combine(artifacts, "build.json"),
            "{\"images\":[{\"name\":\"base\",\"index\":\"sha256:" + new string('a', 64) + "\",\"architectures\":[]}]}");

        var e = Assert.Throws<HardenImage.Common.HardenException>(() =>
            Run("push", "--registry", "oci:" + dir.Combine("reg"), "--layout", layout.Root, "--artifacts", artifacts));
        Assert.Contains("build.json", e.Message);
        Assert.Contains("harden build", e.Message);
    }
}
