using System.Text.Json.Nodes;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Deploy;
using HardenImage.FanOut;
using HardenImage.Signing;
using HardenImage.Tests.Build;
using HardenImage.Tests.Infrastructure;
using HardenImage.Tests.Registry;
using Xunit.Abstractions;

namespace HardenImage.Tests.ToolImage;

/// <summary>
/// The harden image `dotnet cake --target=HardenImage` built into the repository's artifacts/ (or $HARDEN_ARTIFACTS),
/// the hermetic image set (<see cref="ImageSetWorkspace"/>: a signed apt repository on 127.0.0.1, locked) and one real
/// docker-registry. The image is too large to build inside a test (two self-contained publishes); when it is missing
/// every test here FAILS saying how to build it — never a silent skip.
/// </summary>
public sealed class ToolImageKit : IAsyncLifetime
{
    public const string Image = "harden";

    public string ArtifactsDir { get; } = Environment.GetEnvironmentVariable("HARDEN_ARTIFACTS") is { Length: > 0 } a
        ? Path.GetFullPath(a) : Path.Combine(RepoRoot.Find(), "artifacts");

    /// <summary>Why the tool image cannot be tested, or null.</summary>
    public string? Missing { get; private set; }
    public BuiltImage Tool { get; private set; } = null!;
    public ImageSetWorkspace Workspace { get; private set; } = null!;
    public DockerEngine Engine { get; } = new(RequiredService.DockerHost());

    public async Task InitializeAsync()
    {
        var buildJson = Path.Combine(ArtifactsDir, "build.json");
        var tool = BuildManifest.TryLoad(buildJson)?.Image(Image);
        if (tool?.Architectures.Any(x => x.Architecture == SmokeRunner.HostArchitecture()) != true)
        {
            Missing = $"{buildJson} has no {Image} image for {SmokeRunner.HostArchitecture()}{(RequiredService.InCi ? " (CI=true)" : "")}. "
                      + "Build it first: 'dotnet cake --target=HardenImage' in the repository root (publishes harden for both "
                      + "architectures into images/publish/ and writes artifacts/build.json and artifacts/oci).";
            return;
        }
        Tool = tool;
        Workspace = new ImageSetWorkspace();
        await Workspace.LockAsync();
        // The pod's user (65532) reads the set through a read-only mount: make it readable as a checkout is.
        foreach (var entry in Directory.EnumerateFileSystemEntries(Workspace.ImagesDir, "*", SearchOption.AllDirectories).Prepend(Workspace.ImagesDir))
        {
            var executable = Directory.Exists(entry) || (File.GetUnixFileMode(entry) & UnixFileMode.UserExecute) != 0;
            File.SetUnixFileMode(entry, (UnixFileMode)Convert.ToInt32(executable ? "755" : "644", 8));
        }
    }

    public void RequireImage()
    {
        if (Missing != null) Assert.Fail(Missing);
    }

    public Task DisposeAsync()
    {
        Workspace?.Dispose();
        Engine.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>
/// Issue 13 item 5, "harden builds harden": the tool in its own image does real work as the pods run it — as 65532,
/// read-only root, no capabilities, a writable work volume only — and gives bit for bit what harden on the host gives.
/// The image is not in the default set, so the Test target excludes this category and `dotnet cake
/// --target=HardenImage` runs it right after building the image (docs/testing.md).
/// </summary>
[Trait("Category", "ToolImage")]
public sealed class ToolImageTests(ToolImageKit kit, ITestOutputHelper output) : IClassFixture<ToolImageKit>
{
    [Fact]
    public async Task ToolImage_BuildsBaseInsideItself_AsNonRootOnReadOnlyRoot_SameManifestsAsTheHost()
    {
        kit.RequireImage();
        var ws = kit.Workspace;
        var tag = await LoadAsync();
        var work = ws.Combine("container-work");
        Directory.CreateDirectory(work);
        File.SetUnixFileMode(work, (UnixFileMode)Convert.ToInt32("777", 8));

        // The image's own entrypoint and environment (HOME and HARDEN_CACHE on /work); the set read-only; the signed
        // repository on 127.0.0.1 (host network: the engine here has no bridge).
        var run = await kit.Engine.RunAsync(new ContainerRunSpec
        {
            Image = tag,
            Cmd = ["build", "--images", "/imageset", "--image", "base", "--out", "/work/artifacts"],
            Network = "host",
            MemoryBytes = 2L << 30,
            ReadOnlyMounts = new Dictionary<string, string> { [ws.ImagesDir] = "/imageset" },
            WritableMounts = new Dictionary<string, string> { [work] = "/work" },
            Timeout = TimeSpan.FromMinutes(10),
        });
        output.WriteLine(run.StdOut + run.StdErr);
        Assert.True(run.ExitCode == 0 && !run.TimedOut, $"harden build in the harden image exited {run.ExitCode}:\n{run.StdOut}{run.StdErr}");

        // It ran as 65532 and wrote only to the work volume (the root is read-only: anything else would have failed).
        var buildJson = Path.Combine(work, "artifacts", "build.json");
        Assert.Equal(65532, GetOwner(buildJson));
        Assert.True(File.Exists(Path.Combine(work, ".config", "hardenimage", "cache.key")), "the cache key belongs on the work volume (HOME=/work)");

        // Bit for bit what harden on the host builds from the same lock.
        var host = await ws.BuildAsync(ws.Combine("host-artifacts"), images: "base");
        var inside = BuildManifest.Load(buildJson).Image("base")!;
        var outside = host.Manifest.Image("base")!;
        Assert.Equal(outside.Architectures.Select(x => (x.Architecture, x.Manifest)), inside.Architectures.Select(x => (x.Architecture, x.Manifest)));
        Assert.Equal(outside.Index, inside.Index);
    }

    [Fact]
    public async Task ToolImage_RunsTheRenderedIndexedJobPod_WithThePodsRestrictions_EveryEntryBitForBitTheOneMachineBuild()
    {
        kit.RequireImage();
        var ws = kit.Workspace;
        using var registry = RegistryFixture.Start();
        var key = new KeyPairGenerator().WriteTo(ws.Combine("keys", "release-" + Guid.NewGuid().ToString("N")[..8]), "tool-image-test", overwrite: false);
        var ns = "toolimage";
        var planPath = ws.Combine("plan-" + Guid.NewGuid().ToString("N")[..8] + ".json");
        var plan = Harden(ws, "plan", "--images", ws.ImagesDir, "--registry", $"{registry.Host}/{ns}", "--key", key.PublicKeyPath, "--out", planPath);
        Assert.True(plan.Code == 0, plan.Output);

        var objects = KubernetesJobRenderer.Render(new KubernetesJobOptions
        {
            Plan = BuildPlan.Load(planPath),
            PlanJson = File.ReadAllText(planPath),
            ImagesDir = ws.ImagesDir,
            PublicKeyPem = key.PublicKeyPem,
            Registry = $"{registry.Host}/{ns}",
            ToolImage = $"{registry.Host}/{ns}/harden@{kit.Tool.Index}",
            RecordsClaim = "harden-records",
        });
        var runner = new LocalJobRunner(kit.Engine, kit.ArtifactsDir);
        var job = LocalJobRunner.IndexedJob(objects);
        var tag = await runner.LoadToolImageAsync(job);
        var records = ws.Combine("records-" + ns);
        var oneMachine = (await ws.BuildAsync(ws.Combine("one-machine"))).Manifest;

        for (var i = 0; i < job.Spec.Completions; i++)
        {
            var run = await runner.RunAsync(job, objects, i, tag, records, ws.Combine("scratch-" + ns, i.ToString()));
            output.WriteLine($"--- completion {i}\n{run.Result.StdOut}{run.Result.StdErr}");
            Assert.True(run.Succeeded, $"completion {i} exited {run.Result.ExitCode}:\n{run.Result.StdOut}{run.Result.StdErr}");
            // The pod's restrictions, as translated for the engine.
            Assert.Equal("65532:65532", run.Spec.User);
            Assert.True(run.Spec.ReadOnlyRootFilesystem && run.Spec.DropAllCapabilities && run.Spec.NoNewPrivileges);
            Assert.Equal(["/tmp", "/work"], run.Spec.Tmpfs.Keys.Order(StringComparer.Ordinal));
            Assert.Equal("/records/" + i, run.Spec.Cmd![run.Spec.Cmd.IndexOf("--out") + 1]);

            var record = Assert.Single(PlatformRecord.LoadAll(Path.Combine(records, i.ToString()))).Record;
            var entry = BuildPlan.Load(planPath).Jobs[i];
            Assert.Equal((entry.Image, entry.Platform), (record.Image, record.Platform));
            var expected = oneMachine.Image(record.Image)!.Architectures.Single(x => x.Platform == record.Platform);
            Assert.Equal(expected.Manifest, record.Manifest.Manifest);
        }
    }

    [Fact]
    public void ToolImage_CiKubernetesLocal_RunsOneEntrysPod_FromTheCli_AndRefusesAnIndexThePlanHasNot()
    {
        kit.RequireImage();
        var ws = kit.Workspace;
        using var registry = RegistryFixture.Start();
        var key = new KeyPairGenerator().WriteTo(ws.Combine("keys", "cli-" + Guid.NewGuid().ToString("N")[..8]), "tool-image-test", overwrite: false);
        var planPath = ws.Combine("plan-cli-" + Guid.NewGuid().ToString("N")[..8] + ".json");
        var target = $"{registry.Host}/cli";
        Assert.Equal(0, Harden(ws, "plan", "--images", ws.ImagesDir, "--registry", target, "--key", key.PublicKeyPath, "--out", planPath).Code);
        var records = ws.Combine("records-cli");
        var yaml = ws.Combine("fanout-cli.yaml");
        string[] args = ["ci", "kubernetes", "--plan", planPath, "--images", ws.ImagesDir, "--registry", target, "--public-key", key.PublicKeyPath,
            "--tool-image", $"{registry.Host}/cli/harden@{kit.Tool.Index}", "--records-claim", "harden-records", "--out", yaml,
            "--local", "--artifacts", kit.ArtifactsDir, "--records", records];

        var run = Harden(ws, [.. args, "--index", "1"]);
        output.WriteLine(run.Output);
        Assert.True(run.Code == 0, run.Output);
        Assert.Contains("passed", run.StdErr);
        Assert.True(File.Exists(yaml));
        var record = Assert.Single(PlatformRecord.LoadAll(Path.Combine(records, "1"))).Record;
        Assert.Equal(BuildPlan.Load(planPath).Jobs[1].Image, record.Image);
        Assert.False(Directory.Exists(Path.Combine(records, "0")), "only the asked index runs");

        var bad = Harden(ws, [.. args, "--index", "99"]);
        Assert.Equal(2, bad.Code);
        Assert.Contains("--index 99: the plan has entries 0 to 3", bad.StdErr);
    }

    [Fact]
    public async Task ToolImage_LocalJobRun_RefusesAToolImageTheArtifactsDoNotHave()
    {
        kit.RequireImage();
        var objects = KubernetesJobRenderer.Render(new KubernetesJobOptions
        {
            Plan = new BuildPlan
            {
                Matrix = new PlanMatrix([new PlanEntry { Index = 0, Image = "base", Platform = "linux/amd64", Architecture = "amd64", Runner = "ubuntu-latest", Inputs = new string('a', 64), Changed = true, Cache = "not-consulted" }]),
                FanIn = new PlanFanIn { Images = new() { ["base"] = ["linux/amd64"] }, Needs = [0] },
            },
            PlanJson = "{}",
            ImagesDir = kit.Workspace.ImagesDir,
            PublicKeyPem = "",
            Registry = "127.0.0.1:5000/toolimage",
            ToolImage = "127.0.0.1:5000/toolimage/harden@sha256:" + new string('0', 64),
            RecordsClaim = "harden-records",
        });
        var e = await Assert.ThrowsAsync<HardenImage.Common.HardenException>(() => new LocalJobRunner(kit.Engine, kit.ArtifactsDir).LoadToolImageAsync(LocalJobRunner.IndexedJob(objects)));
        Assert.Contains("has no image with index sha256:000000", e.Message);
        Assert.Contains("dotnet cake --target=HardenImage", e.Message);
    }

    private async Task<string> LoadAsync()
    {
        var arch = SmokeRunner.HostArchitecture();
        var layout = HardenImage.Oci.OciLayout.Open(Path.Combine(kit.ArtifactsDir, "oci"));
        var config = new HardenImage.Oci.OciLayoutReader(layout).Resolve(ToolImageKit.Image, new HardenImage.Oci.Platform { Architecture = arch }).Manifest.Config.Digest;
        var tag = $"hardenimage-test/harden:{arch}-{HardenImage.Oci.Digest.Parse(config).Hex[..12]}";
        if (await kit.Engine.ImageIdAsync(tag) != config) await kit.Engine.LoadAsync(layout, ToolImageKit.Image, arch, tag);
        return tag;
    }

    private static int GetOwner(string path)
    {
        var (code, o, _) = RequiredService.Run("stat", ["-c", "%u", path]);
        Assert.Equal(0, code);
        return int.Parse(o.Trim(), System.Globalization.CultureInfo.InvariantCulture);
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
