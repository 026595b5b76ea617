using HardenImage.Apt;
using HardenImage.Common;
using HardenImage.Tests.Fixtures;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Apt;

/// <summary>
/// An image's declared <c>provides:</c> resolve alternatives as apt resolves them with that package installed
/// (apt-pkg/depcache.cc, MarkInstall_CollectDependencies: an or-group any member of which the installed state
/// satisfies is skipped; otherwise its members are tried in order). Compared with the real apt-get on a signed
/// repository served on 127.0.0.1, with a private apt configuration and dpkg status in a temp directory.
/// </summary>
[Trait("Category", "Integration")]
public class ProvidesTests
{
    // The python image installs the interpreter through python3.13-minimal + libpython3.13-stdlib and declares
    // that it stands in for python3 and python3.13 (as Debian's python3 package would, Provides included).
    private static readonly string[] PythonProvides =
        ["python3 (= 3.13.5-1)", "python3-supported-min (= 3.13)", "python3-supported-max (= 3.13)", "python3.13"];

    private static readonly Dictionary<string, string> ParentInstalled = new(StringComparer.Ordinal)
    {
        ["python3.13-minimal"] = "3.13.5-2",
        ["libpython3.13-stdlib"] = "3.13.5-2",
    };

    // Shaped after trixie: the alternatives that pulled python3-setuptools, -exceptiongroup, -zipp… into inference-cpu.
    private static AptRepositoryFixture PythonLikeRepository() => new AptRepositoryFixture().Add(
        new FakePackage("python3.13-minimal", "3.13.5-2").WithMultiArch("allowed"),
        new FakePackage("libpython3.13-stdlib", "3.13.5-2").WithMultiArch("same").WithDepends("tzdata"),
        new FakePackage("tzdata", "2025b-4", "all"),
        new FakePackage("python3.13", "3.13.5-2").WithMultiArch("allowed")
            .WithDepends("python3.13-minimal (= 3.13.5-2), libpython3.13-stdlib (= 3.13.5-2), tzdata"),
        new FakePackage("libpython3-stdlib", "3.13.5-1").WithDepends("libpython3.13-stdlib (>= 3.13.5-1~)"),
        new FakePackage("python3", "3.13.5-1").WithMultiArch("allowed")
            .WithProvides("python3-supported-max (= 3.13), python3-supported-min (= 3.13)")
            .WithDepends("python3.13 (>= 3.13.5-1~), libpython3-stdlib (= 3.13.5-1)"),
        new FakePackage("python3-anyio", "4.8.0-3", "all")
            .WithDepends("python3-exceptiongroup | python3-supported-min (>= 3.11), python3-idna, python3:any"),
        new FakePackage("python3-exceptiongroup", "1.2.2-1", "all").WithDepends("python3:any"),
        new FakePackage("python3-idna", "3.10-1", "all").WithDepends("python3:any"),
        new FakePackage("python3-jaraco.context", "6.0.1-1", "all")
            .WithDepends("python3-setuptools | python3-supported-min (>= 3.12), python3:any"),
        new FakePackage("python3-setuptools", "78.1.1-0.1", "all")
            .WithDepends("python3-importlib-metadata | python3-supported-min (>= 3.10), python3-zipp, python3:any"),
        new FakePackage("python3-importlib-metadata", "8.7.0-1", "all").WithDepends("python3-zipp (>= 0.5), python3:any"),
        new FakePackage("python3-zipp", "3.21.0-1", "all").WithDepends("python3:any"),
        new FakePackage("python3-torch", "2.6.0+dfsg-7")
            .WithDepends("python3 (<< 3.14), python3 (>= 3.13~), python3.13:any, python3:any, libtorch2.6 (= 2.6.0+dfsg-7)"),
        new FakePackage("libtorch2.6", "2.6.0+dfsg-7"),
        // The provided version does not meet this one, so apt installs the backport: so must we.
        new FakePackage("python3-future-thing", "1.0-1", "all")
            .WithDepends("python3-tomli | python3-supported-min (>= 3.14), python3:any"),
        new FakePackage("python3-tomli", "2.2.1-1", "all").WithDepends("python3:any"),
        // Nothing installed satisfies this group: the first installable alternative wins.
        new FakePackage("app-a", "1.0-1").WithDepends("alt-one | alt-two"),
        new FakePackage("alt-one", "1.0-1"),
        new FakePackage("alt-two", "1.0-1")).Publish();

    private static readonly string[] Requested = ["python3-anyio", "python3-jaraco.context", "python3-torch", "python3-future-thing", "app-a"];

    private static async Task<PackageUniverse> UniverseOf(AptRepositoryFixture repo, TempDir dir)
    {
        var client = new AptRepositoryClient(AptRepositoryClient.CreateHttpClient(), new AptIndexCache(dir.Combine("cache")));
        var index = await client.FetchAsync(repo.Source());
        return new PackageUniverse("amd64", index.Packages);
    }

    private static ResolveRequest Request(IReadOnlyList<string> provided) => new()
    {
        Architecture = "amd64",
        Packages = Requested,
        Installed = ParentInstalled,
        Provided = provided,
        Sources = ["fixture/stable"],
        Image = "images/inference-cpu.yaml",
    };

    [Fact]
    public async Task DeclaredProvides_ResolveAlternativesAsApt_SameClosureAsAptGetInstallSimulate()
    {
        using var repo = PythonLikeRepository();
        using var dir = new TempDir("hi-provides");
        var ours = new DependencyResolver(await UniverseOf(repo, dir)).Resolve(Request(PythonProvides))
            .Packages.Select(p => p.Name).Order(StringComparer.Ordinal).ToList();

        // apt with the parent's packages installed and python3/python3.13 installed as what the image stands in for.
        var apt = AptGetInstallSimulate(repo, dir, Requested);

        Assert.Equal(apt, ours);
        Assert.Equal(["alt-one", "app-a", "libtorch2.6", "python3-anyio", "python3-future-thing", "python3-idna",
                      "python3-jaraco.context", "python3-tomli", "python3-torch"], ours);
    }

    [Fact]
    public async Task WithoutProvides_ExcludingPython3_PullsTheBackportsAptWouldNot()
    {
        using var repo = PythonLikeRepository();
        using var dir = new TempDir("hi-provides");
        var result = new DependencyResolver(await UniverseOf(repo, dir)).Resolve(Request([]) with
        {
            Excluded = ["python3", "python3.13"],
        });
        var names = result.Packages.Select(p => p.Name).ToHashSet();
        // The old behaviour this issue is about: the excluded python3 turned "X | python3-supported-min" into "X".
        Assert.Contains("python3-exceptiongroup", names);
        Assert.Contains("python3-setuptools", names);
        Assert.Contains("python3-zipp", names);
        Assert.DoesNotContain(result.Packages, p => p.Name == "python3");
    }

    [Fact]
    public async Task ProvidedVersionTooLow_InstallsTheAlternative_AndVersionedDependencyOnAnUnversionedProvideIsNotMet()
    {
        using var repo = PythonLikeRepository();
        using var dir = new TempDir("hi-provides");
        var universe = await UniverseOf(repo, dir);
        // python3 provided without a version: "python3 (>= 3.13~)" is not met by it (Policy §7.5), so python3 is installed.
        var result = new DependencyResolver(universe).Resolve(Request(["python3", "python3.13"]) with { Packages = ["python3-torch"] });
        Assert.Contains(result.Packages, p => p.Name == "python3");
        // With the version, nothing of python3's is installed.
        var versioned = new DependencyResolver(universe).Resolve(Request(PythonProvides) with { Packages = ["python3-torch"] });
        Assert.Equal(["libtorch2.6", "python3-torch"], versioned.Packages.Select(p => p.Name));
    }

    [Theory]
    [InlineData("python3 (= 3.20.0-1)", "no package in fixture/stable is python3 3.20.0-1 or provides it at that version (the index has 3.13.5-1)")]
    [InlineData("python3-supported-min (= 3.99)", "no package in fixture/stable is python3-supported-min 3.99 or provides it at that version (the index has 3.13)")]
    [InlineData("python3 (>= 3.13)", "is not one Provides entry")]
    [InlineData("python3 | python3.13", "is not one Provides entry")]
    public async Task ProvidesWithAVersionTheSignedIndexDoesNotAttest_IsRefused(string provide, string reason)
    {
        using var repo = PythonLikeRepository();
        using var dir = new TempDir("hi-provides");
        var resolver = new DependencyResolver(await UniverseOf(repo, dir));
        var e = Assert.Throws<HardenException>(() => resolver.Resolve(Request([provide])));
        Assert.Contains("images/inference-cpu.yaml", e.Message);
        Assert.Contains(reason, e.Message);
    }

    /// <summary>
    /// apt-get install -s --no-install-recommends against the fixture, with every apt directory and the dpkg status
    /// in <paramref name="dir"/>; returns the names apt would install, sorted.
    /// </summary>
    private static List<string> AptGetInstallSimulate(AptRepositoryFixture repo, TempDir dir, IEnumerable<string> packages)
    {
        var aptGet = RequiredService.Tool("apt-get", "apt");
        var root = dir.Combine("apt");
        foreach (var d in new[] { "etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/sources.list.d", "var/lib/apt/lists/partial",
                     "var/cache/apt/archives/partial", "var/lib/dpkg", "var/log/apt" })
            Directory.CreateDirectory(Path.Combine(root, d));
        // apt reads a signed-by keyring only when its name ends in .gpg (binary) or .asc.
        var keyring = Path.Combine(root, "etc/apt/fixture-archive.gpg");
        File.Copy(repo.KeyringPath, keyring, overwrite: true);
        File.WriteAllText(Path.Combine(root, "etc/apt/sources.list"),
            $"deb [arch=amd64 signed-by={keyring}] {repo.BaseUrl} stable main\n");
        var status = new System.Text.StringBuilder();
        void Installed(string name, string version, string multiArch, string? provides = null)
        {
            status.Append($"Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: misc\nMaintainer: t <t@example.invalid>\n" +
                          $"Architecture: amd64\nMulti-Arch: {multiArch}\nVersion: {version}\n");
            if (provides != null) status.Append($"Provides: {provides}\n");
            status.Append("Description: installed for the comparison\n\n");
        }
        foreach (var (n, v) in ParentInstalled) Installed(n, v, "allowed");
        // What the image declares it provides, as installed packages of those names (Provides included).
        Installed("python3", "3.13.5-1", "allowed", "python3-supported-max (= 3.13), python3-supported-min (= 3.13)");
        Installed("python3.13", "3.13.5-2", "allowed");
        File.WriteAllText(Path.Combine(root, "var/lib/dpkg/status"), status.ToString());
        string[] options =
        [
            "-o", $"Dir={root}/", "-o", $"Dir::State::status={root}/var/lib/dpkg/status",
            "-o", "Dir::Etc::TrustedParts=/nonexistent/", "-o", "Dir::Etc::Trusted=/nonexistent",
            "-o", "APT::Architecture=amd64", "-o", "APT::Architectures::=amd64", "-o", "Debug::NoLocking=1",
            "-o", "APT::Get::List-Cleanup=0", "-o", "Acquire::Languages=none", "-o", "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false",
        ];
        RequiredService.RunOk(aptGet, [.. options, "update"]);
        var output = RequiredService.RunOk(aptGet, [.. options, "install", "-s", "-y", "--no-install-recommends", .. packages]);
        return output.Split('\n').Where(l => l.StartsWith("Inst ", StringComparison.Ordinal))
            .Select(l => l.Split(' ')[1]).Order(StringComparer.Ordinal).ToList();
    }
}
