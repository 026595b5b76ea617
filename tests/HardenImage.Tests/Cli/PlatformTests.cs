using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Registry;
using HardenImage.Tests.Build;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Cli;

/// <summary>Issue 11 §6: --platform in OCI spelling selects architectures, and build.json and pushed.json spell platforms alike.</summary>
[Trait("Category", "Integration")]
public sealed class PlatformTests
{
    [Fact]
    public async Task Platform_SelectsArchitectures_AndRecordsSpellThemTheSameWay()
    {
        using var ws = new ImageSetWorkspace();
        await ws.LockAsync();
        var full = ws.Combine("full");
        var amd = ws.Combine("amd");
        Assert.Equal(0, Harden(ws, "build", "--images", ws.ImagesDir, "--out", full).Code);
        var build = Harden(ws, "build", "--images", ws.ImagesDir, "--out", amd, "--platform", "linux/amd64");
        Assert.True(build.Code == 0, build.Output);

        var amdBuild = BuildManifest.Load(Path.Combine(amd, "build.json"));
        var fullBuild = BuildManifest.Load(Path.Combine(full, "build.json"));
        Assert.All(amdBuild.Images, i => Assert.Equal(["linux/amd64"], i.Architectures.Select(a => a.Platform)));
        Assert.Equal(["linux/amd64", "linux/arm64/v8"], fullBuild.Image("base")!.Architectures.Select(a => a.Platform));
        // The amd64 manifest is the same bytes either way; only the index differs.
        Assert.Equal(fullBuild.Image("base")!.Architectures[0].Manifest, amdBuild.Image("base")!.Architectures[0].Manifest);

        // pushed.json keys are the same spelling as build.json's platform.
        var push = Harden(ws, "push", "--registry", "oci:" + ws.Combine("registry"), "--layout", Path.Combine(full, "oci"), "--artifacts", full);
        Assert.True(push.Code == 0, push.Output);
        var pushed = PushedFile.TryLoad(Path.Combine(full, "pushed.json"))!;
        Assert.Equal(fullBuild.Image("base")!.Architectures.Select(a => a.Platform), pushed.Images["base"].Manifests.Keys);

        // Pushing a platform that was not built says how to get it.
        var missing = Harden(ws, "push", "--registry", "oci:" + ws.Combine("registry2"), "--layout", Path.Combine(amd, "oci"), "--artifacts", amd, "--platform", "linux/arm64/v8");
        Assert.Equal(2, missing.Code);
        Assert.Contains("has no linux/arm64/v8", missing.StdErr);
        Assert.Contains("harden build --platform linux/arm64/v8", missing.StdErr);

        // sbom --platform writes only the selected architecture.
        var sbom = Harden(ws, "sbom", "--layout", Path.Combine(full, "oci"), "--lock", ws.LockPath, "--out", full, "--platform", "linux/arm64");
        Assert.True(sbom.Code == 0, sbom.Output);
        Assert.Equal(["base.arm64.cdx.json", "tool.arm64.cdx.json"], Directory.GetFiles(Path.Combine(full, "sbom")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    private sealed record Result(int Code, string StdOut, string StdErr)
    {
        public string Output => StdOut + StdErr;
    }

    private static Result Harden(ImageSetWorkspace ws, params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "harden.dll");
        var (code, o, e) = RequiredService.Run("dotnet", [dll, .. args], workingDirectory: ws.Combine(),
            env: new Dictionary<string, string> { ["NO_COLOR"] = "1", ["HARDEN_CACHE"] = ws.Cache }, timeout: TimeSpan.FromMinutes(5));
        return new Result(code, o, e);
    }
}
