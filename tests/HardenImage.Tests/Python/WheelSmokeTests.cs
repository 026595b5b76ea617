using HardenImage.Apt;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Deb;
using HardenImage.Deploy;
using HardenImage.Lock;
using HardenImage.Python;
using HardenImage.Tests.Infrastructure;
using Xunit.Abstractions;

namespace HardenImage.Tests.Python;

/// <summary>
/// The real thing, once: the repository's base → cc → python chain (Debian 13's python3.13 from deb.debian.org,
/// as the main job builds it) plus an image "pyapp" whose only content is wheels from a loopback index, built for
/// amd64 and arm64 and started (the host's in the Docker engine): Debian's interpreter imports the wheels from
/// /usr/local/lib/python3.13/dist-packages — a pure-Python wheel and one with a real compiled extension module, for amd64
/// and arm64 (the other architecture under qemu-user-static) — and runs a console script. Needs the Debian archive and the Docker engine
/// (ENVIRONMENT.md); the cache is $HARDEN_CACHE when set (a warm copy of the main job's), else a temp directory.
/// </summary>
[Trait("Category", "Integration")]
public sealed class WheelSmokeTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new("hi-wheel-smoke");
    private readonly PythonImageSet _py = new();

    [Fact]
    public async Task DebiansPython_ImportsTheInstalledWheels_AndRunsTheirConsoleScript()
    {
        var repoImages = Path.Combine(RepoRoot.Find(), "images");
        var images = _dir.Combine("images");
        Directory.CreateDirectory(images);
        foreach (var f in new[] { "sources.yaml", "images.lock.json", "base.yaml", "cc.yaml", "python.yaml" })
            File.Copy(Path.Combine(repoImages, f), Path.Combine(images, f));
        foreach (var f in Directory.GetFiles(Path.Combine(repoImages, "keys")))
        {
            Directory.CreateDirectory(Path.Combine(images, "keys"));
            File.Copy(f, Path.Combine(images, "keys", Path.GetFileName(f)));
        }
        Directory.CreateDirectory(Path.Combine(images, "python"));
        var arch = SmokeRunner.HostArchitecture();
        var cache = Environment.GetEnvironmentVariable("HARDEN_CACHE") is { Length: > 0 } c ? c : _dir.Combine("cache");
        // A real compiled extension for each architecture: CPython's own _queue module, compiled by Debian, taken
        // from the locked libpython3.13-stdlib .deb and shipped in a manylinux wheel as hiqueue._queue.
        string[] arches = ["amd64", "arm64"];
        var extensions = new List<WheelBuilder>();
        foreach (var a in arches)
            extensions.Add(await CompiledExtensionWheel(Path.Combine(images, "images.lock.json"), a, cache));
        foreach (var e in extensions) _py.Public.Add("hiqueue", e);
        File.WriteAllText(Path.Combine(images, "python", "requirements.txt"),
            PythonImageSet.Requirement("certifi", "2023.5.7", _py.Certifi) + PythonImageSet.Requirement("hiqueue", "1.0", [.. extensions]));
        File.WriteAllText(Path.Combine(images, "pyapp.yaml"), $$"""
            name: pyapp
            from: python
            version: "1.0"
            architectures: [amd64, arm64]
            python:
              requirements: python/requirements.txt
              lock: python/pylock.pyapp.toml
              indexes:
                - name: public
                  url: {{_py.Public.SimpleUrl}}
                  packages: ["*"]
            smoke:
              - name: imports-wheel
                command: ["-c", "import certifi, sys; print('where', certifi.where(), certifi.__file__)"]
                outputContains: "where /etc/ssl/certs/ca-certificates.crt /usr/local/lib/python3.13/dist-packages/certifi/__init__.py"
              - name: console-script
                command: ["/usr/local/bin/certifi-where"]
                exitCode: 0
                outputContains: /etc/ssl/certs/ca-certificates.crt
              - name: imports-compiled-extension
                command: ["-c", "import hiqueue._queue as q; s = q.SimpleQueue(); s.put(42); print('ext', s.get(), q.__file__)"]
                outputContains: "ext 42 /usr/local/lib/python3.13/dist-packages/hiqueue/_queue.cpython-313-"
              - name: installer-recorded
                command: ["-c", "import importlib.metadata as m; d=m.distribution('certifi'); print('by', d.read_text('INSTALLER').strip(), d.version)"]
                outputContains: "by hardenimage 2023.5.7"
            """);
        var set = ImageSet.Load(images);
        var lockPath = Path.Combine(images, "images.lock.json");
        using (var aptHttp = AptRepositoryClient.CreateHttpClient())
        {
            var client = new AptRepositoryClient(aptHttp, new AptIndexCache(Path.Combine(cache, "indices")));
            var outcome = await new ImageLocker(new AptSuiteIndexReader(client, set.Directory)).LockAsync(set, LockFile.Load(lockPath), new LockOptions { Images = ["pyapp"] });
            outcome.Lock.Save(lockPath);
        }
        var lockFile = LockFile.Load(lockPath);
        using var http = new HttpClient();
        var pyReports = await PythonStage.LockAsync(set, lockFile, ["pyapp"], cache, http);
        output.WriteLine(string.Join("\n", pyReports.SelectMany(r => r.Changes)));
        await PythonStage.FetchAsync(set, ["pyapp"], cache, http);
        var debs = set.Select(["pyapp"]).Select(i => lockFile.Image(i.Name)!).SelectMany(i => i.Architectures)
            .SelectMany(a => a.Packages).DistinctBy(p => p.Sha256).ToList();
        var fetched = await new DebFetcher(http, new DebCache(cache)).FetchAsync(debs.Select(DebDownload.From).ToList());
        var paths = fetched.ToDictionary(f => f.Deb.Sha256, f => f.Path);
        var artifacts = _dir.Combine("artifacts");
        await new ImageBuilder(set, lockFile, new BuildOptions
        {
            ArtifactsDir = artifacts, CacheRoot = cache, Images = ["pyapp"], Architectures = arches,
            CacheKey = CacheKey.FromSecret(Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)), "test"),
        }).BuildAsync(p => paths[p.Sha256]);

        using var engine = new DockerEngine(RequiredService.DockerHost());
        var report = await new SmokeRunner(engine, new SmokeOptions
        {
            ArtifactsDir = artifacts, ImagesDir = images, Images = ["pyapp"], RunnableArchitectures = [arch],
            RunTimeout = TimeSpan.FromSeconds(120),
        }).RunAsync();
        foreach (var r in report.Results) output.WriteLine($"{r.Image} {r.Check} {r.Status}: {r.Detail}");
        foreach (var check in new[] { "imports-wheel", "imports-compiled-extension", "console-script", "installer-recorded" })
            foreach (var a in arches) // the other architecture under qemu-user-static (root; .ci/services installs it)
                Assert.True(report.Find("pyapp", a, check)?.Passed, $"{a} {check}: {report.Find("pyapp", a, check)?.Detail ?? "not run"}");
    }

    /// <summary>A cp313 manylinux wheel whose extension module is Debian's compiled _queue for <paramref name="arch"/>.</summary>
    private static async Task<WheelBuilder> CompiledExtensionWheel(string lockPath, string arch, string cache)
    {
        var stdlib = LockFile.Load(lockPath).Image("python")!.Architectures.Single(a => a.Architecture == arch).Packages.Single(p => p.Name == "libpython3.13-stdlib");
        using var http = new HttpClient();
        var deb = (await new DebFetcher(http, new DebCache(cache)).FetchAsync([DebDownload.From(stdlib)])).Single().Path;
        var (triplet, machine) = arch == "amd64" ? ("x86_64-linux-gnu", "x86_64") : ("aarch64-linux-gnu", "aarch64");
        var name = $"_queue.cpython-313-{triplet}.so";
        using var reader = DebPackageReader.Open(deb);
        byte[]? so = null;
        foreach (var e in reader.ReadDataEntries())
            if (e.Path.EndsWith("/lib-dynload/" + name, StringComparison.Ordinal))
            {
                using var copy = new MemoryStream();
                e.Content.CopyTo(copy);
                so = copy.ToArray();
            }
        Assert.True(so is { Length: > 1000 } && so.AsSpan(0, 4).SequenceEqual("\u007fELF"u8), $"{deb}: no ELF {name}");
        return new WheelBuilder("hiqueue", "1.0", $"cp313-cp313-manylinux_2_17_{machine}.manylinux2014_{machine}")
            .File("hiqueue/__init__.py", "from . import _queue\n")
            .File($"hiqueue/{name}", so!);
    }

    public void Dispose()
    {
        _py.Dispose();
        _dir.Dispose();
    }
}
