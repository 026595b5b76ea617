using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Deploy;
using HardenImage.Model;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;
using HardenImage.Tests.SignFlow;

namespace HardenImage.Tests.Deploy;

/// <summary>
/// The built inference-cpu image (the repository's artifacts/, or $HARDEN_ARTIFACTS) and the rendered Deployment's pod
/// on a real Docker engine: a tiny TorchScript model made by the image's own torch, packed by the real ModelPacker and
/// pinned through models.json. The server must serve the pinned model and say which one, and must refuse — a clear
/// `model_integrity_failed` reason, the container stopped, no probe passing — when what it is given is not what the
/// Deployment pins: a file swapped after the fetch, a Deployment pinned to another digest, another model's files, an
/// unlisted file. Threats: Spoofing (hijacked model), Tampering (swapped weights), Repudiation (which model served).
/// </summary>
// Integration: the class fixture reads the main job's artifacts/build.json (inference-cpu) and runs Docker.
[Trait("Category", "Integration")]
public sealed class ModelServerIntegrityTests(ModelServerIntegrityTests.TinyModel tiny) : IClassFixture<ModelServerIntegrityTests.TinyModel>
{
    /// <summary>The artifacts, the engine and one tiny model made once for the class (torch in the image makes it).</summary>
    public sealed class TinyModel : IAsyncLifetime
    {
        private readonly TempDir _dir = new("hi-model-integrity");
        public string Artifacts { get; private set; } = "";
        public DockerEngine Engine { get; private set; } = null!;
        public string ModelDir => _dir.Combine("model");

        public async Task InitializeAsync()
        {
            var root = RepoRoot.Find();
            Artifacts = Environment.GetEnvironmentVariable("HARDEN_ARTIFACTS") is { Length: > 0 } a ? Path.GetFullPath(a) : Path.Combine(root, "artifacts");
            var built = BuildManifest.TryLoad(Path.Combine(Artifacts, "build.json"));
            if (built?.Image("inference-cpu")?.Architectures.Any(x => x.Architecture == "amd64") != true)
                Assert.Fail($"{Artifacts}/build.json has no amd64 inference-cpu: run 'dotnet cake' (or 'harden build --image inference-cpu') in {root} first.");
            Engine = new DockerEngine(RequiredService.DockerHost());
            var layout = OciLayout.Open(Path.Combine(Artifacts, "oci"));
            var config = new OciLayoutReader(layout).Resolve("inference-cpu", new Platform { Architecture = "amd64" }).Manifest.Config.Digest;
            var tag = $"hardenimage-local/inference-cpu:amd64-{Digest.Parse(config).Hex[..12]}";
            if (await Engine.ImageIdAsync(tag) != config) await Engine.LoadAsync(layout, "inference-cpu", "amd64", tag);
            var scripts = _dir.Combine("scripts");
            Directory.CreateDirectory(scripts);
            Directory.CreateDirectory(ModelDir);
            File.WriteAllText(Path.Combine(scripts, "make_tiny_model.py"), SmokeInference.MakeTinyModelPython);
            File.SetUnixFileMode(ModelDir, (UnixFileMode)Convert.ToInt32("777", 8));
            var run = await Engine.RunAsync(new ContainerRunSpec
            {
                Image = tag,
                Entrypoint = ["/usr/bin/python3", SmokeProbe.MountPoint + "/make_tiny_model.py", "/out"],
                Cmd = [],
                MemoryBytes = 2L << 30,
                ReadOnlyMounts = new Dictionary<string, string> { [scripts] = SmokeProbe.MountPoint },
                WritableMounts = new Dictionary<string, string> { [ModelDir] = "/out" },
                Timeout = TimeSpan.FromMinutes(5),
            });
            Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
            File.SetUnixFileMode(ModelDir, (UnixFileMode)Convert.ToInt32("755", 8));
        }

        public Task DisposeAsync()
        {
            Engine?.Dispose();
            _dir.Dispose();
            return Task.CompletedTask;
        }
    }

    /// <summary>A workspace whose inference-cpu pins <paramref name="modelDir"/> packed by ModelPacker.</summary>
    private static (DeployWorkspace Ws, RenderedDeployment Cpu, PackedModel Packed) Pinned(string modelDir)
    {
        var ws = new DeployWorkspace();
        // The workspace's model replaced by the tiny model's files, packed by the real packer.
        ws.PackModel(DeployWorkspace.ModelName, modelDir);
        var packed = ws.Packed;
        var rendered = new DeployRenderer().Render(ws.Options() with { Name = "inference-cpu" }).Deployments.Single();
        Assert.NotNull(rendered.Model);
        return (ws, rendered, packed);
    }

    private string CopyModel(TempDir into)
    {
        var dir = into.Combine("model");
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.EnumerateFiles(tiny.ModelDir)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    private static void AssertRefused(IReadOnlyList<LocalCheck> checks, string reason)
    {
        var failed = checks.FirstOrDefault(c => !c.Passed);
        Assert.True(failed != null, "the server served although it was refused: " + string.Join("; ", checks.Select(c => $"{c.Name}: {c.Detail}")));
        Assert.Contains($"the server refused the model and exited ({SmokeInference.IntegrityFailedEvent})", failed.Detail);
        Assert.Contains(reason, failed.Detail);
        Assert.DoesNotContain(checks, c => c.Name == "POST /v1/generate");
    }

    private LocalDeployRunner Runner() => new(tiny.Engine, tiny.Artifacts) { ProbeTimeout = TimeSpan.FromMinutes(3) };

    [Fact]
    public async Task PinnedPackedModel_IsServed_AndEveryAnswerNamesThePinnedDigest()
    {
        var (ws, cpu, packed) = Pinned(tiny.ModelDir);
        using var _ = ws;
        using var copy = new TempDir("hi-model-copy");
        var checks = await Runner().RunAsync(cpu, CopyModel(copy));
        Assert.True(checks.All(c => c.Passed), string.Join("\n", checks.Select(c => $"{c.Name}: {c.Passed} {c.Detail}")));
        Assert.Contains(checks, c => c.Name == "served model digest" && c.Detail.Contains(packed.Manifest.Digest));
        Assert.Contains(checks, c => c.Name == "POST /v1/generate" && c.Detail.Contains(SmokeInference.ExpectedAnswer));
    }

    [Fact]
    public async Task FileSwappedAfterFetch_StopsTheServer_NamingTheFile()
    {
        var (ws, cpu, _) = Pinned(tiny.ModelDir);
        using var _ = ws;
        using var copy = new TempDir("hi-model-copy");
        var dir = CopyModel(copy);
        var victim = SmokeInference.Tamper(dir, copy.Combine("tampered"));
        var checks = await Runner().RunAsync(cpu, copy.Combine("tampered"));
        AssertRefused(checks, $"{victim} does not match its digest in the pinned manifest");
    }

    [Fact]
    public async Task DeploymentPinnedToAnotherDigest_StopsTheServer_TheManifestIsNotThePin()
    {
        var (ws, cpu, _) = Pinned(tiny.ModelDir);
        using var _ = ws;
        // A hand-edited Deployment: the pin changed, the manifest it carries did not (or the other way round).
        var other = "sha256:" + new string('e', 64);
        var env = cpu.Deployment.Spec.Template.Spec.Containers[0].Env;
        env.Single(e => e.Name == ModelPinning.DigestEnv).Value = other;
        using var copy = new TempDir("hi-model-copy");
        var checks = await Runner().RunAsync(cpu, CopyModel(copy));
        AssertRefused(checks, $"MODEL_MANIFEST is not the pinned manifest: its digest is {cpu.Model!.Digest}, the pin is {other}");
    }

    [Fact]
    public async Task AnotherModelsFiles_UnderThePin_StopTheServer()
    {
        using var other = new TempDir("hi-model-other");
        var dir = CopyModel(other);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), "{\"vocab\": [\"x\", \"y\"]}");
        var (ws, cpu, _) = Pinned(tiny.ModelDir);
        using var _ = ws;
        var checks = await Runner().RunAsync(cpu, dir);
        AssertRefused(checks, "tokenizer.json does not match its digest in the pinned manifest");
    }

    [Fact]
    public async Task UnlistedFileBesideTheWeights_StopsTheServer()
    {
        using var copy = new TempDir("hi-model-copy");
        var dir = CopyModel(copy);
        var (ws, cpu, _) = Pinned(dir);
        using var _ = ws;
        // The old trust: a MANIFEST.sha256 beside the files. Now it is just an unlisted file.
        File.WriteAllText(Path.Combine(dir, "MANIFEST.sha256"), "0000  model.pt\n");
        var checks = await Runner().RunAsync(cpu, dir);
        AssertRefused(checks, "files not in the pinned manifest: MANIFEST.sha256");
    }

    /// <summary>
    /// The tiny model packed, pushed to the layout registry and signed by the real CLI (the pipeline's Model task), and
    /// inference-cpu rendered to pin it: what `deploy --local` fetches with <see cref="VerifiedModelFetch"/>.
    /// </summary>
    private (SignFlowWorkspace Ws, RenderedDeployment Cpu) PushedAndSigned()
    {
        var ws = new SignFlowWorkspace();
        var dir = ws.Combine("models", "tiny-lm");
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.EnumerateFiles(tiny.ModelDir)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        File.WriteAllText(ws.Combine("models", "tiny-lm.card.yaml"), "license: Apache-2.0\nintendedUse: tests\nlimitations: [toy]\ndatasets: [alphabet]\n");
        ws.HardenOk("model", "pack", "models/tiny-lm", "--name", "tiny-lm", "--version", "1", "--card", "models/tiny-lm.card.yaml");
        ws.HardenOk("model", "push");
        ws.HardenOk("model", "sign");
        // inference-cpu's digest (render only: the runner loads the image from the repository's artifacts).
        File.Copy(Path.Combine(tiny.Artifacts, "build.json"), Path.Combine(ws.Artifacts, "build.json"), overwrite: true);
        var deployDir = ws.Combine("deploy");
        Directory.CreateDirectory(deployDir);
        File.Copy(Path.Combine(RepoRoot.Find(), "deploy", "inference-cpu.yaml"), Path.Combine(deployDir, "inference-cpu.yaml"));
        var cpu = new DeployRenderer().Render(new DeployOptions
        {
            DeployDir = deployDir, ArtifactsDir = ws.Artifacts, Registry = "registry.example.com/hardened", Name = "inference-cpu",
        }).Deployments.Single();
        Assert.Equal($"registry.example.com/hardened/models/tiny-lm@{cpu.Model!.Digest}", cpu.Model.Reference);
        return (ws, cpu);
    }

    private LocalDeployRunner FetchingRunner(SignFlowWorkspace ws, string publicKey, out IDisposable key)
    {
        var ecdsa = HardenImage.Signing.PemKeys.ReadPublicKey(File.ReadAllText(publicKey), publicKey);
        key = ecdsa;
        var registry = new HardenImage.Registry.OciLayoutRegistry(ws.Combine("artifacts", "registry"));
        return new LocalDeployRunner(tiny.Engine, tiny.Artifacts, new VerifiedModelFetch(registry, ecdsa)) { ProbeTimeout = TimeSpan.FromMinutes(3) };
    }

    [Fact]
    public async Task DeployLocal_FetchesThePushedSignedModel_Verified_IntoAReadOnlyMount_AndServesIt()
    {
        var (ws, cpu) = PushedAndSigned();
        using var _ = ws;
        var runner = FetchingRunner(ws, ws.DevPublicKey, out var key);
        using var __ = key;
        var checks = await runner.RunAsync(cpu, modelDir: null);
        Assert.True(checks.All(c => c.Passed), string.Join("\n", checks.Select(c => $"{c.Name}: {c.Passed} {c.Detail}")));
        Assert.Equal("model-fetch", checks[0].Name);
        Assert.Contains(checks, c => c.Name == "served model digest" && c.Detail.Contains(cpu.Model!.Digest));
        Assert.Contains(checks, c => c.Name == "POST /v1/generate" && c.Detail.Contains(SmokeInference.ExpectedAnswer));
    }

    [Fact]
    public async Task DeployLocal_FlippedByteInTheModelBlobInTheRegistry_StopsThePodBeforeItStarts()
    {
        var (ws, cpu) = PushedAndSigned();
        using var _ = ws;
        var layout = OciLayout.Open(ws.Combine("artifacts", "registry", "models", "tiny-lm"));
        var manifest = layout.ReadJson<ImageManifest>(cpu.Model!.Digest);
        var weights = manifest.Layers.OrderByDescending(l => l.Size).First();
        var blob = layout.BlobPath(weights.Digest);
        var bytes = File.ReadAllBytes(blob);
        bytes[bytes.Length / 2] ^= 0x01;
        File.SetAttributes(blob, FileAttributes.Normal);
        File.WriteAllBytes(blob, bytes);
        var runner = FetchingRunner(ws, ws.DevPublicKey, out var key);
        using var __ = key;
        var checks = await runner.RunAsync(cpu, modelDir: null);
        var fetch = Assert.Single(checks);
        Assert.Equal("model-fetch", fetch.Name);
        Assert.False(fetch.Passed);
        Assert.Contains(weights.Digest, fetch.Detail);
        Assert.Contains("the pod was not started", fetch.Detail);
    }

    [Fact]
    public async Task DeployLocal_ModelSignedByAnotherKey_StopsThePodBeforeItStarts()
    {
        var (ws, cpu) = PushedAndSigned();
        using var _ = ws;
        ws.HardenOk(new Dictionary<string, string> { ["HARDEN_KEY_PASSWORD"] = "" }, "keygen", "--output-dir", "other-key");
        var runner = FetchingRunner(ws, ws.Combine("other-key", "cosign.pub"), out var key);
        using var __ = key;
        var checks = await runner.RunAsync(cpu, modelDir: null);
        var fetch = Assert.Single(checks);
        Assert.False(fetch.Passed);
        Assert.Contains("refused, the model is not signed by this key", fetch.Detail);
        Assert.Contains("the pod was not started", fetch.Detail);
    }
}
