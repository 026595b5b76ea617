using System.Security.Cryptography;
using System.Text.Json.Nodes;
using HardenImage.Common;
using HardenImage.Deploy;
using HardenImage.Model;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Deploy;

/// <summary>A deploy workspace (its model really packed, DeployWorkspace) whose inference-cpu mounts the model as <paramref name="mount"/>.</summary>
internal sealed class ModelDeployWorkspace : IDisposable
{
    public const string ModelName = DeployWorkspace.ModelName;

    public ModelDeployWorkspace(string mount = "image-volume")
    {
        Ws = new DeployWorkspace();
        var cpu = Path.Combine(Ws.DeployDir, "inference-cpu.yaml");
        var text = File.ReadAllText(cpu);
        var line = text.Split('\n').Single(l => l.StartsWith($"  name: {ModelName}", StringComparison.Ordinal));
        File.WriteAllText(cpu, text.Replace(line + "\n", $"  name: {ModelName}\n  mount: {mount}\n", StringComparison.Ordinal));
    }

    public DeployWorkspace Ws { get; }
    public PackedModel Packed => Ws.Packed;
    public string ModelRepository => Ws.ModelRepository;

    public void Dispose() => Ws.Dispose();
}

/// <summary>
/// Issue 16 item 4: the Deployment pins the model by its manifest digest (image volume, or the init-container fetch)
/// and hands the server the pin and the manifest's bytes; nothing unpinned, tampered or half-described is rendered.
/// </summary>
public sealed class ModelPinningRenderTests(SchemaFixture fixture) : IClassFixture<SchemaFixture>
{
    private static RenderedDeployment Cpu(DeployResult r) => r.Deployments.Single(d => d.Description.Name == "inference-cpu");

    private static JsonObject PodSpec(RenderedDeployment d) =>
        d.Objects.Single(o => o.Kind == "Deployment").Document["spec"]!["template"]!["spec"]!.AsObject();

    [Fact]
    public void ImageVolume_PinsTheModelByManifestDigest_MountedReadOnly_AndSchemaValidForKubernetes136()
    {
        using var m = new ModelDeployWorkspace();
        var cpu = Cpu(new DeployRenderer().Render(m.Ws.Options()));
        var spec = PodSpec(cpu);
        var volume = spec["volumes"]!.AsArray().Single(v => (string)v!["name"]! == "model")!;
        Assert.Equal($"{m.ModelRepository}@{m.Packed.Manifest.Digest}", (string)volume["image"]!["reference"]!);
        Assert.Equal("IfNotPresent", (string)volume["image"]!["pullPolicy"]!);
        var container = spec["containers"]![0]!;
        var mount = container["volumeMounts"]!.AsArray().Single(v => (string)v!["name"]! == "model")!;
        Assert.Equal("/models", (string)mount["mountPath"]!);
        Assert.True((bool)mount["readOnly"]!);
        Assert.Null(spec["initContainers"]);

        // The server gets the pin and the manifest's exact bytes from the Deployment, never from beside the files.
        var env = container["env"]!.AsArray().ToDictionary(e => (string)e!["name"]!, e => (string)e!["value"]!);
        Assert.Equal(m.Packed.Manifest.Digest, env[ModelPinning.DigestEnv]);
        var manifest = Convert.FromBase64String(env[ModelPinning.ManifestEnv]);
        Assert.Equal(m.Packed.Manifest.Digest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(manifest)));
        Assert.Equal(3, JsonNode.Parse(manifest)!["layers"]!.AsArray().Count(l => l!["annotations"]![ModelPinning.FileSha256Annotation] != null)); // neff/graph.neff too
        Assert.Equal($"{m.ModelRepository}@{m.Packed.Manifest.Digest}",
            (string)cpu.Objects.Single(o => o.Kind == "Deployment").Document["spec"]!["template"]!["metadata"]!["annotations"]![ManifestRenderer.ModelAnnotation]!);

        Assert.Empty(fixture.Schemas.Validate(cpu.Objects.Single(o => o.Kind == "Deployment").Document));
        var noReference = cpu.Objects.Single(o => o.Kind == "Deployment").Document.DeepClone();
        noReference["spec"]!["template"]!["spec"]!["volumes"]!.AsArray().Single(v => (string)v!["name"]! == "model")!["image"]!["pullPolicy"] = 3;
        Assert.NotEmpty(fixture.Schemas.Validate(noReference));
    }

    [Fact]
    public void InitContainer_RunsTheVerifiedFetch_FromOurHardenImageByDigest_WithThePodsHardening()
    {
        using var m = new ModelDeployWorkspace(mount: "init-container");
        m.Ws.WriteBuildJson(new[] { "inference-cpu", "inference-cuda", "inference-cuda-debian", "inference-neuron", "harden" }.Select(n => (n, DeployWorkspace.DigestOf(n))));
        var cpu = Cpu(new DeployRenderer().Render(m.Ws.Options()));
        var spec = PodSpec(cpu);
        var init = Assert.Single(spec["initContainers"]!.AsArray())!;
        Assert.Equal($"{DeployWorkspace.Registry}/harden@{DeployWorkspace.DigestOf("harden")}", (string)init["image"]!);
        var args = init["args"]!.AsArray().Select(a => (string)a!).ToList();
        Assert.Equal(["model", "fetch", $"{m.ModelRepository}@{m.Packed.Manifest.Digest}", "--key", "/etc/hardenimage/cosign.pub", "--into", "/model-out"], args);
        var sc = init["securityContext"]!;
        Assert.True((bool)sc["runAsNonRoot"]!);
        Assert.True((bool)sc["readOnlyRootFilesystem"]!);
        Assert.False((bool)sc["allowPrivilegeEscalation"]!);
        Assert.Equal(["ALL"], sc["capabilities"]!["drop"]!.AsArray().Select(c => (string)c!));
        Assert.Equal("RuntimeDefault", (string)sc["seccompProfile"]!["type"]!);
        Assert.False((bool)spec["automountServiceAccountToken"]!);
        // Written by the init container, read-only in the server.
        Assert.NotNull(spec["volumes"]!.AsArray().Single(v => (string)v!["name"]! == "model")!["emptyDir"]);
        Assert.True((bool)spec["containers"]![0]!["volumeMounts"]!.AsArray().Single(v => (string)v!["name"]! == "model")!["readOnly"]!);
        Assert.DoesNotContain(init["volumeMounts"]!.AsArray(), v => (string)v!["name"]! == "model" && v["readOnly"] is JsonValue r && (bool)r);
        var trust = cpu.Objects.Single(o => o.Kind == "ConfigMap");
        Assert.Equal(File.ReadAllText(Path.Combine(m.Ws.Artifacts, "keys", "cosign.pub")).Trim(), ((string)trust.Document["data"]!["cosign.pub"]!).Trim());
        foreach (var o in cpu.Objects) Assert.Empty(fixture.Schemas.Validate(o.Document));

        // The harden image is pinned and verified like the server image: it is in the admission policies' repositories.
        var result = new DeployRenderer().Render(m.Ws.Options());
        var ivp = result.AdmissionPolicies.Single(o => o.FileName == "kyverno-imagevalidatingpolicy.yaml").Document;
        Assert.Contains(ivp["spec"]!["matchImageReferences"]!.AsArray(), g => (string)g!["glob"]! == $"{DeployWorkspace.Registry}/harden@*");
    }

    [Fact]
    public void InitContainer_WithoutTheHardenImage_SaysSoInTheRenderedOutput_AndNoDigestPolicyAdmitsIt()
    {
        using var m = new ModelDeployWorkspace(mount: "init-container");
        var result = new DeployRenderer().Render(m.Ws.Options());
        var cpu = Cpu(result);
        var deployment = cpu.Objects.Single(o => o.Kind == "Deployment").Document;
        var why = (string)deployment["spec"]!["template"]!["metadata"]!["annotations"]![ManifestRenderer.FetcherMissingAnnotation]!;
        Assert.Contains("images/harden.yaml", why);
        Assert.Contains(result.Warnings, w => w.Contains("inference-cpu: model-fetch init container", StringComparison.Ordinal) && w.Contains("not built or pushed", StringComparison.Ordinal));
        var image = (string)PodSpec(cpu)["initContainers"]![0]!["image"]!;
        Assert.DoesNotContain("@sha256:", image);
        Assert.Contains("harden-image-not-pushed", cpu.Objects.Single(o => o.Kind == "Deployment").Yaml);
    }

    [Fact]
    public void ModelMountOption_SwitchesEveryPinnedModelToTheInitContainer()
    {
        using var m = new ModelDeployWorkspace();
        var cpu = Cpu(new DeployRenderer().Render(m.Ws.Options() with { ModelMount = ModelMount.InitContainer }));
        Assert.Single(PodSpec(cpu)["initContainers"]!.AsArray());
        Assert.DoesNotContain(PodSpec(cpu)["volumes"]!.AsArray(), v => v!["image"] != null);
    }

    [Fact]
    public void ModelNotPacked_IsRefused_NamingTheFileTheModelAndTheFix()
    {
        using var m = new ModelDeployWorkspace();
        File.Delete(ModelRecordFile.PathIn(m.Ws.Artifacts));
        var e = Assert.Throws<HardenException>(() => new DeployRenderer().Render(m.Ws.Options()));
        Assert.Contains("inference-cpu.yaml: model 'tiny-lm' has no digest", e.Message);
        Assert.Contains("harden model pack", e.Message);
    }

    [Fact]
    public void TamperedManifestBlobInTheLayout_IsRefused_NothingWritten()
    {
        using var m = new ModelDeployWorkspace();
        var layout = OciLayout.Open(Path.Combine(m.Ws.Artifacts, "models", "oci"));
        var blob = layout.BlobPath(m.Packed.Manifest.Digest);
        var bytes = File.ReadAllBytes(blob);
        bytes[bytes.Length / 2] ^= 0x20;
        File.SetAttributes(blob, FileAttributes.Normal);
        File.WriteAllBytes(blob, bytes);
        var e = Assert.Throws<HardenException>(() => new DeployRenderer().RenderAndWrite(m.Ws.Options()));
        Assert.Contains($"the manifest blob of model 'tiny-lm' hashes to sha256:", e.Message);
        Assert.Contains($"not {m.Packed.Manifest.Digest}", e.Message);
        Assert.False(Directory.Exists(Path.Combine(m.Ws.Artifacts, "deploy")));
    }

    [Fact]
    public void ModelPushedToALayoutOnly_NeedsARegistry_ToNameAPullableRepository()
    {
        using var m = new ModelDeployWorkspace();
        var e = Assert.Throws<HardenException>(() => new PinnedModels(m.Ws.Artifacts, registry: null).Resolve(ModelDeployWorkspace.ModelName, "deploy/inference-cpu.yaml"));
        Assert.Contains("model 'tiny-lm' was pushed to the OCI layout", e.Message);
        Assert.Contains("--registry", e.Message);
    }

    [Fact]
    public void DescriptionErrors_NameTheFieldAndTheFix()
    {
        using var m = new ModelDeployWorkspace();
        var cpu = Path.Combine(m.Ws.DeployDir, "inference-cpu.yaml");
        var text = File.ReadAllText(cpu);
        (string Replace, string With, string Expect)[] cases =
        [
            ("  mount: image-volume\n", "  mount: hostPath\n", "model.mount: 'hostPath' must be image-volume (default), init-container or claim"),
            ("  name: tiny-lm\n", "", "model.name: is required"),
            ("  mount: image-volume\n", "  mount: image-volume\n  pullPolicy: Never\n", "model.pullPolicy: 'Never' must be IfNotPresent or Always"),
            ("  mount: image-volume\n", "  mount: image-volume\n  claimName: models\n", "model.claimName: only with mount: claim"),
            ("  name: tiny-lm\n", "  name: ../etc\n", "model.name: '../etc' is not a model name"),
        ];
        foreach (var (replace, with, expect) in cases)
        {
            Assert.Contains(replace, text);
            File.WriteAllText(cpu, text.Replace(replace, with, StringComparison.Ordinal));
            var e = Assert.Throws<HardenException>(() => DeploymentDescriptions.Load(cpu));
            Assert.Contains(expect, e.Message);
            Assert.Contains("inference-cpu.yaml", e.Message);
        }
    }

    [Fact]
    public async Task AdmissionCheck_AsksAboutThePinnedModel_AndARefusedModelWritesNothing()
    {
        using var m = new ModelDeployWorkspace();
        var check = new ModelRecordingCheck(refuseModel: null);
        await new DeployRenderer().RenderCheckAndWriteAsync(m.Ws.Options(), check);
        // One question per deployment that pins it (the three shipped descriptions pin tiny-lm).
        Assert.Equal(Directory.GetFiles(m.Ws.DeployDir, "*.yaml").Length, check.Models.Count); // every shipped deployment pins its model
        Assert.Equal([$"{m.ModelRepository}@{m.Packed.Manifest.Digest}"], check.Models.Distinct());
        var output = Path.Combine(m.Ws.Artifacts, "deploy");
        var before = Directory.EnumerateFiles(output, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);

        File.WriteAllText(Path.Combine(m.Ws.DeployDir, "inference-cpu.yaml"),
            File.ReadAllText(Path.Combine(m.Ws.DeployDir, "inference-cpu.yaml")).Replace("TORCH_THREADS: \"2\"", "TORCH_THREADS: \"3\"", StringComparison.Ordinal));
        var refusing = new ModelRecordingCheck(refuseModel: "no valid signature by the given key");
        var e = await Assert.ThrowsAsync<HardenException>(() => new DeployRenderer().RenderCheckAndWriteAsync(m.Ws.Options(), refusing));
        Assert.Contains($"inference-cpu/02-deployment.yaml: model {m.ModelRepository}@{m.Packed.Manifest.Digest}: no valid signature by the given key", e.Message);
        Assert.All(before, kv => Assert.Equal(kv.Value, File.ReadAllBytes(kv.Key)));
    }

    private sealed class ModelRecordingCheck(string? refuseModel) : IAdmissionCheck
    {
        public List<string> Models { get; } = [];
        public Task<IReadOnlyList<string>> FailuresAsync(PinnedImage image, string reference, CancellationToken ct = default) =>
            Task.FromResult<IReadOnlyList<string>>([]);
        public Task<IReadOnlyList<string>> ModelFailuresAsync(PinnedModel model, CancellationToken ct = default)
        {
            Models.Add(model.Reference);
            return Task.FromResult<IReadOnlyList<string>>(refuseModel == null ? [] : [refuseModel]);
        }
    }
}
