using CsCheck;
using HardenImage.Apt;
using HardenImage.Contracts;
using HardenImage.Deb;

namespace HardenImage.Tests.Apt;

/// <summary>Builds small in-memory universes the way a Packages index would describe them.</summary>
internal static class ResolverFixture
{
    public static BinaryPackage Pkg(string name, string version, string depends = "", string arch = "amd64",
        string preDepends = "", string provides = "", string multiArch = "", bool essential = false,
        string origin = "debian/trixie", string? priority = null, string? recommends = null)
    {
        var paragraph = new Deb822Paragraph();
        paragraph.Add("Package", name);
        paragraph.Add("Version", version);
        if (priority != null) paragraph.Add("Priority", priority);
        if (recommends != null) paragraph.Add("Recommends", recommends);
        return new BinaryPackage
        {
            Name = name,
            Version = version,
            Architecture = arch,
            SourceName = name,
            SourceVersion = version,
            Filename = $"pool/main/{name[0]}/{name}/{name}_{version.Replace(':', '%')}_{arch}.deb",
            Sha256 = HardenImage.Common.Sha256Hex.Of(System.Text.Encoding.UTF8.GetBytes($"{origin}/{name}/{version}/{arch}")),
            Size = 1000 + name.Length,
            Depends = depends,
            PreDepends = preDepends,
            Provides = provides,
            MultiArch = multiArch,
            Essential = essential,
            Origin = origin,
            BaseUrl = "http://deb.example.invalid/debian",
            Paragraph = paragraph,
        };
    }

    public static DependencyResolver Resolver(params BinaryPackage[] packages) =>
        new(new PackageUniverse("amd64", packages));

    public static ResolveRequest Request(params string[] packages) => new()
    {
        Architecture = "amd64",
        Packages = packages,
        Sources = new[] { "debian/trixie", "debian-security/trixie-security" },
    };

    public static Dictionary<string, string> Versions(this ResolveResult r) =>
        r.Packages.ToDictionary(p => p.Name, p => p.Version);
}

public class ResolverTests
{
    private static BinaryPackage Pkg(string name, string version, string depends = "", string arch = "amd64",
        string preDepends = "", string provides = "", string multiArch = "", bool essential = false,
        string origin = "debian/trixie", string? priority = null, string? recommends = null) =>
        ResolverFixture.Pkg(name, version, depends, arch, preDepends, provides, multiArch, essential, origin, priority, recommends);

    [Fact]
    public void Resolve_FollowsDependencyChain()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1.0", "libfoo (>= 1.0)"),
            Pkg("libfoo", "1.2", "libc6 (>= 2.36)"),
            Pkg("libc6", "2.41-12"),
            Pkg("unrelated", "9"));

        var result = r.Resolve(ResolverFixture.Request("app"));

        Assert.Equal(new[] { "app", "libc6", "libfoo" }, result.Packages.Select(p => p.Name));
        Assert.All(result.Packages, p => Assert.Equal(new[] { "app" }, p.RequiredBy));
        Assert.Empty(result.DroppedDependencies);
    }

    [Fact]
    public void Resolve_PrefersAlternativeAlreadySelected()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", "mawk | gawk"),
            Pkg("mawk", "1.3"),
            Pkg("gawk", "5.2"));

        var result = r.Resolve(ResolverFixture.Request("app", "gawk"));

        Assert.Equal(new[] { "app", "gawk" }, result.Packages.Select(p => p.Name));
        Assert.Equal(new[] { "app", "gawk" }, result.Packages.Single(p => p.Name == "gawk").RequiredBy);
    }

    [Fact]
    public void Resolve_PrefersAlternativeInstalledByParent()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", "mawk | gawk"),
            Pkg("mawk", "1.3"),
            Pkg("gawk", "5.2"));

        var result = r.Resolve(ResolverFixture.Request("app") with { Installed = new Dictionary<string, string> { ["gawk"] = "5.2" } });

        Assert.Equal(new[] { "app" }, result.Packages.Select(p => p.Name));
    }

    [Fact]
    public void Resolve_TakesFirstSatisfiableAlternative()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", "nonexistent | libold (>= 2) | libnew | libother"),
            Pkg("libold", "1.9"),
            Pkg("libnew", "3"),
            Pkg("libother", "1"));

        var result = r.Resolve(ResolverFixture.Request("app"));

        Assert.Equal(new[] { "app", "libnew" }, result.Packages.Select(p => p.Name));
    }

    [Fact]
    public void Resolve_DecidesAlternativesAfterHardDependencies()
    {
        // 'a' is processed first but its choice waits: 'z' later needs gawk outright, which then satisfies 'a'.
        var r = ResolverFixture.Resolver(
            Pkg("a", "1", "mawk | gawk"),
            Pkg("z", "1", "gawk"),
            Pkg("mawk", "1"),
            Pkg("gawk", "1"));

        var result = r.Resolve(ResolverFixture.Request("a", "z"));

        Assert.Equal(new[] { "a", "gawk", "z" }, result.Packages.Select(p => p.Name));
    }

    [Fact]
    public void Resolve_VirtualPackageThroughUnversionedProvides()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", "awk"),
            Pkg("gawk", "5.2", provides: "awk", priority: "optional"),
            Pkg("mawk", "1.3.4", provides: "awk", priority: "required"));

        var result = r.Resolve(ResolverFixture.Request("app"));

        // Priority: required beats optional, as apt chooses mawk for 'awk'.
        Assert.Equal(new[] { "app", "mawk" }, result.Packages.Select(p => p.Name));
    }

    [Fact]
    public void Resolve_VirtualProvidersWithoutPriority_TakeNameOrder()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", "awk"),
            Pkg("mawk", "1.3.4", provides: "awk"),
            Pkg("gawk", "5.2", provides: "awk"));

        Assert.Equal(new[] { "app", "gawk" }, r.Resolve(ResolverFixture.Request("app")).Packages.Select(p => p.Name));
    }

    [Fact]
    public void Resolve_VersionedDependency_NeedsVersionedProvides()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", "python3-abi (>= 3.13)"),
            Pkg("aaa-unversioned", "1", provides: "python3-abi"),
            Pkg("python3.13", "3.13.5-2", provides: "python3-abi (= 3.13), python3-other"));

        var result = r.Resolve(ResolverFixture.Request("app"));

        Assert.Equal(new[] { "app", "python3.13" }, result.Packages.Select(p => p.Name));
    }

    [Fact]
    public void Resolve_UnversionedDependency_AcceptsAnyProvides()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", "mail-transport-agent"),
            Pkg("dma", "0.13", provides: "mail-transport-agent (= 1)"));

        Assert.Contains("dma", r.Resolve(ResolverFixture.Request("app")).Versions().Keys);
    }

    [Fact]
    public void Resolve_VersionedDependency_RejectsUnversionedProvides()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", "virt (>= 1)"),
            Pkg("prov", "5", provides: "virt"));

        var e = Assert.Throws<HardenImage.Common.HardenException>(() => r.Resolve(ResolverFixture.Request("app")));
        Assert.Contains("prov 5 (unversioned)", e.Message);
    }

    [Fact]
    public void Resolve_PicksHighestVersionAcrossSuites()
    {
        var r = ResolverFixture.Resolver(
            Pkg("libssl3t64", "3.5.1-1", origin: "debian/trixie"),
            Pkg("libssl3t64", "3.5.1-1+deb13u1", origin: "debian-security/trixie-security"),
            Pkg("libssl3t64", "3.5.0-2", origin: "debian/trixie"));

        var p = r.Resolve(ResolverFixture.Request("libssl3t64")).Packages.Single();

        Assert.Equal("3.5.1-1+deb13u1", p.Version);
        Assert.Equal("debian-security/trixie-security", p.Package.Origin);
    }

    [Theory]
    [InlineData("lib (>= 1:0.5)", "1:1.0")]          // an epoch outranks any upstream version
    [InlineData("lib (<< 1:0)", "2.0")]
    [InlineData("lib (<= 2.0~rc1)", "2.0~rc1")]
    [InlineData("lib (<< 2.0~rc1)", "2.0~beta")]      // '~beta' < '~rc1' < '' (the release)
    [InlineData("lib (>> 2.0~rc1)", "1:1.0")]
    [InlineData("lib (= 2.0~rc1)", "2.0~rc1")]
    [InlineData("lib (< 2.0)", "2.0")]                // obsolete '<' means '<='
    [InlineData("lib (> 2.0~rc1)", "1:1.0")]          // obsolete '>' means '>='
    [InlineData("lib (<< 2.0)", "2.0~rc1")]
    public void Resolve_HonoursVersionRelations(string dependency, string expected)
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", dependency),
            Pkg("lib", "1:1.0"), Pkg("lib", "2.0"), Pkg("lib", "2.0~rc1"), Pkg("lib", "2.0~beta"));

        Assert.Equal(expected, r.Resolve(ResolverFixture.Request("app")).Versions()["lib"]);
    }

    [Fact]
    public void Resolve_RestartsWhenALaterRelationNeedsAnOlderVersion()
    {
        var r = ResolverFixture.Resolver(
            Pkg("a", "1", "lib"),
            Pkg("b", "1", "lib (<< 2)"),
            Pkg("lib", "1.5", "old-dep"), Pkg("lib", "2.0", "new-dep"),
            Pkg("old-dep", "1"), Pkg("new-dep", "1"));

        var result = r.Resolve(ResolverFixture.Request("a", "b"));

        Assert.Equal("1.5", result.Versions()["lib"]);
        Assert.Contains("old-dep", result.Versions().Keys);
        Assert.DoesNotContain("new-dep", result.Versions().Keys); // the abandoned choice left nothing behind
    }

    [Fact]
    public void Resolve_RequestWithExplicitVersion()
    {
        var r = ResolverFixture.Resolver(Pkg("lib", "1.0"), Pkg("lib", "2.0"));

        Assert.Equal("1.0", r.Resolve(ResolverFixture.Request("lib=1.0")).Versions()["lib"]);
    }

    [Fact]
    public void Resolve_KeepsPinWhileAvailableAndSatisfying()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", "lib (>= 1.0)"),
            Pkg("lib", "1.0"), Pkg("lib", "1.1"), Pkg("lib", "2.0"));

        var result = r.Resolve(ResolverFixture.Request("app") with { Pins = new Dictionary<string, string> { ["lib"] = "1.1" } });

        Assert.Equal("1.1", result.Versions()["lib"]);
        Assert.Empty(result.DroppedPins);
    }

    [Fact]
    public void Resolve_DropsPinNoLongerAvailable()
    {
        var r = ResolverFixture.Resolver(Pkg("app", "1", "lib"), Pkg("lib", "2.0"));

        var result = r.Resolve(ResolverFixture.Request("app") with { Pins = new Dictionary<string, string> { ["lib"] = "1.0" } });

        Assert.Equal("2.0", result.Versions()["lib"]);
        var pin = Assert.Single(result.DroppedPins);
        Assert.Equal(("lib", "1.0", "2.0"), (pin.Name, pin.PinnedVersion, pin.SelectedVersion));
        Assert.Contains("no longer available", pin.Reason);
    }

    [Fact]
    public void Resolve_DropsPinThatNoLongerSatisfies()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "2", "lib (>= 2.0)"),
            Pkg("lib", "1.0"), Pkg("lib", "2.0"), Pkg("lib", "2.1"));

        var result = r.Resolve(ResolverFixture.Request("app") with { Pins = new Dictionary<string, string> { ["lib"] = "1.0", ["app"] = "2" } });

        Assert.Equal("2.1", result.Versions()["lib"]);
        Assert.Contains("app needs lib (>= 2.0)", Assert.Single(result.DroppedPins).Reason);
    }

    [Fact]
    public void Resolve_DropsPinBrokenByALaterRelation()
    {
        // The pin is taken first (via 'a'), then 'b' needs a newer one: the resolver restarts without the pin.
        var r = ResolverFixture.Resolver(
            Pkg("a", "1", "lib"),
            Pkg("b", "1", "lib (>= 2)"),
            Pkg("lib", "1.0"), Pkg("lib", "2.0"));

        var result = r.Resolve(ResolverFixture.Request("a", "b") with { Pins = new Dictionary<string, string> { ["lib"] = "1.0" } });

        Assert.Equal("2.0", result.Versions()["lib"]);
        Assert.Contains("b needs lib (>= 2)", Assert.Single(result.DroppedPins).Reason);
    }

    [Fact]
    public void Resolve_ArchitectureAllIsACandidate_OtherArchitecturesAreNot()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", "tzdata, libarm"),
            Pkg("tzdata", "2025b", arch: "all"),
            Pkg("libarm", "9", arch: "arm64"),
            Pkg("libarm", "1", arch: "amd64"));

        var result = r.Resolve(ResolverFixture.Request("app"));

        Assert.Equal("all", result.Packages.Single(p => p.Name == "tzdata").Package.Architecture);
        Assert.Equal("1", result.Versions()["libarm"]);
    }

    [Fact]
    public void Resolve_AnyQualifier_SatisfiedByMultiArchAllowed()
    {
        var r = ResolverFixture.Resolver(
            Pkg("python3-yaml", "6.0", "python3:any (>= 3.11~)"),
            Pkg("python3", "3.13.5-1", multiArch: "allowed"));

        Assert.Equal("3.13.5-1", r.Resolve(ResolverFixture.Request("python3-yaml")).Versions()["python3"]);
    }

    [Fact]
    public void Resolve_AnyQualifier_NotSatisfiedWithoutMultiArchAllowed()
    {
        var r = ResolverFixture.Resolver(
            Pkg("tool", "1", "perl:any"),
            Pkg("perl", "5.40", multiArch: "foreign"));

        var e = Assert.Throws<HardenImage.Common.HardenException>(() => r.Resolve(ResolverFixture.Request("tool")));
        Assert.Contains("Multi-Arch: allowed", e.Message);
    }

    [Fact]
    public void Resolve_NativeAndOwnArchitectureQualifiers()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", "liba:native, libb:amd64, libc:arm64 | libd"),
            Pkg("liba", "1"), Pkg("libb", "1"), Pkg("libc", "1"), Pkg("libd", "1"));

        Assert.Equal(new[] { "app", "liba", "libb", "libd" }, r.Resolve(ResolverFixture.Request("app")).Packages.Select(p => p.Name));
    }

    [Fact]
    public void Resolve_ArchitectureRestrictedDependency_AppliesOnlyToThatArchitecture()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", "libx86 [i386], libamd [amd64 arm64], libnot [!amd64], libtest <!nocheck>, libprof <pkg.foo>"),
            Pkg("libx86", "1"), Pkg("libamd", "1"), Pkg("libnot", "1"), Pkg("libtest", "1"), Pkg("libprof", "1"));

        Assert.Equal(new[] { "app", "libamd", "libtest" }, r.Resolve(ResolverFixture.Request("app")).Packages.Select(p => p.Name));
    }

    [Fact]
    public void Resolve_ReportsOnlyEssentialPackagesNothingInTheImageIsOrProvides()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", "dash, coreutils-from-uutils"),
            Pkg("dash", "0.5", essential: true),
            Pkg("coreutils-from-uutils", "0.1", provides: "coreutils"),
            Pkg("coreutils", "9.7", essential: true),
            Pkg("base-files", "13.8", essential: true),
            Pkg("bash", "5.2", essential: true),
            Pkg("grep", "3.11", essential: true));

        var result = r.Resolve(ResolverFixture.Request("app") with { Installed = new Dictionary<string, string> { ["bash"] = "5.2" } });

        Assert.Equal(new[] { "base-files", "grep" }, result.AssumedEssential);
    }

    [Fact]
    public void Resolve_FollowsPreDepends()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", preDepends: "libzstd1 (>= 1.5)"),
            Pkg("libzstd1", "1.5.7"));

        Assert.Contains("libzstd1", r.Resolve(ResolverFixture.Request("app")).Versions().Keys);
    }

    [Fact]
    public void Resolve_IgnoresRecommends()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", "lib", recommends: "docs-heavy"),
            Pkg("lib", "1"),
            Pkg("docs-heavy", "1"));

        Assert.Equal(new[] { "app", "lib" }, r.Resolve(ResolverFixture.Request("app")).Packages.Select(p => p.Name));
    }

    [Fact]
    public void Resolve_DoesNotReAddPackagesOfTheParentImage()
    {
        var r = ResolverFixture.Resolver(
            Pkg("python3", "3.13", "libc6, libpython3.13"),
            Pkg("libc6", "2.41"), Pkg("libc6", "2.42"),
            Pkg("libpython3.13", "3.13", "libc6 (>= 2.40)"),
            Pkg("base-files", "13"));

        var result = r.Resolve(ResolverFixture.Request("python3", "base-files") with
        {
            Installed = new Dictionary<string, string> { ["libc6"] = "2.41", ["base-files"] = "13" },
        });

        Assert.Equal(new[] { "libpython3.13", "python3" }, result.Packages.Select(p => p.Name));
    }

    [Fact]
    public void Resolve_DependencyOnlyExcludedPackagesSatisfy_IsADroppedEdge()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", "lib, debconf (>= 0.5) | debconf-2.0"),
            Pkg("lib", "1"),
            Pkg("debconf", "1.5.91"),
            Pkg("cdebconf", "0.280", provides: "debconf-2.0"));

        var result = r.Resolve(ResolverFixture.Request("app") with { Excluded = new[] { "debconf", "cdebconf" } });

        Assert.Equal(new[] { "app", "lib" }, result.Packages.Select(p => p.Name));
        var dropped = Assert.Single(result.DroppedDependencies);
        Assert.Equal(new DroppedEdge("app", "debconf (>= 0.5) | debconf-2.0", "excluded: debconf"), dropped);
    }

    [Fact]
    public void Resolve_ExcludedVirtualName_DropsTheEdge_InsteadOfPickingAnotherProvider()
    {
        var r = ResolverFixture.Resolver(
            Pkg("base-files", "13.8", preDepends: "awk"),
            Pkg("mawk", "1.3.4", provides: "awk"),
            Pkg("gawk", "5.2.1", provides: "awk"),
            Pkg("ca-certificates", "1", "debconf (>= 0.5) | debconf-2.0"),
            Pkg("debconf", "1.5.91"),
            Pkg("cdebconf", "0.280", provides: "debconf-2.0"));

        var result = r.Resolve(ResolverFixture.Request("base-files", "ca-certificates") with { Excluded = new[] { "awk", "mawk", "debconf", "debconf-2.0" } });

        Assert.Equal(new[] { "base-files", "ca-certificates" }, result.Packages.Select(p => p.Name));
        Assert.Contains(new DroppedEdge("base-files", "awk", "excluded: awk"), result.DroppedDependencies);
        Assert.Contains(result.DroppedDependencies, d => d.Package == "ca-certificates");
    }

    [Fact]
    public void Resolve_ExcludedAlternative_FallsThroughToTheNextOne()
    {
        var r = ResolverFixture.Resolver(
            Pkg("app", "1", "debconf | debconf-2.0"),
            Pkg("debconf", "1.5.91"),
            Pkg("cdebconf", "0.280", provides: "debconf-2.0"));

        var result = r.Resolve(ResolverFixture.Request("app") with { Excluded = new[] { "debconf" } });

        Assert.Equal(new[] { "app", "cdebconf" }, result.Packages.Select(p => p.Name));
        Assert.Empty(result.DroppedDependencies);
    }

    [Fact]
    public void Resolve_RequiredByNamesEveryRootThatReachesAPackage()
    {
        var r = ResolverFixture.Resolver(
            Pkg("curl", "8", "libcurl4"),
            Pkg("libcurl4", "8", "libssl3t64"),
            Pkg("openssl", "3.5", "libssl3t64"),
            Pkg("libssl3t64", "3.5"));

        var result = r.Resolve(ResolverFixture.Request("openssl", "curl"));

        Assert.Equal(new[] { "curl", "openssl" }, result.Packages.Single(p => p.Name == "libssl3t64").RequiredBy);
        Assert.Equal(new[] { "curl" }, result.Packages.Single(p => p.Name == "libcurl4").RequiredBy);
    }

    [Fact]
    public void Resolve_SameInputInAnyOrder_GivesTheSameResult()
    {
        var packages = new List<BinaryPackage>
        {
            Pkg("app", "1", "awk, libfoo (>= 1) | libbar, python3:any, mail-transport-agent"),
            Pkg("tool", "2", "libbar, gawk | mawk"),
            Pkg("mawk", "1.3", provides: "awk"), Pkg("gawk", "5", provides: "awk"),
            Pkg("libfoo", "1.0"), Pkg("libfoo", "1.1", origin: "debian-security/trixie-security"),
            Pkg("libbar", "2", "libc6"), Pkg("libc6", "2.41"), Pkg("libc6", "2.41", origin: "debian/trixie-updates"),
            Pkg("python3", "3.13", "libc6", multiArch: "allowed"),
            Pkg("exim4", "4.98", provides: "mail-transport-agent"), Pkg("dma", "0.13", provides: "mail-transport-agent"),
            Pkg("base-files", "13", essential: true), Pkg("bash", "5", essential: true),
        };
        string Run(IEnumerable<BinaryPackage> universe, IEnumerable<string> roots, IEnumerable<KeyValuePair<string, string>> pins)
        {
            var resolver = new DependencyResolver(new PackageUniverse("amd64", universe));
            var result = resolver.Resolve(ResolverFixture.Request(roots.ToArray()) with
            {
                Pins = new Dictionary<string, string>(pins),
                Excluded = new[] { "dma" },
            });
            return System.Text.Json.JsonSerializer.Serialize(result.ToLockedArchitecture(), LockFile.JsonOptions) +
                   string.Join(";", result.DroppedPins);
        }
        var pinList = new[] { KeyValuePair.Create("libc6", "2.41"), KeyValuePair.Create("libfoo", "1.0"), KeyValuePair.Create("gone", "1") };
        var expected = Run(packages, new[] { "app", "tool" }, pinList);
        var rng = new Random(1234);
        for (int i = 0; i < 25; i++)
        {
            var shuffled = packages.OrderBy(_ => rng.Next()).ToList();
            var roots = new[] { "app", "tool" }.OrderBy(_ => rng.Next()).ToList();
            var pins = pinList.OrderBy(_ => rng.Next()).ToList();
            Assert.Equal(expected, Run(shuffled, roots, pins));
        }
        Assert.Contains("\"exim4\"", expected);
        Assert.Contains("\"gawk\"", expected);
    }

    [Fact]
    public void Resolve_RandomUniverses_OutcomeIndependentOfInputOrder()
    {
        // Property: for random small universes (versions, alternatives, virtual packages, conflicts), the result
        // (or the error) is the same whatever order packages and roots arrive in.
        var names = new[] { "a", "b", "c", "d", "e", "f", "g" };
        var relation = from n in CsCheck.Gen.Int[0, names.Length - 1]
                       from kind in CsCheck.Gen.Int[0, 4]
                       from v in CsCheck.Gen.Int[1, 3]
                       select kind switch
                       {
                           0 or 1 => names[n],
                           2 => $"{names[n]} (>= {v})",
                           3 => $"{names[n]} (<< {v})",
                           _ => $"virt{v % 2}" + (v == 3 ? " (>= 1)" : ""),
                       };
        var dependency = relation.Array[1, 2].Select(alts => string.Join(" | ", alts));
        var package = from n in CsCheck.Gen.Int[0, names.Length - 1]
                      from version in CsCheck.Gen.Int[1, 3]
                      from deps in dependency.Array[0, 3]
                      from provides in CsCheck.Gen.Int[0, 3]
                      from essential in CsCheck.Gen.Bool
                      select Pkg(names[n], version.ToString(), string.Join(", ", deps),
                          provides: provides switch { 0 => "virt0", 1 => $"virt1 (= {version})", _ => "" }, essential: essential && version == 1);
        var cases = from packages in package.Array[1, 14]
                    from roots in CsCheck.Gen.Int[0, names.Length - 1].Array[1, 3]
                    from excluded in CsCheck.Gen.Int[0, names.Length].Array[0, 1]
                    from seed in CsCheck.Gen.Int
                    select (Packages: packages.DistinctBy(p => (p.Name, p.Version)).ToArray(),
                            Roots: roots.Select(r => names[r]).Distinct().ToArray(),
                            Excluded: excluded.Where(e => e < names.Length).Select(e => names[e]).ToArray(),
                            Seed: seed);

        static string Outcome(IEnumerable<BinaryPackage> packages, IEnumerable<string> roots, string[] excluded)
        {
            try
            {
                var result = new DependencyResolver(new PackageUniverse("amd64", packages))
                    .Resolve(ResolverFixture.Request(roots.ToArray()) with { Excluded = excluded });
                return System.Text.Json.JsonSerializer.Serialize(result.ToLockedArchitecture(), LockFile.JsonOptions);
            }
            catch (HardenImage.Common.HardenException e) { return "error: " + e.Message; }
        }

        CsCheck.Check.Sample(cases, c =>
        {
            var expected = Outcome(c.Packages, c.Roots, c.Excluded);
            var rng = new Random(c.Seed);
            var shuffledPackages = c.Packages.OrderBy(_ => rng.Next()).ToList();
            var shuffledRoots = c.Roots.OrderBy(_ => rng.Next()).ToList();
            Assert.Equal(expected, Outcome(shuffledPackages, shuffledRoots, c.Excluded));
        }, iter: 400);
    }

    [Fact]
    public void Resolve_RequestedVirtualPackageWithOneProvider_InstallsTheProvider()
    {
        var r = ResolverFixture.Resolver(Pkg("mawk", "1.3", provides: "awk"));

        var result = r.Resolve(ResolverFixture.Request("awk"));

        var p = Assert.Single(result.Packages);
        Assert.Equal("mawk", p.Name);
        Assert.Equal(new[] { "awk" }, p.RequiredBy);
    }

    [Fact]
    public void Resolve_ToLockedArchitecture_CarriesUrlDigestAndOrigin()
    {
        var r = ResolverFixture.Resolver(Pkg("tzdata", "2025b-1", arch: "all", origin: "debian/trixie"));

        var locked = r.Resolve(ResolverFixture.Request("tzdata")).ToLockedArchitecture();

        var p = Assert.Single(locked.Packages);
        Assert.Equal("http://deb.example.invalid/debian/pool/main/t/tzdata/tzdata_2025b-1_all.deb", p.Url);
        Assert.Equal(("all", "debian/trixie", 64), (p.Architecture, p.Origin, p.Sha256.Length));
        Assert.Equal("amd64", locked.Architecture);
    }
}
