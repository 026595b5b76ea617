using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Deploy;
using HardenImage.Model;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Model;

/// <summary>
/// The pipeline's test model end to end: `harden smoke` on the real inference-cpu image (from artifacts/, as
/// InferenceCpuSmokeTests) keeps a copy of the TorchScript model it made, and that copy packs as a ModelPack artifact
/// whose signed fetch gives back the same files — what the Model task of build/harden.cake does. Fails (never skips)
/// when the image is not built, saying how to build it.
/// </summary>
[Trait("Category", "Integration")]
public class SmokeModelPackTests
{
    [Fact]
    public async Task Smoke_KeepsTheTinyModelItMade_AndItPacksPushesSignsAndFetches()
    {
        var artifacts = Environment.GetEnvironmentVariable("HARDEN_ARTIFACTS") is { Length: > 0 } a ? Path.GetFullPath(a) : Path.Combine(RepoRoot.Find(), "artifacts");
        var buildJson = Path.Combine(artifacts, "build.json");
        if (BuildManifest.TryLoad(buildJson)?.Image("inference-cpu")?.Architectures.Any(x => x.Architecture == SmokeRunner.HostArchitecture()) != true)
            Assert.Fail($"{buildJson} has no inference-cpu image for {SmokeRunner.HostArchitecture()}. Build it first ('dotnet cake', or copy a main job's artifacts/ into the repository root).");
        using var kit = new ModelTestKit();
        var kept = kit.Combine("smoke-model");
        using (var engine = new DockerEngine(RequiredService.DockerHost()))
        {
            var report = await new SmokeRunner(engine, new SmokeOptions
            {
                ArtifactsDir = artifacts,
                ImagesDir = Path.Combine(RepoRoot.Find(), "images"),
                Images = ["inference-cpu"],
                RunnableArchitectures = [SmokeRunner.HostArchitecture()],
                Architectures = [SmokeRunner.HostArchitecture()], // the kept model is made natively; arm64 is EmulatedSmokeTests' job
                KeepMadeModelDir = kept,
                KeepImages = true,
            }).RunAsync();
            var made = report.Find("inference-cpu", SmokeRunner.HostArchitecture(), SmokeRunner.MakeModelCheck);
            Assert.True(made?.Passed == true, made?.Detail ?? "no make-tiny-model result");
        }
        Assert.True(File.Exists(Path.Combine(kept, "model.pt")));
        Assert.True(File.Exists(Path.Combine(kept, "tokenizer.json")));

        var model = await kit.PublishAsync(dir: kept);
        var fetched = kit.Combine("fetched");
        await kit.FetchAsync(model, fetched, policy: new HardenImage.Signing.VerificationPolicy { RequiredAttestations = ["sbom"] });
        foreach (var f in Directory.EnumerateFiles(kept))
            Assert.Equal(File.ReadAllBytes(f), File.ReadAllBytes(Path.Combine(fetched, Path.GetFileName(f))));
    }
}
