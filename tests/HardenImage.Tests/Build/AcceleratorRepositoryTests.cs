using System.Diagnostics;
using HardenImage.Apt;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Lock;
using HardenImage.Oci;
using HardenImage.Tests.Fixtures;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Build;

/// <summary>
/// The CUDA and Neuron repositories are not reachable here, so their layouts are mirrored locally: NVIDIA's flat
/// repository per architecture (<c>&lt;distro&gt;/&lt;x86_64|sbsa&gt;/</c>, selected through {arch} and archMap) and AWS's
/// Ubuntu-style suite, both with zstd-compressed .deb members. Lock and build run end to end against them; an
/// unreachable repository fails fast and names itself.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AcceleratorRepositoryTests : IDisposable
{
    private readonly TempDir _dir = new("hi-accel");
    private readonly List<AptRepositoryFixture> _repos = new();

    public void Dispose()
    {
        foreach (var r in _repos) r.Dispose();
        _dir.Dispose();
    }

    private AptRepositoryFixture Repo(string suite, string arch, params FakePackage[] packages)
    {
        var repo = new AptRepositoryFixture(suite, architectures: [arch]) { DebCompression = "zstd", ReleaseDate = new DateTimeOffset(2025, 9, 1, 0, 0, 0, TimeSpan.Zero) };
        repo.Add(packages).Publish();
        _repos.Add(repo);
        return repo;
    }

    private string Images(string sources, params (string Name, string Yaml)[] images)
    {
        var dir = _dir.Combine("images");
        Directory.CreateDirectory(Path.Combine(dir, "keys"));
        File.Copy(_repos[0].KeyringPath, Path.Combine(dir, "keys", "vendor.gpg"), overwrite: true);
        File.WriteAllText(Path.Combine(dir, "sources.yaml"), sources);
        foreach (var (name, yaml) in images) File.WriteAllText(Path.Combine(dir, name + ".yaml"), yaml);
        return dir;
    }

    private static async Task<LockFile> LockAsync(string images)
    {
        var set = ImageSet.Load(images);
        using var http = AptRepositoryClient.CreateHttpClient(TimeSpan.FromSeconds(3));
        var client = new AptRepositoryClient(http, new AptIndexCache(Path.Combine(images, "..", "cache", "indices")));
        var outcome = await new ImageLocker(new AptSuiteIndexReader(client, set.Directory)).LockAsync(set, null, new LockOptions());
        outcome.Lock.Save(Path.Combine(images, "images.lock.json"));
        return outcome.Lock;
    }

    private async Task<BuildOutcome> BuildAsync(string images, LockFile lockFile)
    {
        var cache = _dir.Combine("cache");
        using var http = new HttpClient();
        var all = lockFile.Images.SelectMany(i => i.Architectures).SelectMany(a => a.Packages).DistinctBy(p => p.Sha256).ToList();
        var fetched = await new DebFetcher(http, new DebCache(cache)).FetchAsync(all.Select(DebDownload.From).ToList());
        var paths = fetched.ToDictionary(f => f.Deb.Sha256, f => f.Path);
        return await new ImageBuilder(ImageSet.Load(images), lockFile, new BuildOptions { ArtifactsDir = _dir.Combine("artifacts"), CacheRoot = cache })
            .BuildAsync(p => paths[p.Sha256]);
    }

    [Fact]
    public async Task CudaStyleFlatRepositoryPerArchitecture_WithZstdMembers_LocksAndBuilds()
    {
        var x86 = Repo("./", "amd64",
            new FakePackage("cuda-cudart-13-0", "13.0.96-1", "amd64").WithDepends("cuda-toolkit-config-common")
                .WithFile("/usr/local/cuda-13.0/targets/x86_64-linux/lib/libcudart.so.13", "cudart x86_64"),
            new FakePackage("cuda-toolkit-config-common", "13.0.96-1", "all").WithFile("/etc/ld.so.conf.d/000_cuda.conf", "/usr/local/cuda/lib64\n"));
        var sbsa = Repo("./", "arm64",
            new FakePackage("cuda-cudart-13-0", "13.0.96-1", "arm64").WithDepends("cuda-toolkit-config-common")
                .WithFile("/usr/local/cuda-13.0/targets/sbsa-linux/lib/libcudart.so.13", "cudart sbsa"),
            new FakePackage("cuda-toolkit-config-common", "13.0.96-1", "all").WithFile("/etc/ld.so.conf.d/000_cuda.conf", "/usr/local/cuda/lib64\n"));
        // One repository per architecture: here two loopback servers, reached through archMap like x86_64/ and sbsa/.
        var images = Images($"""
            sources:
              nvidia-cuda:
                url: http://{"{arch}"}
                flat: true
                archMap: {"{"}amd64: "127.0.0.1:{new Uri(x86.BaseUrl).Port}", arm64: "127.0.0.1:{new Uri(sbsa.BaseUrl).Port}"{"}"}
                architectures: [amd64, arm64]
                keyring: keys/vendor.gpg
            """, ("cuda", "name: cuda\nsources: [nvidia-cuda]\narchitectures: [amd64, arm64]\npackages: [cuda-cudart-13-0]\n"));
        var lockFile = await LockAsync(images);
        var archs = lockFile.Image("cuda")!.Architectures;
        Assert.StartsWith(x86.BaseUrl, archs.Single(a => a.Architecture == "amd64").Packages.Single(p => p.Name == "cuda-cudart-13-0").Url);
        Assert.StartsWith(sbsa.BaseUrl, archs.Single(a => a.Architecture == "arm64").Packages.Single(p => p.Name == "cuda-cudart-13-0").Url);

        var built = await BuildAsync(images, lockFile);
        var layout = OciLayout.Open(_dir.Combine("artifacts", "oci"));
        var reader = new OciLayoutReader(layout);
        Assert.Empty(reader.Verify("cuda"));
        Assert.Equal(["amd64", "arm64"], built.Manifest.Image("cuda")!.Architectures.Select(a => a.Architecture));
        Assert.All(built.Report.Where(r => r.Image == "cuda"), r => Assert.Equal(2, r.Packages));
    }

    [Fact]
    public async Task NeuronStyleUbuntuSuite_WithZstdMembers_LocksAndBuilds()
    {
        Repo("noble", "amd64",
            new FakePackage("aws-neuronx-runtime-lib", "2.27.23.0-8deec4dbf", "amd64").WithDepends("aws-neuronx-collectives (>= 2.27)")
                .WithFile("/opt/aws/neuron/lib/libnrt.so.1", "nrt"),
            new FakePackage("aws-neuronx-collectives", "2.27.34.0-bc5b9d3c3", "amd64").WithFile("/opt/aws/neuron/lib/libnccom.so.2", "nccom"));
        var images = Images($"""
            sources:
              aws-neuron:
                url: {_repos[0].BaseUrl}
                suites: [noble]
                architectures: [amd64]
                keyring: keys/vendor.gpg
                distro: ubuntu-24.04
            """, ("neuron", "name: neuron\nsources: [aws-neuron]\narchitectures: [amd64]\npackages: [aws-neuronx-runtime-lib]\n"));
        var lockFile = await LockAsync(images);
        Assert.Equal(["aws-neuronx-collectives", "aws-neuronx-runtime-lib"], lockFile.Image("neuron")!.Architectures[0].Packages.Select(p => p.Name));
        var built = await BuildAsync(images, lockFile);
        Assert.Single(built.Manifest.Image("neuron")!.Architectures);
    }

    [Fact]
    public async Task UnreachableRepository_FailsFast_AndNamesIt()
    {
        Repo("stable", "amd64", new FakePackage("x", "1"));
        var images = Images("""
            sources:
              nvidia-cuda:
                url: http://127.0.0.1:1/compute/cuda/repos/debian13/{arch}
                flat: true
                archMap: {amd64: x86_64}
                architectures: [amd64]
                keyring: keys/vendor.gpg
            """, ("cuda", "name: cuda\nsources: [nvidia-cuda]\narchitectures: [amd64]\npackages: [cuda-cudart-13-0]\n"));
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<HardenException>(() => LockAsync(images));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"took {clock.Elapsed}"); // refused at once; only a hang reaches this generous bound
        Assert.Contains("127.0.0.1:1/compute/cuda/repos/debian13/x86_64", e.Message);
    }
}
