using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Deploy;
using HardenImage.Tests.Infrastructure;
using HardenImage.Trace;
using Xunit.Abstractions;

namespace HardenImage.Tests.Trace;

/// <summary>
/// `harden trace` end to end on the real inference-cpu image in artifacts/ (or $HARDEN_ARTIFACTS), as the smoke
/// tests use it: the workload runs, what it loaded is read from /proc, and the proposal never touches a loaded
/// object or what it links to. A missing image FAILS saying how to build it — never a silent skip.
/// </summary>
[Trait("Category", "Integration")]
public sealed class InferenceCpuTraceTests(ITestOutputHelper output)
{
    private const string Image = "inference-cpu";

    [Fact]
    public async Task Trace_OfThePassingWorkload_SeesTorchLoaded_AndProposesNothingALoadedObjectNeeds()
    {
        var artifacts = Environment.GetEnvironmentVariable("HARDEN_ARTIFACTS") is { Length: > 0 } a ? Path.GetFullPath(a) : Path.Combine(RepoRoot.Find(), "artifacts");
        var arch = SmokeRunner.HostArchitecture();
        if (BuildManifest.TryLoad(Path.Combine(artifacts, "build.json"))?.Image(Image)?.Architectures.Any(x => x.Architecture == arch) != true)
            Assert.Fail($"{artifacts}/build.json has no {Image} image for {arch}. Build it first: 'dotnet cake' or 'harden lock/fetch/build --image {Image}'.");
        using var engine = new DockerEngine(RequiredService.DockerHost());

        var report = await new TraceRunner(engine, new TraceOptions
        {
            Image = Image,
            Architecture = arch,
            // Asked to judge: excluding OpenMPI's UCX, which libmpi (linked by libtorch_cpu) needs.
            TryExclude = ["libucx0"],
            Smoke = new SmokeOptions { ArtifactsDir = artifacts, ImagesDir = Path.Combine(RepoRoot.Find(), "images") },
        }).RunAsync();

        Assert.True(report.Failure == null, report.Failure);
        // Only the traced architecture ran: an emulated arm64 PyTorch import would cost minutes and inform nothing.
        Assert.DoesNotContain(report.Smoke.Results, r => r.Architecture != arch && r.Status != SmokeStatus.Skipped);
        var proposal = report.Proposal!;
        output.WriteLine($"{report.Loaded.Count} loaded; proposed {proposal.Exclude.Count} packages, {proposal.Bytes / 1e6:0.0} MB");
        var triplet = arch == "amd64" ? "x86_64-linux-gnu" : "aarch64-linux-gnu";
        Assert.Contains($"usr/lib/{triplet}/libtorch_cpu.so.2.6.0", report.Loaded.Keys);
        Assert.Contains(report.Loaded, kv => kv.Key == "usr/lib/python3/dist-packages/torch/__init__.py" && kv.Value == "imported by Python");
        foreach (var kept in new[] { "libtorch2.6", "python3-torch", "libopenmpi40", "libucx0", "python3-numpy", "python3-fastapi" })
            Assert.DoesNotContain(proposal.Exclude, e => e.Package == kept);
        var refused = Assert.Single(proposal.Refused, r => r.Entry == "exclude: libucx0");
        // libucp/libucm/libucs are mapped (libmpi and libopen-pal link them): the refusal names one of them and how.
        Assert.Matches(@"^it ships /usr/lib/[^ ]+/libuc[mpst]\.so[^ ]* \((mapped by pid \d+|DT_NEEDED by loaded /)", refused.Reason);
        // The committed slimming holds: the ROCm stack is gone, so nothing of it is left to propose.
        Assert.DoesNotContain(proposal.Exclude, e => e.Package is "libllvm17t64" or "libamdhip64-5" or "libtorch-test");
    }
}
