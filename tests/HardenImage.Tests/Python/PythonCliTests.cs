using System.Diagnostics;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Lock;
using HardenImage.Python;

namespace HardenImage.Tests.Python;

/// <summary>
/// The CLI hooks, through the real harden process: `lock --check` fails on a requirements change naming it,
/// `lock` rewrites the pylock.toml after the apt lock (credentials from the environment the process is given),
/// `build` fetches the wheels itself, and the token appears in no output.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PythonCliTests(WheelImageWorkspace ws) : IClassFixture<WheelImageWorkspace>
{
    private (int Code, string Output) Harden(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "harden.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["HOME"] = ws.W.Combine("home");
        psi.Environment["HARDEN_CACHE_KEY"] = new string('k', 40);
        psi.Environment["HI_PRIVATE_USER"] = PythonImageSet.PrivateUser;
        psi.Environment["HI_PRIVATE_TOKEN"] = PythonImageSet.PrivateToken;
        psi.Environment["NO_COLOR"] = "1";
        psi.Environment["COLUMNS"] = "250";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(3)), "harden did not finish");
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    [Fact]
    public void LockCheck_Lock_Build_ThroughTheCli()
    {
        var cache = ws.W.Combine("cli-cache");
        var req = Path.Combine(ws.W.ImagesDir, "python", "requirements.txt");
        var pylock = Path.Combine(ws.W.ImagesDir, "python", "pylock.app.toml");
        var original = File.ReadAllText(req);
        try
        {
            File.AppendAllText(req, "# reviewed 2026-12-03\n");
            var (code, output) = Harden("lock", "--check", "--images", ws.W.ImagesDir, "--cache", cache);
            Assert.Equal(1, code);
            Assert.Contains("python/requirements.txt changed since python/pylock.app.toml was written", output);

            (code, output) = Harden("lock", "--images", ws.W.ImagesDir, "--cache", cache);
            Assert.True(code == 0, output);
            Assert.Contains("pylock.app.toml (app)", output);
            Assert.Empty(PythonLocker.Check(ImageSet.Load(ws.W.ImagesDir)));

            (code, output) = Harden("lock", "--check", "--images", ws.W.ImagesDir, "--cache", cache);
            Assert.True(code == 0, output);

            (code, output) = Harden("build", "--images", ws.W.ImagesDir, "--cache", cache, "--out", ws.W.Combine("cli-artifacts"), "--image", "app");
            Assert.True(code == 0, output);
            Assert.DoesNotContain(PythonImageSet.PrivateToken, output);
            Assert.Equal(ws.Build.Manifest.Image("app")!.Architectures.Select(a => a.Layers[^1].Digest),
                BuildManifest.Load(ws.W.Combine("cli-artifacts", "build.json")).Image("app")!.Architectures.Select(a => a.Layers[^1].Digest));
        }
        finally
        {
            File.WriteAllText(req, original);
        }
    }
}
