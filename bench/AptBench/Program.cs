// AptBench: how fast HardenImage reads the largest index it meets, trixie main amd64 Packages.xz.
// Targets: parse (decompress + deb822 + BinaryPackage) <= 1.5 s, peak RSS <= 400 MB.
// Usage: dotnet run -c Release --project bench/AptBench [-- --file Packages.xz]
// Without --file it downloads the index once from deb.debian.org into $HARDEN_CACHE/bench (or ~/.cache/hardenimage/bench).
using System.Diagnostics;
using HardenImage.Apt;
using HardenImage.Common.Compression;
using HardenImage.Deb;

const string Url = "http://deb.debian.org/debian/dists/trixie/main/binary-amd64/Packages.xz";
string? file = null;
for (int i = 0; i < args.Length; i++) if (args[i] == "--file" && i + 1 < args.Length) file = args[++i];

if (file == null)
{
    var dir = Path.Combine(AptIndexCache.DefaultRoot(), "bench");
    Directory.CreateDirectory(dir);
    file = Path.Combine(dir, "trixie-main-amd64-Packages.xz");
    if (!File.Exists(file))
    {
        Console.WriteLine($"downloading {Url}");
        using var http = AptRepositoryClient.CreateHttpClient();
        var bytes = await http.GetByteArrayAsync(Url);
        HardenImage.Common.AtomicFile.WriteAllBytes(file, bytes);
    }
}
Console.WriteLine($"index: {file} ({new FileInfo(file).Length:N0} bytes), liblzma available: {XzDecompression.NativeAvailable}, cores: {Environment.ProcessorCount}");

// The target: what AptRepositoryClient does with a verified index (liblzma + read-ahead thread + parse).
var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
var sw = Stopwatch.StartNew();
var packages = PackagesIndex.ReadFile(file, "debian", "http://deb.debian.org/debian");
var parse = sw.Elapsed;
var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
var hwmAfterParse = PeakRssMb();
Console.WriteLine($"GCs: gen0 {GC.CollectionCount(0)}, gen1 {GC.CollectionCount(1)}, gen2 {GC.CollectionCount(2)}, pause {GC.GetTotalPauseDuration().TotalSeconds:0.000} s, allocated {GC.GetTotalAllocatedBytes() / 1048576} MB");
Console.WriteLine($"parse:        {parse.TotalSeconds:0.000} s wall, {cpu.TotalSeconds:0.000} s CPU (all threads) for {packages.Count:N0} packages (target <= 1.5 s wall) {(parse.TotalSeconds <= 1.5 ? "OK" : "OVER")}");
Console.WriteLine($"load average: {File.ReadAllText("/proc/loadavg").Trim()} (other processes share these cores: wall time is only honest on an idle machine)");
Console.WriteLine($"peak RSS:     {hwmAfterParse:0} MB (VmHWM, whole process, list still alive; target <= 400 MB) {(hwmAfterParse <= 400 ? "OK" : "OVER")}");
GC.KeepAlive(packages);
packages = null;
GC.Collect();

// Second run: warm JIT, same work.
sw.Restart();
var again = PackagesIndex.ReadFile(file, "debian", "http://deb.debian.org/debian").Count;
Console.WriteLine($"parse (warm): {sw.Elapsed.TotalSeconds:0.000} s for {again:N0} packages");

sw.Restart();
using (var seq = PackagesIndex.OpenDecompressed(file, readAhead: false))
    again = PackagesIndex.Read(seq, "debian", "").Count();
Console.WriteLine($"parse without read-ahead thread: {sw.Elapsed.TotalSeconds:0.000} s for {again:N0} packages");

var c0 = Cpu(); var c0Exp = c0;
// For comparison: the same parse with normal collections (no GcQuietScope), i.e. what it costs without the region.
GC.Collect();
sw.Restart(); c0Exp = Cpu();
using (var plainGc = PackagesIndex.OpenDecompressed(file))
    again = PackagesIndex.Read(plainGc, "debian", "http://deb.debian.org/debian").ToList().Count;
Console.WriteLine($"parse with normal GC (no no-GC region): {sw.Elapsed.TotalSeconds:0.000} s wall, {(Cpu() - c0Exp).TotalSeconds:0.000} s CPU for {again:N0}");

// Where the time goes: decompression alone, each decoder.
c0 = Cpu();
Console.WriteLine($"xz decode only, liblzma:       {DecodeOnly(true):0.000} s wall, {(Cpu() - c0).TotalSeconds:0.000} s CPU");
c0 = Cpu();
Console.WriteLine($"xz decode only, SharpCompress: {DecodeOnly(false):0.000} s wall, {(Cpu() - c0).TotalSeconds:0.000} s CPU");
var plain = Path.Combine(Path.GetTempPath(), $"aptbench-{Environment.ProcessId}-Packages");
using (var src = PackagesIndex.OpenDecompressed(file)) using (var dst = File.Create(plain)) src.CopyTo(dst);
sw.Restart(); c0 = Cpu();
var n = PackagesIndex.ReadFile(plain, "debian", "").Count;
Console.WriteLine($"deb822 + BinaryPackage only (uncompressed file): {sw.Elapsed.TotalSeconds:0.000} s wall, {(Cpu() - c0).TotalSeconds:0.000} s CPU for {n:N0}");
sw.Restart(); c0 = Cpu();
using (var r = new StreamReader(plain)) n = Deb822.Read(r).Count();
Console.WriteLine($"deb822 only, nothing kept (uncompressed file):   {sw.Elapsed.TotalSeconds:0.000} s wall, {(Cpu() - c0).TotalSeconds:0.000} s CPU for {n:N0}");
sw.Restart(); c0 = Cpu();
using (var r = new StreamReader(plain)) n = Deb822.Read(r).ToList().Count;
Console.WriteLine($"deb822 only, paragraphs kept (uncompressed file): {sw.Elapsed.TotalSeconds:0.000} s wall, {(Cpu() - c0).TotalSeconds:0.000} s CPU for {n:N0}");
sw.Restart(); c0 = Cpu();
using (var r = new StreamReader(plain)) n = Deb822.Read(r).Select(p => BinaryPackage.FromParagraph(p)).Count();
Console.WriteLine($"deb822 + BinaryPackage, nothing kept:              {sw.Elapsed.TotalSeconds:0.000} s wall, {(Cpu() - c0).TotalSeconds:0.000} s CPU for {n:N0}");
File.Delete(plain);
Console.WriteLine($"peak RSS at exit: {PeakRssMb():0} MB");

double DecodeOnly(bool native)
{
    var t = Stopwatch.StartNew();
    using var s = PackagesIndex.OpenDecompressed(file!, readAhead: false, preferNativeXz: native);
    var buf = new byte[1 << 16];
    long total = 0;
    int r;
    while ((r = s.Read(buf)) > 0) total += r;
    return t.Elapsed.TotalSeconds;
}

static TimeSpan Cpu() => Process.GetCurrentProcess().TotalProcessorTime;

static double PeakRssMb()
{
    foreach (var line in File.ReadLines("/proc/self/status"))
        if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
    return Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0;
}
