using System.Text.Json;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Tests.Build;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Cli;

/// <summary>
/// Issue 11 §8: what CI reads. `--output json` puts exactly one JSON document on stdout (tables go to stderr), and
/// without a terminal nothing is wrapped inside a token and no ANSI escape is printed.
/// </summary>
public sealed class CiOutputTests
{
    [Trait("Category", "Integration")]
    [Fact]
    public async Task OutputJson_LockBuildPushVerifyScan_PrintOneParsableDocumentOnStdout()
    {
        using var ws = new ImageSetWorkspace();
        await ws.LockAsync();
        var registry = "oci:" + ws.Combine("registry");

        using (var check = Json(Harden(ws, "lock", "--check", "--images", ws.ImagesDir, "--output", "json")))
            Assert.True(check.RootElement.GetProperty("upToDate").GetBoolean());

        using (var build = Json(Harden(ws, "build", "--images", ws.ImagesDir, "--out", ws.Artifacts, "--output", "json")))
        {
            var manifest = BuildManifest.Load(Path.Combine(ws.Artifacts, "build.json"));
            var images = build.RootElement.GetProperty("images").EnumerateArray().ToDictionary(i => i.GetProperty("name").GetString()!, i => i.GetProperty("index").GetString());
            Assert.Equal(manifest.Images.ToDictionary(i => i.Name, i => (string?)i.Index), images);
        }

        string reference;
        using (var push = Json(Harden(ws, "push", "--registry", registry, "--layout", Path.Combine(ws.Artifacts, "oci"), "--artifacts", ws.Artifacts, "--output", "json")))
        {
            var baseImage = push.RootElement.GetProperty("images").EnumerateArray().Single(i => i.GetProperty("image").GetString() == "base");
            reference = baseImage.GetProperty("reference").GetString()!;
            Assert.StartsWith(registry + "/base@sha256:", reference);
        }

        Assert.Equal(0, Harden(ws, "sign", "--artifacts", ws.Artifacts, "--images", ws.ImagesDir).Code);
        using (var verify = Json(Harden(ws, "verify", reference, "--key", Path.Combine(ws.Artifacts, "keys", "cosign.pub"), "--output", "json")))
        {
            Assert.True(verify.RootElement.GetProperty("passed").GetBoolean());
            Assert.Equal(1, verify.RootElement.GetProperty("subjects").GetArrayLength()); // exactly the referenced index, as cosign checks it
        }

        using (var scan = Json(Harden(ws, "scan", "--layout", Path.Combine(ws.Artifacts, "oci"), "--lock", ws.LockPath, "--out", ws.Artifacts,
                   "--allow-unscanned", "--cache", ws.Combine("scan-cache"), "--output", "json")))
            Assert.Equal(4, scan.RootElement.GetProperty("results").GetArrayLength()); // base and tool × 2 architectures
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task WithoutATerminal_DigestsAndPathsStayOnOneLine_AndNoAnsi()
    {
        using var ws = new ImageSetWorkspace();
        await ws.LockAsync();
        var deepOut = ws.Combine("a-rather-long-artifacts-directory-name-that-would-wrap-at-eighty-columns", "artifacts");
        var (code, stdout, stderr) = Harden(ws, "build", "--images", ws.ImagesDir, "--out", deepOut);
        Assert.True(code == 0, stdout + stderr);
        var (pcode, pushOut, pushErr) = Harden(ws, "push", "--registry", "oci:" + ws.Combine("registry"), "--layout", Path.Combine(deepOut, "oci"), "--artifacts", deepOut);
        Assert.True(pcode == 0, pushOut + pushErr);
        var manifest = BuildManifest.Load(Path.Combine(deepOut, "build.json"));
        // The push table prints full index digests; each must be whole on one line.
        foreach (var image in manifest.Images)
            Assert.Contains(pushOut.Split('\n'), line => line.Contains(image.Index));
        Assert.Contains(stdout.Split('\n'), line => line.Contains(Path.Combine(deepOut, "build.json")));
        Assert.DoesNotContain("\u001b[", stdout + pushOut);
    }

    [Fact]
    public void ProgressLines_PrintAtMostEveryFiveSeconds_AndAlwaysTheLastLine()
    {
        var clock = new ManualClock();
        var log = new StringWriter();
        var lines = new HardenImage.Cli.ProgressLines("fetch", clock, log);
        for (var i = 1; i <= 100; i++)
        {
            lines.Report(() => $"{i}/100 packages");
            clock.Now += TimeSpan.FromMilliseconds(200); // 100 reports over 20 s
        }
        lines.Report(() => "100/100 packages, 12.0 of 12.0 MB", force: true);
        var printed = log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["fetch: 1/100 packages", "fetch: 26/100 packages", "fetch: 51/100 packages", "fetch: 76/100 packages", "fetch: 100/100 packages, 12.0 of 12.0 MB"], printed);
    }

    private sealed class ManualClock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        public override DateTimeOffset GetUtcNow() => Now;
    }

    private static JsonDocument Json((int Code, string StdOut, string StdErr) run)
    {
        Assert.True(run.Code == 0, run.StdOut + run.StdErr);
        try { return JsonDocument.Parse(run.StdOut); }
        catch (JsonException e) { throw new Xunit.Sdk.XunitException($"stdout is not one JSON document ({e.Message}):\n{run.StdOut}"); }
    }

    private static (int Code, string StdOut, string StdErr) Harden(ImageSetWorkspace ws, params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "harden.dll");
        // No COLUMNS and no NO_COLOR: the defaults CI gets.
        return RequiredService.Run("dotnet", [dll, .. args], workingDirectory: ws.Combine(),
            env: new Dictionary<string, string> { ["HARDEN_CACHE"] = ws.Cache }, timeout: TimeSpan.FromMinutes(5));
    }
}
