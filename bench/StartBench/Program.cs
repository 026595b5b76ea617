// StartBench (issue 14): how fast a pod of ours answers its first request, and how many bytes it pulls, against the
// SAME packages installed the ordinary way.
// 1. Ours: inference-cpu linux/amd64 from the build output (`harden export` → docker load).
// 2. Peer: mmdebstrap --variant=minbase of the image chain's top-level packages (python + inference-cpu `packages:`)
//    from the same Debian suite, maintainer scripts run (so py3compile has written byte-code), our server copied to
//    /app, `docker import`ed into the same engine with the same entrypoint and environment.
// 3. One tiny TorchScript model (made by our image's own torch, as `harden smoke` does) mounted read-only into both.
// 4. Interleaved (peer, ours, ours, peer, …) --runs times each: wall time from `docker run` to the first 200 from
//    POST /v1/generate, both containers under the same restrictions (read-only root, uid 65532, no capabilities,
//    host loopback). Medians reported with the load average; bytes: gzip layers (what a node pulls) and unpacked.
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using HardenImage.Bench;
using HardenImage.Deploy;

var cli = BenchArgs.Parse(args,
    "StartBench: time from `docker run` to the first POST /v1/generate answer, and image bytes,\n" +
    "inference-cpu (ours, from --artifacts) vs the same packages installed by mmdebstrap with maintainer scripts.\n" +
    "Options: --runs N (3) --work DIR (/tmp/hi-startbench) --artifacts DIR (artifacts) --suite trixie\n" +
    "         --mirror URL (http://deb.debian.org/debian) --env K=V (extra server env, both images) --keep",
    ["--runs", "--work", "--artifacts", "--suite", "--mirror", "--env"], ["--keep"], out var exit);
if (cli == null) return exit;
var runs = cli.Int("--runs", 3);
var work = cli.Text("--work", "/tmp/hi-startbench");
var artifacts = cli.Text("--artifacts", "artifacts");
var suite = cli.Text("--suite", "trixie");
var mirror = cli.Text("--mirror", "http://deb.debian.org/debian");
var keep = cli.Flag("--keep");
var extraEnv = cli.All("--env").ToList();

var root = Measure.RepoRoot();
artifacts = Path.GetFullPath(Path.Combine(root, artifacts));
Measure.RequireTool("/usr/bin/mmdebstrap", "apt-get install -y mmdebstrap");
Measure.RequireTool(Measure.GnuTime, "apt-get install -y time");
var dockerHost = Environment.GetEnvironmentVariable("DOCKER_HOST") ?? "unix:///tmp/hi-docker/docker.sock";
if (!File.Exists(Path.Combine(artifacts, "build.json")))
{
    Console.Error.WriteLine($"{artifacts}/build.json is missing: run `dotnet cake` (the main job) first, it builds inference-cpu");
    return 2;
}
var m = Measure.InFreshWorkDir(work);
Console.WriteLine($"StartBench: {runs} interleaved runs each; work {work}; load {Measure.LoadAverage()}");

string Docker(params string[] a) => m.Run("docker", ["-H", dockerHost, .. a]).Trim();
var harden = Path.Combine(root, "src/HardenImage.Cli/bin/Release/net10.0/harden.dll");
if (!File.Exists(harden)) m.Run("dotnet", ["build", "-c", "Release", Path.Combine(root, "src/HardenImage.Cli")]);

// Ours, as a node would get it.
var build = JsonNode.Parse(File.ReadAllText(Path.Combine(artifacts, "build.json")))!;
var ours = build["images"]!.AsArray().FirstOrDefault(i => (string?)i!["name"] == "inference-cpu")
           ?? throw new InvalidOperationException("build.json has no inference-cpu");
var oursAmd64 = ours["architectures"]!.AsArray().First(a => (string?)a!["architecture"] == "amd64")!;
long oursGzip = (long)oursAmd64["compressedSize"]!;
var oursTar = Path.Combine(work, "ours.tar");
m.Run("dotnet", [harden, "export", "--image", "inference-cpu", "--platform", "linux/amd64", "--artifacts", artifacts,
    "--tag", "hi-startbench/ours:latest", oursTar]);
Docker("load", "-i", oursTar);
File.Delete(oursTar);

// The peer: the chain's top-level packages, installed by apt and dpkg with maintainer scripts.
var set = HardenImage.Lock.ImageSet.Load(Path.Combine(root, "images"));
var chain = new List<HardenImage.Lock.ImageDefinition>();
for (var img = set.Images["inference-cpu"]; ; img = set.Images[img.From!])
{
    chain.Add(img);
    if (img.From == null) break;
}
var include = string.Join(',', chain.SelectMany(i => i.Packages).Distinct().Order(StringComparer.Ordinal));
var app = Path.Combine(root, "images/apps/inference-server");
var peerTar = Path.Combine(work, "peer.tar");
Console.WriteLine($"peer: mmdebstrap --variant=minbase {suite} --include={include}");
var peerBuild = m.Timed("mmdebstrap", ["--variant=minbase", "--architectures=amd64", "--quiet", $"--include={include}",
    "--customize-hook=mkdir -p \"$1/app\"", $"--customize-hook=copy-in {app}/server.py /app",
    "--format=tar", suite, peerTar, mirror]);
Console.WriteLine($"peer built in {peerBuild.Wall:0.0} s");
var peerGzipPath = peerTar + ".gz";
m.Run("sh", ["-c", $"gzip -6 -n -c '{peerTar}' > '{peerGzipPath}'"]);
long peerGzip = new FileInfo(peerGzipPath).Length;
File.Delete(peerGzipPath);
var entrypoint = JsonSerializer.Serialize(chain.First(i => i.Entrypoint is { Count: > 0 }).Entrypoint);
Docker("import", "--change", "USER 65532:65532", "--change", "WORKDIR /app", "--change", $"ENTRYPOINT {entrypoint}",
    peerTar, "hi-startbench/peer:latest");
File.Delete(peerTar);
long oursBytes = long.Parse(Docker("image", "inspect", "-f", "{{.Size}}", "hi-startbench/ours:latest"), CultureInfo.InvariantCulture);
long peerBytes = long.Parse(Docker("image", "inspect", "-f", "{{.Size}}", "hi-startbench/peer:latest"), CultureInfo.InvariantCulture);

// One model for both, made with our image's torch (the same script `harden smoke` uses).
var model = Path.Combine(work, "model");
var scripts = Path.Combine(work, "scripts");
Directory.CreateDirectory(model);
Directory.CreateDirectory(scripts);
if (OperatingSystem.IsLinux()) File.SetUnixFileMode(model, (UnixFileMode)0x1FF); // uid 65532 writes the model
File.WriteAllText(Path.Combine(scripts, "make_tiny_model.py"), SmokeInference.MakeTinyModelPython);
Docker("run", "--rm", "--network", "none", "--user", "65532:65532", "-v", $"{model}:/out", "-v", $"{scripts}:/scripts:ro",
    "--entrypoint", "/usr/bin/python3", "hi-startbench/ours:latest", "/scripts/make_tiny_model.py", "/out");

// The server refuses an unpinned model (issue 16): pin it as harden deploy and harden smoke do.
var (modelManifest, modelPin) = ModelPinning.DescribeDirectory(model);
var pinEnv = ModelPinning.Environment(modelPin, modelManifest).Select(kv => $"{kv.Key}={kv.Value}").ToList();

using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
// Returns (docker run → first answer, process start → first answer): the engine's storage driver (vfs here copies the
// whole image per container) counts in the first, only the image's own start-up in the second.
(double Total, double Process) StartOnce(string image)
{
    var port = FreePort();
    var name = $"hi-startbench-{Guid.NewGuid():N}";
    var runArgs = new List<string> { "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp", "--user", "65532:65532",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--network", "host", "--memory", "2g",
        "-e", $"PORT={port}", "-e", "HOST=127.0.0.1", "-e", "MODEL_DIR=/models", "-v", $"{model}:/models:ro" };
    foreach (var e in pinEnv.Concat(extraEnv)) { runArgs.Add("-e"); runArgs.Add(e); }
    runArgs.Add(image);
    var clock = Stopwatch.StartNew();
    try
    {
        Docker([.. runArgs]);
        var deadline = TimeSpan.FromMinutes(3);
        while (clock.Elapsed < deadline)
        {
            try
            {
                using var body = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(new { prompt = SmokeInference.Prompt, max_new_tokens = SmokeInference.NewTokens }));
                body.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
                using var r = http.PostAsync($"http://127.0.0.1:{port}/v1/generate", body).GetAwaiter().GetResult();
                if (r.IsSuccessStatusCode)
                {
                    var answered = DateTimeOffset.UtcNow;
                    var total = clock.Elapsed.TotalSeconds;
                    var started = DateTimeOffset.Parse(Docker("inspect", "-f", "{{.State.StartedAt}}", name), CultureInfo.InvariantCulture);
                    return (total, (answered - started).TotalSeconds);
                }
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            Thread.Sleep(50);
        }
        var logs = m.Run("sh", ["-c", $"docker -H '{dockerHost}' logs {name} 2>&1 | tail -20"]);
        throw new InvalidOperationException($"{image} did not answer POST /v1/generate within 3 min:\n{logs}");
    }
    finally { try { Docker("rm", "-f", name); } catch (InvalidOperationException) { } }
}

var peerTimes = new List<(double Total, double Process)>();
var oursTimes = new List<(double Total, double Process)>();
for (var r = 1; r <= runs; r++)
{
    // Alternate who goes first so a load spike or a warm page cache does not favour one side.
    if (r % 2 == 1) { peerTimes.Add(StartOnce("hi-startbench/peer:latest")); oursTimes.Add(StartOnce("hi-startbench/ours:latest")); }
    else { oursTimes.Add(StartOnce("hi-startbench/ours:latest")); peerTimes.Add(StartOnce("hi-startbench/peer:latest")); }
    Console.WriteLine($"run {r}/{runs}: peer {peerTimes[^1].Total:0.00} s ({peerTimes[^1].Process:0.00} s from process start), ours {oursTimes[^1].Total:0.00} s ({oursTimes[^1].Process:0.00} s); load {Measure.LoadAverage()}");
}
if (!keep)
{
    try { Docker("rmi", "hi-startbench/ours:latest", "hi-startbench/peer:latest"); } catch (InvalidOperationException) { }
}

var pt = Sample.MedianOf(peerTimes.Select(t => t.Total));
var ot = Sample.MedianOf(oursTimes.Select(t => t.Total));
var pp = Sample.MedianOf(peerTimes.Select(t => t.Process));
var op = Sample.MedianOf(oursTimes.Select(t => t.Process));
var timeRatio = ot / pt;
var sizeRatio = (double)oursGzip / peerGzip;
Console.WriteLine();
Console.WriteLine("| | peer (mmdebstrap + maintainer scripts) | ours (inference-cpu) | ratio | target |");
Console.WriteLine("|---|---|---|---|---|");
Console.WriteLine($"| `docker run` → first /v1/generate, median s | {pt:0.00} | {ot:0.00} | {Measure.Ratio(ot, pt)} | ≤ 0.8× {Measure.Verdict(timeRatio <= 0.8)} |");
Console.WriteLine($"| process start → first /v1/generate, median s | {pp:0.00} | {op:0.00} | {Measure.Ratio(op, pp)} | (none: shows whether the gain is the image or the interpreter) |");
Console.WriteLine($"| gzip bytes pulled, MB | {peerGzip / 1e6:0.0} | {oursGzip / 1e6:0.0} | {Measure.Ratio(oursGzip, peerGzip)} | ≤ 0.6× {Measure.Verdict(sizeRatio <= 0.6)} |");
Console.WriteLine($"| unpacked, MB | {peerBytes / 1e6:0.0} | {oursBytes / 1e6:0.0} | {Measure.Ratio(oursBytes, peerBytes)} | |");
string All(IEnumerable<(double Total, double Process)> ts) => string.Join(", ", ts.Select(t => string.Create(CultureInfo.InvariantCulture, $"{t.Total:0.00}/{t.Process:0.00}")));
Console.WriteLine($"all runs (s, docker run/process start → answer): peer {All(peerTimes)}; ours {All(oursTimes)}");
Console.WriteLine($"load at end {Measure.LoadAverage()} (claim a target only from an otherwise idle machine)");
return 0;

static int FreePort()
{
    using var l = new TcpListener(System.Net.IPAddress.Loopback, 0);
    l.Start();
    return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
}
