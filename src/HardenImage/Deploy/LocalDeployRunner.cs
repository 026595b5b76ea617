using System.Diagnostics;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Contracts;

namespace HardenImage.Deploy;

/// <summary>One line of a local run: a probe, the model step or the generation request.</summary>
public sealed record LocalCheck(string Name, bool Passed, string Detail);

/// <summary>
/// The verified model fetch <c>deploy --local</c> uses where a cluster would mount an image volume: pull the pinned
/// manifest by digest, check its signature with the release key and every blob's digest, extract into
/// <c>into</c>. Throws <see cref="HardenException"/> naming the reason when any check fails.
/// </summary>
public interface IModelFetch
{
    Task FetchAsync(PinnedModel model, string into, CancellationToken ct);
}

/// <summary>
/// The verified fetch of <see cref="Model.ModelFetcher"/> (the one model verifier, also behind <c>harden model fetch</c>)
/// from where <c>harden model push</c> recorded the model: signature and ML-BOM attestation by the key, ModelPack only,
/// every layer digest and file SHA-256 of the signed manifest.
/// </summary>
public sealed class VerifiedModelFetch(Registry.IRegistry registry, System.Security.Cryptography.ECDsa publicKey) : IModelFetch
{
    public async Task FetchAsync(PinnedModel model, string into, CancellationToken ct)
    {
        var repository = model.PushedRepository ?? throw new HardenException($"model '{model.Name}': no pushed repository recorded; run 'harden model push'");
        await new Model.ModelFetcher(registry, publicKey).FetchAsync(repository, Digest.Parse(model.Digest), into,
            SignatureStoreAdmissionCheck.ModelRequirements, progress: null, ct);
    }
}

/// <summary>
/// <c>harden deploy --local</c>: runs a rendered Deployment's pod on the Docker engine with the manifest's own
/// restrictions (through <see cref="PodToContainerSpec"/>: user, read-only root, dropped capabilities, memory, /tmp),
/// waits for the manifest's probes and sends one generation request. The model: a pinned model (image volume or
/// init-container fetch in the cluster) is fetched and verified by <see cref="IModelFetch"/> and bound read-only where
/// the volume goes, with the Deployment's own pin (env) for the server to check; <c>modelDir</c> replaces the fetch
/// (the server still checks it against the pin). A Deployment without a pinned model gets a tiny model made inside
/// the image, pinned here by <see cref="ModelPinning.DescribeDirectory"/>.
/// </summary>
public sealed class LocalDeployRunner(DockerEngine engine, string artifactsDir, IModelFetch? modelFetch = null)
{
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromMinutes(4);

    public async Task<IReadOnlyList<LocalCheck>> RunAsync(RenderedDeployment rendered, string? modelDir, IProgress<string>? progress = null, CancellationToken ct = default)
    {
        var checks = new List<LocalCheck>();
        var arch = SmokeRunner.HostArchitecture();
        var image = rendered.Description.Image;
        // Named by content (as smoke does): engines are shared, so a fixed tag could be another build's image.
        var layout = OciLayout.Open(ArtifactPaths.Layout(artifactsDir));
        var configDigest = new OciLayoutReader(layout).Resolve(image, new Platform { Architecture = arch }).Manifest.Config.Digest;
        var tag = $"hardenimage-local/{image}:{arch}-{Digest.Parse(configDigest).Hex[..12]}";
        var pod = PodToContainerSpec.Translate(rendered.Deployment, tag);
        using var work = new TempWork();
        var mounts = new Dictionary<string, string>(pod.Spec.ReadOnlyMounts, StringComparer.Ordinal);
        var tmpfs = new Dictionary<string, string>(pod.Spec.Tmpfs, StringComparer.Ordinal);
        var env = new Dictionary<string, string>(pod.Spec.Env ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        var knownAnswer = false;
        var model = rendered.Description.Model;
        if (rendered.Model != null && model != null)
        {
            // The pin comes from the Deployment (env); only the files come from the fetch or --model-dir.
            if (modelDir == null)
            {
                if (modelFetch == null)
                    throw new HardenException($"deploy --local: {rendered.Description.Name} pins model {rendered.Model.Reference}, and no verified fetch is configured; pass --model-dir DIR");
                var into = work.NewDir("model");
                progress?.Report($"fetching {rendered.Model.Reference} (signature and every blob verified)");
                try { await modelFetch.FetchAsync(rendered.Model, into, ct); }
                catch (HardenException e)
                {
                    checks.Add(new LocalCheck("model-fetch", false, $"{rendered.Model.Reference}: {e.Message} (the pod was not started)"));
                    return checks;
                }
                checks.Add(new LocalCheck("model-fetch", true, $"{rendered.Model.Reference} verified and extracted into a read-only bind mount"));
                modelDir = into;
            }
            tmpfs.Remove(model.MountPath); // the init-container form's emptyDir: here the verified extraction is bound instead
            mounts[Path.GetFullPath(modelDir)] = model.MountPath;
        }
        else if (model != null)
        {
            var loaded = false;
            if (modelDir == null)
            {
                await LoadAsync(layout, image, arch, tag, configDigest, progress, ct);
                loaded = true;
                progress?.Report("making a tiny model inside the image");
                modelDir = await MakeTinyModelAsync(tag, work, ct);
                checks.Add(new LocalCheck("tiny-model", true, $"made in {modelDir} by the image's own torch"));
                knownAnswer = true;
            }
            // Nothing pinned this model: pin what is mounted, as smoke does, so the server has a manifest to check.
            var (manifest, digest) = ModelPinning.DescribeDirectory(modelDir);
            foreach (var (k, v) in ModelPinning.Environment(digest, manifest)) env[k] = v;
            mounts[Path.GetFullPath(modelDir)] = model.MountPath;
            if (!loaded) await LoadAsync(layout, image, arch, tag, configDigest, progress, ct);
        }
        if (rendered.Model != null || model == null) await LoadAsync(layout, image, arch, tag, configDigest, progress, ct);
        // Host network on a shared engine: the pod's port may be taken by another run, and a probe answered by someone
        // else's server would pass. The container listens on a free loopback port instead (PORT, HOST).
        var probes = pod.Probes;
        if (env.ContainsKey("PORT"))
        {
            var free = SmokeRunner.FreePort();
            var podPort = int.Parse(env["PORT"], System.Globalization.CultureInfo.InvariantCulture);
            env["PORT"] = free.ToString(System.Globalization.CultureInfo.InvariantCulture);
            env["HOST"] = "127.0.0.1";
            probes = probes.Select(p => p.Port == podPort ? p with { Port = free } : p).ToList();
        }
        var spec = pod.Spec with { ReadOnlyMounts = mounts, Tmpfs = tmpfs, Env = env, Timeout = ProbeTimeout };
        progress?.Report($"starting {rendered.Description.Name}");
        await using var running = await engine.StartAsync(spec, ct);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        foreach (var probe in probes.OrderBy(p => p.Kind == "liveness" ? 0 : 1))
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
                    var refused = SmokeInference.Events(e + o, SmokeInference.IntegrityFailedEvent).FirstOrDefault();
                    detail = refused?["reason"] is { } reason
                        ? $"the server refused the model and exited ({SmokeInference.IntegrityFailedEvent}): {reason}"
                        : "the container exited: " + SmokeInference.Truncate(e + o, 600);
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
        var port = probes.FirstOrDefault()?.Port ?? rendered.Description.Port;
        var (ok, genDetail) = await SmokeInference.GenerateAsync(http, new Uri($"http://127.0.0.1:{port}"), knownAnswer, ct);
        checks.Add(new LocalCheck("POST /v1/generate", ok, genDetail));
        checks.Add(await ServedModelAsync(http, port, env.GetValueOrDefault(ModelPinning.DigestEnv), ct));
        return checks;
    }

    /// <summary>Repudiation: the server names the model it serves; it must be the pinned one.</summary>
    private static async Task<LocalCheck> ServedModelAsync(HttpClient http, int port, string? pin, CancellationToken ct)
    {
        using var r = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/readyz"), ct);
        var header = r.Headers.TryGetValues("X-Model-Digest", out var v) ? v.FirstOrDefault() : null;
        string? body = null;
        try { body = System.Text.Json.Nodes.JsonNode.Parse(await r.Content.ReadAsStringAsync(ct))?["model"]?.GetValue<string>(); }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException) { body = null; }
        var passed = pin != null && header == pin && body == pin;
        return new LocalCheck("served model digest", passed, passed ? $"/readyz and X-Model-Digest name {pin}" : $"pinned {pin ?? "(none)"}, served header {header ?? "(none)"}, body {body ?? "(none)"}");
    }

    private async Task LoadAsync(OciLayout layout, string image, string arch, string tag, string configDigest, IProgress<string>? progress, CancellationToken ct)
    {
        if (await engine.ImageIdAsync(tag, ct) == configDigest) return; // vfs loads are slow; the content-named tag is safe to reuse
        progress?.Report($"loading {image} ({arch}) into the engine");
        await engine.LoadAsync(layout, image, arch, tag, ct);
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
        if (run.ExitCode != 0 || !File.Exists(Path.Combine(output, "model.pt")))
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
