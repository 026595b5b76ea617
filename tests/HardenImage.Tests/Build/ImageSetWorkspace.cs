using HardenImage.Apt;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Lock;
using HardenImage.Tests.Fixtures;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Build;

/// <summary>
/// A hermetic image set: a signed fixture apt repository on loopback (amd64 + arm64) with small fake packages
/// shaped like the real ones (shells, setuid files, docs, CA certificates, a debconf dependency), an images/
/// directory pointing at it, and a static probe binary as payload. Lock and build run through the library, as
/// the CLI does.
/// </summary>
public sealed class ImageSetWorkspace : IDisposable
{
    private readonly TempDir _dir = new("hi-imageset");

    public ImageSetWorkspace()
    {
        Repo = new AptRepositoryFixture(architectures: ["amd64", "arm64"]);
        foreach (var arch in new[] { "amd64", "arm64" })
        {
            var triplet = arch == "amd64" ? "x86_64-linux-gnu" : "aarch64-linux-gnu";
            Repo.Add(
                new FakePackage("base-files", "13.8", arch).Essential()
                    .WithFile("/etc/os-release", "PRETTY_NAME=\"Fixture GNU/Linux\"\nID=debian\nVERSION_ID=\"13\"\n")
                    .WithFile("/usr/share/doc/base-files/copyright", "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nLicense: GPL-2+\n")
                    .WithFile("/usr/share/doc/base-files/changelog.gz", "changes")
                    .WithFile("/usr/share/man/man5/os-release.5.gz", "manpage")
                    .WithPreDepends("awk"),
                new FakePackage("fake-shell", "5.2-1", arch).WithFile("/bin/sh", "#!fake-shell", (UnixFileMode)Convert.ToInt32("755", 8))
                    .WithFile("/usr/bin/bash", "#!fake-bash", (UnixFileMode)Convert.ToInt32("755", 8)),
                new FakePackage("fake-su", "1.0-1", arch).WithFile("/usr/bin/su", "setuid-binary", (UnixFileMode)Convert.ToInt32("4755", 8)),
                new FakePackage("libfake1", "1.0-1", arch).WithSource("fake", "1.0-1").WithDepends("fake-common (>= 1.0)")
                    .WithFile($"/usr/lib/{triplet}/libfake.so.1", "ELF-ish " + arch),
                new FakePackage("fake-tool", "2.0-1", arch).WithDepends("libfake1 (>= 1.0)").WithFile("/usr/bin/fake-tool", "tool " + arch, (UnixFileMode)Convert.ToInt32("755", 8)),
                new FakePackage("mawk", "1.3.4-1", arch).WithProvides("awk").WithFile("/usr/bin/mawk", "awk", (UnixFileMode)Convert.ToInt32("755", 8)));
        }
        Repo.Add(
            new FakePackage("fake-common", "1.0-1", "all").WithDepends("debconf (>= 0.5)").WithFile("/usr/share/fake/data.txt", "shared data"),
            new FakePackage("debconf", "1.5.91", "all").WithFile("/usr/share/debconf/confmodule", "#!/bin/sh"),
            new FakePackage("ca-certificates", "20250419", "all").WithDepends("debconf (>= 0.5) | debconf-2.0")
                .WithFile("/usr/share/ca-certificates/mozilla/Fixture_Root_A.crt", "-----BEGIN CERTIFICATE-----\nQUFB\n-----END CERTIFICATE-----\n")
                .WithFile("/usr/share/ca-certificates/mozilla/Fixture_Root_B.crt", "-----BEGIN CERTIFICATE-----\nQkJC\n-----END CERTIFICATE-----\n"));
        // Hostile packages for the rejection tests: two packages shipping one path with different content, a
        // symlink out of the tree and a package writing through it, and one whose .deb a test rewrites with "../".
        Repo.Add(
            new FakePackage("conflict-a", "1.0", "all").WithFile("/usr/share/conflict.txt", "from a"),
            new FakePackage("conflict-b", "1.0", "all").WithFile("/usr/share/conflict.txt", "from b"),
            new FakePackage("evil-link", "1.0", "all").WithSymlink("/usr/lib/evil", "/etc"),
            new FakePackage("through-link", "1.0", "all").WithDepends("evil-link").WithFile("/usr/lib/evil/passwd", "root::0:0::/:/bin/sh"),
            new FakePackage("dotdot", "1.0", "all").WithFile("/usr/share/dotdot/ok.txt", "fine"));
        Repo.ReleaseDate = new DateTimeOffset(2025, 5, 17, 0, 0, 0, TimeSpan.Zero);
        Repo.Publish();

        ImagesDir = _dir.Combine("images");
        Directory.CreateDirectory(Path.Combine(ImagesDir, "keys"));
        Directory.CreateDirectory(Path.Combine(ImagesDir, "payload"));
        File.Copy(Repo.KeyringPath, Path.Combine(ImagesDir, "keys", "fixture.gpg"));
        var gcc = RequiredService.Tool("gcc", "gcc");
        RequiredService.RunOk(gcc, ["-static", "-Os", "-o", Path.Combine(ImagesDir, "payload", "whoami"),
            Path.Combine(AppContext.BaseDirectory, "TestData", "Oci", "whoami.c")]);
        File.WriteAllText(Path.Combine(ImagesDir, "sources.yaml"), $"""
            sources:
              fixture:
                url: {Repo.BaseUrl}
                suites: [stable]
                components: [main]
                architectures: [amd64, arm64]
                keyring: keys/fixture.gpg
            """);
        WriteImage("base", """
            name: base
            version: "1.0"
            sources: [fixture]
            architectures: [amd64, arm64]
            packages: [base-files, fake-shell, fake-su, libfake1, ca-certificates]
            exclude: [debconf, debconf-2.0, mawk, awk]
            files:
              - source: payload/whoami
                target: /usr/local/bin/whoami
                mode: "0755"
            entrypoint: [/usr/local/bin/whoami]
            """);
        WriteImage("tool", """
            name: tool
            from: base
            packages: [fake-tool]
            """);
        Cache = _dir.Combine("cache");
        Artifacts = _dir.Combine("artifacts");
    }

    public AptRepositoryFixture Repo { get; }
    public string ImagesDir { get; }
    public string Cache { get; }
    public string Artifacts { get; }
    public string LockPath => Path.Combine(ImagesDir, "images.lock.json");
    /// <summary>This workspace's cache key (the per-user key file is never touched by tests).</summary>
    public CacheKey CacheKey { get; set; } = CacheKey.FromSecret(Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)), "test");

    public string Combine(params string[] parts) => _dir.Combine(parts);

    public void WriteImage(string name, string yaml) => File.WriteAllText(Path.Combine(ImagesDir, name + ".yaml"), yaml);

    public async Task<LockOutcome> LockAsync(bool update = false, params string[] images)
    {
        var set = ImageSet.Load(ImagesDir);
        var existing = File.Exists(LockPath) ? LockFile.Load(LockPath) : null;
        using var http = AptRepositoryClient.CreateHttpClient();
        var client = new AptRepositoryClient(http, new AptIndexCache(Path.Combine(Cache, "indices")));
        var outcome = await new ImageLocker(new AptSuiteIndexReader(client, set.Directory)).LockAsync(set, existing, new LockOptions { Update = update, Images = images });
        outcome.Lock.Save(LockPath);
        return outcome;
    }

    public async Task<BuildOutcome> BuildAsync(string? artifacts = null, string? cache = null, bool force = false, params string[] images) =>
        await BuildAsync(unpackWhileFetching: true, artifacts, cache, force, images);

    /// <summary>
    /// Fetches and builds as `harden build` does: with <paramref name="unpackWhileFetching"/> each .deb is handed to the
    /// builder as it lands (ImageBuilder.StartUnpacking), otherwise only after every download (the fan-out job's way).
    /// </summary>
    public Task<BuildOutcome> BuildAsync(bool unpackWhileFetching, string? artifacts = null, string? cache = null, bool force = false, params string[] images) =>
        BuildAsync(unpackWhileFetching, null, artifacts, cache, force, images);

    /// <summary>
    /// As <see cref="BuildAsync(bool, string?, string?, bool, string[])"/>, with <paramref name="betweenFetchAndBuild"/>
    /// run once every .deb is in the cache, before the build (what a concurrent process does meanwhile).
    /// </summary>
    public Task<BuildOutcome> BuildAsync(Func<ImageBuilder, Task> betweenFetchAndBuild, bool unpackWhileFetching = true, bool force = false) =>
        BuildAsync(unpackWhileFetching, betweenFetchAndBuild, null, null, force, []);

    private async Task<BuildOutcome> BuildAsync(bool unpackWhileFetching, Func<ImageBuilder, Task>? betweenFetchAndBuild, string? artifacts, string? cache, bool force, string[] images)
    {
        var set = ImageSet.Load(ImagesDir);
        var lockFile = LockFile.Load(LockPath);
        cache ??= Cache;
        var selected = set.Select(images).Select(i => i.Name).ToHashSet();
        var all = lockFile.Images.Where(i => selected.Contains(i.Name)).SelectMany(i => i.Architectures).SelectMany(a => a.Packages).DistinctBy(p => p.Sha256).ToList();
        var builder = new ImageBuilder(set, lockFile, new BuildOptions { ArtifactsDir = artifacts ?? Artifacts, CacheRoot = cache, Force = force, Images = images, CacheKey = CacheKey });
        using var http = new HttpClient();
        var fetched = await new DebFetcher(http, new DebCache(cache)).FetchAsync(all.Select(DebDownload.From).ToList(), arrived: unpackWhileFetching
            ? deb => builder.StartUnpacking(deb.Deb.Sha256, p => p.Sha256 == deb.Deb.Sha256 ? deb.Path : throw new InvalidOperationException("another .deb"), default)
            : null);
        var paths = fetched.ToDictionary(f => f.Deb.Sha256, f => f.Path);
        LastBuilder = builder;
        if (betweenFetchAndBuild != null) await betweenFetchAndBuild(builder);
        return await builder.BuildAsync(p => paths[p.Sha256]);
    }

    /// <summary>The builder of the last <see cref="BuildAsync(bool, string?, string?, bool, string[])"/>.</summary>
    public ImageBuilder? LastBuilder { get; private set; }

    public void Dispose()
    {
        Repo.Dispose();
        _dir.Dispose();
    }
}
