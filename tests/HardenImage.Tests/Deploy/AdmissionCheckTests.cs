using HardenImage.Common;
using HardenImage.Deploy;

namespace HardenImage.Tests.Deploy;

/// <summary>
/// The deploy stage asks the admission check about every image reference each rendered pod names, and writes
/// nothing when one would be refused (threat: a Deployment the controllers refuse is found only in the cluster).
/// </summary>
public sealed class AdmissionCheckTests
{
    private sealed class RecordingCheck(Func<string, IReadOnlyList<string>> answer) : IAdmissionCheck
    {
        public List<(PinnedImage Image, string Reference)> Asked { get; } = [];

        public Task<IReadOnlyList<string>> FailuresAsync(PinnedImage image, string reference, CancellationToken ct = default)
        {
            Asked.Add((image, reference));
            return Task.FromResult(answer(reference));
        }

        public Task<IReadOnlyList<string>> ModelFailuresAsync(PinnedModel model, CancellationToken ct = default) =>
            Task.FromResult(answer(model.Reference)); // the model's own questions: ModelPinningRenderTests
    }

    [Fact]
    public async Task EveryRenderedPodReference_IsChecked_ThenWritten()
    {
        using var ws = new DeployWorkspace();
        var check = new RecordingCheck(_ => []);
        var result = await new DeployRenderer().RenderCheckAndWriteAsync(ws.Options(), check);
        var pinned = result.Deployments.Select(d => d.Image.Reference).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(pinned, check.Asked.Select(a => a.Reference).Order(StringComparer.Ordinal));
        Assert.All(check.Asked, a => Assert.Equal(a.Image.Reference, a.Reference));
        Assert.All(result.Deployments, d => Assert.Equal([d.Image.Reference], PodImages.Of(d.Objects.Single(o => o.Kind == "Deployment").Document)));
        Assert.True(File.Exists(Path.Combine(ws.Artifacts, "deploy", "inference-cpu", "02-deployment.yaml")));
    }

    [Fact]
    public async Task OneRefusedReference_WritesNothing_AndNamesTheReferenceAndTheReason()
    {
        using var ws = new DeployWorkspace();
        new DeployRenderer().RenderAndWrite(ws.Options());
        var outputDir = Path.Combine(ws.Artifacts, "deploy");
        var before = Directory.EnumerateFiles(outputDir, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);
        // A changed description: a run that wrote anything would change 02-deployment.yaml.
        var cpuYaml = File.ReadAllText(Path.Combine(ws.DeployDir, "inference-cpu.yaml"));
        Assert.Contains("TORCH_THREADS: \"2\"", cpuYaml);
        File.WriteAllText(Path.Combine(ws.DeployDir, "inference-cpu.yaml"), cpuYaml.Replace("TORCH_THREADS: \"2\"", "TORCH_THREADS: \"3\"", StringComparison.Ordinal));
        var cuda = $"{DeployWorkspace.Registry}/inference-cuda@{DeployWorkspace.DigestOf("inference-cuda")}";
        var check = new RecordingCheck(r => r == cuda ? ["required attestation 'sbom' (https://cyclonedx.org/bom) is missing or invalid"] : []);
        var e = await Assert.ThrowsAsync<HardenException>(() => new DeployRenderer().RenderCheckAndWriteAsync(ws.Options(), check));
        Assert.Equal(1, e.ExitCode);
        Assert.Contains($"inference-cuda/02-deployment.yaml: {cuda}: required attestation 'sbom'", e.Message);
        Assert.DoesNotContain("inference-cpu@", e.Message);
        var after = Directory.EnumerateFiles(outputDir, "*", SearchOption.AllDirectories).ToList();
        Assert.Equal(before.Keys.Order(), after.Order());
        Assert.All(after, f => Assert.True(before[f].AsSpan().SequenceEqual(File.ReadAllBytes(f)), $"{f} changed although deploy refused"));
    }
}
