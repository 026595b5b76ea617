using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Deploy;
using HardenImage.Oci;
using HardenImage.Registry;
using k8s;
using k8s.Models;

namespace HardenImage.FanOut;

/// <summary>One completion of the Indexed Job, run locally: the engine's options it ran with and what it printed.</summary>
public sealed record LocalJobRun(int Index, ContainerRunSpec Spec, ContainerRunResult Result)
{
    public bool Succeeded => !Result.TimedOut && Result.ExitCode == 0;
}

/// <summary>
/// Runs the pod of the Indexed Job <see cref="KubernetesJobRenderer"/> rendered on a Docker engine, the way
/// <c>deploy --local</c> runs a Deployment's pod: the same translation (<see cref="PodToContainerSpec"/>: user,
/// read-only root, capabilities dropped, no new privileges, memory limit, emptyDir as tmpfs), plus what a Job's pod
/// gets from the cluster — <c>JOB_COMPLETION_INDEX</c> and the <c>$(VAR)</c> expansion of args, ConfigMap volumes
/// written out read-only exactly as the kubelet projects them (keys, items, paths), the records claim as a host
/// directory. The image must be the harden image <c>artifacts/build.json</c> has, by index digest: the pod names its
/// tool image by digest, and a local run of some other image would prove nothing about the rendered Job.
/// Network is the host's (the engine here has no bridge; in the cluster the pod network reaches the registry).
/// </summary>
public sealed class LocalJobRunner(DockerEngine engine, string artifactsDir)
{
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>The Indexed Job among the rendered objects (the fan-out; the fan-in Job is not indexed).</summary>
    public static V1Job IndexedJob(IReadOnlyList<JsonObject> objects)
    {
        var job = objects.SingleOrDefault(o => (string?)o["kind"] == "Job" && (string?)o["spec"]?["completionMode"] == "Indexed")
                  ?? throw new HardenException("the rendered objects have no Indexed Job (harden ci kubernetes renders one per plan).");
        return KubernetesJson.Deserialize<V1Job>(job.ToJsonString());
    }

    /// <summary>
    /// Loads the image the Job's container names (HOST/NS/NAME@sha256:…) from the artifacts' OCI layout into the
    /// engine, for this host's architecture, under a content-named tag; refuses a reference build.json does not have.
    /// </summary>
    public async Task<string> LoadToolImageAsync(V1Job job, CancellationToken ct = default)
    {
        var reference = job.Spec.Template.Spec.Containers[0].Image;
        var digest = ImageReference.Parse(reference).Digest
                     ?? throw new HardenException($"Job {job.Metadata.Name}: image {reference} is not pinned by digest.");
        var buildJson = ArtifactPaths.BuildRecord(artifactsDir);
        var built = BuildManifest.TryLoad(buildJson)?.Images.FirstOrDefault(i => i.Index == digest)
                    ?? throw new HardenException($"Job {job.Metadata.Name} runs {reference}, and {buildJson} has no image with index {digest}: build the tool image first (dotnet cake --target=HardenImage).");
        var arch = SmokeRunner.HostArchitecture();
        var layout = OciLayout.Open(ArtifactPaths.Layout(artifactsDir));
        var config = new OciLayoutReader(layout).Resolve(built.Name, new Platform { Architecture = arch }).Manifest.Config.Digest;
        var tag = $"hardenimage-local/{built.Name}:{arch}-{Digest.Parse(config).Hex[..12]}";
        if (await engine.ImageIdAsync(tag, ct) != config) await engine.LoadAsync(layout, built.Name, arch, tag, ct);
        return tag;
    }

    /// <summary>The job's completions; --index must name one of them.</summary>
    public static int CheckIndex(V1Job job, int? only)
    {
        var completions = job.Spec.Completions ?? 1;
        if (only is { } one && (one < 0 || one >= completions))
            throw new HardenException($"--index {one}: the plan has entries 0 to {completions - 1}.");
        return completions;
    }

    /// <summary>
    /// <c>harden ci kubernetes --local</c>'s work: loads the tool image, then runs every completion of the Indexed Job
    /// (or just <paramref name="only"/>) one after another, each with its own scratch directory (removed after).
    /// </summary>
    public async Task<IReadOnlyList<LocalJobRun>> RunAllAsync(IReadOnlyList<JsonObject> objects, int? only, string recordsDir, CancellationToken ct = default)
    {
        var job = IndexedJob(objects);
        var completions = CheckIndex(job, only);
        await engine.PingAsync(ct).ConfigureAwait(false);
        var tag = await LoadToolImageAsync(job, ct).ConfigureAwait(false);
        var scratch = Path.Combine(Path.GetTempPath(), $"hi-localjob-{Guid.NewGuid():N}");
        var runs = new List<LocalJobRun>();
        try
        {
            foreach (var i in only is { } index ? [index] : Enumerable.Range(0, completions))
                runs.Add(await RunAsync(job, objects, i, tag, recordsDir, Path.Combine(scratch, i.ToString(System.Globalization.CultureInfo.InvariantCulture)), ct).ConfigureAwait(false));
        }
        finally
        {
            try { Directory.Delete(scratch, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        return runs;
    }

    /// <summary>
    /// Runs completion <paramref name="index"/> of <paramref name="job"/> as image <paramref name="engineImage"/>.
    /// <paramref name="recordsDir"/> stands in for the records claim; <paramref name="scratchDir"/> receives the
    /// ConfigMap volumes (removed by the caller).
    /// </summary>
    public async Task<LocalJobRun> RunAsync(V1Job job, IReadOnlyList<JsonObject> objects, int index, string engineImage,
        string recordsDir, string scratchDir, CancellationToken ct = default)
    {
        var name = $"Job {job.Metadata.Name}";
        var completions = job.Spec.Completions ?? 1;
        if (index < 0 || index >= completions) throw new HardenException($"{name}: index {index} is outside its {completions} completions.");
        var pod = job.Spec.Template.Spec;
        var run = PodToContainerSpec.Translate(pod, name, engineImage);
        var container = pod.Containers[0];

        Directory.CreateDirectory(scratchDir);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(scratchDir, (UnixFileMode)Convert.ToInt32("755", 8));
        var readOnly = new Dictionary<string, string>(run.Spec.ReadOnlyMounts, StringComparer.Ordinal);
        var writable = new Dictionary<string, string>(run.Spec.WritableMounts, StringComparer.Ordinal);
        foreach (var mount in container.VolumeMounts ?? [])
        {
            var volume = pod.Volumes?.FirstOrDefault(v => v.Name == mount.Name) ?? throw new HardenException($"{name}: mount {mount.Name} has no volume.");
            if (volume.ConfigMap is { } cm)
                readOnly[ProjectConfigMap(objects, cm, Path.Combine(scratchDir, mount.Name), name)] = mount.MountPath;
            else if (volume.PersistentVolumeClaim != null)
            {
                // fsGroup makes the claim writable for 65532 in the cluster; here the host directory is opened to it.
                Directory.CreateDirectory(recordsDir);
                if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(recordsDir, (UnixFileMode)Convert.ToInt32("777", 8));
                writable[Path.GetFullPath(recordsDir)] = mount.MountPath;
            }
            else if (volume.EmptyDir == null)
                throw new HardenException($"{name}: volume {volume.Name} is neither emptyDir, ConfigMap nor a claim; a local run cannot stand in for it.");
        }

        // What the Job controller and kubelet add: the completion index, and $(VAR) in args from the container's env.
        var env = new Dictionary<string, string>(run.Spec.Env, StringComparer.Ordinal)
        {
            ["JOB_COMPLETION_INDEX"] = index.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        var args = (container.Args ?? []).Select(a => Expand(a, env)).ToList();
        var spec = run.Spec with
        {
            Cmd = args,
            Env = env,
            ReadOnlyMounts = readOnly,
            WritableMounts = writable,
            PidsLimit = 512,
            Timeout = Timeout,
        };
        var result = await engine.RunAsync(spec, ct);
        return new LocalJobRun(index, spec, result);
    }

    // Kubernetes' dependent-variable expansion: $(NAME) of a defined variable is replaced, $$ is a literal $,
    // anything else is left as written.
    private static string Expand(string text, IReadOnlyDictionary<string, string> env) =>
        Regex.Replace(text, @"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", m =>
            m.Value == "$$" ? "$" : env.TryGetValue(m.Groups[1].Value, out var v) ? v : m.Value);

    /// <summary>
    /// Writes a ConfigMap volume as the kubelet projects it: with items, each key at its path; without, every key
    /// as a file. Paths are relative and free of '..' (the kubelet refuses others too). Returns the directory.
    /// </summary>
    private static string ProjectConfigMap(IReadOnlyList<JsonObject> objects, V1ConfigMapVolumeSource source, string into, string owner)
    {
        var cm = objects.SingleOrDefault(o => (string?)o["kind"] == "ConfigMap" && (string?)o["metadata"]?["name"] == source.Name)
                 ?? throw new HardenException($"{owner}: ConfigMap {source.Name} is not among the rendered objects.");
        var values = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var (k, v) in cm["data"]?.AsObject() ?? []) values[k] = Encoding.UTF8.GetBytes((string)v!);
        foreach (var (k, v) in cm["binaryData"]?.AsObject() ?? []) values[k] = Convert.FromBase64String((string)v!);
        var defaultMode = source.DefaultMode ?? 0b110_100_100; // the kubelet's 0644
        var items = source.Items?.Select(i => (i.Key, i.Path, Mode: i.Mode ?? defaultMode)).ToList()
                    ?? values.Keys.Select(k => (k, k, Mode: defaultMode)).ToList();
        Directory.CreateDirectory(into);
        var modes = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (key, path, mode) in items)
        {
            if (!values.TryGetValue(key, out var bytes)) throw new HardenException($"{owner}: ConfigMap {source.Name} has no key {key}.");
            if (path.StartsWith('/') || path.Split('/').Any(p => p is ".." or ""))
                throw new HardenException($"{owner}: ConfigMap {source.Name} item path '{path}' must be relative, without '..'.");
            var file = Path.Combine(into, path);
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            File.WriteAllBytes(file, bytes);
            modes[Path.GetFullPath(file)] = mode;
        }
        // The kubelet's modes: each item's mode (else defaultMode, else 0644) on files, 0755 on directories.
        if (!OperatingSystem.IsWindows())
            foreach (var entry in Directory.EnumerateFileSystemEntries(into, "*", SearchOption.AllDirectories).Prepend(into))
                File.SetUnixFileMode(entry, (UnixFileMode)(modes.TryGetValue(Path.GetFullPath(entry), out var m) ? m : 0b111_101_101));
        return Path.GetFullPath(into);
    }
}
