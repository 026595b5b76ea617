using HardenImage.Trace;

namespace HardenImage.Tests.Trace;

/// <summary>
/// The proposer never proposes what a loaded object needs. Shaped after inference-cpu: torch loads libmpi, which
/// links libucp (libucx0); libucx0's ROCm plugin links libhsa-runtime64 (never loaded); libtorch-test is never loaded.
/// </summary>
public class SlimmingProposerTests
{
    private static TracedPackage Pkg(string name, string[] files, long bytes, string[][]? depends = null, bool own = true) =>
        new(name, files, bytes, (depends ?? []).Select(g => (IReadOnlyList<string>)g).ToList(), own);

    private static readonly List<TracedPackage> Packages =
    [
        Pkg("libc6", ["usr/lib/x86_64-linux-gnu/libc.so.6"], 2_000_000, own: false),
        Pkg("python3-torch", ["usr/lib/python3/dist-packages/torch/__init__.py"], 10, [["libtorch2.6"], ["libtorch-test"]]),
        Pkg("libtorch2.6", ["usr/lib/x86_64-linux-gnu/libtorch_cpu.so.2.6"], 260_000_000, [["libopenmpi40"]]),
        Pkg("libtorch-test", ["usr/lib/x86_64-linux-gnu/libtorch-test/test_api"], 60_000_000),
        Pkg("libopenmpi40", ["usr/lib/x86_64-linux-gnu/libmpi.so.40"], 3_000_000, [["libucx0"]]),
        Pkg("libucx0", ["usr/lib/x86_64-linux-gnu/libucp.so.0", "usr/lib/x86_64-linux-gnu/ucx/libuct_rocm.so.0"], 1_000_000,
            [["libhsa-runtime64-1"], ["libamdhip64-5"]]),
        Pkg("libhsa-runtime64-1", ["usr/lib/x86_64-linux-gnu/libhsa-runtime64.so.1"], 3_000_000, [["libllvm17t64"]]),
        Pkg("libamdhip64-5", ["usr/lib/x86_64-linux-gnu/libamdhip64.so.5"], 25_000_000, [["libhsa-runtime64-1"], ["libllvm17t64"]]),
        Pkg("libllvm17t64", ["usr/lib/x86_64-linux-gnu/libLLVM-17.so.1"], 124_000_000),
    ];

    private static readonly Dictionary<string, IReadOnlyList<string>> Needed = new()
    {
        ["usr/lib/x86_64-linux-gnu/libtorch_cpu.so.2.6"] = ["usr/lib/x86_64-linux-gnu/libmpi.so.40", "usr/lib/x86_64-linux-gnu/libc.so.6"],
        ["usr/lib/x86_64-linux-gnu/libmpi.so.40"] = ["usr/lib/x86_64-linux-gnu/libucp.so.0"],
        ["usr/lib/x86_64-linux-gnu/ucx/libuct_rocm.so.0"] = ["usr/lib/x86_64-linux-gnu/libhsa-runtime64.so.1"],
        ["usr/lib/x86_64-linux-gnu/libamdhip64.so.5"] = ["usr/lib/x86_64-linux-gnu/libhsa-runtime64.so.1", "usr/lib/x86_64-linux-gnu/libLLVM-17.so.1"],
    };

    private static TraceEvidence Evidence(params string[] loaded) =>
        new(loaded.ToDictionary(p => p, _ => "mapped by pid 1 (python3)"), Needed);

    [Fact]
    public void UnloadedPackages_AreProposed_LargestFirst_WithDanglingPluginsAsRemove()
    {
        var p = SlimmingProposer.Propose(Packages, ["python3-torch"],
            Evidence("usr/lib/python3/dist-packages/torch/__init__.py", "usr/lib/x86_64-linux-gnu/libtorch_cpu.so.2.6"));

        Assert.Equal(["libllvm17t64", "libtorch-test", "libamdhip64-5", "libhsa-runtime64-1"], p.Exclude.Select(e => e.Package));
        // libmpi and libucp are not mapped in this evidence but linked by a loaded object: protected.
        Assert.DoesNotContain(p.Exclude, e => e.Package is "libopenmpi40" or "libucx0");
        Assert.Equal(["usr/lib/x86_64-linux-gnu/ucx/libuct_rocm.so.0"], p.Remove.Select(r => r.Path));
        Assert.DoesNotContain(p.Exclude, e => e.Package == "libc6"); // a parent's package is never proposed
    }

    [Fact]
    public void ExcludingALibraryALoadedObjectLinksTo_IsRefused_NamingBoth()
    {
        var p = SlimmingProposer.Propose(Packages, ["python3-torch"],
            Evidence("usr/lib/x86_64-linux-gnu/libtorch_cpu.so.2.6"), userExcludes: ["libucx0"]);

        var refused = Assert.Single(p.Refused);
        Assert.Equal("exclude: libucx0", refused.Entry);
        Assert.Contains("/usr/lib/x86_64-linux-gnu/libucp.so.0", refused.Reason);
        Assert.Contains("DT_NEEDED by loaded /usr/lib/x86_64-linux-gnu/libmpi.so.40", refused.Reason);
        Assert.DoesNotContain(p.Exclude, e => e.Package == "libucx0");
    }

    [Fact]
    public void RemoveGlobMatchingALoadedFile_IsRefused_NamingBoth()
    {
        var p = SlimmingProposer.Propose(Packages, ["python3-torch"],
            Evidence("usr/lib/x86_64-linux-gnu/libtorch_cpu.so.2.6"), userRemoves: ["usr/lib/x86_64-linux-gnu/libmpi*"]);

        var refused = Assert.Single(p.Refused);
        Assert.Equal("remove: usr/lib/x86_64-linux-gnu/libmpi*", refused.Entry);
        Assert.Contains("/usr/lib/x86_64-linux-gnu/libmpi.so.40 (DT_NEEDED by loaded /usr/lib/x86_64-linux-gnu/libtorch_cpu.so.2.6)", refused.Reason);
    }

    [Fact]
    public void ExcludingAnUnusedPackage_ThatAloneDependsOnAUsedOne_IsRefused()
    {
        // libamdhip64 is unused, but suppose the workload dlopen'ed libLLVM: dropping hip must not drop llvm with it.
        var packages = Packages.Select(p => p.Name == "libhsa-runtime64-1" ? p with { Depends = [] } : p).ToList();
        var p = SlimmingProposer.Propose(packages, ["python3-torch"],
            Evidence("usr/lib/x86_64-linux-gnu/libtorch_cpu.so.2.6", "usr/lib/x86_64-linux-gnu/libLLVM-17.so.1"));

        Assert.Contains(p.Refused, r => r.Entry == "exclude: libamdhip64-5" && r.Reason.Contains("would drop libllvm17t64") &&
                                        r.Reason.Contains("/usr/lib/x86_64-linux-gnu/libLLVM-17.so.1 (mapped by pid 1 (python3))"));
        Assert.DoesNotContain(p.Exclude, e => e.Package is "libamdhip64-5" or "libllvm17t64");
    }

    [Fact]
    public void RequestedPackages_AreNeverProposed()
    {
        var p = SlimmingProposer.Propose(Packages, ["python3-torch", "libtorch-test"], Evidence("usr/lib/x86_64-linux-gnu/libtorch_cpu.so.2.6"));
        Assert.DoesNotContain(p.Exclude, e => e.Package == "libtorch-test");
    }
}
