using System.Diagnostics;
using HardenImage.Deb;
using HardenImage.Common.Compression;

// Measures the two xz decoders the .deb reader can use (the system's liblzma through P/Invoke and SharpCompress's
// managed XZStream) on large real packages, then times a full read of each package with the default reader.
//
//   dotnet run -c Release --project bench/DebBench [-- [--runs N] [--cache DIR] [--suite trixie] [--package NAME]... [FILE.deb]...]
//
// Without files it fetches the named packages (default: libpython3.13-stdlib and python3.13-minimal from Debian 13
// "trixie") once into the cache directory with apt-get, using a private apt state there (its own sources list and
// lists, verified with the machine's Debian archive keyring) so the machine's apt configuration is left alone.
// The decoders run interleaved (liblzma, managed, liblzma, ...) so a busy machine slows both alike; the table shows
// the median wall time and the median process CPU time of the runs.

var runs = 5;
var suite = "trixie";
var cache = Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME")
                         ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"),
                         "hardenimage", "debbench");
var packages = new List<string>();
var files = new List<string>();
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--runs": runs = int.Parse(args[++i]); break;
        case "--cache": cache = args[++i]; break;
        case "--suite": suite = args[++i]; break;
        case "--package": packages.Add(args[++i]); break;
        default: files.Add(args[i]); break;
    }
}
if (files.Count == 0)
{
    if (packages.Count == 0) packages.AddRange(["libpython3.13-stdlib", "python3.13-minimal"]);
    files.AddRange(Fetch(packages, suite, Path.Combine(cache, suite)));
}

var libLzma = LibLzmaLoads();
Console.WriteLine($"liblzma.so.5 loadable: {libLzma}; {runs} interleaved runs per decoder; medians; MB = 10^6 bytes of tar output");
Console.WriteLine($"{".deb",-50} {"decoder",-8} {"xz MB",6} {"tar MB",7} {"wall s",7} {"MB/s",6} {"cpu s",6} {"MB/s cpu",8} {"alloc MB",8}");
foreach (var file in files)
{
    var (member, compressed) = ReadDataMember(file);
    if (!member.EndsWith(".xz", StringComparison.Ordinal))
    {
        Console.WriteLine($"{Path.GetFileName(file)}: {member} is not xz; skipped");
        continue;
    }
    XzDecoder[] decoders = libLzma ? [XzDecoder.LibLzma, XzDecoder.Managed] : [XzDecoder.Managed];
    var wall = decoders.ToDictionary(d => d, _ => new List<double>());
    var cpu = decoders.ToDictionary(d => d, _ => new List<double>());
    var alloc = decoders.ToDictionary(d => d, _ => 0L);
    long outBytes = 0;
    for (var r = 0; r < runs + 1; r++)
    {
        foreach (var decoder in decoders)
        {
            var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            using (var input = new MemoryStream(compressed, writable: false))
            using (var xz = DebDecompression.Open(input, DebCompression.Xz, member, decoder))
                outBytes = CopyToNull(xz);
            if (r == 0) continue; // warm-up (JIT)
            wall[decoder].Add(sw.Elapsed.TotalSeconds);
            cpu[decoder].Add((Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds);
            alloc[decoder] += GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
        }
    }
    foreach (var decoder in decoders)
    {
        var w = Median(wall[decoder]);
        var c = Median(cpu[decoder]);
        Console.WriteLine($"{Path.GetFileName(file),-50} {(decoder == XzDecoder.LibLzma ? "liblzma" : "managed"),-8} " +
                          $"{compressed.Length / 1e6,6:F2} {outBytes / 1e6,7:F2} {w,7:F3} {outBytes / 1e6 / w,6:F1} " +
                          $"{c,6:F3} {outBytes / 1e6 / c,8:F1} {alloc[decoder] / runs / 1e6,8:F1}");
    }
}

Console.WriteLine();
Console.WriteLine("Full read with DebPackageReader (default options): open, parse control, stream every data entry and its content.");
foreach (var file in files)
{
    var times = new List<double>();
    long entries = 0, bytes = 0;
    for (var r = 0; r < runs; r++)
    {
        entries = bytes = 0;
        var sw = Stopwatch.StartNew();
        using (var deb = DebPackageReader.Open(file))
        {
            foreach (var entry in deb.ReadDataEntries())
            {
                entries++;
                bytes += CopyToNull(entry.Content);
            }
        }
        times.Add(sw.Elapsed.TotalSeconds);
    }
    Console.WriteLine($"{Path.GetFileName(file),-50} {Median(times),7:F3} s  {entries,6} entries  {bytes / 1e6,7:F2} MB content");
}
Console.WriteLine($"peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0} MB (includes the compressed members held for the decoder runs)");

static double Median(List<double> xs) => xs.Order().ElementAt(xs.Count / 2);

static long CopyToNull(Stream s)
{
    var buffer = new byte[1 << 16];
    long total = 0;
    int n;
    while ((n = s.Read(buffer)) > 0) total += n;
    return total;
}

static (string Member, byte[] Compressed) ReadDataMember(string file)
{
    using var ar = new ArReader(File.OpenRead(file), Path.GetFileName(file));
    while (ar.ReadNextMember() is { } m)
    {
        if (!m.Name.StartsWith("data.tar", StringComparison.Ordinal)) continue;
        var bytes = new byte[m.Size];
        m.Content.ReadExactly(bytes);
        return (m.Name, bytes);
    }
    throw new InvalidOperationException($"{file}: no data.tar member");
}

static List<string> Fetch(List<string> packages, string suite, string dir)
{
    var found = packages.Select(p => Directory.Exists(dir) ? Directory.GetFiles(dir, p + "_*.deb").FirstOrDefault() : null).ToList();
    if (found.All(f => f != null)) return found!;

    Directory.CreateDirectory(Path.Combine(dir, "apt", "lists", "partial"));
    Directory.CreateDirectory(Path.Combine(dir, "apt", "cache", "archives", "partial"));
    var sources = Path.Combine(dir, "apt", "sources.list");
    File.WriteAllText(sources, $"deb http://deb.debian.org/debian {suite} main\n");
    string[] aptOptions =
    [
        "-o", $"Dir::Etc::SourceList={sources}", "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", $"Dir::State::Lists={Path.Combine(dir, "apt", "lists")}", "-o", $"Dir::Cache={Path.Combine(dir, "apt", "cache")}",
        "-o", "Dir::State::status=/dev/null",
    ];
    Apt([.. aptOptions, "update"], dir);
    Apt([.. aptOptions, "download", .. packages], dir);
    return packages.Select(p => Directory.GetFiles(dir, p + "_*.deb").FirstOrDefault()
                                ?? throw new InvalidOperationException($"apt-get download {p} ({suite}) produced no file")).ToList();
}

static void Apt(string[] args, string workingDirectory)
{
    Console.WriteLine("apt-get " + args[^1] + (args[^1] == "update" ? "" : " ..."));
    using var p = Process.Start(new ProcessStartInfo("apt-get", args) { WorkingDirectory = workingDirectory })!;
    p.WaitForExit();
    if (p.ExitCode != 0)
        throw new InvalidOperationException($"apt-get {string.Join(' ', args)} failed (exit {p.ExitCode}); pass .deb paths instead.");
}

static bool LibLzmaLoads()
{
    try
    {
        using var s = DebDecompression.Open(new MemoryStream(), DebCompression.Xz, "probe", XzDecoder.LibLzma);
        return true;
    }
    catch (HardenImage.Common.HardenException)
    {
        return false;
    }
}
