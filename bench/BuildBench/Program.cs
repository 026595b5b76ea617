// BuildBench (issue 3): harden against `mmdebstrap --variant=extract` for THE SAME package set served from THE SAME
// loopback mirror, amd64, the shipped base → cc → python chain.
//
//   dotnet run -c Release --project bench/BuildBench [-- --runs 3] [--work DIR] [--keep]
//
// 1. Copies images/ to a scratch image set restricted to amd64 and locks `python` with a scratch HARDEN_CACHE
//    against deb.debian.org, then fetches its .debs (network, untimed).
// 2. Builds a loopback mirror from exactly those .debs: pool/, apt-ftparchive Packages(.xz)/Release, InRelease
//    signed with a throwaway ed25519 key in an isolated GNUPGHOME, served by `python3 -m http.server` on 127.0.0.1.
//    apt cannot leave a dependency out the way `exclude:` does, so the mirror also carries a 1 KB empty stub for the
//    first alternative of every dependency edge the lock dropped (awk, debconf, openssl); harden excludes them as
//    before, mmdebstrap downloads and extracts them (a few KB: noted in the output).
// 3. Writes a second image set whose only source is that mirror (keyring = the throwaway key), same images.
// 4. Times, interleaved, --runs times each (median reported): mmdebstrap (apt update + download + extract into a tar),
//    cold harden (empty HARDEN_CACHE: lock + build), the same with `allow: noByteCode` (mmdebstrap compiles no
//    byte-code; information beside the target), warm harden (build --force) and a no-op build. The cold build runs
//    with HARDEN_TIMINGS=1, and its phase spans (unpack, assemble, byte-code, layer writes) are printed as medians.
// Every command runs under /usr/bin/time: wall, user+sys CPU (children included) and max RSS.
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using HardenImage.Apt;
using HardenImage.Bench;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Lock;

var cli = BenchArgs.Parse(args, "[--runs N] [--work DIR] [--keep]", ["--runs", "--work"], ["--keep"], out var exit);
if (cli == null) return exit;
var runs = cli.Int("--runs", 3);
var work = cli.FullPath("--work", Path.Combine(Path.GetTempPath(), "hi-buildbench"));
var keep = cli.Flag("--keep");

Measure.RequireTool(Measure.GnuTime, "apt-get install -y time");
Measure.RequireTool("/usr/bin/mmdebstrap", "apt-get install -y mmdebstrap");
Measure.RequireTool("/usr/bin/apt-ftparchive", "apt-get install -y apt-utils");
var repo = Measure.RepoRoot();
var m = Measure.InFreshWorkDir(work);
var harden = m.HardenDll(repo);
Console.WriteLine(m.Banner(work));

// --- 1. lock the shipped python image (amd64) against Debian and fetch its .debs ---------------------------------
var upstreamSet = Path.Combine(work, "upstream-set");
var upstreamCache = Path.Combine(work, "upstream-cache");
CopyImageSet(Path.Combine(repo, "images"), upstreamSet, ["sources.yaml", "base.yaml", "cc.yaml", "python.yaml"], mirrorOnly: false);
var upstreamEnv = new Dictionary<string, string> { ["HARDEN_CACHE"] = upstreamCache };
m.Run("dotnet", [harden, "lock", "--images", upstreamSet, "--image", "python"], upstreamEnv);
m.Run("dotnet", [harden, "fetch", "--images", upstreamSet, "--image", "python"], upstreamEnv);
var lockFile = LockFile.Load(Path.Combine(upstreamSet, "images.lock.json"));
var chain = new[] { "base", "cc", "python" };
var locked = chain.SelectMany(n => lockFile.Image(n)!.Architectures.Where(a => a.Architecture == "amd64")).ToList();
var packages = locked.SelectMany(a => a.Packages).DistinctBy(p => p.Sha256).OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
var stubNames = locked.SelectMany(a => a.DroppedDependencies)
    .Select(d => d.Dependency.Split('|')[0].Trim().Split(' ', '(')[0].Split(':')[0])
    .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
// A versioned `provides:` entry (python: python3 (= 3.13.5-1)) must be attested by the signed index at lock time, and
// the mirror carries only the locked .debs: a stub of that name and version stands in for the real package (nothing
// installs it: the lock provides it, and mmdebstrap's --include does not name it).
var upstreamImages = ImageSet.Load(upstreamSet);
var providedStubs = chain.SelectMany(n => upstreamImages.Images[n].Provides)
    .Select(p => Relation.ParseProvides(p).Single()).Where(r => r.Version != null)
    .Select(r => (Name: r.Name, Version: r.Version!.ToString())).Distinct().OrderBy(s => s.Name, StringComparer.Ordinal).ToList();
Console.WriteLine($"locked: {packages.Count} packages ({packages.Sum(p => p.Size) / 1e6:0.0} MB of .debs) for base+cc+python amd64; " +
                  $"stubs for excluded dependencies: {string.Join(", ", stubNames)}; for provides: {string.Join(", ", providedStubs.Select(p => $"{p.Name} {p.Version}"))}");

// --- 2. the loopback mirror -------------------------------------------------------------------------------------
var mirror = Path.Combine(work, "mirror");
var pool = Path.Combine(mirror, "pool", "main");
Directory.CreateDirectory(pool);
var debCache = new DebCache(upstreamCache);
foreach (var p in packages)
    File.Copy(debCache.PathFor(p.Sha256), Path.Combine(pool, $"{p.Name}_{StripEpoch(p.Version)}_{p.Architecture}.deb"));
foreach (var (stub, version) in stubNames.Select(n => (n, "99")).Concat(providedStubs.Select(p => (p.Name, p.Version))))
{
    var dir = Path.Combine(work, "stub-" + stub);
    Directory.CreateDirectory(Path.Combine(dir, "DEBIAN"));
    File.WriteAllText(Path.Combine(dir, "DEBIAN", "control"),
        $"Package: {stub}\nVersion: {version}\nArchitecture: all\nMaintainer: BuildBench <bench@example.invalid>\n" +
        "Description: empty stand-in so apt can satisfy a dependency harden excludes or attest what an image provides\n");
    m.Run("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", dir, Path.Combine(pool, $"{stub}_{StripEpoch(version)}_all.deb")]);
}
var dists = Path.Combine(mirror, "dists", "trixie");
var binary = Path.Combine(dists, "main", "binary-amd64");
Directory.CreateDirectory(binary);
File.WriteAllText(Path.Combine(binary, "Packages"), m.Run("apt-ftparchive", ["packages", "pool"], workDir: mirror));
m.Run("xz", ["-k", "-f", Path.Combine(binary, "Packages")]);
var release = m.Run("apt-ftparchive", ["-o", "APT::FTPArchive::Release::Suite=trixie", "-o", "APT::FTPArchive::Release::Codename=trixie",
    "-o", "APT::FTPArchive::Release::Architectures=amd64", "-o", "APT::FTPArchive::Release::Components=main", "release", dists]);
File.WriteAllText(Path.Combine(dists, "Release"), release);
var gnupg = Path.Combine(work, "gnupg");
Directory.CreateDirectory(gnupg);
if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(gnupg, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
var gpgEnv = new Dictionary<string, string> { ["GNUPGHOME"] = gnupg };
m.Run("gpg", ["--batch", "--passphrase", "", "--quick-gen-key", "BuildBench throwaway <bench@example.invalid>", "ed25519", "sign", "never"], gpgEnv);
m.Run("gpg", ["--batch", "--yes", "--clearsign", "-o", Path.Combine(dists, "InRelease"), Path.Combine(dists, "Release")], gpgEnv);
var benchSet = Path.Combine(work, "bench-set");
CopyImageSet(upstreamSet, benchSet, ["base.yaml", "cc.yaml", "python.yaml"], mirrorOnly: true);
Directory.CreateDirectory(Path.Combine(benchSet, "keys"));
File.WriteAllText(Path.Combine(benchSet, "keys", "bench.asc"), m.Run("gpg", ["--armor", "--export"], gpgEnv));
try { m.Run("gpgconf", ["--kill", "gpg-agent"], gpgEnv); } catch (InvalidOperationException) { /* no agent left */ }

var port = FreePort();
var serverPsi = new System.Diagnostics.ProcessStartInfo("python3")
{ RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
foreach (var a in new[] { "-m", "http.server", "--bind", "127.0.0.1", "--directory", mirror, port.ToString(CultureInfo.InvariantCulture) })
    serverPsi.ArgumentList.Add(a);
using var server = System.Diagnostics.Process.Start(serverPsi)!;
server.OutputDataReceived += (_, _) => { };
server.ErrorDataReceived += (_, _) => { };
server.BeginOutputReadLine();
server.BeginErrorReadLine();
try
{
    var url = $"http://127.0.0.1:{port}/";
    WaitForServer(url + "dists/trixie/InRelease");
    File.WriteAllText(Path.Combine(benchSet, "sources.yaml"),
        $"# BuildBench: the loopback mirror of exactly the locked .debs (+ stubs), signed with a throwaway key.\nsources:\n  debian:\n" +
        $"    url: {url}\n    suites: [trixie]\n    components: [main]\n    architectures: [amd64]\n    keyring: keys/bench.asc\n");
    Console.WriteLine($"mirror: {url} ({Directory.GetFiles(pool).Length} .debs); load average: {Measure.LoadAverage()}");
    // The same set with the byte-code transform off: the work mmdebstrap's extract mode does (it compiles nothing),
    // so the issue's ratio can be read beside the one for the build as shipped (which compiles 531 modules).
    var noByteCodeSet = Path.Combine(work, "bench-set-no-bytecode");
    CopyImageSet(benchSet, noByteCodeSet, ["sources.yaml", "base.yaml", "cc.yaml", "python.yaml"], mirrorOnly: true);
    var pythonYaml = Path.Combine(noByteCodeSet, "python.yaml");
    if (File.ReadAllText(pythonYaml).Contains("\nallow:", StringComparison.Ordinal))
        throw new InvalidOperationException($"{pythonYaml} already has an allow: block; BuildBench appends its own (noByteCode) and cannot merge");
    File.AppendAllText(pythonYaml, "allow:\n  noByteCode: true\n");

    // --- 4. measurements, interleaved so a busy machine slows every tool alike -----------------------------------
    var include = string.Join(",", packages.Select(p => p.Name));
    var mm = new List<Sample>(); var cold = new List<Sample>(); var coldLock = new List<Sample>(); var coldBuild = new List<Sample>();
    var warm = new List<Sample>(); var noop = new List<Sample>(); var coldNoByteCode = new List<Sample>();
    long tarBytes = 0; long layoutBytes = 0;
    var spans = new Dictionary<string, List<double>>(StringComparer.Ordinal);
    for (var r = 1; r <= runs; r++)
    {
        var tar = Path.Combine(work, $"mmdebstrap-{r}.tar");
        mm.Add(m.Timed("mmdebstrap", ["--variant=extract", "--architectures=amd64", "--quiet", $"--include={include}",
            "trixie", tar, $"deb [trusted=yes] {url} trixie main"]));
        tarBytes = new FileInfo(tar).Length;
        File.Delete(tar);

        var cache = Path.Combine(work, $"cache-{r}");
        var outDir = Path.Combine(work, $"out-{r}");
        File.Delete(Path.Combine(benchSet, "images.lock.json"));
        var env = new Dictionary<string, string> { ["HARDEN_CACHE"] = cache };
        var l = m.Timed("dotnet", [harden, "lock", "--images", benchSet, "--image", "python"], env);
        // The phase spans cost a clock read each; they say where the cold build's wall time went.
        var b = m.Timed("dotnet", [harden, "build", "--images", benchSet, "--image", "python", "--out", outDir], new Dictionary<string, string>(env) { ["HARDEN_TIMINGS"] = "1" });
        foreach (var (phase, seconds) in Spans(m.LastStderr))
        {
            if (!spans.TryGetValue(phase, out var list)) spans[phase] = list = new List<double>();
            list.Add(seconds);
        }
        coldLock.Add(l); coldBuild.Add(b); cold.Add(Sample.Sequence(l, b));
        var nbcEnv = new Dictionary<string, string> { ["HARDEN_CACHE"] = Path.Combine(work, $"cache-nbc-{r}") };
        File.Delete(Path.Combine(noByteCodeSet, "images.lock.json"));
        coldNoByteCode.Add(Sample.Sequence(m.Timed("dotnet", [harden, "lock", "--images", noByteCodeSet, "--image", "python"], nbcEnv),
            m.Timed("dotnet", [harden, "build", "--images", noByteCodeSet, "--image", "python", "--out", Path.Combine(work, $"out-nbc-{r}")], nbcEnv)));
        warm.Add(m.Timed("dotnet", [harden, "build", "--images", benchSet, "--image", "python", "--out", outDir, "--force"], env));
        noop.Add(m.Timed("dotnet", [harden, "build", "--images", benchSet, "--image", "python", "--out", outDir], env));
        layoutBytes = Directory.EnumerateFiles(Path.Combine(outDir, "oci"), "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        if (r < runs) { Directory.Delete(cache, true); Directory.Delete(outDir, true); }
        if (r < runs) foreach (var d in new[] { $"cache-nbc-{r}", $"out-nbc-{r}" }) Directory.Delete(Path.Combine(work, d), true);
        Console.WriteLine($"run {r}/{runs}: mmdebstrap {mm[^1].Wall:0.00} s, cold {cold[^1].Wall:0.00} s, warm {warm[^1].Wall:0.00} s, no-op {noop[^1].Wall:0.00} s; load {Measure.LoadAverage()}");
    }
    var lockedSet = LockFile.Load(Path.Combine(benchSet, "images.lock.json"));
    var same = chain.SelectMany(n => lockedSet.Image(n)!.Architectures.SelectMany(a => a.Packages)).Select(p => p.Sha256).ToHashSet()
        .SetEquals(packages.Select(p => p.Sha256));

    // --- 5. the table ------------------------------------------------------------------------------------------
    var mmd = Sample.Median(mm);
    Console.WriteLine();
    Console.WriteLine($"BuildBench: {packages.Count} packages (base+cc+python, amd64) from one loopback mirror; medians of {runs} runs; " +
                      $"same package set locked from the mirror: {(same ? "yes" : "NO")}");
    Console.WriteLine($"load average after: {Measure.LoadAverage()} on {Environment.ProcessorCount} cores (shared: wall times are inflated by other work, CPU times much less)");
    Console.WriteLine($"{"tool / step",-44} {"wall s",7} {"user s",7} {"sys s",7} {"cpu s",7} {"RSS MB",7} {"wall ratio",10} {"target",-18} verdict");
    void Row(string name, Sample s, string target, bool? ok)
        => Console.WriteLine($"{name,-44} {s.Wall,7:0.00} {s.User,7:0.00} {s.Sys,7:0.00} {s.Cpu,7:0.00} {s.PeakRssMb,7:0} {Measure.Ratio(s.Wall, mmd.Wall),10} {target,-18} {(ok == null ? "" : Measure.Verdict(ok.Value))}");
    Row("mmdebstrap --variant=extract (apt, cold)", mmd, "(peer)", null);
    var c = Sample.Median(cold); var w = Sample.Median(warm); var n = Sample.Median(noop);
    Row("harden cold: lock + build, empty cache", c, "<= 0.8x wall", c.Wall <= 0.8 * mmd.Wall);
    Row("  of which lock", Sample.Median(coldLock), "", null);
    Row("  of which build (fetch+assemble+gzip)", Sample.Median(coldBuild), "", null);
    Row("  same, allow: noByteCode (mmdebstrap's work)", Sample.Median(coldNoByteCode), "(information)", null);
    Row("harden warm: build --force, warm cache", w, "<= 0.5x wall", w.Wall <= 0.5 * mmd.Wall);
    Row("harden no-op: build, nothing changed", n, "", null);
    var peak = new[] { c.PeakRssMb, w.PeakRssMb, n.PeakRssMb }.Max();
    Console.WriteLine($"{"harden peak RSS (max of the above)",-44} {"",39} {peak,7:0} {"",10} {"<= 300 MB",-18} {Measure.Verdict(peak <= 300)}");
    Console.WriteLine($"CPU ratio (user+sys) cold {Measure.Ratio(c.Cpu, mmd.Cpu)}, warm {Measure.Ratio(w.Cpu, mmd.Cpu)} of mmdebstrap's");
    Console.WriteLine($"outputs: mmdebstrap tar {tarBytes / 1e6:0.0} MB (uncompressed, no hardening); harden OCI layout {layoutBytes / 1e6:0.0} MB (3 images, gzip layers, hardened)");
    Console.WriteLine($"mmdebstrap also fetched and extracted {stubNames.Count} empty stub .debs (~1 KB each) that harden excludes.");
    Console.WriteLine();
    Console.WriteLine("where the cold build's wall time went (HARDEN_TIMINGS=1 spans, medians; spans nest, so they do not add up):");
    foreach (var (phase, list) in spans.Where(kv => !kv.Key.Contains("transform", StringComparison.Ordinal) || kv.Key.Contains("byte-code", StringComparison.Ordinal)))
        Console.WriteLine($"  {phase,-78} {Sample.MedianOf(list),7:0.00} s");
}
finally
{
    server.Kill();
    server.WaitForExit();
    if (!keep) foreach (var d in Directory.GetDirectories(work).Where(d => Path.GetFileName(d).StartsWith("cache-") || Path.GetFileName(d).StartsWith("out-")))
        Directory.Delete(d, true);
}
return 0;

// Copies the named files (and keys/) of an image set, restricted to amd64; drops sources the mirror does not have.
static void CopyImageSet(string from, string to, string[] files, bool mirrorOnly)
{
    Directory.CreateDirectory(to);
    foreach (var f in files)
    {
        var text = File.ReadAllText(Path.Combine(from, f))
            .Replace("architectures: [amd64, arm64]", "architectures: [amd64]", StringComparison.Ordinal);
        if (mirrorOnly) text = text.Replace("sources: [debian, debian-security]", "sources: [debian]", StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(to, f), text);
    }
    if (Directory.Exists(Path.Combine(from, "keys")) && files.Contains("sources.yaml"))
    {
        Directory.CreateDirectory(Path.Combine(to, "keys"));
        foreach (var k in Directory.GetFiles(Path.Combine(from, "keys"))) File.Copy(k, Path.Combine(to, "keys", Path.GetFileName(k)));
    }
}

// "timing: build: unpack every package (parallel): 1.234 s (from …)" → ("build: unpack every package (parallel)", 1.234)
static IEnumerable<(string Phase, double Seconds)> Spans(string stderr)
{
    foreach (System.Text.RegularExpressions.Match x in System.Text.RegularExpressions.Regex.Matches(stderr, @"^timing: (.+): ([0-9.]+) s \(from", System.Text.RegularExpressions.RegexOptions.Multiline))
        yield return (x.Groups[1].Value, double.Parse(x.Groups[2].Value, CultureInfo.InvariantCulture));
}

static string StripEpoch(string version) => version.Contains(':') ? version[(version.IndexOf(':') + 1)..] : version;

static int FreePort()
{
    var l = new TcpListener(IPAddress.Loopback, 0);
    l.Start();
    var p = ((IPEndPoint)l.LocalEndpoint).Port;
    l.Stop();
    return p;
}

static void WaitForServer(string url)
{
    using var http = new HttpClient();
    for (var i = 0; i < 100; i++)
    {
        try { if (http.GetAsync(url).Result.IsSuccessStatusCode) return; }
        catch (AggregateException) { }
        Thread.Sleep(100);
    }
    throw new InvalidOperationException($"the mirror server did not answer {url}");
}
