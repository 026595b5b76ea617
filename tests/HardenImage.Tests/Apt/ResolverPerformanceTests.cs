using System.Diagnostics;
using HardenImage.Apt;
using Xunit.Abstractions;

namespace HardenImage.Tests.Apt;

/// <summary>
/// Denial of service (of the developer's time): a full Debian universe is ~65k packages per architecture.
/// Targets: index ≤ 300 ms, resolving ~50 packages in milliseconds. The bounds asserted here are looser
/// (CI machines are shared), but an accidentally quadratic index or resolver still fails them by far.
/// </summary>
public class ResolverPerformanceTests(ITestOutputHelper output)
{
    private static List<BinaryPackage> SyntheticArchive(int count, int seed)
    {
        var rng = new Random(seed);
        var list = new List<BinaryPackage>(count + count / 10);
        for (int i = 0; i < count; i++)
        {
            var name = $"pkg{i:D5}";
            var deps = new List<string>();
            if (i > 0)
            {
                // Most dependencies point into a core of shared libraries, like libc6 and friends do.
                int core = Math.Min(i, 600);
                for (int d = 0; d < 3; d++) deps.Add($"pkg{rng.Next(core):D5} (>= 0.{rng.Next(5)})");
                if (i > 1) deps.Add($"virt{rng.Next(200)} | pkg{rng.Next(Math.Min(i, 600)):D5}");
            }
            var provides = i % 10 == 0 ? $"virt{i / 10 % 200}, virtv{i % 50} (= 1.{i % 7})" : "";
            var arch = i % 4 == 0 ? "all" : "amd64";
            list.Add(ResolverFixture.Pkg(name, $"1.{i % 13}-{i % 3 + 1}", string.Join(", ", deps), arch: arch,
                provides: provides, essential: i < 20, multiArch: i % 5 == 0 ? "same" : ""));
            if (i % 10 == 0) // a security update for one package in ten
                list.Add(ResolverFixture.Pkg(name, $"1.{i % 13}-{i % 3 + 1}+deb13u1", string.Join(", ", deps), arch: arch,
                    provides: provides, origin: "debian-security/trixie-security"));
            if (i % 17 == 0) // and a package of another architecture, which the index must skip
                list.Add(ResolverFixture.Pkg(name, "9", arch: "arm64"));
        }
        return list;
    }

    [Fact]
    public void Universe_Of65kPackages_IndexesQuickly_AndResolvesFiftyRootsInMilliseconds()
    {
        var archive = SyntheticArchive(65_000, 42);

        var sw = Stopwatch.StartNew();
        var cpu = ThreadCpu.Now();
        var universe = new PackageUniverse("amd64", archive);
        var indexMs = sw.Elapsed.TotalMilliseconds;
        var indexCpuMs = (ThreadCpu.Now() - cpu).TotalMilliseconds;

        var rng = new Random(7);
        var roots = Enumerable.Range(0, 50).Select(_ => $"pkg{rng.Next(1000, 65_000):D5}").Distinct().ToArray();
        var request = ResolverFixture.Request(roots);
        var resolver = new DependencyResolver(universe);
        sw.Restart();
        var result = resolver.Resolve(request);
        var firstMs = sw.Elapsed.TotalMilliseconds;
        sw.Restart();
        cpu = ThreadCpu.Now();
        var again = new DependencyResolver(universe).Resolve(request);
        var warmMs = sw.Elapsed.TotalMilliseconds;
        var warmCpuMs = (ThreadCpu.Now() - cpu).TotalMilliseconds;

        output.WriteLine($"index {universe.Count} packages: {indexMs:F0} ms wall, {indexCpuMs:F0} ms CPU; " +
                         $"resolve {roots.Length} roots → {result.Packages.Count} packages: {firstMs:F1} ms cold, " +
                         $"{warmMs:F1} ms warm wall, {warmCpuMs:F1} ms CPU");
        Assert.True(result.Packages.Count > roots.Length, "the synthetic roots have dependencies");
        Assert.Equal(result.Packages.Select(p => p.Package.Sha256), again.Packages.Select(p => p.Package.Sha256));
        // CPU time of this thread, not wall time: the shared CI machine may be many times oversubscribed.
        Assert.True(indexCpuMs < 600, $"indexing took {indexCpuMs:F0} ms of CPU (target 300 ms)");
        Assert.True(warmCpuMs < 60, $"resolving took {warmCpuMs:F1} ms of CPU (target: a few ms)");
    }

    /// <summary>CPU time consumed by the calling thread (getrusage RUSAGE_THREAD, Linux).</summary>
    internal static class ThreadCpu
    {
        [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
        private struct RUsage
        {
            public long UserSeconds, UserMicros, SystemSeconds, SystemMicros;
            public long F0, F1, F2, F3, F4, F5, F6, F7, F8, F9, F10, F11, F12, F13;
        }

        [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
        private static extern int getrusage(int who, out RUsage usage);

        public static TimeSpan Now()
        {
            Assert.True(OperatingSystem.IsLinux(), "thread CPU time is read with Linux getrusage(RUSAGE_THREAD)");
            Assert.Equal(0, getrusage(1 /* RUSAGE_THREAD */, out var u));
            return TimeSpan.FromMicroseconds((u.UserSeconds + u.SystemSeconds) * 1_000_000.0 + u.UserMicros + u.SystemMicros);
        }
    }
}
