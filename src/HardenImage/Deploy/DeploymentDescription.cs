using System.Text.RegularExpressions;
using HardenImage.Common;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace HardenImage.Deploy;

// The whole deploy/*.yaml model lives in this file; docs/deploy.md documents each field. Parsing walks YamlDotNet's
// node tree by hand (as Lock/ImageSet does) so every error names file, line and fix.

/// <summary>Which accelerator the pod needs; decides the extended resource, the node taint and the node pool.</summary>
public enum AcceleratorKind { None, Nvidia, Neuron }

/// <summary>CPU and memory quantities (Kubernetes quantity strings such as "500m", "2Gi").</summary>
public sealed record ResourceAmounts(string Cpu, string Memory);

/// <summary>Requests and limits of the inference container.</summary>
public sealed record ResourceSettings(ResourceAmounts Requests, ResourceAmounts Limits);

/// <summary>The accelerator and how many devices one pod gets.</summary>
public sealed record AcceleratorSettings(AcceleratorKind Kind, int Count)
{
    /// <summary>The extended resource name the device plugin advertises (null for none).</summary>
    public string? ResourceName => Kind switch
    {
        AcceleratorKind.Nvidia => "nvidia.com/gpu",
        AcceleratorKind.Neuron => "aws.amazon.com/neuron",
        _ => null,
    };
}

/// <summary>How the pinned model's files reach the pod.</summary>
public enum ModelMount
{
    /// <summary>A Kubernetes image volume (<c>volumes[].image.reference: REPO@sha256:…</c>, Kubernetes ≥ 1.33).</summary>
    ImageVolume,
    /// <summary>An init container of our harden image runs the verified fetch into an emptyDir (clusters without image volumes).</summary>
    InitContainer,
    /// <summary>Files provisioned on a PersistentVolumeClaim; the server still checks them against the pinned manifest.</summary>
    Claim,
}

/// <summary>
/// The model the server loads, mounted read-only at <see cref="MountPath"/>. <see cref="Name"/> names a packed model
/// (pinned by digest); null only for a bare claim (legacy: nothing pins it, the server refuses to start).
/// </summary>
public sealed record ModelVolume(string? Name, string MountPath, ModelMount Mount, string? ClaimName = null, string PullPolicy = "IfNotPresent");

/// <summary>Liveness and readiness paths of the image's health endpoints.</summary>
public sealed record ProbePaths(string Liveness, string Readiness);

/// <summary>HorizontalPodAutoscaler bounds and CPU target (percent of the request).</summary>
public sealed record AutoscalerSettings(int Min, int Max, int CpuTarget);

/// <summary>The Karpenter node pool the pods land on.</summary>
public sealed record NodePoolSettings
{
    /// <summary>EKS cluster name: subnets and security groups are found by the tag karpenter.sh/discovery=&lt;cluster&gt;.</summary>
    public required string Cluster { get; init; }
    public required List<string> InstanceFamilies { get; init; }
    public List<string> CapacityTypes { get; init; } = ["on-demand"];
    public List<string> Architectures { get; init; } = ["amd64"];
    /// <summary>IAM role of the nodes (default KarpenterNodeRole-&lt;cluster&gt;).</summary>
    public required string NodeRole { get; init; }
    /// <summary>AMI alias: al2023@latest or bottlerocket@latest (both pick the accelerated variant for GPU/Neuron instances).</summary>
    public string AmiAlias { get; init; } = "al2023@latest";
}

/// <summary>One deploy/&lt;name&gt;.yaml: how one image of the set runs on the cluster.</summary>
public sealed record DeploymentDescription
{
    public required string Name { get; init; }
    public required string File { get; init; }
    /// <summary>Name of an image of the set (images/&lt;image&gt;.yaml).</summary>
    public required string Image { get; init; }
    public string Namespace { get; init; } = "inference";
    public int Replicas { get; init; } = 2;
    public int Port { get; init; } = 8080;
    public ResourceSettings Resources { get; init; } = new(new("500m", "1Gi"), new("2", "2Gi"));
    public AcceleratorSettings Accelerator { get; init; } = new(AcceleratorKind.None, 0);
    public ModelVolume? Model { get; init; }
    /// <summary>IAM role for the pod's service account (IRSA); null = no AWS access.</summary>
    public string? RoleArn { get; init; }
    /// <summary>The only namespace whose pods may open connections to the service.</summary>
    public string GatewayNamespace { get; init; } = "gateway";
    public ProbePaths Probes { get; init; } = new("/healthz", "/readyz");
    public SortedDictionary<string, string> Env { get; init; } = new(StringComparer.Ordinal);
    public AutoscalerSettings? Autoscaler { get; init; }
    public NodePoolSettings? NodePool { get; init; }
    /// <summary>Replaces the image's entrypoint / cmd (null: keep the image's).</summary>
    public List<string>? Command { get; init; }
    public List<string>? Args { get; init; }
    public long RunAsUser { get; init; } = 65532;
    /// <summary>Size of the in-memory /tmp.</summary>
    public string TmpSize { get; init; } = "256Mi";
    public int Line { get; init; }
}

/// <summary>Loads and validates deploy/*.yaml; unknown fields are errors naming file, line and the known fields.</summary>
public static partial class DeploymentDescriptions
{
    /// <summary>Every deploy/*.yaml (sorted by file name). <paramref name="knownImages"/>, when given, must contain each image.</summary>
    public static IReadOnlyList<DeploymentDescription> LoadDirectory(string directory, IReadOnlyCollection<string>? knownImages = null)
    {
        if (!Directory.Exists(directory))
            throw new HardenException($"{directory}: no deployment descriptions directory. Create deploy/<name>.yaml (see docs/deploy.md) or pass --deploy-dir.");
        var files = Directory.EnumerateFiles(directory, "*.yaml").Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0)
            throw new HardenException($"{directory}: no *.yaml deployment descriptions (see docs/deploy.md).");
        var result = files.Select(f => Load(f, knownImages)).ToList();
        var dup = result.GroupBy(d => d.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup != null) throw new HardenException($"{directory}: deployment name '{dup.Key}' is used twice; names must be unique");
        return result;
    }

    public static DeploymentDescription Load(string file, IReadOnlyCollection<string>? knownImages = null)
    {
        var root = YamlFieldReader.ReadRoot(file, "docs/deploy.md");
        var r = new YamlFieldReader(file);
        r.Fields(root, "name", "image", "namespace", "replicas", "port", "resources", "accelerator", "model", "serviceAccount",
            "gateway", "probes", "env", "hpa", "nodepool", "command", "args", "runAsUser", "tmpSize");
        var name = r.String(root, "name", required: true)!;
        var expected = Path.GetFileNameWithoutExtension(file);
        if (name != expected)
            throw r.Error(root, $"name: '{name}' differs from the file name; name the file {name}.yaml or set name: {expected}");
        CheckDnsLabel(r, root, "name", name);
        if (name == AdmissionPolicyRenderer.OutputDirectoryName)
            throw r.Error(root, $"name: '{name}' is reserved for the admission policies' output directory; choose another name");
        var image = r.String(root, "image", required: true)!;
        if (knownImages != null && !knownImages.Contains(image))
            throw r.Error(r.Node(root, "image")!, $"image: '{image}' is not an image of the set{NameSuggestions.DidYouMean(image, knownImages)}; images: {string.Join(", ", knownImages.Order(StringComparer.Ordinal))}");
        var ns = r.String(root, "namespace") ?? "inference";
        CheckDnsLabel(r, root, "namespace", ns);
        var replicas = r.Int(root, "replicas") ?? 2;
        if (replicas < 1) throw r.Error(root, "replicas: must be at least 1");
        var port = r.Int(root, "port") ?? 8080;
        if (port is < 1024 or > 65535) throw r.Error(root, $"port: {port} must be 1024..65535 (a nonroot process cannot bind lower ports)");

        var resources = new ResourceSettings(new("500m", "1Gi"), new("2", "2Gi"));
        if (r.Mapping(root, "resources") is { } res)
        {
            r.Fields(res, "requests", "limits");
            resources = new ResourceSettings(Amounts(r, r.Mapping(res, "requests", required: true)!),
                Amounts(r, r.Mapping(res, "limits", required: true)!));
        }

        var accelerator = new AcceleratorSettings(AcceleratorKind.None, 0);
        if (r.Mapping(root, "accelerator") is { } acc)
        {
            r.Fields(acc, "kind", "count");
            var kindText = r.String(acc, "kind", required: true)!;
            var kind = kindText switch
            {
                "none" => AcceleratorKind.None,
                "nvidia" => AcceleratorKind.Nvidia,
                "neuron" => AcceleratorKind.Neuron,
                _ => throw r.Error(acc, $"accelerator.kind: '{kindText}' must be none, nvidia or neuron"),
            };
            var count = r.Int(acc, "count") ?? (kind == AcceleratorKind.None ? 0 : 1);
            if (kind != AcceleratorKind.None && count < 1) throw r.Error(acc, "accelerator.count: must be at least 1 for nvidia or neuron");
            if (kind == AcceleratorKind.None && count != 0) throw r.Error(acc, "accelerator.count: must be 0 (or absent) for kind: none");
            accelerator = new AcceleratorSettings(kind, count);
        }

        ModelVolume? model = null;
        if (r.Mapping(root, "model") is { } mv)
        {
            r.Fields(mv, "name", "mount", "claimName", "mountPath", "pullPolicy");
            var modelName = r.String(mv, "name");
            if (modelName != null && !ModelName().IsMatch(modelName))
                throw r.Error(mv, $"model.name: '{modelName}' is not a model name (lower-case letters, digits, '.', '_', '-', '/'), as 'harden model pack --name' records it");
            var claim = r.String(mv, "claimName");
            if (claim != null) CheckDnsLabel(r, mv, "model.claimName", claim);
            var mountText = r.String(mv, "mount") ?? (claim != null ? "claim" : "image-volume");
            var mountKind = mountText switch
            {
                "image-volume" => ModelMount.ImageVolume,
                "init-container" => ModelMount.InitContainer,
                "claim" => ModelMount.Claim,
                _ => throw r.Error(mv, $"model.mount: '{mountText}' must be image-volume (default), init-container or claim"),
            };
            if (mountKind == ModelMount.Claim && claim == null)
                throw r.Error(mv, "model.mount: claim needs model.claimName (the PersistentVolumeClaim holding the files)");
            if (mountKind != ModelMount.Claim && claim != null)
                throw r.Error(mv, $"model.claimName: only with mount: claim (mount: {mountText} brings the files from the registry)");
            if (modelName == null && mountKind != ModelMount.Claim)
                throw r.Error(mv, "model.name: is required: the packed model to pin by digest ('harden model pack --name')");
            var mount = r.String(mv, "mountPath") ?? "/models";
            if (!mount.StartsWith('/') || mount.Split('/').Contains("..") || mount == "/" || mount == "/tmp")
                throw r.Error(mv, $"model.mountPath: '{mount}' must be an absolute path without '..', not / or /tmp");
            var pull = r.String(mv, "pullPolicy") ?? "IfNotPresent";
            if (pull is not ("IfNotPresent" or "Always"))
                throw r.Error(mv, $"model.pullPolicy: '{pull}' must be IfNotPresent or Always (Never would serve whatever a node cached)");
            model = new ModelVolume(modelName, mount, mountKind, claim, pull);
        }

        string? roleArn = null;
        if (r.Mapping(root, "serviceAccount") is { } sa)
        {
            r.Fields(sa, "roleArn");
            roleArn = r.String(sa, "roleArn");
            if (roleArn != null && !RoleArn().IsMatch(roleArn))
                throw r.Error(sa, $"serviceAccount.roleArn: '{roleArn}' is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)");
        }

        var gateway = "gateway";
        if (r.Mapping(root, "gateway") is { } gw)
        {
            r.Fields(gw, "namespace");
            gateway = r.String(gw, "namespace", required: true)!;
            CheckDnsLabel(r, gw, "gateway.namespace", gateway);
        }

        var probes = new ProbePaths("/healthz", "/readyz");
        if (r.Mapping(root, "probes") is { } pr)
        {
            r.Fields(pr, "liveness", "readiness");
            probes = new ProbePaths(r.String(pr, "liveness") ?? "/healthz", r.String(pr, "readiness") ?? "/readyz");
            foreach (var p in new[] { probes.Liveness, probes.Readiness })
                if (!p.StartsWith('/')) throw r.Error(pr, $"probes: path '{p}' must start with /");
        }

        AutoscalerSettings? hpa = null;
        if (r.Mapping(root, "hpa") is { } h)
        {
            r.Fields(h, "min", "max", "cpuTarget");
            hpa = new AutoscalerSettings(r.Int(h, "min") ?? replicas, r.Int(h, "max", required: true)!.Value, r.Int(h, "cpuTarget") ?? 70);
            if (hpa.Min < 1 || hpa.Max < hpa.Min) throw r.Error(h, $"hpa: need 1 <= min ({hpa.Min}) <= max ({hpa.Max})");
            if (hpa.CpuTarget is < 1 or > 100) throw r.Error(h, "hpa.cpuTarget: a percentage 1..100");
        }

        NodePoolSettings? pool = null;
        if (r.Mapping(root, "nodepool") is { } np)
        {
            r.Fields(np, "cluster", "instanceFamilies", "capacityTypes", "architectures", "nodeRole", "amiAlias");
            var cluster = r.String(np, "cluster", required: true)!;
            var families = r.StringList(np, "instanceFamilies") ?? throw r.Error(np, "nodepool.instanceFamilies: is required (e.g. [g6, g5] for nvidia, [inf2] for neuron, [c7i, m7i] for none)");
            if (families.Count == 0) throw r.Error(np, "nodepool.instanceFamilies: name at least one family");
            var capacity = r.StringList(np, "capacityTypes") ?? ["on-demand"];
            foreach (var c in capacity)
                if (c is not ("on-demand" or "spot" or "reserved")) throw r.Error(np, $"nodepool.capacityTypes: '{c}' must be on-demand, spot or reserved");
            var archs = r.StringList(np, "architectures") ?? ["amd64"];
            foreach (var a in archs)
                if (a is not ("amd64" or "arm64")) throw r.Error(np, $"nodepool.architectures: '{a}' must be amd64 or arm64");
            var alias = r.String(np, "amiAlias") ?? "al2023@latest";
            if (!AmiAlias().IsMatch(alias)) throw r.Error(np, $"nodepool.amiAlias: '{alias}' must be al2023@<version> or bottlerocket@<version> (accelerated AMIs)");
            pool = new NodePoolSettings
            {
                Cluster = cluster,
                InstanceFamilies = families,
                CapacityTypes = capacity,
                Architectures = archs,
                NodeRole = r.String(np, "nodeRole") ?? $"KarpenterNodeRole-{cluster}",
                AmiAlias = alias,
            };
        }

        var runAsUser = r.Int(root, "runAsUser") ?? 65532;
        if (runAsUser == 0)
            throw r.Error(root, "runAsUser: 0 (root) is refused: pods run as nonroot. Remove runAsUser: (default 65532) or name a non-zero uid");
        if (runAsUser < 0) throw r.Error(root, "runAsUser: must be a positive uid");
        return new DeploymentDescription
        {
            Name = name,
            File = file,
            Image = image,
            Namespace = ns,
            Replicas = replicas,
            Port = port,
            Resources = resources,
            Accelerator = accelerator,
            Model = model,
            RoleArn = roleArn,
            GatewayNamespace = gateway,
            Probes = probes,
            Env = r.StringMap(root, "env") ?? new(StringComparer.Ordinal),
            Autoscaler = hpa,
            NodePool = pool,
            Command = r.StringList(root, "command"),
            Args = r.StringList(root, "args"),
            RunAsUser = runAsUser,
            TmpSize = r.String(root, "tmpSize") ?? "256Mi",
            Line = (int)root.Start.Line,
        };
    }

    private static ResourceAmounts Amounts(YamlFieldReader r, YamlMappingNode m)
    {
        r.Fields(m, "cpu", "memory");
        var cpu = r.String(m, "cpu", required: true)!;
        var memory = r.String(m, "memory", required: true)!;
        if (!Quantity().IsMatch(cpu)) throw r.Error(m, $"cpu: '{cpu}' is not a quantity (e.g. \"500m\" or \"2\")");
        if (!Quantity().IsMatch(memory)) throw r.Error(m, $"memory: '{memory}' is not a quantity (e.g. \"2Gi\")");
        return new ResourceAmounts(cpu, memory);
    }

    private static void CheckDnsLabel(YamlFieldReader r, YamlNode node, string field, string value)
    {
        if (!DnsLabel().IsMatch(value))
            throw r.Error(node, $"{field}: '{value}' must be a DNS label (lower-case letters, digits and '-', at most 63 characters)");
    }

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    private static partial Regex DnsLabel();

    [GeneratedRegex(@"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")]
    private static partial Regex RoleArn();

    [GeneratedRegex(@"^(\d+(\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")]
    private static partial Regex Quantity();

    [GeneratedRegex(@"^[a-z0-9]+([._/-][a-z0-9]+)*$")]
    private static partial Regex ModelName();

    [GeneratedRegex(@"^(al2023|bottlerocket)@[\w.-]+$")]
    private static partial Regex AmiAlias();
}
