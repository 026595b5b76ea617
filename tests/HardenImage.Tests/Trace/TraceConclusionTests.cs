using HardenImage.Deploy;
using HardenImage.Trace;

namespace HardenImage.Tests.Trace;

/// <summary>A trace proposes only from a workload that passed; a failed one shows the failure and proposes nothing.</summary>
public class TraceConclusionTests
{
    private static readonly TraceOptions Options = new()
    {
        Image = "inference-cpu", Architecture = "amd64",
        Smoke = new SmokeOptions { ArtifactsDir = "artifacts", ImagesDir = "images" },
    };

    private static SmokeResult Result(string check, SmokeStatus status, string detail) =>
        new("inference-cpu", "amd64", check, status, detail, TimeSpan.Zero);

    private static readonly List<TracedPackage> Packages =
        [new("libllvm17t64", ["usr/lib/x86_64-linux-gnu/libLLVM-17.so.1"], 124_000_000, [], true)];

    private static readonly TraceEvidence Evidence = new(new Dictionary<string, string>(), new Dictionary<string, IReadOnlyList<string>>());

    [Fact]
    public void FailedWorkload_GivesNoProposal_AndShowsEveryFailedCheckWithItsDetail()
    {
        var report = new SmokeReport(
        [
            Result("load", SmokeStatus.Passed, "loaded"),
            Result("make-tiny-model", SmokeStatus.Failed, "RuntimeError: Unable to find torch_shm_manager"),
            Result("healthz", SmokeStatus.Failed, "not run: the server needs a model"),
        ]);

        // Evidence was gathered (the server may have run part-way): still no proposal.
        var r = TraceRunner.Conclude(Options, report, [], Packages, Evidence, null);

        Assert.Null(r.Proposal);
        Assert.Contains("the workload failed", r.Failure);
        Assert.Contains("make-tiny-model: RuntimeError: Unable to find torch_shm_manager", r.Failure);
        Assert.Contains("healthz: not run: the server needs a model", r.Failure);
        Assert.Contains("no proposal", r.Failure);
    }

    [Fact]
    public void NothingRunForTheArchitecture_GivesNoProposal()
    {
        var report = new SmokeReport([new("inference-cpu", "arm64", "architecture", SmokeStatus.Skipped, "this machine runs amd64", TimeSpan.Zero)]);
        var r = TraceRunner.Conclude(Options with { Architecture = "arm64" }, report, [], Packages, Evidence, null);
        Assert.Null(r.Proposal);
        Assert.Contains("was not run here: this machine runs amd64", r.Failure);
    }

    [Fact]
    public void PassedWorkloadWithoutAServer_GivesNoProposal_SayingThereWasNothingToObserve()
    {
        var report = new SmokeReport([Result("interpreter-runs", SmokeStatus.Passed, "exit 0")]);
        var r = TraceRunner.Conclude(Options, report, [], null, null, null);
        Assert.Null(r.Proposal);
        Assert.Contains("no long-running workload", r.Failure);
    }

    [Fact]
    public void PassedAndObservedWorkload_Proposes()
    {
        var report = new SmokeReport([Result("generate", SmokeStatus.Passed, "generated")]);
        var r = TraceRunner.Conclude(Options, report, [], Packages, Evidence, null);
        Assert.Null(r.Failure);
        Assert.Equal(["libllvm17t64"], r.Proposal!.Exclude.Select(e => e.Package));
    }
}
