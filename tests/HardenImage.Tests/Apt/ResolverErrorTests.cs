using HardenImage.Apt;
using HardenImage.Common;

namespace HardenImage.Tests.Apt;

/// <summary>Errors a user can cause: each names the culprit, what exists, and what to do.</summary>
public class ResolverErrorTests
{
    private static BinaryPackage Pkg(string name, string version, string depends = "", string origin = "debian/trixie",
        string provides = "") =>
        ResolverFixture.Pkg(name, version, depends, origin: origin, provides: provides);

    [Fact]
    public void Resolve_MissingPackage_ListsSourcesAndClosestNames()
    {
        var r = ResolverFixture.Resolver(
            Pkg("python3", "3.13"), Pkg("python3.13", "3.13"), Pkg("python3-minimal", "3.13"),
            Pkg("python2", "2.7"), Pkg("perl", "5.40"), Pkg("zlib1g", "1.3"));

        var e = Assert.Throws<HardenException>(() => r.Resolve(ResolverFixture.Request("pyhton3") with { Image = "inference" }));

        Assert.Contains("image 'inference' (amd64)", e.Message);
        Assert.Contains("'pyhton3' was not found", e.Message);
        Assert.Contains("debian/trixie, debian-security/trixie-security", e.Message);
        Assert.Contains("Did you mean: python3, python2?", e.Message); // distances 2 and 3; python3.13 is 5 away
        Assert.DoesNotContain("zlib1g", e.Message);
    }

    [Fact]
    public void Resolve_MissingPackage_SuggestsAtMostThreeNames()
    {
        var r = ResolverFixture.Resolver(Pkg("libfoo1", "1"), Pkg("libfoo2", "1"), Pkg("libfo", "1"), Pkg("libfoo3", "1"), Pkg("libfoo-dev", "1"));

        var e = Assert.Throws<HardenException>(() => r.Resolve(ResolverFixture.Request("libfoo")));

        Assert.Contains("Did you mean: libfo, libfoo1, libfoo2?", e.Message);
    }

    [Fact]
    public void Resolve_MissingPackage_WithNothingClose_SuggestsNothing()
    {
        var r = ResolverFixture.Resolver(Pkg("libc6", "2.41"));

        var e = Assert.Throws<HardenException>(() => r.Resolve(ResolverFixture.Request("nvidia-cuda-toolkit")));

        Assert.DoesNotContain("Did you mean", e.Message);
        Assert.Contains("sources.yaml", e.Message);
    }

    [Fact]
    public void Resolve_UnsatisfiableVersion_SaysWhoNeedsWhatAndWhichVersionsExist()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1.0", "libfoo"),
            Pkg("libfoo", "2.0-1", "libbar (>= 3.0)"),
            Pkg("libbar", "2.5-1"),
            Pkg("libbar", "2.9-1", origin: "debian-security/trixie-security"));

        var e = Assert.Throws<HardenException>(() => r.Resolve(ResolverFixture.Request("app")));

        Assert.Contains("libfoo 2.0-1 (from debian/trixie) depends on 'libbar (>= 3.0)'", e.Message);
        Assert.Contains("available libbar versions: 2.9-1 (debian-security/trixie-security), 2.5-1 (debian/trixie)", e.Message);
        Assert.Contains("Pulled in by: app → libfoo", e.Message);
    }

    [Fact]
    public void Resolve_ConflictingVersionRequirements_NameBothSides()
    {
        var r = ResolverFixture.Resolver(
            Pkg("a", "1", "lib (>= 2)"),
            Pkg("b", "1", "lib (<< 2)"),
            Pkg("lib", "1"), Pkg("lib", "2"));

        var e = Assert.Throws<HardenException>(() => r.Resolve(ResolverFixture.Request("a", "b")));

        Assert.Contains("lib (>= 2)", e.Message);
        Assert.Contains("lib (<< 2)", e.Message);
        Assert.Contains("available lib versions: 2 (debian/trixie), 1 (debian/trixie)", e.Message);
    }

    [Fact]
    public void Resolve_DependencyOnOlderParentPackage_SaysSo()
    {
        var r = ResolverFixture.Resolver(Pkg("app", "1", "libc6 (>= 2.42)"), Pkg("libc6", "2.41"), Pkg("libc6", "2.42"));

        var e = Assert.Throws<HardenException>(() => r.Resolve(ResolverFixture.Request("app") with
        {
            Installed = new Dictionary<string, string> { ["libc6"] = "2.41" },
        }));

        Assert.Contains("the parent image has libc6 2.41", e.Message);
    }

    [Fact]
    public void Resolve_PackageBothRequestedAndExcluded_IsAnError()
    {
        var r = ResolverFixture.Resolver(Pkg("bash", "5.2"), Pkg("curl", "8"));

        var e = Assert.Throws<HardenException>(() => r.Resolve(ResolverFixture.Request("curl", "bash=5.2") with { Excluded = new[] { "bash" } }));

        Assert.Contains("bash is both requested and excluded", e.Message);
    }

    [Fact]
    public void Resolve_RequestedVersionNotAvailable_ListsVersions()
    {
        var r = ResolverFixture.Resolver(Pkg("lib", "1.0"), Pkg("lib", "2.0"));

        var e = Assert.Throws<HardenException>(() => r.Resolve(ResolverFixture.Request("lib=1.5")));

        Assert.Contains("lib=1.5 is not available", e.Message);
        Assert.Contains("2.0 (debian/trixie), 1.0 (debian/trixie)", e.Message);
    }

    [Fact]
    public void Resolve_RequestedVersionConflictsWithDependency_NamesTheDependent()
    {
        var r = ResolverFixture.Resolver(Pkg("app", "1", "lib (>= 2)"), Pkg("lib", "1.0"), Pkg("lib", "2.0"));

        var e = Assert.Throws<HardenException>(() => r.Resolve(ResolverFixture.Request("app", "lib=1.0")));

        Assert.Contains("'lib (>= 2)' (needed by app)", e.Message);
    }

    [Fact]
    public void Resolve_RequestedVirtualPackageWithSeveralProviders_AsksForOne()
    {
        var r = ResolverFixture.Resolver(Pkg("mawk", "1", provides: "awk"), Pkg("gawk", "5", provides: "awk"));

        var e = Assert.Throws<HardenException>(() => r.Resolve(ResolverFixture.Request("awk")));

        Assert.Contains("'awk' is a virtual package provided by gawk, mawk", e.Message);
    }

    [Fact]
    public void Resolve_MalformedDependsField_NamesThePackageAndSource()
    {
        var r = ResolverFixture.Resolver(Pkg("app", "1", "lib (>= )"));

        var e = Assert.Throws<HardenException>(() => r.Resolve(ResolverFixture.Request("app")));

        Assert.Contains("app 1 from source 'debian/trixie'", e.Message);
    }

    [Fact]
    public void Resolve_BadRequestSyntax_IsAnError()
    {
        var r = ResolverFixture.Resolver(Pkg("lib", "1.0"));

        var e = Assert.Throws<HardenException>(() => r.Resolve(ResolverFixture.Request("lib=")));

        Assert.Contains("'lib=' is not 'name' or 'name=version'", e.Message);
    }
}
