// FanoutBench (issue 13 §6): a GENERATED image set — `base` plus --leaves images FROM base, amd64 + arm64, each leaf
// with its own package of --kb KB — from a hermetic signed apt repository on loopback, so (leaves + 1) × 2 jobs
// (default 20 leaves: 42 image × platform jobs).
//
//   dotnet run -c Release --project bench/FanoutBench [-- --leaves 20 --kb 2048 --workers 1,2,4 --work DIR --keep]
//
// Measures, each from an empty cache:
//   one process   `harden build` of the whole set (one machine);
//   fan-out N     the plan's jobs (`harden job`, one process per entry) run by N workers at once, each worker its own
//                 HARDEN_CACHE (a machine that runs several entries), all against ONE fresh docker-registry; then
//                 `harden fanin` (timed separately); wall, CPU (user+sys of every process, GNU time), bytes uploaded
//                 (the jobs' records) and the fan-in's time;
//   rerun         after fanin + push + sign with the release key: the same plan again with the largest N — every
//                 entry should be a verified hit with 0 bytes uploaded.
// Do NOT run this on a shared machine beyond a tiny smoke (--leaves 1 --kb 16 --workers 1,2): it is CPU-bound by
// design. What the numbers predict for a 50-runner CI is worked out on paper in docs/performance.md.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using HardenImage.Bench;
using HardenImage.FanOut;
using HardenImage.Signing;

var cli = BenchArgs.Parse(args, "[--leaves N] [--kb N] [--workers 1,2,4] [--work DIR] [--keep]", ["--leaves", "--kb", "--workers", "--work"], ["--keep"], out var exit);
if (cli == null) return exit;
var leaves = cli.Int("--leaves", 20);
var kb = cli.Int("--kb", 2048);
var workers = cli.Ints("--workers", [1, 2, 4]);
var work = cli.FullPath("--work", Path.Combine(Path.GetTempPath(), "hi-fanoutbench"));
var keep = cli.Flag("--keep");

Measure.RequireTool(Measure.GnuTime, "apt-get install -y time");
Measure.RequireTool("/usr/bin/apt-ftparchive", "apt-get install -y apt-utils");
Measure.RequireTool("/usr/bin/docker-registry", "apt-get install -y docker-registry");
var repo = Measure.RepoRoot();
var m = Measure.InFreshWorkDir(work);
var harden = m.HardenDll(repo);
Console.WriteLine(m.Banner(work));

// --- the hermetic repository: one package for base, one per leaf, per architecture --------------------------------
var mirror = Path.Combine(work, "mirror");
var pool = Path.Combine(mirror, "pool", "main");
Directory.CreateDirectory(pool);
var archs = new[] { "amd64", "arm64" };
void Deb(string name, string arch, int kilobytes, int seed)
{
    var root = Path.Combine(work, "debs", $"{name}_{arch}");
    Directory.CreateDirectory(Path.Combine(root, "DEBIAN"));
    Directory.CreateDirectory(Path.Combine(root, "usr", "share", name));
    File.WriteAllText(Path.Combine(root, "DEBIAN", "control"),
        $"Package: {name}\nVersion: 1.0-1\nArchitecture: {arch}\nMaintainer: FanoutBench <bench@example.invalid>\nDescription: generated package {name}\n");
    // Half pseudo-random (incompressible), half text: layers that compress like real ones.
    var rng = new Random(seed * 7919 + (arch == "arm64" ? 1 : 0));
    var bytes = new byte[kilobytes * 1024];
    rng.NextBytes(bytes.AsSpan(0, bytes.Length / 2));
    for (var i = bytes.Length / 2; i < bytes.Length; i++) bytes[i] = (byte)('a' + i % 26);
    File.WriteAllBytes(Path.Combine(root, "usr", "share", name, "data.bin"), bytes);
    m.Run("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", root, Path.Combine(pool, $"{name}_1.0-1_{arch}.deb")]);
}
foreach (var arch in archs)
{
    Deb("bench-base", arch, Math.Max(16, kb / 4), 0);
    for (var i = 1; i <= leaves; i++) Deb($"bench-leaf{i}", arch, kb, i);
}
var dists = Path.Combine(mirror, "dists", "stable");
foreach (var arch in archs)
{
    var binary = Path.Combine(dists, "main", $"binary-{arch}");
    Directory.CreateDirectory(binary);
    File.WriteAllText(Path.Combine(binary, "Packages"), m.Run("apt-ftparchive", ["-a", arch, "packages", "pool"], workDir: mirror));
    m.Run("xz", ["-k", "-f", Path.Combine(binary, "Packages")]);
}
File.WriteAllText(Path.Combine(dists, "Release"), m.Run("apt-ftparchive", ["-o", "APT::FTPArchive::Release::Suite=stable", "-o", "APT::FTPArchive::Release::Codename=stable",
    "-o", "APT::FTPArchive::Release::Architectures=amd64 arm64", "-o", "APT::FTPArchive::Release::Components=main", "release", dists]));
var gnupg = Path.Combine(work, "gnupg");
Directory.CreateDirectory(gnupg);
if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(gnupg, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
var gpgEnv = new Dictionary<string, string> { ["GNUPGHOME"] = gnupg };
m.Run("gpg", ["--batch", "--passphrase", "", "--quick-gen-key", "FanoutBench throwaway <bench@example.invalid>", "ed25519", "sign", "never"], gpgEnv);
m.Run("gpg", ["--batch", "--yes", "--clearsign", "-o", Path.Combine(dists, "InRelease"), Path.Combine(dists, "Release")], gpgEnv);
var set = Path.Combine(work, "images");
Directory.CreateDirectory(Path.Combine(set, "keys"));
File.WriteAllText(Path.Combine(set, "keys", "bench.asc"), m.Run("gpg", ["--armor", "--export"], gpgEnv));
try { m.Run("gpgconf", ["--kill", "gpg-agent"], gpgEnv); } catch (InvalidOperationException) { /* no agent left */ }
File.WriteAllText(Path.Combine(set, "base.yaml"), "name: base\nversion: \"1.0\"\nsources: [bench]\narchitectures: [amd64, arm64]\npackages: [bench-base]\n");
for (var i = 1; i <= leaves; i++)
    File.WriteAllText(Path.Combine(set, $"leaf{i}.yaml"), $"name: leaf{i}\nfrom: base\npackages: [bench-leaf{i}]\n");

var port = FreePort();
var serverPsi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
foreach (var a in new[] { "-m", "http.server", "--bind", "127.0.0.1", "--directory", mirror, port.ToString(CultureInfo.InvariantCulture) })
    serverPsi.ArgumentList.Add(a);
using var server = Process.Start(serverPsi)!;
server.OutputDataReceived += (_, _) => { };
server.ErrorDataReceived += (_, _) => { };
server.BeginOutputReadLine();
server.BeginErrorReadLine();
var registries = new List<RegistryProcess>();
try
{
    var url = $"http://127.0.0.1:{port}/";
    WaitForServer(url + "dists/stable/InRelease");
    File.WriteAllText(Path.Combine(set, "sources.yaml"),
        $"sources:\n  bench:\n    url: {url}\n    suites: [stable]\n    components: [main]\n    architectures: [amd64, arm64]\n    keyring: keys/bench.asc\n");
    const string password = "fanoutbench";
    var keys = new KeyPairGenerator().WriteTo(Path.Combine(work, "keys"), password, overwrite: true);
    var cacheKey = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
    Dictionary<string, string> Env(string cache) => new() { ["HARDEN_CACHE"] = cache, ["HARDEN_CACHE_KEY"] = cacheKey, ["HARDEN_KEY_PASSWORD"] = password };
    m.Run("dotnet", [harden, "lock", "--images", set], Env(Path.Combine(work, "lock-cache")));
    var jobs = (leaves + 1) * 2;
    Console.WriteLine($"image set: base + {leaves} leaves × amd64, arm64 = {jobs} jobs; {kb} KB per leaf package; mirror {url}");

    var rows = new List<string[]>();
    // One machine, one process.
    var one = m.Timed("dotnet", [harden, "build", "--images", set, "--out", Path.Combine(work, "one")], Env(Path.Combine(work, "one-cache")));
    rows.Add(["one process", "1", F(one.Wall), F(one.Cpu), "-", "-", "-", F(one.PeakRssMb)]);
    Console.WriteLine($"one process: {F(one.Wall)} s wall, {F(one.Cpu)} s CPU; load {Measure.LoadAverage()}");

    RegistryProcess? last = null;
    string? lastPlan = null;
    foreach (var n in workers)
    {
        var registry = RegistryProcess.Start(work, keepData: keep);
        registries.Add(registry);
        var ns = $"{registry.Host}/bench";
        var dir = Path.Combine(work, $"fanout-{n}");
        var plan = Path.Combine(dir, "plan.json");
        Directory.CreateDirectory(dir);
        m.Run("dotnet", [harden, "plan", "--images", set, "--registry", ns, "--key", keys.PublicKeyPath, "--out", plan], Env(Path.Combine(dir, "plan-cache")));
        var (wall, cpu, uploaded, hits, rss) = RunJobs(plan, ns, dir, "jobs", n);
        var fanin = m.Timed("dotnet", [harden, "fanin", "--images", set, "--plan", plan, "--registry", ns, "--out", Path.Combine(dir, "artifacts"),
            .. Enumerable.Range(0, jobs).Select(i => Path.Combine(dir, "jobs", i.ToString(CultureInfo.InvariantCulture)))], Env(Path.Combine(dir, "fanin-cache")));
        rows.Add([$"fan-out N={n}", n.ToString(CultureInfo.InvariantCulture), F(wall), F(cpu), Mb(uploaded), $"{hits}/{jobs}", F(fanin.Wall), F(rss)]);
        Console.WriteLine($"fan-out N={n}: {F(wall)} s wall, {F(cpu)} s CPU, {Mb(uploaded)} MB uploaded, fan-in {F(fanin.Wall)} s; load {Measure.LoadAverage()}");
        last = registry;
        lastPlan = plan;
        // Release what the fan-in assembled, so the next run of this registry can hit.
        m.Run("dotnet", [harden, "push", "--registry", ns, "--layout", Path.Combine(dir, "artifacts", "oci"), "--artifacts", Path.Combine(dir, "artifacts")], Env(Path.Combine(dir, "fanin-cache")));
        m.Run("dotnet", [harden, "sign", "--artifacts", Path.Combine(dir, "artifacts"), "--images", set, "--key", keys.PrivateKeyPath], Env(Path.Combine(dir, "fanin-cache")));
    }

    // The all-hits rerun on the last registry, with the most workers.
    if (last != null)
    {
        var n = workers.Max();
        var ns = $"{last.Host}/bench";
        var dir = Path.Combine(work, "rerun");
        var plan = Path.Combine(dir, "plan.json");
        Directory.CreateDirectory(dir);
        m.Run("dotnet", [harden, "plan", "--images", set, "--registry", ns, "--key", keys.PublicKeyPath, "--out", plan], Env(Path.Combine(dir, "plan-cache")));
        var (wall, cpu, uploaded, hits, rss) = RunJobs(plan, ns, dir, "jobs", n);
        rows.Add([$"rerun (unchanged) N={n}", n.ToString(CultureInfo.InvariantCulture), F(wall), F(cpu), Mb(uploaded), $"{hits}/{jobs}", "-", F(rss)]);
    }

    Console.WriteLine();
    Console.WriteLine("| run | workers | wall s | CPU s (all processes) | uploaded MB | verified hits | fan-in s | peak RSS MB (one process) |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|");
    foreach (var r in rows) Console.WriteLine("| " + string.Join(" | ", r) + " |");
    Console.WriteLine($"load average after: {Measure.LoadAverage()}");
    return 0;

    (double Wall, double Cpu, long Uploaded, int Hits, double PeakRss) RunJobs(string plan, string ns, string dir, string sub, int n)
    {
        var queue = new ConcurrentQueue<int>(Enumerable.Range(0, jobs));
        var samples = new ConcurrentBag<Sample>();
        var sw = Stopwatch.StartNew();
        var threads = Enumerable.Range(0, n).Select(w => new Thread(() =>
        {
            // One cache per worker: a machine that runs several entries, as a node or a self-hosted runner does.
            var cache = Path.Combine(dir, $"worker-{w}-cache");
            while (queue.TryDequeue(out var entry))
                samples.Add(m.Timed("dotnet", [harden, "job", "--images", set, "--plan", plan, "--entry", entry.ToString(CultureInfo.InvariantCulture),
                    "--registry", ns, "--key", keys.PublicKeyPath, "--out", Path.Combine(dir, sub, entry.ToString(CultureInfo.InvariantCulture))], Env(cache)));
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        var wall = sw.Elapsed.TotalSeconds;
        var records = Enumerable.Range(0, jobs).Select(i => PlatformRecord.LoadAll(Path.Combine(dir, sub, i.ToString(CultureInfo.InvariantCulture))).Single().Record).ToList();
        if (samples.Count != jobs) throw new InvalidOperationException($"{samples.Count} of {jobs} jobs finished");
        return (wall, samples.Sum(s => s.Cpu), records.Sum(r => r.UploadedBytes), records.Count(r => r.Cache == CacheState.Hit), samples.Max(s => s.PeakRssMb));
    }
}
finally
{
    foreach (var r in registries) r.Dispose();
    if (!server.HasExited) { server.Kill(); server.WaitForExit(5000); }
    if (!keep) try { Directory.Delete(work, recursive: true); } catch (IOException) { }
}

static string F(double v) => v.ToString("0.0", CultureInfo.InvariantCulture);
static string Mb(long bytes) => (bytes / 1e6).ToString("0.0", CultureInfo.InvariantCulture);

static int FreePort()
{
    var l = new TcpListener(IPAddress.Loopback, 0);
    l.Start();
    var port = ((IPEndPoint)l.LocalEndpoint).Port;
    l.Stop();
    return port;
}

static void WaitForServer(string url)
{
    using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
    for (var i = 0; i < 100; i++)
    {
        try { if (http.GetAsync(url).Result.StatusCode == HttpStatusCode.OK) return; }
        catch (AggregateException) { }
        Thread.Sleep(100);
    }
    throw new InvalidOperationException($"{url} did not answer");
}
