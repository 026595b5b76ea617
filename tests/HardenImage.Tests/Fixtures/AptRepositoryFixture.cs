using System.Globalization;
using System.Text;
using HardenImage.Apt;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Fixtures;

/// <summary>Key algorithm of the fixture repository's signing key.</summary>
public enum FixtureKeyType { Ed25519, Rsa }

/// <summary>
/// A fake binary package for <see cref="AptRepositoryFixture"/>. Fluent: every With* returns the same instance.
/// </summary>
public sealed class FakePackage
{
    public FakePackage(string name, string version = "1.0-1", string architecture = "amd64")
    {
        Name = name; Version = version; Architecture = architecture;
    }

    public string Name { get; }
    public string Version { get; }
    public string Architecture { get; }
    public string Component { get; private set; } = "main";
    public string? Depends { get; private set; }
    public string? PreDepends { get; private set; }
    public string? Provides { get; private set; }
    public string? Source { get; private set; }
    public bool IsEssential { get; private set; }
    public string? MultiArch { get; private set; }
    public List<(string Name, string Value)> ExtraFields { get; } = new();
    /// <summary>Files in the package: absolute path in the image → content, mode, symlink target (null for regular files).</summary>
    public List<(string Path, byte[] Content, UnixFileMode Mode, string? LinkTarget)> Files { get; } = new();

    public FakePackage WithDepends(string depends) { Depends = depends; return this; }
    public FakePackage WithPreDepends(string preDepends) { PreDepends = preDepends; return this; }
    public FakePackage WithProvides(string provides) { Provides = provides; return this; }
    /// <summary>Source field: "name" or, with a version, "name (version)".</summary>
    public FakePackage WithSource(string source, string? sourceVersion = null) { Source = sourceVersion == null ? source : $"{source} ({sourceVersion})"; return this; }
    public FakePackage Essential(bool essential = true) { IsEssential = essential; return this; }
    public FakePackage WithMultiArch(string multiArch) { MultiArch = multiArch; return this; }
    public FakePackage InComponent(string component) { Component = component; return this; }
    public FakePackage WithField(string name, string value) { ExtraFields.Add((name, value)); return this; }

    public FakePackage WithFile(string path, string content, UnixFileMode mode = (UnixFileMode)0b110_100_100) =>
        WithFile(path, Encoding.UTF8.GetBytes(content), mode);

    public FakePackage WithFile(string path, byte[] content, UnixFileMode mode = (UnixFileMode)0b110_100_100)
    {
        Files.Add((path, content, mode, null)); return this;
    }

    public FakePackage WithSymlink(string path, string target) { Files.Add((path, [], 0, target)); return this; }

    /// <summary>Debian pool name: epoch stripped, as the archive does.</summary>
    public string DebFileName
    {
        get
        {
            var colon = Version.IndexOf(':');
            return $"{Name}_{(colon >= 0 ? Version[(colon + 1)..] : Version)}_{Architecture}.deb";
        }
    }

    internal string ControlText()
    {
        var sb = new StringBuilder();
        sb.Append("Package: ").Append(Name).Append('\n');
        if (Source != null) sb.Append("Source: ").Append(Source).Append('\n');
        sb.Append("Version: ").Append(Version).Append('\n');
        sb.Append("Architecture: ").Append(Architecture).Append('\n');
        if (IsEssential) sb.Append("Essential: yes\n");
        if (MultiArch != null) sb.Append("Multi-Arch: ").Append(MultiArch).Append('\n');
        sb.Append("Maintainer: HardenImage Tests <tests@example.invalid>\n");
        if (PreDepends != null) sb.Append("Pre-Depends: ").Append(PreDepends).Append('\n');
        if (Depends != null) sb.Append("Depends: ").Append(Depends).Append('\n');
        if (Provides != null) sb.Append("Provides: ").Append(Provides).Append('\n');
        foreach (var (n, v) in ExtraFields) sb.Append(n).Append(": ").Append(v).Append('\n');
        sb.Append("Section: misc\nPriority: optional\n");
        sb.Append("Description: fake package ").Append(Name).Append(" for HardenImage tests\n a second line of description\n");
        return sb.ToString();
    }
}

/// <summary>
/// A real, signed apt repository built with dpkg-deb, apt-ftparchive and gpg in a temp directory, served on
/// 127.0.0.1 by an in-process <see cref="StaticHttpServer"/> (GET/HEAD, byte-exact, fault injection).
/// Packages are added fluently and built together on <see cref="Publish"/>; publishing again builds only the new
/// .debs and re-signs. The signing key (Ed25519 by default, RSA on request) is generated once per test run in an
/// isolated GNUPGHOME and shared by all fixtures.
/// <example>
/// <code>
/// using var repo = new AptRepositoryFixture(architectures: ["amd64", "arm64"]);
/// repo.Add(new FakePackage("libfoo1", "1.2-1").WithSource("foo").WithMultiArch("same")
///             .WithDepends("libc6 (>= 2.36)").WithFile("/usr/lib/libfoo.so.1", "ELF..."),
///          new FakePackage("libc6", "2.41-1").Essential(),
///          new FakePackage("tzdata", "2025a-1", "all"))
///     .Publish();
/// var client = new AptRepositoryClient(AptRepositoryClient.CreateHttpClient(), new AptIndexCache(tmpDir));
/// var index = await client.FetchAsync(repo.Source());          // AptSource: BaseUrl, Suite, Components, Archs, KeyringPath
/// repo.TamperByte(repo.DebPath("libfoo1"));                    // flip one byte of a published file
/// repo.Server.SetFault("dists/stable/InRelease", new HttpFault.Status(500));
/// repo.ReleaseValidUntil = DateTimeOffset.UtcNow.AddDays(-1); repo.Publish();   // an expired Release
/// </code>
/// </example>
/// Paths: <see cref="RootDirectory"/> (served as <see cref="BaseUrl"/>), <see cref="InReleasePath"/>,
/// <see cref="ReleasePath"/>, <see cref="PackagesPath"/>, <see cref="DebPath"/>, <see cref="KeyringPath"/> (binary),
/// <see cref="ArmoredKeyringPath"/>. <see cref="Server"/> has the request log and the faults.
/// </summary>
public sealed class AptRepositoryFixture : IDisposable
{
    private readonly TempDir _dir = new("hi-aptrepo");
    private readonly List<FakePackage> _packages = new();
    private readonly HashSet<string> _built = new(StringComparer.Ordinal);
    private readonly FixtureSigningKey _key;

    /// <param name="suite">Suite and codename; a value ending in '/' makes a flat repository (e.g. "./").</param>
    /// <param name="components">Components of a non-flat repository.</param>
    /// <param name="architectures">Architectures listed in Release (binary-ARCH indices are written for each).</param>
    public AptRepositoryFixture(string suite = "stable", IReadOnlyList<string>? components = null,
        IReadOnlyList<string>? architectures = null, FixtureKeyType keyType = FixtureKeyType.Ed25519)
    {
        RequiredService.Tool("apt-ftparchive", "apt-utils");
        RequiredService.Tool("dpkg-deb", "dpkg");
        RequiredService.Tool("gpg", "gnupg");
        RequiredService.Tool("xz", "xz-utils");
        Suite = suite;
        Components = components ?? ["main"];
        Architectures = architectures ?? ["amd64"];
        _key = FixtureSigningKey.Get(keyType);
        RootDirectory = _dir.Combine("repo");
        Directory.CreateDirectory(RootDirectory);
        Server = new StaticHttpServer(RootDirectory);
    }

    public string Suite { get; }
    public IReadOnlyList<string> Components { get; }
    public IReadOnlyList<string> Architectures { get; }
    public bool IsFlat => Suite.EndsWith('/');

    /// <summary>The repository root on disk (what <see cref="BaseUrl"/> serves).</summary>
    public string RootDirectory { get; }
    public StaticHttpServer Server { get; }

    /// <summary>http://127.0.0.1:PORT (no trailing slash): the repository root, as in a sources.list line.</summary>
    public string BaseUrl => Server.BaseUrl.TrimEnd('/');

    /// <summary>Binary keyring (gpg --export) holding the fixture's public key.</summary>
    public string KeyringPath => _key.KeyringPath;
    /// <summary>The same key, ASCII-armoured.</summary>
    public string ArmoredKeyringPath => _key.ArmoredKeyringPath;
    /// <summary>Fingerprint of the signing key (upper-case hex).</summary>
    public string KeyFingerprint => _key.Fingerprint;

    /// <summary>Date written into Release (default: the time of <see cref="Publish"/>).</summary>
    public DateTimeOffset? ReleaseDate { get; set; }
    /// <summary>Valid-Until written into Release (default: none).</summary>
    public DateTimeOffset? ReleaseValidUntil { get; set; }
    /// <summary>Like the Debian archive: every Packages file is also written to <c>by-hash/SHA256/&lt;hex&gt;</c> beside it
    /// (earlier ones stay, as on a mirror) and Release says <c>Acquire-By-Hash: yes</c>.</summary>
    public bool AcquireByHash { get; set; }
    /// <summary>Compression of the .debs' members (dpkg-deb -Z): xz (Debian's default), gzip, zstd or none.</summary>
    public string DebCompression { get; set; } = "xz";

    public IReadOnlyList<FakePackage> Packages => _packages;

    /// <summary>Directory of InRelease (dists/SUITE, or the flat directory).</summary>
    public string DistDirectory => IsFlat ? Path.GetFullPath(Path.Combine(RootDirectory, Suite)) : Path.Combine(RootDirectory, "dists", Suite);
    public string InReleasePath => Path.Combine(DistDirectory, "InRelease");
    public string ReleasePath => Path.Combine(DistDirectory, "Release");

    /// <summary>Path of a Packages index; <paramref name="extension"/> is "", ".gz" or ".xz".</summary>
    public string PackagesPath(string architecture = "amd64", string extension = ".xz", string component = "main") =>
        IsFlat ? Path.Combine(DistDirectory, "Packages" + extension)
               : Path.Combine(DistDirectory, component, $"binary-{architecture}", "Packages" + extension);

    /// <summary>URL path of a file relative to the root, for <see cref="StaticHttpServer.SetFault"/>.</summary>
    public string RelativeUrlPath(string path) => Path.GetRelativePath(RootDirectory, path).Replace('\\', '/');

    /// <summary>On-disk path of a published .deb (the first package of that name, or name+version).</summary>
    public string DebPath(string name, string? version = null)
    {
        var p = _packages.First(x => x.Name == name && (version == null || x.Version == version));
        return Path.Combine(RootDirectory, PoolDirectory(p), p.DebFileName);
    }

    /// <summary>An <see cref="AptSource"/> for this repository and its keyring.</summary>
    public AptSource Source(string name = "fixture", bool armouredKeyring = false) => new()
    {
        Name = name,
        BaseUrl = BaseUrl,
        Suite = Suite,
        Components = Components,
        Architectures = Architectures,
        KeyringPaths = [armouredKeyring ? ArmoredKeyringPath : KeyringPath],
    };

    public AptRepositoryFixture Add(params FakePackage[] packages)
    {
        _packages.AddRange(packages);
        return this;
    }

    private string PoolDirectory(FakePackage p) => IsFlat ? "pool" : Path.Combine("pool", p.Component);

    /// <summary>Builds new .debs, writes Packages (plain, .gz, .xz), Release and a signed InRelease.</summary>
    public AptRepositoryFixture Publish()
    {
        var script = new StringBuilder("set -e\n");
        var stage = _dir.Combine("stage");
        foreach (var p in _packages)
        {
            var debRel = Path.Combine(PoolDirectory(p), p.DebFileName);
            if (!_built.Add(debRel)) continue;
            var root = Path.Combine(stage, $"{p.Name}_{p.Version.Replace(':', '_')}_{p.Architecture}");
            Directory.CreateDirectory(Path.Combine(root, "DEBIAN"));
            File.WriteAllText(Path.Combine(root, "DEBIAN", "control"), p.ControlText());
            foreach (var (path, content, mode, link) in p.Files)
            {
                var target = Path.Combine(root, path.TrimStart('/'));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                if (link != null) File.CreateSymbolicLink(target, link);
                else
                {
                    File.WriteAllBytes(target, content);
                    if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(target, mode);
                }
            }
            Directory.CreateDirectory(Path.Combine(RootDirectory, PoolDirectory(p)));
            script.Append($"dpkg-deb -Z{DebCompression} --root-owner-group --build {Q(root)} {Q(Path.Combine(RootDirectory, debRel))} >/dev/null\n");
        }
        script.Append($"cd {Q(RootDirectory)}\n");
        if (IsFlat)
        {
            script.Append($"mkdir -p {Q(DistDirectory)}\n");
            script.Append($"apt-ftparchive packages pool > {Q(PackagesPath(extension: ""))}\n");
            script.Append($"xz -kf {Q(PackagesPath(extension: ""))}; gzip -kfn9 {Q(PackagesPath(extension: ""))}\n");
        }
        else
        {
            foreach (var c in Components)
            foreach (var a in Architectures)
            {
                var plain = PackagesPath(a, "", c);
                script.Append($"mkdir -p {Q(Path.GetDirectoryName(plain)!)}\n");
                script.Append($"if [ -d pool/{c} ]; then apt-ftparchive --arch {a} packages pool/{c} > {Q(plain)}; else : > {Q(plain)}; fi\n");
                script.Append($"xz -kf {Q(plain)}; gzip -kfn9 {Q(plain)}\n");
                if (AcquireByHash)
                {
                    var byHash = Path.Combine(Path.GetDirectoryName(plain)!, "by-hash", "SHA256");
                    script.Append($"mkdir -p {Q(byHash)}; for f in {Q(plain)} {Q(plain + ".xz")} {Q(plain + ".gz")}; do " +
                                  $"cp \"$f\" {Q(byHash)}/$(sha256sum \"$f\" | cut -d' ' -f1); done\n");
                }
            }
        }
        var codename = IsFlat ? "" : Suite;
        script.Append($"rm -f {Q(ReleasePath)} {Q(InReleasePath)}\n");
        script.Append("apt-ftparchive -o APT::FTPArchive::Release::Origin=HardenImageFixture -o APT::FTPArchive::Release::Label=Fixture");
        if (!IsFlat)
            script.Append($" -o APT::FTPArchive::Release::Suite={Suite} -o APT::FTPArchive::Release::Codename={codename}" +
                          $" -o 'APT::FTPArchive::Release::Components={string.Join(' ', Components)}'");
        script.Append($" -o 'APT::FTPArchive::Release::Architectures={string.Join(' ', Architectures)}'");
        script.Append($" release {Q(DistDirectory)} > {Q(_dir.Combine("Release.new"))}\n");
        RequiredService.RunOk("/bin/sh", ["-c", script.ToString()]);

        // Date and Valid-Until are set here rather than through apt-ftparchive so tests can pick any instant.
        var release = File.ReadAllText(_dir.Combine("Release.new"));
        var date = (ReleaseDate ?? DateTimeOffset.UtcNow).UtcDateTime.ToString("ddd, dd MMM yyyy HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);
        var lines = release.Split('\n').Where(l => !l.StartsWith("Date:", StringComparison.Ordinal) && !l.StartsWith("Valid-Until:", StringComparison.Ordinal)).ToList();
        if (AcquireByHash) lines.Insert(0, "Acquire-By-Hash: yes");
        var insertAt = lines.FindIndex(l => l.StartsWith("Architectures:", StringComparison.Ordinal));
        lines.Insert(insertAt < 0 ? 0 : insertAt, "Date: " + date);
        if (ReleaseValidUntil is { } vu)
            lines.Insert(insertAt < 0 ? 1 : insertAt + 1, "Valid-Until: " + vu.UtcDateTime.ToString("ddd, dd MMM yyyy HH:mm:ss 'UTC'", CultureInfo.InvariantCulture));
        File.WriteAllText(ReleasePath, string.Join('\n', lines));
        _key.ClearSign(ReleasePath, InReleasePath);
        return this;
    }

    /// <summary>Flips one bit of a published file (default: a byte in the middle).</summary>
    public void TamperByte(string path, long offset = -1)
    {
        var bytes = File.ReadAllBytes(path);
        var at = offset >= 0 ? offset : bytes.Length / 2;
        bytes[at] ^= 0x01;
        File.WriteAllBytes(path, bytes);
    }

    private static string Q(string s) => "'" + s.Replace("'", "'\\''") + "'";

    public void Dispose()
    {
        Server.Dispose();
        _dir.Dispose();
    }
}

/// <summary>
/// The fixture's signing key: generated once per test run and key type in an isolated GNUPGHOME, so no test
/// touches the user's keys and key generation (slow for RSA) happens once. gpg-agent is stopped after each use.
/// </summary>
public sealed class FixtureSigningKey
{
    private static readonly Lazy<FixtureSigningKey> Ed25519 = new(() => new FixtureSigningKey(FixtureKeyType.Ed25519));
    private static readonly Lazy<FixtureSigningKey> Rsa = new(() => new FixtureSigningKey(FixtureKeyType.Rsa));
    private readonly object _signLock = new();

    public static FixtureSigningKey Get(FixtureKeyType type) => type == FixtureKeyType.Rsa ? Rsa.Value : Ed25519.Value;

    private FixtureSigningKey(FixtureKeyType type)
    {
        // Short path: gpg-agent's socket path must stay under ~100 characters.
        RemoveHomesOfDeadProcesses();
        Home = Path.Combine("/tmp", $"hi-gpg-{Environment.ProcessId}-{Guid.NewGuid():N}"[..24]);
        Directory.CreateDirectory(Home);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var algo = type == FixtureKeyType.Rsa ? "rsa3072" : "ed25519";
        Gpg("--passphrase", "", "--quick-gen-key", $"HardenImage Fixture {type} <fixture-{algo}@example.invalid>", algo, "sign", "never");
        var colons = Gpg("--with-colons", "--list-keys");
        Fingerprint = colons.Split('\n').First(l => l.StartsWith("fpr:", StringComparison.Ordinal)).Split(':')[9];
        KeyringPath = Path.Combine(Home, "keyring.gpg");
        ArmoredKeyringPath = Path.Combine(Home, "keyring.asc");
        Gpg("--output", KeyringPath, "--export", Fingerprint);
        Gpg("--armor", "--output", ArmoredKeyringPath, "--export", Fingerprint);
        StopAgent();
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(Home, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        };
    }

    public string Home { get; }
    public string Fingerprint { get; }
    public string KeyringPath { get; }
    public string ArmoredKeyringPath { get; }

    /// <summary>gpg --clearsign, then stop the gpg-agent it started: no daemon outlives the call (a test host may be
    /// killed without running exit handlers).</summary>
    public void ClearSign(string input, string output)
    {
        lock (_signLock)
            RequiredService.RunOk("/bin/sh", ["-c",
                "gpg --batch --no-tty --yes --pinentry-mode loopback --passphrase '' --local-user \"$1\" --digest-algo SHA256 " +
                "--output \"$2\" --clearsign \"$3\"; rc=$?; gpgconf --kill gpg-agent; exit $rc", "sh", Fingerprint, output, input],
                env: new Dictionary<string, string> { ["GNUPGHOME"] = Home });
    }

    // A test host may be killed before exit handlers run; its key directory is removed by the next run.
    private static void RemoveHomesOfDeadProcesses()
    {
        foreach (var dir in Directory.EnumerateDirectories("/tmp", "hi-gpg-*"))
        {
            var parts = Path.GetFileName(dir).Split('-');
            if (parts.Length < 4 || !int.TryParse(parts[2], out var pid) || Directory.Exists($"/proc/{pid}")) continue;
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private void StopAgent() =>
        RequiredService.Run("gpgconf", ["--kill", "gpg-agent"], env: new Dictionary<string, string> { ["GNUPGHOME"] = Home });

    private string Gpg(params string[] args) =>
        RequiredService.RunOk("gpg", ["--batch", "--no-tty", .. args], env: new Dictionary<string, string> { ["GNUPGHOME"] = Home });
}
