using System.Globalization;
using HardenImage.Common;
using k8s.Models;

namespace HardenImage.Deploy;

/// <summary>One HTTP probe of the pod, to be tried against the locally run container.</summary>
public sealed record LocalProbe(string Kind, string Path, int Port);

/// <summary>A rendered pod translated for a Docker engine: how to run it and what to probe.</summary>
public sealed record LocalPodRun(ContainerRunSpec Spec, IReadOnlyList<LocalProbe> Probes, IReadOnlyList<string> PersistentVolumeClaims)
{
    /// <summary>Image volumes as "reference:mountPath" (Docker 20.10 has none: the caller binds a verified extraction).</summary>
    public IReadOnlyList<string> ImageVolumes { get; init; } = [];
}

/// <summary>
/// Turns the rendered Deployment's pod into the engine's options, so a local run has the cluster's restrictions:
/// user/group, read-only root, capabilities dropped, no new privileges, memory limit, tmpfs for emptyDir(Memory),
/// environment, probes. Model PVCs cannot exist locally: they are listed for the caller to bind to a host directory
/// (<see cref="ContainerRunSpec.ReadOnlyMounts"/>).
/// </summary>
public static class PodToContainerSpec
{
    /// <summary>
    /// Translates the first container of <paramref name="deployment"/>; <paramref name="imageRef"/> is what the engine
    /// knows the image as (a loaded tag), replacing the registry reference.
    /// </summary>
    public static LocalPodRun Translate(V1Deployment deployment, string imageRef)
    {
        var pod = deployment.Spec?.Template?.Spec ?? throw new HardenException($"Deployment {deployment.Metadata?.Name}: no pod template");
        return Translate(pod, $"Deployment {deployment.Metadata?.Name}", imageRef);
    }

    /// <summary>
    /// The same translation for any pod template's first container (a Job's, for <c>FanOut/LocalJobRunner</c>);
    /// <paramref name="owner"/> names the object in errors ("Job harden-fanout-…").
    /// </summary>
    public static LocalPodRun Translate(V1PodSpec pod, string owner, string imageRef)
    {
        var c = pod.Containers?.FirstOrDefault() ?? throw new HardenException($"{owner}: no container");
        var sc = c.SecurityContext;
        var psc = pod.SecurityContext;
        var uid = sc?.RunAsUser ?? psc?.RunAsUser ?? ManifestRenderer.NonRootId;
        var gid = sc?.RunAsGroup ?? psc?.RunAsGroup ?? ManifestRenderer.NonRootId;
        if (uid == 0) throw new HardenException($"{owner}: runs as root; refusing to run it");

        var tmpfs = new Dictionary<string, string>(StringComparer.Ordinal);
        var claims = new List<string>();
        var images = new List<string>();
        foreach (var mount in c.VolumeMounts ?? [])
        {
            var volume = pod.Volumes?.FirstOrDefault(v => v.Name == mount.Name);
            if (volume?.EmptyDir != null)
            {
                var size = volume.EmptyDir.SizeLimit != null ? ",size=" + ToBytes(volume.EmptyDir.SizeLimit) : "";
                tmpfs[mount.MountPath] = "rw,nosuid,nodev" + size;
            }
            else if (volume?.PersistentVolumeClaim != null) claims.Add($"{volume.PersistentVolumeClaim.ClaimName}:{mount.MountPath}");
            else if (volume?.Image != null) images.Add($"{volume.Image.Reference}:{mount.MountPath}");
        }

        var memory = c.Resources?.Limits != null && c.Resources.Limits.TryGetValue("memory", out var mem) ? ToBytes(mem) : 512L << 20;
        var ports = (c.Ports ?? []).ToDictionary(p => p.Name ?? p.ContainerPort.ToString(CultureInfo.InvariantCulture), p => p.ContainerPort);
        var probes = new List<LocalProbe>();
        void AddProbe(string kind, V1Probe? probe)
        {
            if (probe?.HttpGet is not { } get) return;
            var portText = get.Port?.Value ?? "";
            var port = int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
                : ports.TryGetValue(portText, out var named) ? named
                : throw new HardenException($"{owner}: {kind} probe names port '{portText}' the container does not declare");
            probes.Add(new LocalProbe(kind, get.Path ?? "/", port));
        }
        AddProbe("startup", c.StartupProbe);
        AddProbe("readiness", c.ReadinessProbe);
        AddProbe("liveness", c.LivenessProbe);

        var spec = new ContainerRunSpec
        {
            Image = imageRef,
            Entrypoint = c.Command,
            Cmd = c.Args,
            User = $"{uid}:{gid}",
            ReadOnlyRootFilesystem = sc?.ReadOnlyRootFilesystem ?? false,
            DropAllCapabilities = sc?.Capabilities?.Drop?.Contains("ALL") ?? false,
            NoNewPrivileges = sc?.AllowPrivilegeEscalation == false,
            Network = "host",
            MemoryBytes = memory,
            Tmpfs = tmpfs,
            Env = (c.Env ?? []).Where(e => e.Value != null).ToDictionary(e => e.Name, e => e.Value, StringComparer.Ordinal),
        };
        return new LocalPodRun(spec, probes, claims) { ImageVolumes = images };
    }

    private static long ToBytes(ResourceQuantity q) => (long)q.ToDecimal();
}
