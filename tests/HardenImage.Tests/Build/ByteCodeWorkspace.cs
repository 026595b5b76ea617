using System.Formats.Tar;
using System.IO.Compression;
using HardenImage.Apt;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Deb;
using HardenImage.Lock;
using HardenImage.Oci;
using HardenImage.Tests.Fixtures;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Build;

/// <summary>
/// A signed fixture apt repository (loopback) serving Debian 13's real CPython 3.13 for amd64 — the files of
/// libc6, zlib1g, libexpat1, libpython3.13-minimal and python3.13-minimal exactly as the committed lock pins them
/// (read from the verified .deb cache, fetched from deb.debian.org when absent) — and an arm64 twin with the same
/// Python sources whose binaries are stand-ins that cannot run: the byte-code must come from the amd64
/// interpreter. Plus small Python packages: one that compiles, one with a syntax error. Published once per class.
/// </summary>
public sealed class ByteCodeRepository : IAsyncLifetime
{
    private static readonly string[] InterpreterPackages = ["libc6", "zlib1g", "libexpat1", "libpython3.13-minimal", "python3.13-minimal"];
    public const string StandIn = "arm64 stand-in: never executed on this machine\n";
    private const string TwinSource = "class NewType:\n    def __mro_entries__(self, bases):\n        class Dummy:\n            pass\n        return (Dummy,)\n";
    private readonly TempDir _dir = new("hi-bytecode-repo");

    public AptRepositoryFixture Repo { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Repo = new AptRepositoryFixture(architectures: ["amd64", "arm64"]) { DebCompression = "gzip" };
        var lockFile = LockFile.Load(Path.Combine(RepoRoot.Find(), "images", "images.lock.json"));
        var locked = InterpreterPackages.Select(name => lockFile.Images.SelectMany(i => i.Architectures).Where(a => a.Architecture == "amd64")
                .SelectMany(a => a.Packages).First(p => p.Name == name)).ToList();
        var debs = await RealDebsAsync(locked);
        foreach (var p in locked)
        {
            Repo.Add(FromRealDeb(p, debs[p.Sha256], "amd64"));
            Repo.Add(FromRealDeb(p, debs[p.Sha256], "arm64"));
        }
        Repo.Add(
            new FakePackage("python3-good", "1.0-1", "all")
                .WithFile("/usr/lib/python3/dist-packages/good/__init__.py", "")
                .WithFile("/usr/lib/python3/dist-packages/good/mod.py", "ANSWER = 'packaged'\ndef where():\n    import sys\n    return sys._getframe().f_code.co_filename\n")
                .WithFile("/usr/share/good/private.py", "this is not python at all ((\n")
                .WithFile("/usr/share/good/linked_target.py", "LINKED = True\n")
                .WithSymlink("/usr/lib/python3/dist-packages/good/linked.py", "/usr/share/good/linked_target.py"),
            new FakePackage("python3-broken", "1.0-1", "all")
                .WithFile("/usr/lib/python3/dist-packages/broken/__init__.py", "")
                .WithFile("/usr/lib/python3/dist-packages/broken/ok.py", "VALUE = 1\n")
                .WithFile("/usr/lib/python3/dist-packages/broken/py2only.py", "print 'python 2 only'\n"),
            // Two modules with one nested class qualname ("NewType.__mro_entries__.<locals>.Dummy", as typing.py and
            // typing_extensions.py have): compiled in one process, the second one's bytes depended on the first.
            new FakePackage("python3-twins", "1.0-1", "all")
                .WithFile("/usr/lib/python3/dist-packages/twins/a.py", TwinSource)
                .WithFile("/usr/lib/python3/dist-packages/twins/b.py", TwinSource),
            new FakePackage("python3-twin-b", "1.0-1", "all")
                .WithFile("/usr/lib/python3/dist-packages/twins/b.py", TwinSource),
            // Code nested as deep as the compiler accepts (the driver walks it recursively), and an expression
            // deeper than CPython's own compiler takes (it raises RecursionError, not SyntaxError).
            new FakePackage("python3-deep", "1.0-1", "all")
                .WithFile("/usr/lib/python3/dist-packages/deep/__init__.py", "f = " + string.Concat(Enumerable.Repeat("lambda: ", 400)) + "0\n")
                .WithFile("/usr/lib/python3/dist-packages/deep/toodeep.py", "x = " + string.Join("+", Enumerable.Repeat("1", 100_000)) + "\n")
                .WithFile("/usr/lib/python3/dist-packages/deep/fine.py", "VALUE = 2\n"),
            new FakePackage("python3-broken-too", "1.0-1", "all")
                .WithFile("/usr/lib/python3/dist-packages/brokentoo/bad.py", "def f(:\n    pass\n"));
        Repo.ReleaseDate = new DateTimeOffset(2025, 8, 10, 0, 0, 0, TimeSpan.Zero);
        Repo.Publish();
    }

    /// <summary>The .debs the lock pins, from the build cache when there (verified by SHA-256), else fetched and verified.</summary>
    private async Task<Dictionary<string, string>> RealDebsAsync(IReadOnlyList<LockedPackage> locked)
    {
        var caches = new[] { Environment.GetEnvironmentVariable("HARDEN_CACHE"), Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "hardenimage") }
            .Where(c => !string.IsNullOrEmpty(c)).Select(c => c!).ToList();
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var missing = new List<LockedPackage>();
        foreach (var p in locked)
        {
            var found = caches.Select(c => Path.Combine(c, "debs", "sha256", p.Sha256)).FirstOrDefault(f => File.Exists(f) && HardenImage.Common.Sha256Hex.OfFile(f) == p.Sha256);
            if (found != null) result[p.Sha256] = found; else missing.Add(p);
        }
        if (missing.Count > 0)
        {
            using var http = new HttpClient();
            foreach (var f in await new DebFetcher(http, new DebCache(_dir.Combine("cache"))).FetchAsync(missing.Select(DebDownload.From).ToList()))
                result[f.Deb.Sha256] = f.Path;
        }
        return result;
    }

    /// <summary>The real package's files under its own name and version; for arm64 every binary is a stand-in.</summary>
    private static FakePackage FromRealDeb(LockedPackage locked, string debPath, string arch)
    {
        var p = new FakePackage(locked.Name, locked.Version, arch);
        if (locked.Name == "python3.13-minimal") p.WithDepends("libpython3.13-minimal, zlib1g, libexpat1, libc6");
        using var reader = DebPackageReader.Open(debPath);
        foreach (var e in reader.ReadDataEntries())
        {
            // Only the interpreter's tree: docs, locales and iconv modules are not needed to run it.
            if (!(e.Path.StartsWith("usr/lib/", StringComparison.Ordinal) || e.Path.StartsWith("usr/bin/", StringComparison.Ordinal))
                || e.Path.Contains("/gconv/", StringComparison.Ordinal)) continue;
            if (e.Type == DebEntryType.Symlink) { p.WithSymlink("/" + e.Path, e.LinkTarget!); continue; }
            if (e.Type is not (DebEntryType.File or DebEntryType.HardLink)) continue;
            using var ms = new MemoryStream();
            e.Content.CopyTo(ms);
            var binary = e.Path.StartsWith("usr/bin/", StringComparison.Ordinal) || e.Path.Contains(".so", StringComparison.Ordinal);
            p.WithFile("/" + e.Path, arch == "arm64" && binary ? System.Text.Encoding.UTF8.GetBytes(StandIn) : ms.ToArray(), e.Mode);
        }
        return p;
    }

    public Task DisposeAsync()
    {
        Repo.Dispose();
        _dir.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>One image set over <see cref="ByteCodeRepository"/>: python (the interpreter) and children of it.</summary>
public sealed class ByteCodeImages : IDisposable
{
    private readonly TempDir _dir = new("hi-bytecode");

    public ByteCodeImages(ByteCodeRepository repo)
    {
        Repo = repo.Repo;
        ImagesDir = _dir.Combine("images");
        Directory.CreateDirectory(Path.Combine(ImagesDir, "keys"));
        File.Copy(Repo.KeyringPath, Path.Combine(ImagesDir, "keys", "fixture.gpg"));
        File.WriteAllText(Path.Combine(ImagesDir, "sources.yaml"), $"""
            sources:
              fixture:
                url: {Repo.BaseUrl}
                suites: [stable]
                components: [main]
                architectures: [amd64, arm64]
                keyring: keys/fixture.gpg
            """);
        WriteImage("python", """
            name: python
            sources: [fixture]
            architectures: [amd64, arm64]
            packages: [python3.13-minimal]
            symlinks:
              /usr/bin/python3: python3.13
            """);
        Directory.CreateDirectory(Path.Combine(ImagesDir, "app"));
        File.WriteAllText(Path.Combine(ImagesDir, "app", "server.py"), "import good.mod\nprint('served by', good.mod.ANSWER)\n");
        WriteImage("app", """
            name: app
            from: python
            packages: [python3-good]
            files:
              - source: app
                target: /app
            """);
    }

    public AptRepositoryFixture Repo { get; }
    public string ImagesDir { get; }
    public string Cache => _dir.Combine("cache");
    public string Artifacts => _dir.Combine("artifacts");
    public CacheKey CacheKey { get; } = CacheKey.FromSecret(Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)), "test");
    public string Combine(params string[] parts) => _dir.Combine(parts);

    public void WriteImage(string name, string yaml) => File.WriteAllText(Path.Combine(ImagesDir, name + ".yaml"), yaml);

    public async Task LockAsync()
    {
        var set = ImageSet.Load(ImagesDir);
        var lockPath = Path.Combine(ImagesDir, "images.lock.json");
        var existing = File.Exists(lockPath) ? LockFile.Load(lockPath) : null;
        using var http = AptRepositoryClient.CreateHttpClient();
        var client = new AptRepositoryClient(http, new AptIndexCache(Path.Combine(Cache, "indices")));
        var outcome = await new ImageLocker(new AptSuiteIndexReader(client, set.Directory)).LockAsync(set, existing, new LockOptions());
        outcome.Lock.Save(lockPath);
    }

    /// <summary>Locks and builds the images into <paramref name="artifacts"/> with <paramref name="cache"/>; the builder is returned for its compilers.</summary>
    public async Task<(BuildOutcome Outcome, ImageBuilder Builder)> BuildAsync(string? artifacts = null, string? cache = null, bool force = false)
    {
        await LockAsync();
        var set = ImageSet.Load(ImagesDir);
        var lockFile = LockFile.Load(Path.Combine(ImagesDir, "images.lock.json"));
        cache ??= Cache;
        var all = lockFile.Images.SelectMany(i => i.Architectures).SelectMany(a => a.Packages).DistinctBy(p => p.Sha256).ToList();
        using var http = new HttpClient();
        var fetched = await new DebFetcher(http, new DebCache(cache)).FetchAsync(all.Select(DebDownload.From).ToList());
        var paths = fetched.ToDictionary(f => f.Deb.Sha256, f => f.Path);
        var builder = new ImageBuilder(set, lockFile, new BuildOptions { ArtifactsDir = artifacts ?? Artifacts, CacheRoot = cache, Force = force, CacheKey = CacheKey });
        return (await builder.BuildAsync(p => paths[p.Sha256]), builder);
    }

    /// <summary>The image's own layer for one architecture: path → (entry, content).</summary>
    public Dictionary<string, (TarEntryType Type, byte[] Content, UnixFileMode Mode)> OwnLayer(string image, string arch, string? artifacts = null) =>
        ReadLayer(image, arch, artifacts, null);

    private Dictionary<string, (TarEntryType Type, byte[] Content, UnixFileMode Mode)> ReadLayer(string image, string arch, string? artifacts, Dictionary<string, string>? links)
    {
        artifacts ??= Artifacts;
        var built = BuildManifest.Load(Path.Combine(artifacts, "build.json")).Image(image)!;
        var layer = built.Architectures.Single(a => a.Architecture == arch).Layers[^1];
        using var blob = OciLayout.Open(Path.Combine(artifacts, "oci")).OpenBlob(layer.Digest);
        using var gz = new GZipStream(blob, CompressionMode.Decompress);
        using var tar = new TarReader(gz);
        var entries = new Dictionary<string, (TarEntryType, byte[], UnixFileMode)>(StringComparer.Ordinal);
        while (tar.GetNextEntry() is { } e)
        {
            using var ms = new MemoryStream();
            e.DataStream?.CopyTo(ms);
            entries[e.Name.TrimStart('.', '/').TrimEnd('/')] = (e.EntryType, ms.ToArray(), e.Mode);
            if (links != null && e.EntryType == TarEntryType.SymbolicLink) links[e.Name.TrimStart('.', '/').TrimEnd('/')] = e.LinkName;
        }
        return entries;
    }

    /// <summary>Unpacks the amd64 layers of <paramref name="image"/> (and its parents) into a directory, as a container root.</summary>
    public string Unpack(string image, string into)
    {
        var set = ImageSet.Load(ImagesDir);
        var chain = set.Ancestors(set.Images[image]).Reverse().Select(i => i.Name).Append(image);
        var links = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in chain)
            foreach (var (path, (type, content, mode)) in ReadLayer(name, "amd64", null, links))
            {
                var full = Path.Combine(into, path);
                if (type == TarEntryType.Directory) { Directory.CreateDirectory(full); continue; }
                Directory.CreateDirectory(Path.GetDirectoryName(full)!);
                if (File.Exists(full) || new FileInfo(full).LinkTarget != null) File.Delete(full);
                if (type == TarEntryType.SymbolicLink) { File.CreateSymbolicLink(full, links[path]); continue; }
                File.WriteAllBytes(full, content);
                File.SetUnixFileMode(full, mode | UnixFileMode.UserRead);
            }
        return into;
    }

    /// <summary>Runs the unpacked image's python3.13 (amd64, through its own ld.so) with the root's sys.path.</summary>
    public static (int ExitCode, string StdOut, string StdErr) RunPython(string root, IDictionary<string, string>? env, params string[] args)
    {
        var all = new List<string> { "--library-path", Path.Combine(root, "usr/lib/x86_64-linux-gnu"), Path.Combine(root, "usr/bin/python3.13"), "-s" };
        all.AddRange(args);
        var environment = new Dictionary<string, string>
        {
            ["PYTHONHOME"] = Path.Combine(root, "usr"),
            ["PYTHONPATH"] = Path.Combine(root, "usr/lib/python3/dist-packages"),
            ["PYTHONDONTWRITEBYTECODE"] = "1",
        };
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) environment[k] = v;
        return RequiredService.Run(Path.Combine(root, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"), all, env: environment);
    }

    public void Dispose() => _dir.Dispose();
}
