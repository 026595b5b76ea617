using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Lock;
using HardenImage.Oci;
using HardenImage.Python;
using HardenImage.Sbom;
using HardenImage.Scan;
using HardenImage.Tests.Build;
using HardenImage.Tests.Fixtures;
using static HardenImage.Tests.Scan.ScanFixtures;

namespace HardenImage.Tests.Python;

/// <summary>
/// End to end without PyPI: the hermetic signed apt repository (with a libc6 2.41 for glibc), two loopback
/// indexes, lock (apt, then python), fetch, build; then the SBOM and the scanner see the wheels.
/// </summary>
public sealed class WheelImageWorkspace : IAsyncLifetime
{
    public ImageSetWorkspace W { get; } = new();
    public PythonImageSet Py { get; } = new();
    public BuildOutcome Build { get; private set; } = null!;
    public IReadOnlyList<PythonLockReport> PythonLock { get; private set; } = null!;

    public const string AppYaml = """
        name: app
        from: base
        version: "1.0"
        python:
          requirements: python/requirements.txt
          lock: python/pylock.app.toml
          indexes:
        {0}
        """;

    public async Task InitializeAsync()
    {
        foreach (var arch in new[] { "amd64", "arm64" })
            W.Repo.Add(new FakePackage("libc6", "2.41-12", arch).WithFile($"/usr/lib/{(arch == "amd64" ? "x86_64" : "aarch64")}-linux-gnu/libc.so.6", "libc " + arch));
        W.Repo.Publish();
        var baseYaml = File.ReadAllText(Path.Combine(W.ImagesDir, "base.yaml")).Replace("packages: [base-files,", "packages: [libc6, base-files,");
        W.WriteImage("base", baseYaml);
        Directory.CreateDirectory(Path.Combine(W.ImagesDir, "python"));
        File.WriteAllText(Path.Combine(W.ImagesDir, "python", "requirements.txt"), Py.StandardRequirements);
        W.WriteImage("app", AppYaml.Replace("{0}", Py.DefaultIndexes));
        await W.LockAsync();
        PythonLock = await LockPythonAsync();
        Build = await BuildAsync(W.Artifacts, W.Cache);
    }

    public async Task<IReadOnlyList<PythonLockReport>> LockPythonAsync()
    {
        using var http = new HttpClient();
        return await PythonStage.LockAsync(ImageSet.Load(W.ImagesDir), LockFile.Load(W.LockPath), null, W.Cache, http, PythonImageSet.Environment);
    }

    public async Task<BuildOutcome> BuildAsync(string artifacts, string cache, params string[] images)
    {
        using var http = new HttpClient();
        await PythonStage.FetchAsync(ImageSet.Load(W.ImagesDir), images.Length > 0 ? images : null, cache, http, PythonImageSet.Environment);
        return await W.BuildAsync(artifacts, cache, false, images);
    }

    /// <summary>Path → content of the image's own (last) layer for one architecture.</summary>
    public Dictionary<string, (byte[] Content, int Mode)> Layer(BuildOutcome build, string artifacts, string image, string arch)
    {
        var layer = build.Manifest.Image(image)!.Architectures.Single(a => a.Architecture == arch).Layers[^1];
        var blob = Path.Combine(artifacts, "oci", "blobs", "sha256", layer.Digest["sha256:".Length..]);
        var result = new Dictionary<string, (byte[], int)>(StringComparer.Ordinal);
        using var gz = new GZipStream(File.OpenRead(blob), CompressionMode.Decompress);
        using var tar = new TarReader(gz);
        while (tar.GetNextEntry() is { } e)
        {
            using var ms = new MemoryStream();
            e.DataStream?.CopyTo(ms);
            result[e.Name.TrimEnd('/')] = (ms.ToArray(), (int)e.Mode);
        }
        return result;
    }

    public Task DisposeAsync()
    {
        Py.Dispose();
        W.Dispose();
        return Task.CompletedTask;
    }
}

[Trait("Category", "Integration")]
public sealed class WheelImagePipelineTests(WheelImageWorkspace ws) : IClassFixture<WheelImageWorkspace>
{
    private const string Site = "usr/local/lib/python3.13/dist-packages";

    [Fact]
    public void Lock_PylockPinsTheWheelsChosenByTheImagesLockedGlibc()
    {
        var report = Assert.Single(ws.PythonLock);
        Assert.Equal("app", report.Image);
        var pylock = PyLock.Load(Path.Combine(ws.W.ImagesDir, "python", "pylock.app.toml"));
        Assert.Equal(["certifi", "hiext"], pylock.Packages.Select(p => p.Name));
        Assert.Empty(ImageLocker.Check(ImageSet.Load(ws.W.ImagesDir), LockFile.Load(ws.W.LockPath)));
        Assert.Empty(PythonLocker.Check(ImageSet.Load(ws.W.ImagesDir)));
    }

    [Theory]
    [InlineData("amd64", "x86_64")]
    [InlineData("arm64", "aarch64")]
    public void Build_InstallsTheWheelsOfEachArchitectureIntoOneLayer(string arch, string machine)
    {
        var layer = ws.Layer(ws.Build, ws.W.Artifacts, "app", arch);
        Assert.Equal("hardenimage\n", Encoding.UTF8.GetString(layer[$"{Site}/certifi-2023.5.7.dist-info/INSTALLER"].Content));
        Assert.True(layer.ContainsKey($"{Site}/hiext/_native.cpython-313-{machine}-linux-gnu.so"));
        Assert.DoesNotContain(layer.Keys, k => k.Contains("linux-gnu.so", StringComparison.Ordinal) && !k.Contains(machine, StringComparison.Ordinal));
        Assert.StartsWith("#!/usr/bin/python3\n", Encoding.UTF8.GetString(layer["usr/local/bin/certifi-where"].Content));
        Assert.Equal(0b111_101_101, layer["usr/local/bin/certifi-where"].Mode);
        // Only the child's own files: the parent's packages stay in the parent's layer.
        Assert.DoesNotContain(layer.Keys, k => k.StartsWith("usr/bin/su", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Build_IsReproducible_OnAnotherMachine()
    {
        using var other = new Infrastructure.TempDir("hi-wheels-again");
        var again = await ws.BuildAsync(other.Combine("artifacts"), other.Combine("cache"));
        Assert.Equal(ws.Build.Manifest.Image("app")!.Index, again.Manifest.Image("app")!.Index);
    }

    [Fact]
    public async Task SbomAndScan_SeeTheWheels_AsPypiComponentsWithTheWheelHash()
    {
        var built = ws.Build.Manifest.Image("app")!.Architectures.Single(a => a.Architecture == "amd64");
        var layout = OciLayout.OpenOrCreate(Path.Combine(ws.W.Artifacts, "oci"));
        var locked = LockFile.Load(ws.W.LockPath).Images.SelectMany(i => i.Architectures.Where(a => a.Architecture == "amd64")).SelectMany(a => a.Packages);
        var inv = ImageInventoryReader.Read(layout, built.Manifest, locked, "app");
        var certifi = inv.PythonDistributions.Single(d => d.NormalizedName == "certifi");
        Assert.Equal(("2023.5.7", PythonLocations.SysPath), (certifi.Version, certifi.Location));
        Assert.Equal(WheelBuilder.Sha256(ws.Py.Certifi.Build()), certifi.WheelSha256);

        using var sbom = JsonDocument.Parse(CycloneDxWriter.Write(inv));
        var component = sbom.RootElement.GetProperty("components").EnumerateArray().Single(c => c.GetProperty("purl").GetString() == "pkg:pypi/certifi@2023.5.7");
        var hash = component.GetProperty("hashes").EnumerateArray().Single();
        Assert.Equal(("SHA-256", WheelBuilder.Sha256(ws.Py.Certifi.Build())), (hash.GetProperty("alg").GetString(), hash.GetProperty("content").GetString()));
        Assert.Contains(sbom.RootElement.GetProperty("components").EnumerateArray(), c => c.GetProperty("purl").GetString() == "pkg:pypi/hiext@1.0");

        // The real PyPI advisory PYSEC-2023-135 (certifi < 2023.7.22, the e-Tugra root) matches the installed wheel.
        var scan = await new VulnerabilityScanner(RealIndex, new PolicyGate(VulnerabilityPolicy.Default, Nov2026), Nov2026, null, "vulndb")
            .ScanAsync(inv, allowUnscanned: true);
        var finding = Assert.Single(scan.Findings, f => f.Id == "PYSEC-2023-135" || f.Aliases.Contains("PYSEC-2023-135"));
        Assert.Equal(("certifi", "pypi", "2023.5.7"), (finding.Package, finding.PackageType, finding.InstalledVersion));
    }

    [Fact]
    public async Task Build_RefusesAWheelFileThatADebianPackageShips_UnlessConflictsNamesTheWinner()
    {
        // A Debian package in the parent ships /usr/local/bin/certifi-where too.
        foreach (var arch in new[] { "amd64", "arm64" })
            ws.W.Repo.Add(new FakePackage("certifi-shadow", "1.0-1", arch).WithFile("/usr/local/bin/certifi-where", "#!/bin/sh\necho debian\n", (UnixFileMode)Convert.ToInt32("755", 8)));
        ws.W.Repo.Publish();
        using var copy = new Infrastructure.TempDir("hi-wheel-conflict");
        var images = copy.Combine("images");
        foreach (var f in Directory.GetFiles(ws.W.ImagesDir, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(images, Path.GetRelativePath(ws.W.ImagesDir, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }
        File.WriteAllText(Path.Combine(images, "app.yaml"), File.ReadAllText(Path.Combine(images, "app.yaml")).Replace("version: \"1.0\"", "version: \"1.0\"\npackages: [certifi-shadow]"));
        var lockPath = Path.Combine(images, "images.lock.json");
        async Task Lock()
        {
            var s = ImageSet.Load(images);
            using var http = HardenImage.Apt.AptRepositoryClient.CreateHttpClient();
            var client = new HardenImage.Apt.AptRepositoryClient(http, new HardenImage.Apt.AptIndexCache(copy.Combine("cache", "indices")));
            var outcome = await new ImageLocker(new AptSuiteIndexReader(client, s.Directory)).LockAsync(s, LockFile.Load(lockPath), new LockOptions { Images = ["app"] });
            outcome.Lock.Save(lockPath);
        }
        await Lock();
        var artifacts = copy.Combine("artifacts");
        async Task<BuildOutcome> Build()
        {
            var s = ImageSet.Load(images);
            var l = LockFile.Load(lockPath);
            var all = l.Images.SelectMany(i => i.Architectures).SelectMany(a => a.Packages).DistinctBy(p => p.Sha256).ToList();
            using var http = new HttpClient();
            await PythonStage.FetchAsync(s, null, ws.W.Cache, http, PythonImageSet.Environment);
            var fetched = await new HardenImage.Apt.DebFetcher(http, new HardenImage.Apt.DebCache(ws.W.Cache)).FetchAsync(all.Select(HardenImage.Apt.DebDownload.From).ToList());
            var paths = fetched.ToDictionary(f => f.Deb.Sha256, f => f.Path);
            return await new ImageBuilder(s, l, new BuildOptions { ArtifactsDir = artifacts, CacheRoot = ws.W.Cache, CacheKey = ws.W.CacheKey }).BuildAsync(p => paths[p.Sha256]);
        }
        var e = await Assert.ThrowsAsync<HardenException>(Build);
        Assert.Contains("image app: certifi-shadow and wheel certifi-2023.5.7-py3-none-any.whl both ship /usr/local/bin/certifi-where with different content", e.Message);
        Assert.Contains("conflicts: (\"/usr/local/bin/certifi-where\": pypi:certifi)", e.Message);
        Assert.False(File.Exists(Path.Combine(artifacts, "build.json"))); // nothing half-written

        File.AppendAllText(Path.Combine(images, "app.yaml"), "\nconflicts:\n  /usr/local/bin/certifi-where: pypi:certifi\n");
        await Lock();
        var built = await Build();
        var layer = ws.Layer(built, artifacts, "app", "amd64");
        Assert.StartsWith("#!/usr/bin/python3", Encoding.UTF8.GetString(layer["usr/local/bin/certifi-where"].Content));
    }
}
