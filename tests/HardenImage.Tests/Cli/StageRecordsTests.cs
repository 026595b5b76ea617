using System.Diagnostics;
using System.Text.Json;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Registry;
using HardenImage.Tests.Build;
using HardenImage.Tests.Infrastructure;
using HardenImage.Tests.Registry;

namespace HardenImage.Tests.Cli;

/// <summary>
/// Issue 11 §5: per-image CI jobs share one artifacts directory and one registry, or run on different machines and
/// are merged. Records are updated per image under a file lock, so no job's result is lost, and every later stage
/// runs over the merged records.
/// </summary>
public sealed class StageRecordsTests
{
    [Trait("Category", "Integration")]
    [Fact]
    public async Task TwoProcesses_BuildAndPushTwoImagesIntoOneArtifactsDir_ThenSmokeSignVerifyDeployOverTheRecords()
    {
        using var ws = new ImageSetWorkspace();
        ws.WriteImage("other", """
            name: other
            sources: [fixture]
            architectures: [amd64, arm64]
            packages: [base-files, libfake1]
            exclude: [debconf, debconf-2.0, mawk, awk]
            files:
              - source: payload/whoami
                target: /usr/local/bin/whoami
                mode: "0755"
            entrypoint: [/usr/local/bin/whoami]
            """);
        await ws.LockAsync();
        using var registry = RegistryFixture.Start();
        var common = new[] { "--images", ws.ImagesDir, "--cache", ws.Cache };

        // Two builds at once, into one artifacts directory (and one layout).
        var builds = await Task.WhenAll(
            HardenAsync(ws, ["build", "--image", "base", "--out", ws.Artifacts, .. common]),
            HardenAsync(ws, ["build", "--image", "other", "--out", ws.Artifacts, .. common]));
        foreach (var b in builds) Assert.True(b.Code == 0, b.Output);
        var build = BuildManifest.Load(Path.Combine(ws.Artifacts, "build.json"));
        Assert.Equal(["base", "other"], build.Images.Select(i => i.Name));
        var layout = HardenImage.Oci.OciLayout.Open(Path.Combine(ws.Artifacts, "oci"));
        Assert.Equal(build.Image("base")!.Index, layout.Resolve("base")!.Digest);
        Assert.Equal(build.Image("other")!.Index, layout.Resolve("other")!.Digest);

        // Two pushes at once to one loopback registry (plain HTTP without --insecure), one pushed.json.
        var target = registry.Host + "/hardened";
        var pushes = await Task.WhenAll(
            HardenAsync(ws, ["push", "--image", "base", "--registry", target, "--layout", Path.Combine(ws.Artifacts, "oci"), "--artifacts", ws.Artifacts]),
            HardenAsync(ws, ["push", "--image", "other", "--registry", target, "--layout", Path.Combine(ws.Artifacts, "oci"), "--artifacts", ws.Artifacts]));
        foreach (var p in pushes) Assert.True(p.Code == 0, p.Output);
        var pushed = PushedFile.TryLoad(Path.Combine(ws.Artifacts, "pushed.json"))!;
        Assert.Equal(["base", "other"], pushed.Images.Keys);
        Assert.Equal($"{registry.Host}/hardened/base@{build.Image("base")!.Index}", pushed.Images["base"].Reference);
        Assert.Empty(Directory.GetFiles(ws.Artifacts, ".tmp-*"));

        var smoke = await HardenAsync(ws, ["smoke", "--artifacts", ws.Artifacts, "--images", ws.ImagesDir, "--docker-host", RequiredService.DockerHost().ToString(), "--no-emulation"]);
        Assert.True(smoke.Code == 0, smoke.Output);
        Assert.Contains("other", smoke.Output);

        // The admission check in deploy requires what the policies require (signature, SBOM, vuln) on each pinned digest.
        var sbom = await HardenAsync(ws, ["sbom", "--layout", Path.Combine(ws.Artifacts, "oci"), "--lock", ws.LockPath, "--out", ws.Artifacts]);
        Assert.True(sbom.Code == 0, sbom.Output);
        var scan = await HardenAsync(ws, ["scan", "--layout", Path.Combine(ws.Artifacts, "oci"), "--lock", ws.LockPath, "--out", ws.Artifacts,
            "--allow-unscanned", "--cache", ws.Combine("scan-cache")]);
        Assert.True(scan.Code == 0, scan.Output);
        var sign = await HardenAsync(ws, ["sign", "--artifacts", ws.Artifacts, "--images", ws.ImagesDir]);
        Assert.True(sign.Code == 0, sign.Output);
        foreach (var (name, image) in pushed.Images)
        {
            // verify takes the reference exactly as pushed.json records it.
            var verify = await HardenAsync(ws, ["verify", image.Reference!, "--key", Path.Combine(ws.Artifacts, "keys", "cosign.pub"), "--require", "provenance"]);
            Assert.True(verify.Code == 0, $"{name}: {verify.Output}");
        }

        var deployDir = ws.Combine("deploy");
        Directory.CreateDirectory(deployDir);
        File.WriteAllText(Path.Combine(deployDir, "other.yaml"), """
            name: other
            image: other
            namespace: apps
            port: 8080
            resources:
              requests: { cpu: "100m", memory: 64Mi }
              limits: { cpu: "200m", memory: 128Mi }
            """);
        var deploy = await HardenAsync(ws, ["deploy", "--deploy-dir", deployDir, "--artifacts", ws.Artifacts, "--images", ws.ImagesDir]);
        Assert.True(deploy.Code == 0, deploy.Output);
        var manifest = File.ReadAllText(Path.Combine(ws.Artifacts, "deploy", "other", "02-deployment.yaml"));
        Assert.Contains(pushed.Images["other"].Reference!, manifest);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Merge_CombinesTwoMachinesArtifacts_AndRefusesDisagreeingDigests()
    {
        using var ws = new ImageSetWorkspace();
        await ws.LockAsync();
        var common = new[] { "--images", ws.ImagesDir, "--cache", ws.Cache };
        var a = ws.Combine("machine-a");
        var b = ws.Combine("machine-b");
        var merged = ws.Combine("merged");
        Assert.Equal(0, (await HardenAsync(ws, ["build", "--image", "base", "--out", a, .. common])).Code);
        Assert.Equal(0, (await HardenAsync(ws, ["build", "--image", "tool", "--out", b, .. common])).Code);

        var merge = await HardenAsync(ws, ["merge", "--out", merged, a, b]);
        Assert.True(merge.Code == 0, merge.Output);
        var build = BuildManifest.Load(Path.Combine(merged, "build.json"));
        Assert.Equal(["base", "tool"], build.Images.Select(i => i.Name));
        var layout = HardenImage.Oci.OciLayout.Open(Path.Combine(merged, "oci"));
        foreach (var image in build.Images)
        {
            Assert.Equal(image.Index, layout.Resolve(image.Name)!.Digest);
            foreach (var d in image.Architectures.SelectMany(x => x.Layers.Select(l => l.Digest).Append(x.Manifest).Append(x.Config)))
                Assert.True(layout.VerifyBlob(d), $"{image.Name}: blob {d} missing or corrupt in the merged layout");
        }
        // The merged directory pushes like a single build.
        var push = await HardenAsync(ws, ["push", "--registry", "oci:" + ws.Combine("registry"), "--layout", Path.Combine(merged, "oci"), "--artifacts", merged]);
        Assert.True(push.Code == 0, push.Output);

        // A machine whose build of 'base' disagrees (another epoch) is a conflict, and the merged records stay as they were.
        var c = ws.Combine("machine-c");
        Assert.Equal(0, (await HardenAsync(ws, ["build", "--image", "base", "--out", c, "--source-date-epoch", "86400", .. common])).Code);
        var before = File.ReadAllText(Path.Combine(merged, "build.json"));
        var conflict = await HardenAsync(ws, ["merge", "--out", merged, c]);
        Assert.Equal(2, conflict.Code);
        Assert.Contains("image 'base' is sha256:", conflict.StdErr);
        Assert.Contains(Path.Combine(c, "build.json"), conflict.StdErr);
        Assert.Equal(before, File.ReadAllText(Path.Combine(merged, "build.json")));
    }

    [Fact]
    public void RecordFile_ConcurrentUpdates_FromManyThreads_AllLand()
    {
        using var dir = new TempDir();
        var path = dir.Combine("records.json");
        Parallel.For(0, 16, i => RecordFile.Update(path, text =>
        {
            var list = text == null ? new List<int>() : JsonSerializer.Deserialize<List<int>>(text)!;
            list.Add(i);
            return JsonSerializer.Serialize(list);
        }));
        Assert.Equal(Enumerable.Range(0, 16), JsonSerializer.Deserialize<List<int>>(File.ReadAllText(path))!.Order());
        Assert.Empty(Directory.GetFiles(dir.Path, ".tmp-*"));
    }

    [Fact]
    public void RecordFile_LockHeldTooLong_IsAClearErrorAndTheRecordStays()
    {
        using var dir = new TempDir();
        var path = dir.Combine("build.json");
        File.WriteAllText(path, "{\"images\":[]}");
        var clock = new FixedClock();
        using var held = new FileStream(RecordFile.LockPathFor(path), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        var previous = RecordFile.LockTimeout;
        try
        {
            RecordFile.LockTimeout = TimeSpan.Zero; // the fake clock never moves: the first failed attempt is past the deadline
            var e = Assert.Throws<HardenException>(() => RecordFile.Update(path, _ => "replaced", clock));
            Assert.Contains(".build.json.lock", e.Message);
            Assert.Contains("another harden process", e.Message);
        }
        finally { RecordFile.LockTimeout = previous; }
        Assert.Equal("{\"images\":[]}", File.ReadAllText(path));
    }

    private sealed class FixedClock : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    }

    private sealed record Result(int Code, string StdOut, string StdErr)
    {
        public string Output => StdOut + StdErr;
    }

    private static Task<Result> HardenAsync(ImageSetWorkspace ws, string[] args) => Task.Run(() =>
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "harden.dll");
        var (code, o, e) = RequiredService.Run("dotnet", [dll, .. args], workingDirectory: ws.Combine(),
            env: new Dictionary<string, string> { ["NO_COLOR"] = "1", ["HARDEN_CACHE"] = ws.Cache, ["DOCKER_HOST"] = RequiredService.DockerHost().ToString() },
            timeout: TimeSpan.FromMinutes(8));
        return new Result(code, o, e);
    });
}
