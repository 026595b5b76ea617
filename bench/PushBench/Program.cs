// PushBench: our ImagePusher against `skopeo copy` into a real docker-registry on loopback.
//   dotnet run -c Release --project bench/PushBench [-- --work DIR --images 5 --parent-mb 80 --own-mb 35]
// Builds (or reuses) an OCI layout of N single-arch images sharing a parent, starts docker-registry on a free
// port, then times: skopeo copy per image into fresh repositories; ImagePusher into other fresh repositories;
// both again unchanged (re-push); --rounds alternates which goes first. Prints both tools' figures and the ratios.
using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using HardenImage.Bench;
using HardenImage.Oci;
using HardenImage.Registry;

var opts = Args.Parse(args);
Directory.CreateDirectory(opts.Work);
var layoutDir = Path.Combine(opts.Work, $"oci-{opts.Images}x{opts.OwnMb}-{opts.ParentMb}");
var names = Enumerable.Range(1, opts.Images).Select(i => $"img{i}").ToList();
var layout = File.Exists(Path.Combine(layoutDir, "done")) ? OciLayout.Open(layoutDir) : BuildLayout(layoutDir, names, opts);
var totalBytes = Directory.GetFiles(layout.BlobsDir).Sum(f => new FileInfo(f).Length);
Console.WriteLine($"layout {layoutDir}: {names.Count} images, {totalBytes / 1048576.0:0} MiB of blobs (parent {opts.ParentMb} MiB shared)");

var run = DateTime.UtcNow.ToString("HHmmss");
var images = ImagePusher.ImagesInLayout(layout);
TimeSpan skopeoFirst = TimeSpan.MaxValue, skopeoAgain = TimeSpan.MaxValue, oursFirst = TimeSpan.MaxValue, oursAgain = TimeSpan.MaxValue;
IReadOnlyList<ImagePushResult> first = [], again = [];

// Rounds alternate which tool goes first (page cache, registry disk state); the best of each is reported.
for (var round = 1; round <= opts.Rounds; round++)
{
    var prefix = $"r{run}x{round}";
    void SkopeoRound()
    {
        // A fresh registry per tool and round: skopeo's blob-info cache would otherwise mount every blob from the
        // previous round's repositories (a different port is a different registry to it).
        using var registry = RegistryProcess.Start(opts.Work);
        // One copy per image (what a pipeline script does), fresh repositories.
        var t1 = Time(() => { foreach (var n in names) Skopeo(layoutDir, n, $"{registry.Host}/skopeo{prefix}/{n}:latest"); });
        var t2 = Time(() => { foreach (var n in names) Skopeo(layoutDir, n, $"{registry.Host}/skopeo{prefix}/{n}:latest"); });
        Console.WriteLine($"round {round} skopeo: first {t1.TotalSeconds:0.00}s, again {t2.TotalSeconds:0.00}s");
        if (t1 < skopeoFirst) skopeoFirst = t1;
        if (t2 < skopeoAgain) skopeoAgain = t2;
    }
    async Task OursRound()
    {
        using var registry = RegistryProcess.Start(opts.Work);
        var client = RegistryFactory.Create(new RegistryTarget(RegistryKind.Distribution, registry.Host, ""),
            new RegistryClientOptions { Insecure = true, Credentials = new CredentialProviderChain([]) });
        var pusher = new ImagePusher(layout, client, $"harden{prefix}", parallelism: opts.Parallel);
        IReadOnlyList<ImagePushResult> r1 = [], r2 = [];
        var t1 = await TimeAsync(async () => r1 = await pusher.PushAsync(images));
        var t2 = await TimeAsync(async () => r2 = await pusher.PushAsync(images));
        Console.WriteLine($"round {round} ImagePusher: first {t1.TotalSeconds:0.00}s, again {t2.TotalSeconds:0.00}s");
        if (t1 < oursFirst) { oursFirst = t1; first = r1; }
        if (t2 < oursAgain) { oursAgain = t2; again = r2; }
    }
    if (round % 2 == 1) { SkopeoRound(); await OursRound(); }
    else { await OursRound(); SkopeoRound(); }
}

Console.WriteLine();
Console.WriteLine($"{"",-22}{"skopeo copy",14}{"ImagePusher",14}{"ratio",8}");
Console.WriteLine($"{"first push",-22}{skopeoFirst.TotalSeconds,13:0.00}s{oursFirst.TotalSeconds,13:0.00}s{oursFirst / skopeoFirst,7:0.00}x");
Console.WriteLine($"{"re-push unchanged",-22}{skopeoAgain.TotalSeconds,13:0.00}s{oursAgain.TotalSeconds,13:0.00}s{oursAgain / skopeoAgain,7:0.00}x");
Console.WriteLine($"ImagePusher first push: uploaded {first.Sum(r => r.UploadedBytes) / 1048576.0:0.0} MiB, mounted {first.Sum(r => r.MountedBytes) / 1048576.0:0.0} MiB; " +
                  $"re-push uploaded {again.Sum(r => r.UploadedBytes)} bytes, skipped {again.Sum(r => r.SkippedBlobs)} blobs");
Console.WriteLine($"throughput first push: skopeo {totalBytes / 1048576.0 / skopeoFirst.TotalSeconds:0} MiB/s, ours {totalBytes / 1048576.0 / oursFirst.TotalSeconds:0} MiB/s");
Console.WriteLine($"targets: first push <= 1.0x skopeo: {(oursFirst <= skopeoFirst ? "met" : "NOT met")}; re-push <= 1 s: {(oursAgain <= TimeSpan.FromSeconds(1) ? "met" : "NOT met")}");
return 0;

static void Skopeo(string layoutDir, string tag, string dest)
{
    var psi = new ProcessStartInfo("skopeo") { RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var a in new[] { "copy", "--all", "--quiet", "--dest-tls-verify=false", $"oci:{layoutDir}:{tag}", $"docker://{dest}" }) psi.ArgumentList.Add(a);
    using var p = Process.Start(psi)!;
    var err = p.StandardError.ReadToEndAsync();
    p.StandardOutput.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0) throw new InvalidOperationException($"skopeo copy {tag} failed: {err.Result}");
}

static TimeSpan Time(Action a)
{
    var sw = Stopwatch.StartNew();
    a();
    return sw.Elapsed;
}

static async Task<TimeSpan> TimeAsync(Func<Task> a)
{
    var sw = Stopwatch.StartNew();
    await a();
    return sw.Elapsed;
}

static OciLayout BuildLayout(string dir, List<string> names, Args opts)
{
    if (Directory.Exists(dir)) Directory.Delete(dir, true);
    var layout = OciLayout.OpenOrCreate(dir);
    Console.WriteLine($"generating {dir} ...");
    // Parent in two layers, shared by every image; each image adds one own layer.
    var parents = new[] { Layer(layout, "usr/lib/parent-a.bin", opts.ParentMb / 2, 1), Layer(layout, "usr/lib/parent-b.bin", opts.ParentMb - opts.ParentMb / 2, 2) };
    foreach (var (name, i) in names.Select((n, i) => (n, i)))
    {
        var own = Layer(layout, $"opt/{name}/model.bin", opts.OwnMb, 100 + i);
        var layers = parents.Append(own).ToList();
        var config = layout.WriteJson(new ImageConfig
        {
            Architecture = "amd64",
            Created = "2024-01-01T00:00:00Z",
            RootFs = new RootFs { DiffIds = layers.Select(l => l.DiffId).ToList() },
        }, MediaTypes.ImageConfig);
        var manifest = layout.WriteJson(new ImageManifest { Config = config, Layers = layers.Select(l => l.Descriptor).ToList() }, MediaTypes.ImageManifest);
        var index = layout.WriteJson(new ImageIndex { Manifests = [manifest with { Platform = new Platform { Architecture = "amd64" } }] }, MediaTypes.ImageIndex);
        layout.Tag(name, index);
    }
    File.WriteAllText(Path.Combine(dir, "done"), "");
    return layout;
}

static (Descriptor Descriptor, string DiffId) Layer(OciLayout layout, string path, int mb, int seed)
{
    // Random bytes with a little structure: mostly incompressible, like model weights.
    var data = new byte[mb * 1024 * 1024];
    new Random(seed).NextBytes(data);
    for (var i = 0; i < data.Length; i += 4096) Array.Clear(data, i, 256);
    using var tar = new MemoryStream();
    using (var w = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, path) { DataStream = new MemoryStream(data), ModificationTime = DateTimeOffset.UnixEpoch });
    tar.Position = 0;
    var diffId = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar));
    tar.Position = 0;
    var gzPath = Path.Combine(layout.Root, "layer.tmp");
    using (var fs = File.Create(gzPath))
    using (var gz = new GZipStream(fs, CompressionLevel.Fastest))
        tar.CopyTo(gz);
    Descriptor d;
    using (var fs = File.OpenRead(gzPath))
        d = layout.WriteBlobAsync(fs, MediaTypes.LayerGzip).GetAwaiter().GetResult();
    File.Delete(gzPath);
    return (d, diffId);
}

sealed record Args(string Work, int Images, int ParentMb, int OwnMb, int Parallel, int Rounds)
{
    public static Args Parse(string[] a)
    {
        string Get(string name, string def) { var i = Array.IndexOf(a, name); return i >= 0 && i + 1 < a.Length ? a[i + 1] : def; }
        return new Args(Get("--work", Path.Combine(Path.GetTempPath(), "hi-pushbench")), int.Parse(Get("--images", "5")),
            int.Parse(Get("--parent-mb", "80")), int.Parse(Get("--own-mb", "35")), int.Parse(Get("--parallel", "4")), int.Parse(Get("--rounds", "2")));
    }
}
