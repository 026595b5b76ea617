using System.Text.Json;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Tests.Build;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Cli;

/// <summary>Issue 11 §7: a built image gets into Docker 20.10 with `docker load`, and into skopeo as an oci-archive.</summary>
[Trait("Category", "Integration")]
public sealed class ExportTests
{
    [Fact]
    public async Task Export_DockerArchive_LoadsIntoDocker_AndOciArchive_ReadsInSkopeo()
    {
        using var ws = new ImageSetWorkspace();
        await ws.LockAsync();
        await ws.BuildAsync();
        var build = BuildManifest.Load(Path.Combine(ws.Artifacts, "build.json"));
        var amd64 = build.Image("base")!.Architectures.Single(a => a.Architecture == "amd64");
        var dll = Path.Combine(AppContext.BaseDirectory, "harden.dll");
        var env = new Dictionary<string, string> { ["NO_COLOR"] = "1" };
        var tag = $"harden-export-test/base:{Guid.NewGuid():N}";

        var tar = ws.Combine("base.tar");
        RequiredService.RunOk("dotnet", [dll, "export", "--image", "base", "--platform", "linux/amd64", "--format", "docker-archive", "--tag", tag, "--artifacts", ws.Artifacts, tar], env: env);
        var docker = RequiredService.Tool("docker", "docker.io");
        var host = RequiredService.DockerHost().ToString();
        var loaded = RequiredService.RunOk(docker, ["-H", host, "load", "-i", tar]);
        try
        {
            Assert.Contains($"Loaded image: {tag}", loaded);
            var id = RequiredService.RunOk(docker, ["-H", host, "image", "inspect", "--format", "{{.Id}}", tag]).Trim();
            Assert.Equal(amd64.Config, id); // Docker's image id is the config digest: the very image that was built
        }
        finally
        {
            RequiredService.Run(docker, ["-H", host, "image", "rm", tag]);
        }

        var oci = ws.Combine("base-oci.tar");
        RequiredService.RunOk("dotnet", [dll, "export", "--image", "base", "--platform", "linux/arm64/v8", "--format", "oci-archive", "--artifacts", ws.Artifacts, oci], env: env);
        var skopeo = RequiredService.Tool("skopeo", "skopeo");
        using var inspect = JsonDocument.Parse(RequiredService.RunOk(skopeo, ["inspect", "oci-archive:" + oci]));
        var arm64 = build.Image("base")!.Architectures.Single(a => a.Architecture == "arm64");
        Assert.Equal(arm64.Manifest, inspect.RootElement.GetProperty("Digest").GetString());
        Assert.Equal("arm64", inspect.RootElement.GetProperty("Architecture").GetString());

        // Bad requests are one line each.
        var (code, _, stderr) = RequiredService.Run("dotnet", [dll, "export", "--image", "base", "--format", "docker", "--artifacts", ws.Artifacts, tar], env: env);
        Assert.Equal(2, code);
        Assert.Contains("--format 'docker': expected docker-archive or oci-archive", stderr);
        (code, _, stderr) = RequiredService.Run("dotnet", [dll, "export", "--image", "bsae", "--artifacts", ws.Artifacts, tar], env: env);
        Assert.Equal(2, code);
        Assert.Contains("no built image 'bsae' (did you mean base?)", stderr);
    }
}
