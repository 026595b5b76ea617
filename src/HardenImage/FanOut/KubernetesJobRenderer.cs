using System.Text;
using System.Text.Json.Nodes;
using HardenImage.Common;
using HardenImage.Deploy;
using HardenImage.Registry;

namespace HardenImage.FanOut;

/// <summary>What <c>harden ci kubernetes</c> renders for.</summary>
public sealed record KubernetesJobOptions
{
    public required BuildPlan Plan { get; init; }
    /// <summary>The plan file's bytes, shipped to every pod as is.</summary>
    public required string PlanJson { get; init; }
    /// <summary>The image-set directory (sources.yaml, *.yaml, lock, keys/, payload), shipped in a ConfigMap.</summary>
    public required string ImagesDir { get; init; }
    /// <summary>The release key's public half (PEM).</summary>
    public required string PublicKeyPem { get; init; }
    public required string Registry { get; init; }
    /// <summary>Our own tool's image, pinned by digest (<c>host/ns/harden@sha256:…</c>).</summary>
    public required string ToolImage { get; init; }
    /// <summary>A ReadWriteMany PersistentVolumeClaim the jobs leave their records in and the fan-in reads.</summary>
    public required string RecordsClaim { get; init; }
    public string Namespace { get; init; } = "harden";
    /// <summary>"secret" (Secret <c>harden-signing-key</c> with cosign.key and password) or <c>awskms://…</c>.</summary>
    public string SigningKey { get; init; } = "secret";
    /// <summary>IAM role for IRSA; required when AWS is used (ECR registry or awskms:// key).</summary>
    public string? IrsaRole { get; init; }
    public int Parallelism { get; init; } = 8;
}

/// <summary>
/// <c>harden ci kubernetes</c>: an Indexed Job with one completion per plan entry (the pod's JOB_COMPLETION_INDEX
/// picks the entry) and the fan-in Job, both running harden's own image under the inference pods' hardening
/// (<see cref="ManifestRenderer"/>: non-root 65532, read-only root, no privilege escalation, all capabilities
/// dropped, RuntimeDefault seccomp, no service-account token, no service links) with emptyDir work space.
/// The image set and plan come from ConfigMaps, the records go to a ReadWriteMany claim: records are not read back
/// from the registry because anyone who can push there could swap a tag between a job and the fan-in's signing.
/// With ECR or KMS a ServiceAccount carries the IRSA role; the API token stays unmounted (IRSA's web-identity token
/// is a separate projected volume the EKS webhook adds).
/// </summary>
public static class KubernetesJobRenderer
{
    /// <summary>ConfigMaps hold at most 1 MiB; leave room for the object around the data.</summary>
    public const long MaxImageSetBytes = 900 * 1024;

    /// <summary>0755, the mode a projected ConfigMap item needs to stay executable (the default is 0644).</summary>
    public const int ExecutableMode = 0b111_101_101;

    public static IReadOnlyList<JsonObject> Render(KubernetesJobOptions o)
    {
        ImageReference tool;
        try { tool = ImageReference.Parse(o.ToolImage); }
        catch (HardenException e) { throw new HardenException($"--tool-image: {e.Message}"); }
        if (tool.Digest == null)
            throw new HardenException($"--tool-image {o.ToolImage}: pin it by digest (host/repository@sha256:…): a tag can be moved to another image that would hold the signing key.");
        var target = RegistryTarget.Parse(o.Registry);
        if (target.Kind == RegistryKind.OciLayout)
            throw new HardenException($"--registry {o.Registry}: pods share a registry, not a local directory; name a registry host.");
        var kms = o.SigningKey.StartsWith("awskms://", StringComparison.Ordinal);
        if (!kms && o.SigningKey != "secret")
            throw new HardenException($"--signing-key '{o.SigningKey}': expected 'secret' (Secret harden-signing-key) or awskms://....");
        var aws = target.Kind == RegistryKind.Ecr || kms;
        if (aws && o.IrsaRole == null)
            throw new HardenException($"{(kms ? "--signing-key awskms://" : $"--registry {o.Registry} (ECR)")} needs AWS credentials: give --irsa-role arn:aws:iam::ACCOUNT:role/NAME.");
        if (o.Plan.Jobs.Count == 0) throw new HardenException("the plan has no entries: nothing to run.");
        var suffix = Sha256Hex.Of(Encoding.UTF8.GetBytes(o.PlanJson))[..10];
        var labels = new JsonObject { ["app.kubernetes.io/part-of"] = ManifestRenderer.PartOf, ["app.kubernetes.io/name"] = "harden-fanout", ["harden.dev/plan"] = suffix };

        var (setData, setItems) = ImageSetConfigMap(o.ImagesDir);
        var objects = new List<JsonObject>
        {
            ConfigMap($"harden-plan-{suffix}", o.Namespace, labels, new JsonObject { ["plan.json"] = o.PlanJson, ["cosign.pub"] = o.PublicKeyPem }, null),
            ConfigMap($"harden-imageset-{suffix}", o.Namespace, labels, null, setData),
        };
        string? serviceAccount = null;
        if (aws)
        {
            serviceAccount = "harden-builder";
            objects.Add(new JsonObject
            {
                ["apiVersion"] = "v1", ["kind"] = "ServiceAccount",
                ["metadata"] = new JsonObject
                {
                    ["name"] = serviceAccount, ["namespace"] = o.Namespace, ["labels"] = labels.DeepClone(),
                    ["annotations"] = new JsonObject { ["eks.amazonaws.com/role-arn"] = o.IrsaRole },
                },
                ["automountServiceAccountToken"] = false,
            });
        }

        var common = new List<string> { "--images", "/imageset", "--registry", target.ToString() };
        var jobArgs = new JsonArray("job", "--plan", "/plan/plan.json", "--key", "/plan/cosign.pub", "--out", "/records/$(JOB_COMPLETION_INDEX)");
        foreach (var a in common) jobArgs.Add(a);
        objects.Add(Job($"harden-fanout-{suffix}", o, labels, serviceAccount, setItems, new JsonObject
        {
            ["completionMode"] = "Indexed",
            ["completions"] = o.Plan.Jobs.Count,
            ["parallelism"] = Math.Min(o.Plan.Jobs.Count, Math.Max(1, o.Parallelism)),
            ["backoffLimitPerIndex"] = 1,
            ["maxFailedIndexes"] = o.Plan.Jobs.Count,
        }, [Container("job", tool.ToString(), jobArgs, signing: null)], init: []));

        // The fan-in: one step per container, in order (the image has no shell): assemble and push the indexes, sign; then deploy.
        var records = o.Plan.Jobs.Select(e => $"/records/{e.Index}").ToArray();
        var signKey = kms ? o.SigningKey : "/signing/cosign.key";
        objects.Add(Job($"harden-fanin-{suffix}", o, labels, serviceAccount, setItems, new JsonObject { ["completions"] = 1, ["backoffLimit"] = 0 },
            [Container("deploy", tool.ToString(), new JsonArray("deploy", "--artifacts", "/work/artifacts", "--images", "/imageset", "--registry", target.ToString(), "--key", "/plan/cosign.pub", "--deploy-dir", "/work/deploy"), signing: null)],
            init:
            [
                Container("fanin", tool.ToString(), new JsonArray(["fanin", "--plan", "/plan/plan.json", "--push", "--out", "/work/artifacts", .. common, .. records]), signing: null),
                Container("sign", tool.ToString(), new JsonArray("sign", "--artifacts", "/work/artifacts", "--images", "/imageset", "--key", signKey), signing: kms ? "kms" : "secret"),
            ], fanIn: true, secretKey: !kms));
        return objects;
    }

    private static JsonObject ConfigMap(string name, string ns, JsonObject labels, JsonObject? data, JsonObject? binaryData)
    {
        var cm = new JsonObject
        {
            ["apiVersion"] = "v1", ["kind"] = "ConfigMap",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns, ["labels"] = labels.DeepClone() },
            ["immutable"] = true,
        };
        if (data != null) cm["data"] = data;
        if (binaryData != null) cm["binaryData"] = binaryData;
        return cm;
    }

    /// <summary>
    /// Every regular file of the image set as binaryData (ConfigMap keys cannot hold '/', so files get flat keys and
    /// the volume's items put them back at their paths). Symlinks and dot-files are left out, like the payload reader.
    /// </summary>
    private static (JsonObject Data, JsonArray Items) ImageSetConfigMap(string imagesDir)
    {
        var data = new JsonObject();
        var items = new JsonArray();
        long total = 0;
        var root = Path.GetFullPath(imagesDir);
        var files = Directory.EnumerateFiles(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.Hidden | FileAttributes.ReparsePoint })
            .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/'))
            .Where(r => !r.Split('/').Any(p => p.StartsWith('.') || p == "__pycache__"))
            .Order(StringComparer.Ordinal).ToList();
        foreach (var rel in files)
        {
            var bytes = BoundedFile.ReadAllBytes(Path.Combine(root, rel), MaxImageSetBytes, "image-set file");
            total += bytes.Length;
            if (total > MaxImageSetBytes)
                throw new HardenException($"{imagesDir}: the image set is over {MaxImageSetBytes / 1024} KiB (at {rel}), too big for a ConfigMap; keep large payloads out of images/ or ship them in a package.");
            var key = "f" + data.Count.ToString("D4", System.Globalization.CultureInfo.InvariantCulture) + "-" + new string(Path.GetFileName(rel).Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());
            data[key] = Convert.ToBase64String(bytes);
            var item = new JsonObject { ["key"] = key, ["path"] = rel };
            // The kubelet projects ConfigMap files 0644: an executable payload file would lose its execute bit, which
            // the image (and the inputs digest the job checks against the plan) carries.
            if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(Path.Combine(root, rel)) & UnixFileMode.UserExecute) != 0)
                item["mode"] = ExecutableMode;
            items.Add(item);
        }
        return (data, items);
    }

    private static JsonObject Container(string name, string image, JsonArray args, string? signing) => new()
    {
        ["name"] = name,
        ["image"] = image,
        ["imagePullPolicy"] = "IfNotPresent",
        ["args"] = args,
        ["env"] = Env(signing),
        ["securityContext"] = new JsonObject
        {
            ["runAsNonRoot"] = true, ["runAsUser"] = ManifestRenderer.NonRootId, ["runAsGroup"] = ManifestRenderer.NonRootId,
            ["readOnlyRootFilesystem"] = true, ["allowPrivilegeEscalation"] = false, ["privileged"] = false,
            ["capabilities"] = new JsonObject { ["drop"] = new JsonArray("ALL") },
            ["seccompProfile"] = new JsonObject { ["type"] = "RuntimeDefault" },
        },
        ["resources"] = new JsonObject
        {
            ["requests"] = new JsonObject { ["cpu"] = "1", ["memory"] = "2Gi", ["ephemeral-storage"] = "10Gi" },
            ["limits"] = new JsonObject { ["memory"] = "4Gi", ["ephemeral-storage"] = "20Gi" },
        },
        ["volumeMounts"] = Mounts(signing == "secret"),
        ["terminationMessagePolicy"] = "FallbackToLogsOnError",
    };

    private static JsonArray Env(string? signing)
    {
        var env = new JsonArray
        {
            new JsonObject { ["name"] = "HOME", ["value"] = "/work" },
            new JsonObject { ["name"] = "HARDEN_CACHE", ["value"] = "/work/cache" },
            new JsonObject { ["name"] = "NO_COLOR", ["value"] = "1" },
        };
        if (signing == "secret")
            env.Add(new JsonObject
            {
                ["name"] = "HARDEN_KEY_PASSWORD",
                ["valueFrom"] = new JsonObject { ["secretKeyRef"] = new JsonObject { ["name"] = "harden-signing-key", ["key"] = "password" } },
            });
        return env;
    }

    private static JsonArray Mounts(bool signingKey)
    {
        var m = new JsonArray
        {
            new JsonObject { ["name"] = "work", ["mountPath"] = "/work" },
            new JsonObject { ["name"] = "tmp", ["mountPath"] = "/tmp" },
            new JsonObject { ["name"] = "plan", ["mountPath"] = "/plan", ["readOnly"] = true },
            new JsonObject { ["name"] = "imageset", ["mountPath"] = "/imageset", ["readOnly"] = true },
            new JsonObject { ["name"] = "records", ["mountPath"] = "/records" },
        };
        if (signingKey) m.Add(new JsonObject { ["name"] = "signing", ["mountPath"] = "/signing", ["readOnly"] = true });
        return m;
    }

    private static JsonObject Job(string name, KubernetesJobOptions o, JsonObject labels, string? serviceAccount, JsonArray setItems,
        JsonObject spec, JsonObject[] containers, JsonObject[] init, bool fanIn = false, bool secretKey = false)
    {
        var suffix = (string)labels["harden.dev/plan"]!;
        var volumes = new JsonArray
        {
            new JsonObject { ["name"] = "work", ["emptyDir"] = new JsonObject { ["sizeLimit"] = "20Gi" } },
            new JsonObject { ["name"] = "tmp", ["emptyDir"] = new JsonObject { ["sizeLimit"] = "1Gi" } },
            new JsonObject { ["name"] = "plan", ["configMap"] = new JsonObject { ["name"] = $"harden-plan-{suffix}" } },
            new JsonObject { ["name"] = "imageset", ["configMap"] = new JsonObject { ["name"] = $"harden-imageset-{suffix}", ["items"] = setItems.DeepClone() } },
            new JsonObject { ["name"] = "records", ["persistentVolumeClaim"] = new JsonObject { ["claimName"] = o.RecordsClaim, ["readOnly"] = false } },
        };
        if (secretKey)
            volumes.Add(new JsonObject
            {
                ["name"] = "signing",
                ["secret"] = new JsonObject { ["secretName"] = "harden-signing-key", ["items"] = new JsonArray(new JsonObject { ["key"] = "cosign.key", ["path"] = "cosign.key" }), ["defaultMode"] = 256 },
            });
        var pod = new JsonObject
        {
            ["restartPolicy"] = "Never",
            ["automountServiceAccountToken"] = false,
            ["enableServiceLinks"] = false,
            ["hostNetwork"] = false, ["hostPID"] = false, ["hostIPC"] = false,
            ["securityContext"] = new JsonObject
            {
                ["runAsNonRoot"] = true, ["runAsUser"] = ManifestRenderer.NonRootId, ["runAsGroup"] = ManifestRenderer.NonRootId,
                ["fsGroup"] = ManifestRenderer.NonRootId, ["fsGroupChangePolicy"] = "OnRootMismatch",
                ["seccompProfile"] = new JsonObject { ["type"] = "RuntimeDefault" },
            },
            ["nodeSelector"] = new JsonObject { ["kubernetes.io/os"] = "linux" },
            ["containers"] = new JsonArray(containers.Select(c => (JsonNode)c).ToArray()),
            ["volumes"] = volumes,
        };
        if (init.Length > 0) pod["initContainers"] = new JsonArray(init.Select(c => (JsonNode)c).ToArray());
        if (serviceAccount != null) pod["serviceAccountName"] = serviceAccount;
        spec["ttlSecondsAfterFinished"] = 86400;
        spec["template"] = new JsonObject { ["metadata"] = new JsonObject { ["labels"] = labels.DeepClone() }, ["spec"] = pod };
        var l = (JsonObject)labels.DeepClone();
        l["app.kubernetes.io/component"] = fanIn ? "fan-in" : "fan-out";
        return new JsonObject
        {
            ["apiVersion"] = "batch/v1", ["kind"] = "Job",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = o.Namespace, ["labels"] = l },
            ["spec"] = spec,
        };
    }
}
