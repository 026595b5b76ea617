using HardenImage.Apt;
using static HardenImage.Tests.Apt.ResolverFixture;

namespace HardenImage.Tests.Apt;

/// <summary>
/// A universe extended with further suites (lock --update builds debian + debian-nonfree on top of debian) must be the
/// universe of all the packages built at once: same candidates in the same order, same providers, same essentials.
/// A difference would lock another version depending on which images happened to share suites.
/// </summary>
public class PackageUniverseExtendTests
{
    private static readonly BinaryPackage[] Debian =
    [
        Pkg("libc6", "2.41-12", essential: true), Pkg("libc6", "2.41-11"), Pkg("mawk", "1.3.4-1", provides: "awk", priority: "required"),
        Pkg("python3", "3.13.5-1", provides: "python3-any (= 3.13.5-1)"), Pkg("zlib1g", "1:1.3-1", arch: "arm64"),
        Pkg("tzdata", "2025b-4", arch: "all"), Pkg("gawk", "1:5.2-1", provides: "awk", priority: "optional"),
    ];

    private static readonly BinaryPackage[] NonFree =
    [
        // Newer, older and the very same file again (listed by two suites), a new provider and a new name.
        Pkg("libc6", "2.41-13", origin: "debian-nonfree/trixie"), Pkg("libc6", "2.41-10", origin: "debian-nonfree/trixie"),
        Debian[0], Pkg("original-awk", "2024-1", provides: "awk", priority: "important", origin: "debian-nonfree/trixie"),
        Pkg("nvidia-cuda-toolkit", "12.4-1", provides: "cuda", essential: true, origin: "debian-nonfree/trixie"),
    ];

    [Fact]
    public void Extended_EqualsTheUniverseOfAllPackagesBuiltAtOnce()
    {
        var once = new PackageUniverse("amd64", [.. Debian, .. NonFree]);
        var extended = new PackageUniverse("amd64", Debian).Extend(NonFree);
        Assert.Equal(once.Count, extended.Count);
        Assert.Equal(once.Names, extended.Names);
        Assert.Equal(once.EssentialNames, extended.EssentialNames);
        foreach (var name in once.Names.Concat(["awk", "python3-any", "cuda"]))
        {
            Assert.Equal(once.Candidates(name), extended.Candidates(name));
            Assert.Equal(once.Providers(name).Select(p => (p.Package, p.ProvidedVersion?.ToString())),
                extended.Providers(name).Select(p => (p.Package, p.ProvidedVersion?.ToString())));
        }
        Assert.Equal(["2.41-13", "2.41-12", "2.41-11", "2.41-10"], extended.Candidates("libc6").Select(p => p.Version));
        Assert.Equal(["mawk", "original-awk", "gawk"], extended.Providers("awk").Select(p => p.Package.Name));
        Assert.Empty(extended.Candidates("zlib1g")); // arm64 only
    }

    [Fact]
    public void Extending_LeavesTheSmallerUniverseAsItWas()
    {
        var debian = new PackageUniverse("amd64", Debian);
        var before = debian.Candidates("libc6").Select(p => p.Version).ToList();
        _ = debian.Extend(NonFree);
        Assert.Equal(before, debian.Candidates("libc6").Select(p => p.Version));
        Assert.Equal(["mawk", "gawk"], debian.Providers("awk").Select(p => p.Package.Name));
        Assert.False(debian.Knows("cuda"));
    }
}
