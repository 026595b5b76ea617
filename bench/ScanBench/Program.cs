// ScanBench: builds an advisory index from GENERATED data of the real feeds' shape and size, scans an inventory
// the size of inference-cpu against it, then does the same with the real excerpts. Prints times and peak RSS.
//   dotnet run -c Release --project bench/ScanBench -- [--cves 40000] [--osv 50000] [--real vulndb] [--work DIR]
using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using HardenImage.Scan;
using HardenImage.Sbom;

int cves = 40_000, osvCount = 50_000;
string real = "vulndb";
string work = Path.Combine(Path.GetTempPath(), "hi-scanbench");
for (int i = 0; i < args.Length - 1; i++)
    switch (args[i])
    {
        case "--cves": cves = int.Parse(args[++i]); break;
        case "--osv": osvCount = int.Parse(args[++i]); break;
        case "--real": real = args[++i]; break;
        case "--work": work = args[++i]; break;
    }

if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
var db = Path.Combine(work, "db");
Directory.CreateDirectory(db);
var rng = new Random(42);

// --- GENERATED data -----------------------------------------------------------------------------------------
var sw = Stopwatch.StartNew();
var packages = Enumerable.Range(0, 300).Select(i => $"srcpkg{i}").Concat(["glibc", "openssl", "python3.13", "systemd", "zlib", "curl", "sqlite3", "expat", "xz-utils", "ncurses"]).ToArray();
var longTail = Enumerable.Range(0, 9000).Select(i => $"other{i}").ToArray();
string[] releases = ["bullseye", "bookworm", "trixie", "forky", "sid"];
string[] urgencies = ["low", "medium", "high", "unimportant", "not yet assigned", "low**", "medium**"];
var trackerPath = Path.Combine(db, "GENERATED-debian-tracker.json");
using (var fs = File.Create(trackerPath))
using (var w = new Utf8JsonWriter(fs))
{
    // Real shape: {srcpkg: {CVE: {description, scope, debianbug, releases: {codename: {status, repositories, fixed_version, urgency, nodsa?, nodsa_reason?}}}}}
    var byPkg = new Dictionary<string, List<int>>();
    for (int c = 0; c < cves; c++)
    {
        // Skewed spread: a few packages (linux, chromium-like) carry many CVEs, most carry few.
        int n = 1 + (rng.NextDouble() < 0.2 ? 1 : 0);
        for (int k = 0; k < n; k++)
        {
            // ~6% of CVE entries hit the ~310 source packages an inference image carries (≈8 each, skewed);
            // the rest spread over a long tail of packages the image does not have (like the real tracker).
            var pkg = rng.NextDouble() < 0.06 ? packages[(int)(Math.Pow(rng.NextDouble(), 2) * packages.Length)] : longTail[rng.Next(longTail.Length)];
            (byPkg.TryGetValue(pkg, out var l) ? l : byPkg[pkg] = new()).Add(c);
        }
    }
    w.WriteStartObject();
    foreach (var (pkg, list) in byPkg)
    {
        w.WriteStartObject(pkg);
        foreach (var c in list.Distinct())
        {
            w.WriteStartObject($"CVE-{2015 + c % 11}-{10000 + c}");
            w.WriteString("description", $"GENERATED description {c}: a flaw in {pkg} allows remote attackers to cause a denial of service via crafted input.");
            w.WriteString("scope", rng.NextDouble() < 0.5 ? "remote" : "local");
            w.WriteNumber("debianbug", 1000000 + c);
            w.WriteStartObject("releases");
            foreach (var rel in releases)
            {
                w.WriteStartObject(rel);
                var roll = rng.NextDouble();
                var status = roll < 0.75 ? "resolved" : roll < 0.95 ? "open" : "undetermined";
                w.WriteString("status", status);
                w.WriteStartObject("repositories");
                w.WriteString(rel, $"{1 + c % 5}.{c % 17}.{c % 7}-{1 + c % 3}");
                w.WriteEndObject();
                if (status == "resolved") w.WriteString("fixed_version", rng.NextDouble() < 0.2 ? "0" : $"{1 + c % 5}.{c % 17}.{c % 7 + 1}-1");
                w.WriteString("urgency", urgencies[rng.Next(urgencies.Length)]);
                if (status == "open" && rng.NextDouble() < 0.4) { w.WriteString("nodsa", "Minor issue"); w.WriteString("nodsa_reason", ""); }
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }
    w.WriteEndObject();
}
var pypiNames = Enumerable.Range(0, 3000).Select(i => $"pypkg{i}").Concat(["torch", "numpy", "jinja2", "fastapi", "starlette", "pydantic", "requests", "urllib3"]).ToArray();
foreach (var (eco, count) in new[] { ("PyPI", osvCount / 2), ("Debian", osvCount / 2) })
{
    using var zip = ZipFile.Open(Path.Combine(db, $"GENERATED-osv-{eco}.zip"), ZipArchiveMode.Create);
    for (int i = 0; i < count; i++)
    {
        var id = eco == "PyPI" ? $"PYSEC-GEN-{i}" : $"DEBIAN-CVE-GEN-{i}";
        var entry = zip.CreateEntry(id + ".json", CompressionLevel.Fastest);
        using var s = entry.Open();
        using var w = new Utf8JsonWriter(s);
        w.WriteStartObject();
        w.WriteString("id", id);
        w.WriteString("modified", "2025-01-01T00:00:00Z");
        w.WriteStartArray("aliases"); w.WriteStringValue($"CVE-2024-{20000 + i}"); w.WriteEndArray();
        w.WriteString("summary", $"GENERATED advisory {i}");
        w.WriteString("details", "GENERATED details. " + new string('x', 300));
        if (i % 3 == 0) { w.WriteStartArray("severity"); w.WriteStartObject(); w.WriteString("type", "CVSS_V3"); w.WriteString("score", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"); w.WriteEndObject(); w.WriteEndArray(); }
        w.WriteStartArray("affected");
        w.WriteStartObject();
        w.WriteStartObject("package");
        w.WriteString("ecosystem", eco == "PyPI" ? "PyPI" : (i % 2 == 0 ? "Debian:12" : "Debian:13"));
        w.WriteString("name", eco == "PyPI" ? pypiNames[(int)(Math.Pow(rng.NextDouble(), 2) * pypiNames.Length)] : packages[rng.Next(packages.Length)]);
        w.WriteEndObject();
        w.WriteStartArray("ranges");
        w.WriteStartObject();
        w.WriteString("type", "ECOSYSTEM");
        w.WriteStartArray("events");
        w.WriteStartObject(); w.WriteString("introduced", "0"); w.WriteEndObject();
        w.WriteStartObject(); w.WriteString("fixed", eco == "PyPI" ? $"{1 + i % 4}.{i % 20}.{i % 9}" : $"{1 + i % 5}.{i % 17}.{i % 7 + 1}-1"); w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndArray();
        if (eco == "PyPI") { w.WriteStartArray("versions"); for (int v = 0; v < 20; v++) w.WriteStringValue($"1.{v}.0"); w.WriteEndArray(); }
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
long dbBytes = Directory.EnumerateFiles(db).Sum(f => new FileInfo(f).Length);
Console.WriteLine($"GENERATED data: {cves} tracker CVEs + {osvCount} OSV records, {dbBytes / 1e6:F1} MB on disk ({sw.Elapsed.TotalSeconds:F1} s to generate; not timed below)");

// The inventory: the size of inference-cpu (~300 debs, ~40 Python distributions).
var inventory = new ImageInventory
{
    ImageName = "inference-cpu", Architecture = "amd64", Digest = "sha256:" + new string('b', 64), Distro = "debian-13",
    Packages = Enumerable.Range(0, 300).Select(i => new InventoryPackage
    {
        Name = $"bin{i}", Version = $"{1 + i % 5}.{i % 17}.{i % 7}-1", Architecture = "amd64",
        SourceName = packages[i % packages.Length], SourceVersion = $"{1 + i % 5}.{i % 17}.{i % 7}-1",
    }).ToList(),
    PythonDistributions = Enumerable.Range(0, 40).Select(i => new PythonDistribution
    {
        Name = pypiNames[i * 7 % pypiNames.Length], Version = $"1.{i % 20}.0", MetadataPath = $"x/{i}.dist-info/METADATA",
    }).ToList(),
};

Run("GENERATED", db, inventory);
if (Directory.Exists(real))
{
    var realInv = inventory with
    {
        Packages = [.. inventory.Packages, new InventoryPackage { Name = "libc6", Version = "2.41-10", Architecture = "amd64", SourceName = "glibc", SourceVersion = "2.41-10" }],
        PythonDistributions = [.. inventory.PythonDistributions, new PythonDistribution { Name = "torch", Version = "2.5.1", MetadataPath = "t" }],
    };
    Run($"real excerpts ({real})", real, realInv);
}
else Console.WriteLine($"real excerpts: {real} not found (pass --real PATH)");

void Run(string label, string path, ImageInventory inv)
{
    var cache = Path.Combine(work, "cache-" + Math.Abs(label.GetHashCode()));
    var store = new AdvisoryIndexStore(cache);
    GC.Collect();
    var t = Stopwatch.StartNew();
    var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
    var index = store.LoadOrBuild(path);
    var build = t.Elapsed;
    var buildCpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
    var rssAfterBuild = Process.GetCurrentProcess().PeakWorkingSet64;
    t.Restart();
    cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
    var again = new AdvisoryIndexStore(cache).LoadOrBuild(path);
    var load = t.Elapsed;
    var loadCpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
    var gate = new PolicyGate(VulnerabilityPolicy.Default, TimeProvider.System);
    var scanner = new VulnerabilityScanner(again, gate, TimeProvider.System);
    scanner.ScanAsync(inv, false).GetAwaiter().GetResult(); // warm-up (JIT)
    t.Restart();
    cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
    var result = scanner.ScanAsync(inv, false).GetAwaiter().GetResult();
    var scan = t.Elapsed;
    var scanCpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
    Console.WriteLine($"{label}: {index.RecordCount} records / {index.PackageCount} packages; index build {build.TotalSeconds:F2} s wall / {buildCpu.TotalSeconds:F2} s CPU " +
                      $"(peak RSS {rssAfterBuild / 1048576} MB, cache {new FileInfo(store.CachePathFor(index.DataDigest)).Length / 1e6:F1} MB); " +
                      $"cached load {load.TotalSeconds:F2} s wall / {loadCpu.TotalSeconds:F2} s CPU; scan of {inv.Packages.Count} debs + {inv.PythonDistributions.Count} dists {scan.TotalMilliseconds:F0} ms wall / {scanCpu.TotalMilliseconds:F0} ms CPU " +
                      $"→ {result.Findings.Count} findings");
}
Console.WriteLine($"load average at end: {File.ReadAllText("/proc/loadavg").Split(' ')[0]} on {Environment.ProcessorCount} cores");
Console.WriteLine($"peak RSS overall: {Process.GetCurrentProcess().PeakWorkingSet64 / 1048576} MB");
