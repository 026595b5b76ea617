using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Deploy;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;
using Xunit.Abstractions;

namespace HardenImage.Tests.Smoke;

/// <summary>
/// Smoke-runs the real inference-cuda-debian (CUDA 12.4 from Debian 13 non-free) from the repository's artifacts/:
/// amd64 in the Docker engine, arm64 under qemu-user-static. There is no GPU here: the device query must fail
/// cleanly with a named cudaError and the SGEMM must say it could not run. Missing image or emulator: the tests FAIL
/// saying how to build or install it.
/// </summary>
public sealed class CudaDebianRun : IAsyncLifetime
{
    public const string Image = "inference-cuda-debian";

    public string ArtifactsDir { get; } = Environment.GetEnvironmentVariable("HARDEN_ARTIFACTS") is { Length: > 0 } a
        ? Path.GetFullPath(a) : Path.Combine(RepoRoot.Find(), "artifacts");

    public string? Missing { get; private set; }
    public SmokeReport Report { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var buildJson = Path.Combine(ArtifactsDir, "build.json");
        if (BuildManifest.TryLoad(buildJson)?.Image(Image)?.Architectures.Count != 2)
        {
            Missing = $"{buildJson} has no {Image} image for amd64 and arm64. Build it first: 'dotnet cake' or "
                      + $"'harden fetch --image {Image} && harden build --image {Image}' in the repository root.";
            return;
        }
        if (EmulatedSmokeRuntime.CannotEmulate("arm64", "/usr/bin", EmulatedSmokeRuntime.IsRoot()) is { } why)
        {
            Missing = $"cannot emulate arm64 here: {why}. Run 'sudo bash .ci/services' and the tests as root.";
            return;
        }
        using var engine = new DockerEngine(RequiredService.DockerHost());
        Report = await new SmokeRunner(engine, new SmokeOptions
        {
            ArtifactsDir = ArtifactsDir,
            ImagesDir = Path.Combine(RepoRoot.Find(), "images"),
            Images = [Image],
            RunnableArchitectures = [SmokeRunner.HostArchitecture()],
        }).RunAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

[Trait("Category", "Integration")]
public sealed class CudaSmokeTests(CudaDebianRun run, ITestOutputHelper output) : IClassFixture<CudaDebianRun>
{
    private static readonly string[] Libraries =
        ["libcublas.so.12", "libcublasLt.so.12", "libcudart.so.12", "libcufft.so.11", "libcurand.so.10", "libcusolver.so.11", "libcusparse.so.12", "libnvJitLink.so.12", "libnvrtc.so.12"];

    private SmokeResult Result(string arch, string check)
    {
        if (run.Missing != null) Assert.Fail(run.Missing);
        foreach (var r in run.Report.Results) output.WriteLine($"{r.Architecture} {r.Runner,-16} {r.Check,-24} {r.Status,-7} {r.Duration.TotalSeconds,6:0.0} s  {r.Detail}");
        return run.Report.Find(CudaDebianRun.Image, arch, check) ?? throw new Xunit.Sdk.XunitException(
            $"no {arch}/{check} result; results: {string.Join("; ", run.Report.Results.Select(r => $"{r.Architecture}/{r.Check}={r.Status}: {r.Detail}"))}");
    }

    [Theory]
    [InlineData("amd64", SmokeRunners.Docker)]
    [InlineData("arm64", SmokeRunners.QemuChroot)]
    public void EveryCudaLibrary_LoadsBySoname(string arch, string runner)
    {
        var r = Result(arch, SmokeCuda.LoadCheck);
        Assert.True(r.Passed, r.Detail);
        Assert.Equal(runner, r.Runner);
        foreach (var lib in Libraries) Assert.Contains(lib, r.Detail);
    }

    [Theory]
    [InlineData("amd64")]
    [InlineData("arm64")]
    public void RuntimeVersion_Is12040_ByTheGenericCheck_AndTheImagesDeclaredCheck(string arch)
    {
        var r = Result(arch, SmokeCuda.RuntimeVersionCheck);
        Assert.True(r.Passed, r.Detail);
        Assert.Contains("cudaRuntimeGetVersion = 12040 (CUDA 12.4)", r.Detail);
        var declared = Result(arch, "cuda-runtime-12.4");
        Assert.True(declared.Passed, declared.Detail);
    }

    [Theory]
    [InlineData("amd64")]
    [InlineData("arm64")]
    public void WithoutAGpu_TheDeviceQueryFailsCleanly_WithANamedCudaError_AndSgemmSaysItCouldNotRun(string arch)
    {
        var device = Result(arch, SmokeCuda.DeviceQueryCheck);
        Assert.True(device.Passed, device.Detail);
        Assert.Matches(@"no driver/device, failed cleanly: (cudaErrorInsufficientDriver \(35\)|cudaErrorNoDevice \(100\))", device.Detail);
        var sgemm = Result(arch, SmokeCuda.SgemmCheck);
        Assert.Equal(SmokeStatus.Skipped, sgemm.Status);
        Assert.StartsWith("could not run: no GPU and driver here", sgemm.Detail);
    }

    [Fact]
    public void TheDriverLibrary_IsNotInTheImage()
    {
        foreach (var arch in new[] { "amd64", "arm64" })
        {
            var r = Result(arch, SmokeCuda.NoDriverCheck);
            Assert.True(r.Passed, r.Detail);
        }
    }
}

/// <summary>How the CUDA checks judge what the script reports (a scripted runtime stands in for the image).</summary>
public sealed class CudaSmokeJudgementTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hi-cuda-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>An image whose only layer holds <paramref name="paths"/> as files (real OCI, read by SmokeLayerScan).</summary>
    private SmokeLayerScan Scan(params string[] paths)
    {
        var layout = OciLayout.OpenOrCreate(Path.Combine(_dir, "layout"));
        using var tar = new MemoryStream();
        using (var w = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
            foreach (var p in paths) w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, p) { DataStream = new MemoryStream([0]) });
        using var gz = new MemoryStream();
        using (var z = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true)) z.Write(tar.ToArray());
        var layer = layout.WriteBlob(gz.ToArray(), MediaTypes.LayerGzip);
        var config = layout.WriteJson(new ImageConfig
        {
            Architecture = "amd64",
            RootFs = new RootFs { DiffIds = ["sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar.ToArray()))] },
        }, MediaTypes.ImageConfig);
        var manifest = layout.WriteJson(new ImageManifest { Config = config, Layers = [layer] }, MediaTypes.ImageManifest);
        var index = layout.WriteJson(new ImageIndex { Manifests = [manifest with { Platform = new Platform { Architecture = "amd64" } }] }, MediaTypes.ImageIndex);
        layout.Tag("cuda", index);
        var reader = new OciLayoutReader(layout);
        return SmokeLayerScan.Read(reader, reader.Resolve("cuda", new Platform { Architecture = "amd64" }));
    }

    private sealed class ScriptedRuntime(string stdout) : ISmokeRuntime
    {
        public List<ContainerRunSpec> Runs { get; } = [];
        public string Runner => SmokeRunners.Docker;
        public string Describe => "scripted";
        public Task<string?> ImageIdAsync(string tag, CancellationToken ct) => Task.FromResult<string?>(null);
        public Task<string> LoadAsync(OciLayoutReader reader, ResolvedManifest image, string refName, string architecture, string tag, CancellationToken ct) => throw new NotSupportedException();
        public Task RemoveImageAsync(string tag, CancellationToken ct) => Task.CompletedTask;
        public Task<bool> TagAsync(string imageId, string tag, CancellationToken ct) => Task.FromResult(false);
        public Task<ContainerRunResult> RunAsync(ContainerRunSpec spec, CancellationToken ct)
        {
            Runs.Add(spec);
            return Task.FromResult(new ContainerRunResult(0, stdout, "", false));
        }
        public Task<ISmokeContainer> StartAsync(ContainerRunSpec spec, CancellationToken ct) => throw new NotSupportedException();
    }

    private async Task<List<SmokeResult>> Judge(SmokeLayerScan scan, string stdout, ScriptedRuntime? runtime = null)
    {
        runtime ??= new ScriptedRuntime(stdout);
        var results = new List<SmokeResult>();
        await SmokeCuda.RunAsync(runtime, new ContainerRunSpec { Image = "t" }, scan, Directory.CreateDirectory(Path.Combine(_dir, "scripts")).FullName,
            async (name, body) => { var (s, d) = await body(); var r = new SmokeResult("cuda", "amd64", name, s, d, TimeSpan.Zero); results.Add(r); return r; },
            CancellationToken.None);
        return results;
    }

    private const string Lib = "usr/lib/x86_64-linux-gnu/";

    [Fact]
    public async Task ShippedDriverLibrary_FailsNamingIt_AndIsNeverLoadedAsARuntimeLibrary()
    {
        var scan = Scan(Lib + "libcudart.so.12", Lib + "libcuda.so.1", Lib + "libnvidia-ml.so.1");
        var runtime = new ScriptedRuntime("""{"check": "load", "lib": "libcudart.so.12", "ok": true}""");
        var results = await Judge(scan, "", runtime);
        var driver = results.Single(r => r.Check == SmokeCuda.NoDriverCheck);
        Assert.Equal(SmokeStatus.Failed, driver.Status);
        Assert.Contains(Lib + "libcuda.so.1", driver.Detail);
        Assert.Contains(Lib + "libnvidia-ml.so.1", driver.Detail);
        Assert.Equal(["/usr/bin/python3", SmokeProbe.MountPoint + "/cuda_smoke.py", "libcudart.so.12"], runtime.Runs.Single().Entrypoint);
    }

    [Fact]
    public async Task UnexpectedCudaError_OnTheDeviceQuery_Fails_NamingTheCode()
    {
        var scan = Scan(Lib + "libcudart.so.12");
        var results = await Judge(scan, """
            {"check": "load", "lib": "libcudart.so.12", "ok": true}
            {"check": "runtime_version", "error": 0, "name": "cudaSuccess", "version": 12040}
            {"check": "device_count", "error": 3, "name": "cudaErrorInitializationError", "message": "initialization error", "count": 0}
            """);
        var device = results.Single(r => r.Check == SmokeCuda.DeviceQueryCheck);
        Assert.Equal(SmokeStatus.Failed, device.Status);
        Assert.Contains("cudaGetDeviceCount returned 3 (cudaErrorInitializationError: initialization error)", device.Detail);
        // A named no-device code with the wrong name is not accepted either: the code and its name must agree.
        var lying = await Judge(scan, """
            {"check": "load", "lib": "libcudart.so.12", "ok": true}
            {"check": "device_count", "error": 35, "name": "cudaErrorNoDevice", "message": "?", "count": 0}
            """);
        Assert.Equal(SmokeStatus.Failed, lying.Single(r => r.Check == SmokeCuda.DeviceQueryCheck).Status);
    }

    [Fact]
    public async Task ALibraryThatDoesNotLoad_FailsNamingItAndTheLoadersError()
    {
        var scan = Scan(Lib + "libcudart.so.12", Lib + "libcublas.so.12");
        var results = await Judge(scan, """
            {"check": "load", "lib": "libcublas.so.12", "ok": false, "error": "libcublasLt.so.12: cannot open shared object file"}
            {"check": "load", "lib": "libcudart.so.12", "ok": true}
            """);
        var load = results.Single(r => r.Check == SmokeCuda.LoadCheck);
        Assert.Equal(SmokeStatus.Failed, load.Status);
        Assert.Contains("1 of 2 did not load: libcublas.so.12: libcublasLt.so.12: cannot open shared object file", load.Detail);
    }

    [Fact]
    public async Task WithAGpu_AWrongSgemmProduct_Fails()
    {
        var scan = Scan(Lib + "libcudart.so.12", Lib + "libcublas.so.12");
        var results = await Judge(scan, """
            {"check": "load", "lib": "libcublas.so.12", "ok": true}
            {"check": "load", "lib": "libcudart.so.12", "ok": true}
            {"check": "runtime_version", "error": 0, "name": "cudaSuccess", "version": 12040}
            {"check": "device_count", "error": 0, "count": 1, "device": "NVIDIA L4"}
            {"check": "sgemm", "ok": false, "n": 32, "max_error": 3.5, "error": "max error 3.5"}
            """);
        Assert.Equal(SmokeStatus.Passed, results.Single(r => r.Check == SmokeCuda.DeviceQueryCheck).Status);
        var sgemm = results.Single(r => r.Check == SmokeCuda.SgemmCheck);
        Assert.Equal(SmokeStatus.Failed, sgemm.Status);
        Assert.Contains("max error 3.5", sgemm.Detail);
    }
}
