using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Deploy;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;
using Xunit.Abstractions;

namespace HardenImage.Tests.Smoke;

/// <summary>
/// Runs the real arm64 python image (from the repository's artifacts/, as InferenceCpuSmokeTests does) under
/// qemu-user-static on this amd64 host. Needs root and qemu-user-static (.ci/services installs it); when the image
/// is not built or the emulator is missing, the tests FAIL saying what to do — never a silent skip.
/// </summary>
public sealed class EmulatedPythonRun : IAsyncLifetime
{
    public const string Image = "python";
    public const string Arch = "arm64";

    public string ArtifactsDir { get; } = Environment.GetEnvironmentVariable("HARDEN_ARTIFACTS") is { Length: > 0 } a
        ? Path.GetFullPath(a) : Path.Combine(RepoRoot.Find(), "artifacts");

    public string? Missing { get; private set; }
    public SmokeReport Report { get; private set; } = null!;
    /// <summary>SHA-256 of every blob file of the layout before the run (the run must not write one byte into it).</summary>
    public Dictionary<string, string> BlobsBefore { get; } = new(StringComparer.Ordinal);

    public async Task InitializeAsync()
    {
        var buildJson = Path.Combine(ArtifactsDir, "build.json");
        if (BuildManifest.TryLoad(buildJson)?.Image(Image)?.Architectures.Any(a => a.Architecture == Arch) != true)
        {
            Missing = $"{buildJson} has no {Image} image for {Arch}. Build it first: 'dotnet cake' or 'harden build --image {Image}' in the repository root.";
            return;
        }
        if (EmulatedSmokeRuntime.CannotEmulate(Arch, "/usr/bin", EmulatedSmokeRuntime.IsRoot()) is { } why)
        {
            Missing = $"cannot emulate {Arch} here: {why}. Run 'sudo bash .ci/services' and the tests as root.";
            return;
        }
        foreach (var blob in Directory.EnumerateFiles(Path.Combine(ArtifactsDir, "oci", "blobs", "sha256")))
            BlobsBefore[blob] = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(blob)));
        using var engine = new DockerEngine(RequiredService.DockerHost());
        Report = await new SmokeRunner(engine, new SmokeOptions
        {
            ArtifactsDir = ArtifactsDir,
            ImagesDir = Path.Combine(RepoRoot.Find(), "images"),
            Images = [Image],
            Architectures = [Arch],
        }).RunAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

[Trait("Category", "Integration")]
public sealed class EmulatedSmokeTests(EmulatedPythonRun run, ITestOutputHelper output) : IClassFixture<EmulatedPythonRun>
{
    private SmokeResult Result(string check)
    {
        if (run.Missing != null) Assert.Fail(run.Missing);
        foreach (var r in run.Report.Results) output.WriteLine($"{r.Architecture} {r.Runner,-16} {r.Check,-20} {r.Status,-7} {r.Duration.TotalSeconds,6:0.0} s  {r.Detail}");
        return run.Report.Find(EmulatedPythonRun.Image, EmulatedPythonRun.Arch, check) ?? throw new Xunit.Sdk.XunitException(
            $"no {check} result; results: {string.Join("; ", run.Report.Results.Select(r => $"{r.Architecture}/{r.Check}={r.Status}: {r.Detail}"))}");
    }

    [Fact]
    public void Arm64_RunsEmulated_As65532_NoCapabilities_NoNewPrivileges_ReadOnlyRoot()
    {
        var r = Result(SmokeRunner.RunsAsCheck);
        Assert.True(r.Passed, r.Detail);
        Assert.Equal(SmokeRunners.QemuChroot, r.Runner);
        Assert.Contains("uid=65532 gid=65532 NoNewPrivs=1 CapEff=0000000000000000 rootfs=readonly", r.Detail);
    }

    [Fact]
    public void Arm64_DeclaredChecks_RunTheImagesOwnInterpreter_Emulated()
    {
        foreach (var check in new[] { "interpreter-runs", "tls-bundle-present" })
        {
            var r = Result(check);
            Assert.True(r.Passed, r.Detail);
            Assert.Equal(SmokeRunners.QemuChroot, r.Runner);
        }
        // Every row of the arm64 run names the emulated runner; amd64 was not selected and says so.
        Assert.All(run.Report.For(EmulatedPythonRun.Image, EmulatedPythonRun.Arch), x => Assert.Equal(SmokeRunners.QemuChroot, x.Runner));
        var amd64 = run.Report.Find(EmulatedPythonRun.Image, "amd64", SmokeRunner.ArchitectureCheck)!;
        Assert.Equal(SmokeStatus.Skipped, amd64.Status);
        Assert.Contains("not selected (--platform linux/arm64)", amd64.Detail);
    }

    [Fact]
    public void NoShell_UnderEmulation_IsAnExecFailure_NotASilentExitOne()
    {
        // qemu-user exits 1 without a word when the program is missing; the runner must say 127 as an engine would.
        var r = Result(SmokeRunner.NoShellCheck);
        Assert.True(r.Passed, r.Detail);
        Assert.Contains("exit 127", r.Detail);
    }

    [Fact]
    public void Emulator_NeverReachesALayer_AndTheLayoutIsNotWritten()
    {
        Assert.True(Result(SmokeRunner.LoadCheck).Passed);
        foreach (var (blob, before) in run.BlobsBefore)
            Assert.Equal(before, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(blob))));
        // The pushed arm64 images (default pipeline: the OCI layout registry) and the built ones carry no emulator file.
        var layouts = new[] { Path.Combine(run.ArtifactsDir, "oci") }
            // Every repository of the layout registry, nested ones too (models/tiny-lm).
            .Concat(Directory.Exists(Path.Combine(run.ArtifactsDir, "registry"))
                ? Directory.EnumerateFiles(Path.Combine(run.ArtifactsDir, "registry"), "oci-layout", SearchOption.AllDirectories).Select(f => Path.GetDirectoryName(f)!)
                : []);
        var checkedLayers = 0;
        foreach (var dir in layouts)
        {
            var layout = OciLayout.Open(dir);
            var reader = new OciLayoutReader(layout);
            foreach (var tag in layout.ReadIndex().Manifests.Select(m => m.Annotations?.GetValueOrDefault("org.opencontainers.image.ref.name")).OfType<string>().Distinct())
            {
                ResolvedManifest image;
                try { image = reader.Resolve(tag, new Platform { Architecture = "arm64" }); }
                catch (HardenException) { continue; } // a tag without arm64 (signatures, attestations)
                foreach (var layer in image.Manifest.Layers)
                {
                    using var tar = new TarReader(reader.OpenUncompressed(layer));
                    while (tar.GetNextEntry() is { } e)
                        Assert.False(e.Name.Contains("qemu", StringComparison.OrdinalIgnoreCase) || e.Name.Contains(".hi-emulator", StringComparison.Ordinal),
                            $"{dir} {tag} layer {layer.Digest}: {e.Name}");
                    checkedLayers++;
                }
            }
        }
        Assert.True(checkedLayers > 0, "no arm64 layer was found to check");
    }

    [Fact]
    public async Task MissingEmulator_IsASkippedRow_NamingThePackage_NotASilentSkip()
    {
        var (report, empty) = await SmokeWithoutEmulator(requireEveryArchitecture: false);
        var r = report.Find(EmulatedPythonRun.Image, EmulatedPythonRun.Arch, SmokeRunner.ArchitectureCheck)!;
        Assert.Equal(SmokeStatus.Skipped, r.Status);
        Assert.Equal(SmokeRunners.None, r.Runner);
        Assert.Contains($"no {Path.Combine(empty, "qemu-aarch64-static")} (install Debian's qemu-user-static", r.Detail);
        Assert.Single(report.For(EmulatedPythonRun.Image, EmulatedPythonRun.Arch));
    }

    [Fact]
    public async Task MissingEmulator_UnderCi_IsAFailedRow_NotASkip()
    {
        var (report, _) = await SmokeWithoutEmulator(requireEveryArchitecture: true);
        var r = report.Find(EmulatedPythonRun.Image, EmulatedPythonRun.Arch, SmokeRunner.ArchitectureCheck)!;
        Assert.Equal(SmokeStatus.Failed, r.Status);
        Assert.Contains("CI=true: every built architecture must be smoke-tested", r.Detail);
    }

    /// <summary>Smokes the arm64 image with an emulator directory that holds no emulator (removed afterwards; its path
    /// is returned for the messages that name it).</summary>
    private async Task<(SmokeReport Report, string EmulatorDirectory)> SmokeWithoutEmulator(bool requireEveryArchitecture)
    {
        if (run.Missing != null) Assert.Fail(run.Missing);
        var empty = Directory.CreateTempSubdirectory("hi-no-qemu-").FullName;
        try
        {
            using var engine = new DockerEngine(RequiredService.DockerHost());
            var report = await new SmokeRunner(engine, new SmokeOptions
            {
                ArtifactsDir = run.ArtifactsDir,
                ImagesDir = Path.Combine(RepoRoot.Find(), "images"),
                Images = [EmulatedPythonRun.Image],
                Architectures = [EmulatedPythonRun.Arch],
                EmulatorDirectory = empty,
                RequireEveryArchitecture = requireEveryArchitecture,
            }).RunAsync();
            return (report, empty);
        }
        finally { Directory.Delete(empty, true); }
    }
}

/// <summary>The emulated runner's own safety: what it unpacks and what it agrees to execute.</summary>
public sealed class EmulatedRootfsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hi-emu-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly byte[] ElfAarch64 = Elf(183);
    private static readonly byte[] ElfX8664 = Elf(62);

    private static byte[] Elf(ushort machine)
    {
        var h = new byte[64];
        h[0] = 0x7f; h[1] = (byte)'E'; h[2] = (byte)'L'; h[3] = (byte)'F'; h[4] = 2; h[5] = 1;
        h[18] = (byte)machine; h[19] = (byte)(machine >> 8);
        return h;
    }

    private string Put(string rel, byte[] bytes, string mode = "755")
    {
        var p = Path.Combine(_dir, "root", rel);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        File.WriteAllBytes(p, bytes);
        File.SetUnixFileMode(p, (UnixFileMode)Convert.ToInt32(mode, 8));
        return p;
    }

    private string Link(string rel, string target)
    {
        var p = Path.Combine(_dir, "root", rel);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        File.CreateSymbolicLink(p, target);
        return p;
    }

    [Fact]
    public void Program_IsResolvedInsideTheImageRoot_SymlinksIncluded_NeverOnTheHost()
    {
        var root = Path.Combine(_dir, "root");
        Put("usr/bin/python3.13", ElfAarch64);
        Link("usr/bin/python3", "python3.13");
        Link("bin", "/usr/bin");                   // absolute: inside the image, not the host's /usr/bin
        Link("usr/local/bin/sh", "/bin/sh");      // the host has /bin/sh; the image does not
        Assert.Null(EmulatedSmokeRuntime.ExecutableInRoot(root, "/usr/bin/python3", "arm64"));
        Assert.Null(EmulatedSmokeRuntime.ExecutableInRoot(root, "/bin/python3", "arm64"));
        Assert.Equal("no such file or directory", EmulatedSmokeRuntime.ExecutableInRoot(root, "/bin/sh", "arm64"));
        Assert.Equal("no such file or directory", EmulatedSmokeRuntime.ExecutableInRoot(root, "/usr/local/bin/sh", "arm64"));
        Assert.Equal("no such file or directory", EmulatedSmokeRuntime.ExecutableInRoot(root, "/../../../../bin/sh", "arm64"));
    }

    [Fact]
    public void Program_NotExecutable_OrForAnotherMachine_IsRefused_NamingWhy()
    {
        var root = Path.Combine(_dir, "root");
        Put("app/data", ElfAarch64, "644");
        Put("usr/local/bin/whoami", ElfX8664);
        Link("loop/a", "/loop/b");
        Link("loop/b", "/loop/a");
        Assert.Equal("permission denied (not executable)", EmulatedSmokeRuntime.ExecutableInRoot(root, "/app/data", "arm64"));
        Assert.Equal("exec format error: an ELF for amd64, not arm64", EmulatedSmokeRuntime.ExecutableInRoot(root, "/usr/local/bin/whoami", "arm64"));
        Assert.Equal("too many levels of symbolic links", EmulatedSmokeRuntime.ExecutableInRoot(root, "/loop/a", "arm64"));
    }

    private (OciLayoutReader Reader, ResolvedManifest Image) HostileImage(params TarEntry[] entries) =>
        HostileArm64Image.Write(Path.Combine(_dir, "layout"), entries);

    private static PaxTarEntry FileEntry(string name, string text) =>
        new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(text)), Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite };

    [Fact]
    public void HostileLayer_WritingThroughASymlink_IsRefused_AndNothingLandsOutside()
    {
        var outside = Directory.CreateDirectory(Path.Combine(_dir, "outside")).FullName;
        var (reader, image) = HostileImage(
            new PaxTarEntry(TarEntryType.SymbolicLink, "evil") { LinkName = outside },
            FileEntry("evil/pwned", "written through a symlink"));
        var root = Directory.CreateDirectory(Path.Combine(_dir, "rootfs")).FullName;
        var e = Assert.Throws<HardenException>(() => SmokeRootfs.Extract(reader, image, root, CancellationToken.None));
        Assert.Contains("entry 'evil/pwned' goes through the symlink /evil; refusing to write through it", e.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(outside));
    }

    [Fact]
    public void HostileLayer_DotDotEntry_IsRefused_AndNothingLandsOutside()
    {
        var (reader, image) = HostileImage(FileEntry("../escaped", "above the root"));
        var root = Directory.CreateDirectory(Path.Combine(_dir, "rootfs")).FullName;
        var e = Assert.Throws<HardenException>(() => SmokeRootfs.Extract(reader, image, root, CancellationToken.None));
        Assert.Contains("entry '../escaped' leaves the root filesystem ('..')", e.Message);
        Assert.False(System.IO.File.Exists(Path.Combine(_dir, "escaped")));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public void Layers_AreAppliedInOrder_WithWhiteouts_AndOwners()
    {
        var (reader, image) = HostileImage(
            new PaxTarEntry(TarEntryType.Directory, "etc") { Mode = (UnixFileMode)Convert.ToInt32("755", 8) },
            FileEntry("etc/gone", "removed by the whiteout below"),
            new PaxTarEntry(TarEntryType.RegularFile, "etc/.wh.gone"),
            new PaxTarEntry(TarEntryType.RegularFile, "home/nonroot/owned") { Uid = 65532, Gid = 65532, Mode = UnixFileMode.UserRead, DataStream = new MemoryStream([1]) });
        var root = Directory.CreateDirectory(Path.Combine(_dir, "rootfs")).FullName;
        SmokeRootfs.Extract(reader, image, root, CancellationToken.None);
        Assert.False(System.IO.File.Exists(Path.Combine(root, "etc", "gone")));
        Assert.True(System.IO.File.Exists(Path.Combine(root, "home", "nonroot", "owned")));
        // Owners as the layer says (the emulated runs need root, so the extraction does too).
        var stat = RequiredService.RunOk("stat", ["-c", "%u:%g", Path.Combine(root, "home", "nonroot", "owned")]);
        Assert.Equal("65532:65532", stat.Trim());
    }
}

public sealed class SmokeJsonTests
{
    [Fact]
    public void SmokeJson_NamesTheRunnerOfEveryResult_AndIsWrittenAtomically()
    {
        var report = new SmokeReport([
            new SmokeResult("python", "amd64", SmokeRunner.RunsAsCheck, SmokeStatus.Passed, "python probe", TimeSpan.FromSeconds(1.25), SmokeRunners.Docker),
            new SmokeResult("python", "arm64", SmokeRunner.RunsAsCheck, SmokeStatus.Passed, "python probe", TimeSpan.FromSeconds(5), SmokeRunners.QemuChroot),
            new SmokeResult("base", "arm64", SmokeRunner.ArchitectureCheck, SmokeStatus.Skipped, "no qemu", TimeSpan.Zero, SmokeRunners.None),
        ]);
        var dir = Directory.CreateTempSubdirectory("hi-smoke-json-").FullName;
        try
        {
            var path = Path.Combine(dir, "smoke.json");
            SmokeJson.Write(path, report);
            var doc = System.Text.Json.Nodes.JsonNode.Parse(System.IO.File.ReadAllText(path))!;
            Assert.True((bool)doc["passed"]!);
            Assert.Equal(["docker", "qemu-user-chroot", "none"], doc["results"]!.AsArray().Select(r => (string)r!["runner"]!));
            Assert.Equal("skipped", (string)doc["results"]![2]!["status"]!);
            Assert.Equal(1.2, (double)doc["results"]![0]!["seconds"]!, 1);
            Assert.Equal(["smoke.json"], Directory.GetFiles(dir).Select(Path.GetFileName));
        }
        finally { Directory.Delete(dir, true); }
    }
}

/// <summary>Hostile layouts for the emulated runner's tests and attacks.</summary>
internal static class HostileArm64Image
{
    /// <summary>Writes a one-layer arm64 image (tag "hostile") whose tar holds exactly <paramref name="entries"/>, written as real OCI.</summary>
    public static (OciLayoutReader Reader, ResolvedManifest Image) Write(string layoutDir, params TarEntry[] entries)
    {
        var layout = OciLayout.OpenOrCreate(layoutDir);
        using var tar = new MemoryStream();
        using (var w = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
            foreach (var e in entries) w.WriteEntry(e);
        using var gz = new MemoryStream();
        using (var z = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true)) z.Write(tar.ToArray());
        var layer = layout.WriteBlob(gz.ToArray(), MediaTypes.LayerGzip);
        var config = layout.WriteJson(new ImageConfig
        {
            Architecture = "arm64",
            Config = new ContainerConfig { User = "65532:65532", Entrypoint = ["/x"] },
            RootFs = new RootFs { DiffIds = ["sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar.ToArray()))] },
        }, MediaTypes.ImageConfig);
        var manifest = layout.WriteJson(new ImageManifest { Config = config, Layers = [layer] }, MediaTypes.ImageManifest);
        var index = layout.WriteJson(new ImageIndex { Manifests = [manifest with { Platform = new Platform { Architecture = "arm64" } }] }, MediaTypes.ImageIndex);
        layout.Tag("hostile", index);
        var reader = new OciLayoutReader(layout);
        return (reader, reader.Resolve("hostile", new Platform { Architecture = "arm64" }));
    }
}
