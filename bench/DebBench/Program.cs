using System.Diagnostics;
using HardenImage.Deb;

// Measures the two xz decoders the .deb reader can use (the system's liblzma through P/Invoke and SharpCompress's
// managed XZStream) on large real packages, then times a full read of each package with the default reader.
//
//   dotnet run -c Release --project bench/DebBench [-- [--runs N] [--cache DIR] [--package NAME]... [FILE.deb]...]
//
// Without files it fetches the named packages (default: libpython3.11-stdlib and libicu72, both xz) with
// `apt-get download` into the cache directory once, so the figures use the archive this machine's apt points at.

var runs = 3;
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
        case "--package": packages.Add(args[++i]); break;
        default: files.Add(args[i]); break;
    }
}
if (files.Count == 0)
{
    if (packages.Count == 0) packages.AddRange(["libpython3.11-stdlib", "libicu72"]);
    Directory.CreateDirectory(cache);
    foreach (var name in packages) files.Add(Fetch(name, cache));
}

Console.WriteLine($"liblzma.so.5 loadable: {DebDecompressionProbe.LibLzmaAvailable}; runs per decoder: {runs} (median shown)");
Console.WriteLine($"{".deb",-48} {"decoder",-9} {"xz MB",7} {"tar MB",7} {"seconds",8} {"MB/s out",9} {"alloc MB/run",12}");
foreach (var file in files)
{
    var (member, compressed) = ReadDataMember(file);
    if (!member.EndsWith(".xz", StringComparison.Ordinal))
    {
        Console.WriteLine($"{Path.GetFileName(file)}: {member} is not xz; skipped");
        continue;
    }
    foreach (var decoder in new[] { XzDecoder.LibLzma, XzDecoder.Managed })
    {
        if (decoder == XzDecoder.LibLzma && !DebDecompressionProbe.LibLzmaAvailable) continue;
        var times = new List<double>();
        long outBytes = 0;
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        for (var r = 0; r < runs; r++)
        {
            var sw = Stopwatch.StartNew();
            using var input = new MemoryStream(compressed, writable: false);
            using var xz = DebDecompression.Open(input, DebCompression.Xz, member, decoder);
            outBytes = CopyToNull(xz);
            times.Add(sw.Elapsed.TotalSeconds);
        }
        var allocated = (GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore) / runs;
        var median = times.Order().ElementAt(times.Count / 2);
        Console.WriteLine($"{Path.GetFileName(file),-48} {decoder,-9} {compressed.Length / 1e6,7:F2} {outBytes / 1e6,7:F2} {median,8:F3} {outBytes / 1e6 / median,9:F1} {allocated / 1e6,12:F1}");
    }
}

Console.WriteLine();
Console.WriteLine("Full read with DebPackageReader (default options): open, parse control, stream every data entry and its content.");
foreach (var file in files)
{
    var sw = Stopwatch.StartNew();
    long entries = 0, bytes = 0;
    using (var deb = DebPackageReader.Open(file))
    {
        foreach (var entry in deb.ReadDataEntries())
        {
            entries++;
            bytes += CopyToNull(entry.Content);
        }
    }
    Console.WriteLine($"{Path.GetFileName(file),-48} {sw.Elapsed.TotalSeconds,7:F3} s  {entries,6} entries  {bytes / 1e6,7:F2} MB content");
}
Console.WriteLine($"peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0} MB, allocated {GC.GetTotalAllocatedBytes() / 1e6:F0} MB");

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

static string Fetch(string package, string cache)
{
    var existing = Directory.GetFiles(cache, package + "_*.deb");
    if (existing.Length > 0) return existing[0];
    Console.WriteLine($"apt-get download {package} (into {cache})");
    var psi = new ProcessStartInfo("apt-get", ["download", package]) { WorkingDirectory = cache };
    using var p = Process.Start(psi)!;
    p.WaitForExit();
    existing = Directory.GetFiles(cache, package + "_*.deb");
    if (p.ExitCode != 0 || existing.Length == 0)
        throw new InvalidOperationException($"apt-get download {package} failed (exit {p.ExitCode}); run 'apt-get update' or pass a .deb path.");
    return existing[0];
}

static class DebDecompressionProbe
{
    public static bool LibLzmaAvailable
    {
        get
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
    }
}
