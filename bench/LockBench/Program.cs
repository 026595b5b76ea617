// LockBench (issue 2): re-locking the shipped image set with warm index caches must take <= 2 s wall.
//
//   dotnet run -c Release --project bench/LockBench [-- --runs 3] [--work DIR] [--cache DIR] [--no-aptbench]
//
// Copies images/ to a scratch directory (the checkout is never written), warms a scratch HARDEN_CACHE with one
// untimed `harden lock --update`, then times, --runs times each (median): `harden lock --update` (re-resolves every
// buildable image: InRelease fetched and verified again, cached Packages.xz re-read) and plain `harden lock`
// (unchanged images keep their entries). Then it times the phases in-process by calling the library the way
// ImageLocker does, so a slow re-lock says where the time goes, and finally runs bench/AptBench for the
// trixie main amd64 Packages parse figure (target <= 1.5 s, <= 400 MB).
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using HardenImage.Apt;
using HardenImage.Bench;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Lock;

var cli = BenchArgs.Parse(args, "[--runs N] [--work DIR] [--cache DIR] [--no-aptbench]", ["--runs", "--work", "--cache"], ["--no-aptbench"], out var exit);
if (cli == null) return exit;
var runs = cli.Int("--runs", 3);
var work = cli.FullPath("--work", Path.Combine(Path.GetTempPath(), "hi-lockbench"));
var cacheArg = cli.Text("--cache") is { } c ? Path.GetFullPath(c) : null;
var aptBench = !cli.Flag("--no-aptbench");

Measure.RequireTool(Measure.GnuTime, "apt-get install -y time");
var repo = Measure.RepoRoot();
Directory.CreateDirectory(work);
var log = Path.Combine(work, "bench.log");
File.Delete(log);
var m = new Measure(log);
var harden = m.HardenDll(repo);
var cache = cacheArg ?? Path.Combine(work, "cache");
var set = Path.Combine(work, "images");
if (Directory.Exists(set)) Directory.Delete(set, true);
CopyDirectory(Path.Combine(repo, "images"), set);
var env = new Dictionary<string, string> { ["HARDEN_CACHE"] = cache };
Console.WriteLine($"image set copy {set}; cache {cache}; log {log}; load average before: {Measure.LoadAverage()}; cores: {Environment.ProcessorCount}");

// Warm the index cache (downloads the Packages.xz of every suite once; untimed).
var warmup = Stopwatch.StartNew();
m.Run("dotnet", [harden, "lock", "--update", "--images", set], env);
Console.WriteLine($"warm-up lock --update (downloads indices unless cached): {warmup.Elapsed.TotalSeconds:0.0} s");

var update = new List<Sample>(); var plain = new List<Sample>();
for (var r = 1; r <= runs; r++)
{
    update.Add(m.Timed("dotnet", [harden, "lock", "--update", "--images", set], env));
    plain.Add(m.Timed("dotnet", [harden, "lock", "--images", set], env));
    Console.WriteLine($"run {r}/{runs}: lock --update {update[^1].Wall:0.00} s, lock {plain[^1].Wall:0.00} s; load {Measure.LoadAverage()}");
}
var startup = new List<Sample>();
for (var r = 1; r <= runs; r++) startup.Add(m.Timed("dotnet", [harden, "--help"], env));

// --- phases, in-process -----------------------------------------------------------------------------------------
var phases = await Phases.MeasureAsync(set, cache, runs);

Console.WriteLine();
Console.WriteLine($"LockBench: shipped image set ({string.Join(", ", phases.Images)}; {string.Join(", ", phases.Architectures)}), warm index cache, medians of {runs} runs");
Console.WriteLine($"load average: {Measure.LoadAverage()} on {Environment.ProcessorCount} cores (shared with other work: wall inflated)");
Console.WriteLine($"{"command",-40} {"wall s",7} {"user s",7} {"sys s",7} {"cpu s",7} {"RSS MB",7} {"target",-10} verdict");
void Row(string name, Sample s, string target, bool? ok) =>
    Console.WriteLine($"{name,-40} {s.Wall,7:0.00} {s.User,7:0.00} {s.Sys,7:0.00} {s.Cpu,7:0.00} {s.PeakRssMb,7:0} {target,-10} {(ok == null ? "" : Measure.Verdict(ok.Value))}");
var u = Sample.Median(update); var p = Sample.Median(plain);
Row("harden lock --update (re-resolve all)", u, "<= 2 s", u.Wall <= 2);
Row("harden lock (unchanged entries kept)", p, "<= 2 s", p.Wall <= 2);
Row("harden --help (process start only)", Sample.Median(startup), "", null);
Console.WriteLine();
Console.WriteLine("where lock --update spends its time (in-process, library called directly; first = cold JIT as in the CLI, then median of the later runs):");
Console.WriteLine($"{"phase",-62} {"first s",8} {"median s",9} {"cpu s",7}");
foreach (var ph in phases.Rows)
    Console.WriteLine($"{ph.Name,-62} {(double.IsNaN(ph.First) ? "-" : ph.First.ToString("0.000", CultureInfo.InvariantCulture)),8} {ph.Median,9:0.000} {ph.Cpu,7:0.000}");
Console.WriteLine($"peak RSS of this bench process (holds all indices): {Phases.PeakRssMb():0} MB");

if (aptBench)
{
    Console.WriteLine();
    Console.WriteLine("bench/AptBench (trixie main amd64 Packages.xz, ~65k stanzas; its own process):");
    var output = m.Run("dotnet", ["run", "-c", "Release", "--project", Path.Combine(repo, "bench", "AptBench")], workDir: repo);
    foreach (var line in output.Split('\n').Where(l => Regex.IsMatch(l, @"^(index:|parse:|parse \(warm\)|peak RSS:|load average:|xz decode|deb822)")))
        Console.WriteLine("  " + line.Trim());
}
return 0;

static void CopyDirectory(string from, string to)
{
    Directory.CreateDirectory(to);
    foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    foreach (var d in Directory.GetDirectories(from)) CopyDirectory(d, Path.Combine(to, Path.GetFileName(d)));
}

/// <summary>One phase: first (cold JIT) wall, median wall of the later runs, median process CPU.</summary>
internal sealed record PhaseRow(string Name, double First, double Median, double Cpu);

internal sealed record PhaseReport(IReadOnlyList<string> Images, IReadOnlyList<string> Architectures, IReadOnlyList<PhaseRow> Rows);

/// <summary>Times what ImageLocker.LockAsync does, step by step, sequentially (so each step is attributable).</summary>
internal static class Phases
{
    public static async Task<PhaseReport> MeasureAsync(string setDir, string cacheRoot, int runs)
    {
        var samples = new Dictionary<string, List<(double Wall, double Cpu)>>();
        var order = new List<string>();
        T Time<T>(string name, Func<T> f)
        {
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            var result = f();
            var wall = sw.Elapsed.TotalSeconds;
            var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
            if (!samples.TryGetValue(name, out var l)) { samples[name] = l = new(); order.Add(name); }
            l.Add((wall, cpu));
            return result;
        }

        IReadOnlyList<string> imageNames = [];
        Dictionary<string, SuiteIndex> lastIndexes = new();
        var archNames = new SortedSet<string>(StringComparer.Ordinal);
        for (var run = 0; run < runs + 1; run++)
        {
            var total = Stopwatch.StartNew();
            var cpuTotal0 = Process.GetCurrentProcess().TotalProcessorTime;
            var set = Time("ImageSet.Load", () => ImageSet.Load(setDir));
            var selected = Time("select buildable images", () => set.InBuildOrder()
                .Where(i => set.Ancestors(i).Prepend(i).All(x => x.RequiresNetwork == null)).ToList());
            imageNames = selected.Select(i => i.Name).ToList();
            var needed = new SortedDictionary<string, (SourceDefinition Source, string Suite, SortedSet<string> Archs)>(StringComparer.Ordinal);
            foreach (var image in selected)
            {
                var eff = ImageSet.Effective(set, image);
                foreach (var s in eff.Sources)
                    foreach (var suite in set.Sources[s].Suites)
                    {
                        var key = $"{s}/{suite}";
                        if (!needed.TryGetValue(key, out var e)) needed[key] = e = (set.Sources[s], suite, new SortedSet<string>(StringComparer.Ordinal));
                        foreach (var a in eff.Architectures) { e.Archs.Add(a); archNames.Add(a); }
                    }
            }
            using var http = AptRepositoryClient.CreateHttpClient();
            var client = new AptRepositoryClient(http, new AptIndexCache(Path.Combine(cacheRoot, "indices")));
            var indexes = new Dictionary<string, SuiteIndex>(StringComparer.Ordinal);
            foreach (var (key, (source, suite, archs)) in needed)
            {
                // The network round trip alone (the CLI re-fetches InRelease every time: it is what says "newest").
                var dist = source.Flat ? source.Url : $"{source.Url.TrimEnd('/')}/dists/{suite}";
                Time($"GET {key} InRelease (network only)", () => http.GetByteArrayAsync(dist + "/InRelease").GetAwaiter().GetResult().Length);
                var raw = Time($"AptRepositoryClient.FetchAsync {key} [{string.Join(",", archs)}]", () => client.FetchAsync(new AptSource
                {
                    Name = key, BaseUrl = source.Url, Suite = suite, Components = source.Components, Architectures = archs.ToList(),
                    KeyringPaths = [Path.Combine(set.Directory, source.Keyring)],
                }).GetAwaiter().GetResult());
                // What AptSuiteIndexReader adds on top: the per-architecture split (the full reader = both rows).
                indexes[key] = Time($"  per-arch split (AptSuiteIndexReader) {key}", () => new SuiteIndex
                {
                    Source = source.Name, Suite = suite, Url = source.Url, InReleaseSha256 = raw.InReleaseSha256, Date = raw.Date,
                    Packages = archs.ToDictionary(a => a, a => (IReadOnlyList<BinaryPackage>)raw.Packages
                        .Where(p => p.Architecture == a || p.Architecture == "all").DistinctBy(p => (p.Name, p.Version, p.Sha256)).ToList()),
                });
            }
            lastIndexes = indexes;
            var universes = new Dictionary<string, PackageUniverse>(StringComparer.Ordinal);
            var lockedByImage = new Dictionary<(string, string), LockedArchitecture>();
            foreach (var image in selected)
            {
                var eff = ImageSet.Effective(set, image);
                foreach (var arch in eff.Architectures.Order(StringComparer.Ordinal))
                {
                    var keys = eff.Sources.SelectMany(s => set.Sources[s].Suites.Select(x => $"{s}/{x}")).ToList();
                    var ukey = arch + "|" + string.Join(",", keys);
                    if (!universes.TryGetValue(ukey, out var universe))
                        universes[ukey] = universe = Time($"new PackageUniverse({arch}, {string.Join("+", keys)})",
                            () => new PackageUniverse(arch, keys.SelectMany(k => indexes[k].Packages.TryGetValue(arch, out var l) ? l : [])));
                    var installed = new Dictionary<string, string>(StringComparer.Ordinal);
                    foreach (var a in set.Ancestors(image))
                        foreach (var pkg in lockedByImage[(a.Name, arch)].Packages) installed.TryAdd(pkg.Name, pkg.Version);
                    var result = Time($"DependencyResolver.Resolve {image.Name} {arch}", () => new DependencyResolver(universe).Resolve(new ResolveRequest
                    {
                        Architecture = arch, Packages = image.Packages, Excluded = image.Exclude, Installed = installed,
                        Sources = keys, Image = image.File,
                    }));
                    lockedByImage[(image.Name, arch)] = result.ToLockedArchitecture();
                }
            }
            Time("LockFile JSON (serialize)", () => new LockFile
            {
                Images = lockedByImage.GroupBy(k => k.Key.Item1).Select(g => new LockedImage
                {
                    Name = g.Key, InputsSha256 = "", Architectures = g.Select(x => x.Value).ToList(),
                }).ToList(),
            }.ToJson().Length);
            var wall = total.Elapsed.TotalSeconds;
            var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuTotal0).TotalSeconds;
            if (!samples.TryGetValue("TOTAL (sequential suites)", out var t)) { samples["TOTAL (sequential suites)"] = t = new(); }
            t.Add((wall, cpu));
            GC.Collect();
        }
        order.Add("TOTAL (sequential suites)");

        // The real thing in-process, suites in parallel as ImageLocker does it (JIT warm by now).
        var full = new List<(double, double)>();
        for (var run = 0; run < runs; run++)
        {
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            var set = ImageSet.Load(setDir);
            using var http = AptRepositoryClient.CreateHttpClient();
            var client = new AptRepositoryClient(http, new AptIndexCache(Path.Combine(cacheRoot, "indices")));
            var names = set.InBuildOrder().Where(i => set.Ancestors(i).Prepend(i).All(x => x.RequiresNetwork == null)).Select(i => i.Name).ToList();
            await new ImageLocker(new AptSuiteIndexReader(client, set.Directory)).LockAsync(set, null, new LockOptions { Update = true, Images = names });
            full.Add((sw.Elapsed.TotalSeconds, (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds));
            GC.Collect();
        }
        samples["ImageLocker.LockAsync, suites in parallel (JIT warm)"] = [(double.NaN, double.NaN), .. full];
        order.Add("ImageLocker.LockAsync, suites in parallel (JIT warm)");

        // Prototype of suggestion 2 (docs/performance.md): a compact binary snapshot of the parsed indices, holding
        // only the fields the resolver and the lock read, as the cache could keep it per index SHA-256.
        var all = lastIndexes.Values.SelectMany(i => i.Packages.Values.SelectMany(l => l)).DistinctBy(p => (p.Name, p.Version, p.Architecture, p.Origin)).ToList();
        var snapshot = Path.Combine(Path.GetTempPath(), $"lockbench-snapshot-{Environment.ProcessId}.bin");
        Snapshot.Write(snapshot, all);
        var snapshotMb = new FileInfo(snapshot).Length / 1e6;
        var readName = $"prototype: read compact snapshot of all suites ({all.Count:N0} pkgs, {snapshotMb:0.0} MB)";
        for (var run = 0; run < runs + 1; run++)
        {
            var pkgs = Time(readName, () => Snapshot.Read(snapshot));
            foreach (var arch in archNames)
                Time($"prototype: new PackageUniverse({arch}) from the snapshot", () => new PackageUniverse(arch, pkgs.Where(p => p.Architecture == arch || p.Architecture == "all")));
        }
        File.Delete(snapshot);

        var rows = order.Select(name =>
        {
            var l = samples[name];
            var later = l.Skip(1).ToList();
            return new PhaseRow(name, l[0].Wall, Sample.MedianOf(later.Select(x => x.Wall)), Sample.MedianOf(later.Select(x => x.Cpu)));
        }).ToList();
        return new PhaseReport(imageNames, archNames.ToList(), rows);
    }

    public static double PeakRssMb()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
        return double.NaN;
    }
}

/// <summary>Bench-only stand-in for a parsed-index cache entry: length-prefixed strings, no deb822 paragraph.</summary>
internal static class Snapshot
{
    public static void Write(string path, IReadOnlyList<BinaryPackage> packages)
    {
        using var w = new BinaryWriter(File.Create(path));
        w.Write(packages.Count);
        foreach (var p in packages)
        {
            foreach (var s in new[] { p.Name, p.Version, p.Architecture, p.SourceName, p.SourceVersion, p.Filename, p.Sha256,
                         p.Depends, p.PreDepends, p.Provides, p.MultiArch, p.Origin, p.BaseUrl, p.Paragraph?["Priority"] ?? "" })
                w.Write(s);
            w.Write(p.Size);
            w.Write(p.Essential);
        }
    }

    public static List<BinaryPackage> Read(string path)
    {
        using var r = new BinaryReader(new BufferedStream(File.OpenRead(path), 1 << 16));
        var n = r.ReadInt32();
        var list = new List<BinaryPackage>(n);
        for (var i = 0; i < n; i++)
        {
            string name = r.ReadString(), version = r.ReadString(), arch = r.ReadString(), srcName = r.ReadString(), srcVersion = r.ReadString(),
                file = r.ReadString(), sha = r.ReadString(), dep = r.ReadString(), pre = r.ReadString(), prov = r.ReadString(), ma = r.ReadString(),
                origin = r.ReadString(), baseUrl = r.ReadString();
            r.ReadString(); // Priority: a real cache would keep it as a field of its own
            list.Add(new BinaryPackage
            {
                Name = name, Version = version, Architecture = arch, SourceName = srcName, SourceVersion = srcVersion, Filename = file,
                Sha256 = sha, Depends = dep, PreDepends = pre, Provides = prov, MultiArch = ma, Origin = origin, BaseUrl = baseUrl,
                Size = r.ReadInt64(), Essential = r.ReadBoolean(),
            });
        }
        return list;
    }
}
