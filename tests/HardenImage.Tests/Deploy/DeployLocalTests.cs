using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Deploy;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Deploy;

/// <summary>
/// `harden deploy --local` against the inference-cpu image the main job built into the repository's artifacts/ (or
/// $HARDEN_ARTIFACTS): the rendered Deployment's pod, with the manifest's restrictions, passes its probes on a real
/// Docker engine and serves a generation request from a model mounted read-only where the PVC goes.
/// </summary>
[Trait("Category", "Integration")]
public sealed class DeployLocalTests
{
    [Fact]
    public async Task InferenceCpuDeployment_PassesItsProbes_AndServesAGenerationRequest()
    {
        var root = RepoRoot.Find();
        var artifacts = Environment.GetEnvironmentVariable("HARDEN_ARTIFACTS") is { Length: > 0 } a ? Path.GetFullPath(a) : Path.Combine(root, "artifacts");
        var built = BuildManifest.TryLoad(Path.Combine(artifacts, "build.json"));
        if (built?.Image("inference-cpu")?.Architectures.Any(x => x.Architecture == "amd64") != true)
            Assert.Fail($"{artifacts}/build.json has no amd64 inference-cpu: run 'dotnet cake' (or 'harden lock/fetch/build --image inference-cpu') in {root} first.");
        using var keys = new TempDir("hi-deploy-local");
        var pub = new HardenImage.Signing.KeyPairGenerator(new HardenImage.Signing.ScryptParameters(1024, 8, 1)).WriteTo(keys.Path, "", overwrite: false).PublicKeyPath;
        var output = keys.Combine("artifacts");
        // Render into a scratch artifacts copy of the build metadata so the repository's artifacts/deploy is untouched.
        Directory.CreateDirectory(output);
        File.Copy(Path.Combine(artifacts, "build.json"), Path.Combine(output, "build.json"));
        // No packed model here (ModelServerIntegrityTests pins one): the bare-claim form, where the runner makes a tiny
        // model inside the image and pins it on the spot.
        var deployDir = keys.Combine("deploy");
        Directory.CreateDirectory(deployDir);
        var description = File.ReadAllText(Path.Combine(root, "deploy", "inference-cpu.yaml"));
        var modelLine = description.Split('\n').Single(l => l.StartsWith("  name: tiny-lm", StringComparison.Ordinal));
        File.WriteAllText(Path.Combine(deployDir, "inference-cpu.yaml"), description.Replace(modelLine, "  claimName: inference-models", StringComparison.Ordinal));
        var result = new DeployRenderer().RenderAndWrite(new DeployOptions
        {
            DeployDir = deployDir, ArtifactsDir = output, Registry = "registry.example.com/hardened",
            PublicKey = pub, Name = "inference-cpu",
        });
        var rendered = Assert.Single(result.Deployments);
        using var engine = new DockerEngine(RequiredService.DockerHost());
        var checks = await new LocalDeployRunner(engine, artifacts).RunAsync(rendered, modelDir: null);
        Assert.True(checks.All(c => c.Passed), string.Join("\n", checks.Select(c => $"{c.Name}: {c.Passed} {c.Detail}")));
        Assert.Contains(checks, c => c.Name.StartsWith("readiness", StringComparison.Ordinal));
        Assert.Contains(checks, c => c.Name == "POST /v1/generate" && c.Detail.Contains("mnopqrst"));
        Assert.Contains(checks, c => c.Name == "served model digest" && c.Passed);
    }
}
