// PushBench: our ImagePusher against `skopeo copy` into a real docker-registry on loopback.
//   dotnet run -c Release --project bench/PushBench [-- --work DIR --images 5 --parent-mb 80 --own-mb 35]
// Builds (or reuses) an OCI layout of N single-arch images sharing a parent, starts docker-registry on a free
// port, then times: skopeo copy per image into fresh repositories; ImagePusher into other fresh repositories;
// both again unchanged (re-push). Prints both tools' figures and the ratios.
using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using HardenImage.Oci;
using HardenImage.Registry;

var opts = Args.Parse(args);
Directory.CreateDirectory(opts.Work);
var layoutDir = Path.Combine(opts.Work, $"oci-{opts.Images}x{opts.OwnMb}-{opts.ParentMb}");
var names = Enumerable.Range(1, opts.Images).Select(i => $"img{i}").ToList();
var layout = File.Exists(Path.Combine(layoutDir, "done")) ? OciLayout.Open(layoutDir) : BuildLayout(layoutDir, names, opts);
var totalBytes = Directory.GetFiles(layout.BlobsDir).Sum(f => new FileInfo(f).Length);
Console.WriteLine($"layout {layoutDir}: {names.Count} images, {totalBytes / 1048576.0:0} MiB of blobs (parent {opts.ParentMb} MiB shared)");

using var registry = RegistryProcess.Start(opts.Work);
Console.WriteLine($"docker-registry on {registry.Host}");
var run = DateTime.UtcNow.ToString("HHmmss");

// skopeo: one copy per image (what a pipeline script does), fresh repositories.
var skopeoFirst = Time(() => { foreach (var n in names) Skopeo(layoutDir, n, $"{registry.Host}/skopeo{run}/{n}:latest"); });
var skopeoAgain = Time(() => { foreach (var n in names) Skopeo(layoutDir, n, $"{registry.Host}/skopeo{run}/{n}:latest"); });

// ImagePusher: the same images into other fresh repositories.
var client = RegistryFactory.Create(new RegistryTarget(RegistryKind.Distribution, registry.Host, $"harden{run}"),
    new RegistryClientOptions { Insecure = true, Credentials = new CredentialProviderChain([]) });
var pusher = new ImagePusher(layout, client, $"harden{run}", parallelism: opts.Parallel);
var images = ImagePusher.ImagesInLayout(layout);
IReadOnlyList<ImagePushResult> first = [];
var oursFirst = await TimeAsync(async () => first = await pusher.PushAsync(images));
IReadOnlyList<ImagePushResult> again = [];
var oursAgain = await TimeAsync(async () => again = await pusher.PushAsync(images));

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

sealed record Args(string Work, int Images, int ParentMb, int OwnMb, int Parallel)
{
    public static Args Parse(string[] a)
    {
        string Get(string name, string def) { var i = Array.IndexOf(a, name); return i >= 0 && i + 1 < a.Length ? a[i + 1] : def; }
        return new Args(Get("--work", Path.Combine(Path.GetTempPath(), "hi-pushbench")), int.Parse(Get("--images", "5")),
            int.Parse(Get("--parent-mb", "80")), int.Parse(Get("--own-mb", "35")), int.Parse(Get("--parallel", "4")));
    }
}

/// <summary>docker-registry on a free loopback port with storage under the work directory; killed on dispose.</summary>
sealed class RegistryProcess : IDisposable
{
    private readonly Process _p;
    private RegistryProcess(Process p, string host) { _p = p; Host = host; }
    public string Host { get; }

    public static RegistryProcess Start(string work)
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        var data = Path.Combine(work, "registry-data");
        if (Directory.Exists(data)) Directory.Delete(data, true);
        var config = Path.Combine(work, "registry.yml");
        File.WriteAllText(config, $"version: 0.1\nlog: {{level: error, accesslog: {{disabled: true}}}}\nstorage: {{filesystem: {{rootdirectory: {data}}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n");
        var psi = new ProcessStartInfo("docker-registry") { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add(config);
        var p = Process.Start(psi)!;
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        using var http = new HttpClient();
        for (var i = 0; i < 200; i++)
        {
            try { if (http.GetAsync($"http://127.0.0.1:{port}/v2/").Result.IsSuccessStatusCode) return new RegistryProcess(p, $"127.0.0.1:{port}"); }
            catch (AggregateException) { }
            Thread.Sleep(50);
        }
        p.Kill();
        throw new InvalidOperationException("docker-registry did not start");
    }

    public void Dispose()
    {
        if (!_p.HasExited) { _p.Kill(); _p.WaitForExit(5000); }
        _p.Dispose();
    }
}
