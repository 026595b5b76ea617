using HardenImage.Cli;
using HardenImage.Cli.Commands;
using HardenImage.Common;
using HardenImage.Deploy;
using HardenImage.Oci;
using Spectre.Console.Cli;

namespace HardenImage.Tests.Smoke;

/// <summary>`harden smoke` against a real Docker engine over the hermetic image set of <see cref="SmokeWorkspace"/>.</summary>
[Trait("Category", "Integration")]
public sealed class SmokeRunnerTests(SmokeWorkspace smoke) : IClassFixture<SmokeWorkspace>
{
    private SmokeReport Report => smoke.Report;

    private SmokeResult Result(string image, string check, string arch = "amd64") =>
        Report.Find(image, arch, check) ?? throw new Xunit.Sdk.XunitException(
            $"no result {image}/{arch}/{check}; results: {string.Join("; ", Report.Results.Select(r => $"{r.Image}/{r.Architecture}/{r.Check}={r.Status}"))}");

    [Fact]
    public void HardenedImages_PassEveryUniversalCheck_OnAmd64()
    {
        foreach (var image in new[] { "base", "web" })
        {
            foreach (var check in new[] { SmokeRunner.ConfigUserCheck, SmokeRunner.NoSetuidCheck, SmokeRunner.LoadCheck, SmokeRunner.RunsAsCheck, SmokeRunner.NoShellCheck })
            {
                var r = Result(image, check);
                Assert.True(r.Passed, $"{image} {check}: {r.Status} {r.Detail}");
                Assert.True(r.Duration >= TimeSpan.Zero);
            }
        }
        // The static probe ran inside the restricted container and saw what the pod will see.
        var runsAs = Result("base", SmokeRunner.RunsAsCheck).Detail;
        Assert.Contains("static probe", runsAs);
        Assert.Contains("uid=65532 gid=65532 NoNewPrivs=1 CapEff=0000000000000000 rootfs=readonly setuid files=0", runsAs);
    }

    [Fact]
    public void DeclaredCommandCheck_RunsTheEntrypointWithTheCheckArguments()
    {
        var r = Result("base", "says-who");
        Assert.True(r.Passed, r.Detail);
        Assert.Contains("uid=65532 gid=65532 arg=hello", r.Detail);
    }

    [Fact]
    public void HttpProbe_ReachesTheServerOnHostLoopback_OnTheAssignedPort()
    {
        var r = Result("web", "healthz");
        Assert.True(r.Passed, r.Detail);
        Assert.Contains("GET /healthz → 200", r.Detail);
        // The server was started detached and stopped again: nothing of it is left running.
    }

    [Fact]
    public void Arm64_IsSkippedWithAReason_NotSilently()
    {
        var r = Result("base", SmokeRunner.ArchitectureCheck, "arm64");
        Assert.Equal(SmokeStatus.Skipped, r.Status);
        Assert.Contains("this machine runs amd64 natively and cannot emulate arm64: emulation is off (--no-emulation)", r.Detail);
        Assert.DoesNotContain(Report.For("base", "arm64"), x => x.Check != SmokeRunner.ArchitectureCheck);
    }

    [Fact]
    public void SetuidFile_IsFoundInTheLayers_AndAtRunTime_EvenWhenTheImageOptsIn()
    {
        var scan = Result("bad", SmokeRunner.NoSetuidCheck);
        Assert.Equal(SmokeStatus.Failed, scan.Status);
        Assert.Contains("/usr/bin/su", scan.Detail);
        Assert.Contains("allow.setuid", scan.Detail);
        var runtime = Result("bad", SmokeRunner.RunsAsCheck);
        Assert.Equal(SmokeStatus.Failed, runtime.Status);
        Assert.Contains("setuid/setgid files at run time: /usr/bin/su", runtime.Detail);
    }

    [Fact]
    public void ExecutableShell_FailsTheNoShellCheck()
    {
        var r = Result("bad", SmokeRunner.NoShellCheck);
        Assert.Equal(SmokeStatus.Failed, r.Status);
        Assert.Contains("/bin/sh executed", r.Detail);
    }

    [Fact]
    public void FailingDeclaredCheck_IsReportedWithTheOutput_AndFailsTheRun()
    {
        var r = Result("bad", "impossible-output");
        Assert.Equal(SmokeStatus.Failed, r.Status);
        Assert.Contains("lacks 'uid=0'", r.Detail);
        Assert.Contains("uid=65532", r.Detail);
        Assert.True(Report.AnyFailed);
        Assert.DoesNotContain(Report.For("base").Concat(Report.For("web")), x => x.Status == SmokeStatus.Failed);
    }

    [Fact]
    public void LayerScan_FollowsTheMergedUsrSymlinks()
    {
        var layout = OciLayout.Open(Path.Combine(smoke.Workspace.Artifacts, "oci"));
        var reader = new OciLayoutReader(layout);
        var scan = SmokeLayerScan.Read(reader, reader.Resolve("bad", new Platform { Architecture = "amd64" }));
        Assert.True(scan.Exists("/bin/sh"));           // /bin → usr/bin, then usr/bin/sh
        Assert.False(scan.Exists("/bin/bash"));
        Assert.Equal(["/usr/bin/su"], scan.SetuidFiles());
        var web = SmokeLayerScan.Read(reader, reader.Resolve("web", new Platform { Architecture = "amd64" }));
        Assert.False(web.Exists("/bin/sh"));
        Assert.True(web.Exists("/usr/local/bin/httpd"));
    }

    [Fact]
    public async Task RunsThatRemoveTheirImage_InParallel_NeverTakeItFromUnderEachOther_NorTheKeptOne()
    {
        // The class keeps "web" under its content-named tag. Three runs that remove their image afterwards run at
        // once on the same engine (parallel CI jobs, `harden trace` beside `harden smoke`): each must pass, and the
        // kept image must still be there, with no run's tag left behind.
        using var engine = new DockerEngine(smoke.DockerHost);
        var options = smoke.Options with { Images = ["web"], KeepImages = false, Architectures = ["amd64"] };
        var reports = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => Task.Run(() => new SmokeRunner(engine, options).RunAsync())));
        foreach (var failed in reports.SelectMany(r => r.Results).Where(r => r.Status == SmokeStatus.Failed))
            Assert.Fail($"{failed.Check}: {failed.Detail}");
        var config = HardenImage.Contracts.BuildManifest.Load(Path.Combine(smoke.Workspace.Artifacts, "build.json")).Image("web")!
            .Architectures.Single(a => a.Architecture == "amd64").Config;
        var kept = SmokeRunner.TagFor("web", "amd64", config);
        Assert.Equal(config, await engine.ImageIdAsync(kept));
        using var client = new Docker.DotNet.DockerClientConfiguration(smoke.DockerHost).CreateClient();
        Assert.Equal([kept], (await client.Images.InspectImageAsync(config)).RepoTags);
    }

    [Fact]
    public async Task Cli_ExitsZeroForGoodImages_OneWhenACheckFails()
    {
        string[] Args(string image) => ["smoke", "--artifacts", smoke.Workspace.Artifacts, "--images", smoke.Workspace.ImagesDir,
            "--image", image, "--docker-host", smoke.DockerHost.ToString(), "--keep-images", "--http-timeout", "30", "--no-emulation"];
        Assert.Equal(0, await Task.Run(() => Run(Args("web"))));
        Assert.Equal(1, await Task.Run(() => Run(Args("bad"))));
    }

    [Fact]
    public async Task MissingEngine_IsAClearErrorSayingHowToStartIt()
    {
        using var engine = new DockerEngine(new Uri("unix:///tmp/hi-no-such-engine.sock"));
        var e = await Assert.ThrowsAsync<HardenException>(() => engine.PingAsync());
        Assert.Contains(".ci/services", e.Message);
        Assert.NotEqual(0, Run("smoke", "--artifacts", smoke.Workspace.Artifacts, "--images", smoke.Workspace.ImagesDir,
            "--docker-host", "unix:///tmp/hi-no-such-engine.sock"));
    }

    [Fact]
    public async Task UnknownImage_NamesWhatWasBuilt()
    {
        using var engine = new DockerEngine(smoke.DockerHost);
        var e = await Assert.ThrowsAsync<HardenException>(() => new SmokeRunner(engine, smoke.Options with { Images = ["nope"] }).RunAsync());
        Assert.Contains("no built image nope", e.Message);
        foreach (var built in new[] { "base", "bad", "web" }) Assert.Contains(built, e.Message);
        Assert.Contains("harden build --image nope", e.Message);
    }

    private static int Run(params string[] args)
    {
        var app = new CommandApp();
        app.Configure(c =>
        {
            c.PropagateExceptions();
            c.AddSmokeCommands();
        });
        return CliHost.Run(app, args);
    }
}

public sealed class ProbeReportTests
{
    [Fact]
    public void Parse_AcceptsThePodIdentity_AndNamesEachDeviation()
    {
        var good = ProbeReport.Parse("uid=65532\ngid=65532\nnonewprivs=1\ncapeff=0000000000000000\nrootfs=readonly\ndone=1\n");
        Assert.Empty(good.Problems());
        var bad = ProbeReport.Parse("uid=0\ngid=0\nnonewprivs=0\ncapeff=00000000a80425fb\nrootfs=writable\nsetuid=/usr/bin/su\ndone=1\n");
        var problems = string.Join("\n", bad.Problems());
        Assert.Contains("uid=0 gid=0", problems);
        Assert.Contains("NoNewPrivs=0", problems);
        Assert.Contains("00000000a80425fb", problems);
        Assert.Contains("writable", problems);
        Assert.Contains("/usr/bin/su", problems);
        Assert.Contains("expected 65532", string.Join("\n", ProbeReport.Parse("").Problems()));
    }
}
