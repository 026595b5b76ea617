using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Tests.Build;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Cli;

/// <summary>
/// <c>requiresPublish:</c> (images/harden.yaml): an image whose payload is a publish the default pipeline does not run
/// is skipped, saying so and naming the command, by build without --image; lock and lock --check still cover it
/// (they never read payload), and --image builds it.
/// </summary>
[Trait("Category", "Integration")]
public sealed class RequiresPublishTests
{
    private const string AppYaml = "name: app\nfrom: base\nrequiresPublish: dotnet cake --target=AppImage\nfiles:\n  - source: publish/app-{arch}\n    target: /opt/app\n";

    [Fact]
    public async Task RequiresPublish_DefaultBuildSkipsItSayingHow_LockCoversIt_ImageBuildsIt()
    {
        using var ws = new ImageSetWorkspace();
        ws.WriteImage("app", AppYaml);
        // Lock needs no build output: the image is locked without --image.
        var locked = Harden(ws, "lock", "--images", ws.ImagesDir, "--lock", ws.LockPath);
        Assert.True(locked.Code == 0, locked.Output);
        Assert.NotNull(LockFile.Load(ws.LockPath).Image("app"));
        var check = Harden(ws, "lock", "--check", "--images", ws.ImagesDir, "--lock", ws.LockPath);
        Assert.True(check.Code == 0, check.Output);
        Assert.DoesNotContain("not checked app", check.Output);

        // No publish output: the default build skips the image with the command that makes it, and builds the rest.
        var out1 = ws.Combine("out1");
        var build = Harden(ws, "build", "--images", ws.ImagesDir, "--lock", ws.LockPath, "--out", out1);
        Assert.True(build.Code == 0, build.Output);
        Assert.Contains("skipping app:", build.Output);
        Assert.Contains("dotnet cake --target=AppImage", build.Output);
        var manifest = BuildManifest.Load(Path.Combine(out1, "build.json"));
        Assert.Null(manifest.Image("app"));
        Assert.NotNull(manifest.Image("base"));

        // Asked for by name, it is built (and without the output it fails naming the architecture, not silently).
        var missing = Harden(ws, "build", "--images", ws.ImagesDir, "--lock", ws.LockPath, "--out", ws.Combine("out2"), "--image", "app");
        Assert.Equal(2, missing.Code);
        Assert.Contains("has no build output for amd64", missing.StdErr);
        foreach (var arch in new[] { "amd64", "arm64" })
        {
            var dir = Path.Combine(ws.ImagesDir, "publish", "app-" + arch);
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "app.txt"), arch);
        }
        var named = Harden(ws, "build", "--images", ws.ImagesDir, "--lock", ws.LockPath, "--out", ws.Combine("out3"), "--image", "app");
        Assert.True(named.Code == 0, named.Output);
        Assert.NotNull(BuildManifest.Load(Path.Combine(ws.Combine("out3"), "build.json")).Image("app"));
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
