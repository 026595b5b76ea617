using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Deploy;
using HardenImage.Tests.Infrastructure;
using Xunit.Abstractions;

namespace HardenImage.Tests.Smoke;

/// <summary>
/// Smoke-runs the real inference-cpu image that `dotnet cake` / `harden build --image inference-cpu` wrote to the
/// repository's artifacts/ (or $HARDEN_ARTIFACTS): PyTorch from Debian really loads a tiny model made inside the
/// image, answers /v1/generate, and refuses a model with one flipped byte. The image is too large to build inside a
/// test; when it is missing every test here FAILS (in CI and outside it) saying how to build it — never a silent skip.
/// </summary>
public sealed class InferenceCpuRun : IAsyncLifetime
{
    public const string Image = "inference-cpu";

    public string ArtifactsDir { get; } = Environment.GetEnvironmentVariable("HARDEN_ARTIFACTS") is { Length: > 0 } a
        ? Path.GetFullPath(a) : Path.Combine(RepoRoot.Find(), "artifacts");

    /// <summary>Why the image cannot be tested, or null.</summary>
    public string? Missing { get; private set; }
    public SmokeReport Report { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var buildJson = Path.Combine(ArtifactsDir, "build.json");
        if (BuildManifest.TryLoad(buildJson)?.Image(Image)?.Architectures.Any(a => a.Architecture == SmokeRunner.HostArchitecture()) != true)
        {
            Missing = $"{buildJson} has no {Image} image for {SmokeRunner.HostArchitecture()}{(RequiredService.InCi ? " (CI=true)" : "")}. "
                      + $"Build it first: 'dotnet cake' or 'harden lock --image {Image} && harden fetch --image {Image} && harden build --image {Image}' "
                      + "in the repository root (it writes artifacts/build.json and artifacts/oci).";
            return;
        }
        using var engine = new DockerEngine(RequiredService.DockerHost());
        Report = await new SmokeRunner(engine, new SmokeOptions
        {
            ArtifactsDir = ArtifactsDir,
            ImagesDir = Path.Combine(RepoRoot.Find(), "images"),
            Images = [Image],
            RunnableArchitectures = [SmokeRunner.HostArchitecture()],
            Architectures = [SmokeRunner.HostArchitecture()], // arm64 runs emulated in EmulatedSmokeTests (minutes)
        }).RunAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

[Trait("Category", "Integration")]
public sealed class InferenceCpuSmokeTests(InferenceCpuRun run, ITestOutputHelper output) : IClassFixture<InferenceCpuRun>
{
    private SmokeResult Result(string check)
    {
        if (run.Missing != null) Assert.Fail(run.Missing);
        foreach (var r in run.Report.Results) output.WriteLine($"{r.Check,-24} {r.Status,-7} {r.Duration.TotalSeconds,6:0.0} s  {r.Detail}");
        return run.Report.Find(InferenceCpuRun.Image, SmokeRunner.HostArchitecture(), check) ?? throw new Xunit.Sdk.XunitException(
            $"no {check} result; results: {string.Join("; ", run.Report.Results.Select(r => $"{r.Check}={r.Status}: {r.Detail}"))}");
    }

    [Fact]
    public void TinyModel_IsMadeInsideTheImage_AndGeneratesItsKnownAnswer()
    {
        var made = Result(SmokeRunner.MakeModelCheck);
        Assert.True(made.Passed, made.Detail);
        var generate = Result(SmokeRunner.GenerateCheck);
        Assert.True(generate.Passed, generate.Detail);
        Assert.Contains($"generated '{SmokeInference.ExpectedAnswer}'", generate.Detail);
    }

    [Fact]
    public void TamperedModel_StopsTheServer_WithModelIntegrityFailedLogLine()
    {
        var r = Result(SmokeRunner.TamperCheck);
        Assert.True(r.Passed, r.Detail);
        Assert.Contains("\"event\":\"model_integrity_failed\"", r.Detail);
        Assert.Contains("model.pt", r.Detail);
    }

    [Fact]
    public void Logs_AreJsonLines_WithoutPromptOrAnswer()
    {
        var r = Result(SmokeRunner.LogsCheck);
        Assert.True(r.Passed, r.Detail);
    }

    [Fact]
    public void InferenceCpu_PassesItsDeclaredAndUniversalChecks()
    {
        foreach (var check in new[] { "healthz", SmokeRunner.ConfigUserCheck, SmokeRunner.NoSetuidCheck, SmokeRunner.RunsAsCheck, SmokeRunner.NoShellCheck })
        {
            var r = Result(check);
            Assert.True(r.Passed, $"{check}: {r.Status} {r.Detail}");
        }
        Assert.Contains("python probe", Result(SmokeRunner.RunsAsCheck).Detail);
        Assert.False(run.Report.AnyFailed, string.Join("\n", run.Report.Results.Where(r => !r.Passed).Select(r => $"{r.Check}: {r.Detail}")));
    }
}
