using System.Diagnostics;
using HardenImage.Common;
using HardenImage.Oci;

namespace HardenImage.Deploy;

/// <summary>One line of a local run: a probe, the model step or the generation request.</summary>
public sealed record LocalCheck(string Name, bool Passed, string Detail);

/// <summary>
/// <c>harden deploy --local</c>: runs a rendered Deployment's pod on the Docker engine with the manifest's own
/// restrictions (through <see cref="PodToContainerSpec"/>: user, read-only root, dropped capabilities, memory, /tmp),
/// mounts a model directory read-only where the PersistentVolumeClaim would be, waits for the manifest's probes and
/// sends one generation request. Without a model directory a tiny model is made inside the image itself.
/// </summary>
public sealed class LocalDeployRunner(DockerEngine engine, string artifactsDir)
{
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromMinutes(4);

    public async Task<IReadOnlyList<LocalCheck>> RunAsync(RenderedDeployment rendered, string? modelDir, IProgress<string>? progress = null, CancellationToken ct = default)
    {
        var checks = new List<LocalCheck>();
        var arch = SmokeRunner.HostArchitecture();
        var layout = OciLayout.Open(Path.Combine(artifactsDir, "oci"));
        var image = rendered.Description.Image;
        var tag = $"hardenimage-local/{image}:{arch}";
        progress?.Report($"loading {image} ({arch}) into the engine");
        await engine.LoadAsync(layout, image, arch, tag, ct);
        var pod = PodToContainerSpec.Translate(rendered.Deployment, tag);
        using var work = new TempWork();
        var mounts = new Dictionary<string, string>(pod.Spec.ReadOnlyMounts, StringComparer.Ordinal);
        var knownAnswer = false;
        foreach (var claim in pod.PersistentVolumeClaims)
        {
            var mountPath = claim[(claim.IndexOf(':') + 1)..];
            if (modelDir == null)
            {
                progress?.Report("making a tiny model inside the image");
                modelDir = await MakeTinyModelAsync(tag, work, ct);
                checks.Add(new LocalCheck("tiny-model", true, $"made in {modelDir} by the image's own torch"));
                knownAnswer = true;
            }
            mounts[Path.GetFullPath(modelDir)] = mountPath;
        }
        var spec = pod.Spec with { ReadOnlyMounts = mounts, Timeout = ProbeTimeout };
        progress?.Report($"starting {rendered.Description.Name}");
        await using var running = await engine.StartAsync(spec, ct);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        foreach (var probe in pod.Probes.OrderBy(p => p.Kind == "liveness" ? 0 : 1))
        {
            var uri = new Uri($"http://127.0.0.1:{probe.Port}{probe.Path}");
            var clock = Stopwatch.StartNew();
            string detail = "";
            var passed = false;
            while (clock.Elapsed < ProbeTimeout && !passed)
            {
                if (!await running.IsRunningAsync(ct))
                {
                    var (o, e) = await running.LogsAsync(ct);
                    detail = "the container exited: " + SmokeInference.Truncate(e + o, 600);
                    break;
                }
                try
                {
                    using var r = await http.GetAsync(uri, ct);
                    passed = r.IsSuccessStatusCode;
                    detail = $"{(int)r.StatusCode} after {clock.Elapsed.TotalSeconds:0.0} s";
                }
                catch (HttpRequestException e) { detail = e.Message; }
                if (!passed) await Task.Delay(500, ct);
            }
            checks.Add(new LocalCheck($"{probe.Kind} {probe.Path}", passed, detail));
            if (!passed) return checks;
        }
        var port = pod.Probes.FirstOrDefault()?.Port ?? rendered.Description.Port;
        var (ok, genDetail) = await SmokeInference.GenerateAsync(http, new Uri($"http://127.0.0.1:{port}"), knownAnswer, ct);
        checks.Add(new LocalCheck("POST /v1/generate", ok, genDetail));
        return checks;
    }

    private async Task<string> MakeTinyModelAsync(string tag, TempWork work, CancellationToken ct)
    {
        var scripts = work.NewDir("scripts");
        File.WriteAllText(Path.Combine(scripts, "make_tiny_model.py"), SmokeInference.MakeTinyModelPython);
        var output = work.NewDir("model");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(output, (UnixFileMode)Convert.ToInt32("777", 8));
        var run = await engine.RunAsync(new ContainerRunSpec
        {
            Image = tag,
            Entrypoint = ["/usr/bin/python3", SmokeProbe.MountPoint + "/make_tiny_model.py", "/out"],
            Cmd = [],
            MemoryBytes = 2L << 30,
            ReadOnlyMounts = new Dictionary<string, string> { [scripts] = SmokeProbe.MountPoint },
            WritableMounts = new Dictionary<string, string> { [output] = "/out" },
            Timeout = TimeSpan.FromMinutes(5),
        }, ct);
        if (run.ExitCode != 0 || !File.Exists(Path.Combine(output, "MANIFEST.sha256")))
            throw new HardenException($"could not make a test model in {tag} (exit {run.ExitCode}): {SmokeInference.Truncate(run.StdErr + run.StdOut, 600)}. Pass --model-dir DIR with a model directory instead.");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(output, (UnixFileMode)Convert.ToInt32("755", 8));
        return output;
    }

    /// <summary>A temp directory for the run's model and scripts, removed afterwards.</summary>
    private sealed class TempWork : IDisposable
    {
        private readonly string _root = Path.Combine(Path.GetTempPath(), $"hi-local-{Guid.NewGuid():N}");
        public string NewDir(string name)
        {
            var d = Path.Combine(_root, name);
            Directory.CreateDirectory(d);
            return d;
        }
        public void Dispose()
        {
            try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
