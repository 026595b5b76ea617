using System.Text.Json.Nodes;
using HardenImage.Common;
using k8s;
using k8s.Models;

namespace HardenImage.Deploy;

/// <summary>One rendered Kubernetes object and the file it goes to (relative to the deployment's output directory).</summary>
public sealed record RenderedObject(string FileName, string ApiVersion, string Kind, string Name, string? Namespace, JsonObject Document)
{
    /// <summary>The file's bytes: sorted keys, fixed scalar styles (same object ⇒ same bytes).</summary>
    public string Yaml => ManifestYaml.Write(Document);
}

/// <summary>Everything rendered for one deploy/&lt;name&gt;.yaml; <see cref="Deployment"/> is the typed object for local runs.</summary>
public sealed record RenderedDeployment(DeploymentDescription Description, PinnedImage Image, V1Deployment Deployment,
    IReadOnlyList<RenderedObject> Objects)
{
    /// <summary>The model the pod pins (null: no model, or a bare claim nothing pins).</summary>
    public PinnedModel? Model { get; init; }
    /// <summary>The harden CLI image of the model-fetch init container (mount: init-container), when it is pushed.</summary>
    public PinnedImage? Fetcher { get; init; }
}

/// <summary>What the model part of a pod needs: the pinned model and, for the init-container path, the harden image.</summary>
public sealed record ModelInputs(PinnedModel? Model, PinnedImage? Fetcher, string? FetcherMissing, string? PublicKeyPem);

/// <summary>
/// Turns a <see cref="DeploymentDescription"/> and a digest-pinned image into the objects an EKS cluster needs, with
/// KubernetesClient's models (Karpenter's CRs, which have no models, as JSON). Pure: no files, no clock, no network.
/// </summary>
public sealed class ManifestRenderer
{
    public const long NonRootId = 65532;
    public const string PartOf = "hardenimage";

    /// <summary>Renders the objects in apply order. Throws <see cref="HardenException"/> on a refused setting.</summary>
    public RenderedDeployment Render(DeploymentDescription d, PinnedImage image, ModelInputs? model = null)
    {
        model ??= new ModelInputs(null, null, null, null);
        if (d.Model is { Name: not null } && model.Model == null)
            throw new HardenException($"{d.File}: model '{d.Model.Name}' is not pinned (no digest found); run 'harden model pack' and 'harden push'");
        if (d.Model is { Mount: ModelMount.InitContainer } && model.PublicKeyPem == null)
            throw new HardenException($"{d.File}: model.mount init-container needs the signing public key (--key) for the fetch to verify the model");
        if (!image.Digest.StartsWith("sha256:", StringComparison.Ordinal) || image.Reference.Contains(":latest@", StringComparison.Ordinal))
            throw new HardenException($"{d.File}: image '{d.Image}' is not pinned by digest ({image.Reference}); run 'harden build' and 'harden push'");
        if (d.RunAsUser == 0)
            throw new HardenException($"{d.File}: runAsUser 0 (root) is refused; pods run as nonroot {NonRootId}");

        var labels = Labels(d);
        var selector = new Dictionary<string, string>
        {
            ["app.kubernetes.io/name"] = d.Name,
            ["app.kubernetes.io/instance"] = d.Name,
        };
        var deployment = Deployment(d, image, labels, selector, model);
        var objects = new List<RenderedObject>
        {
            Wrap("00-namespace.yaml", Namespace(d)),
            Wrap("01-serviceaccount.yaml", ServiceAccount(d, labels)),
            Wrap("02-deployment.yaml", deployment),
            Wrap("03-service.yaml", Service(d, labels, selector)),
            Wrap("04-networkpolicy-default-deny.yaml", DefaultDeny(d)),
            Wrap("05-networkpolicy-allow-gateway.yaml", AllowGateway(d, labels, selector)),
            Wrap("06-networkpolicy-allow-dns.yaml", AllowDns(d)),
            Wrap("07-poddisruptionbudget.yaml", Pdb(d, labels, selector)),
        };
        if (d.Autoscaler != null) objects.Add(Wrap("08-horizontalpodautoscaler.yaml", Hpa(d, labels)));
        if (d.NodePool != null)
        {
            objects.Add(Wrap("09-karpenter-nodepool.yaml", KarpenterNodePool(d)));
            objects.Add(Wrap("10-karpenter-ec2nodeclass.yaml", KarpenterNodeClass(d)));
        }
        if (d.Model is { Mount: ModelMount.InitContainer })
            objects.Add(Wrap("11-configmap-model-trust.yaml", ModelTrust(d, labels, model.PublicKeyPem!)));
        return new RenderedDeployment(d, image, deployment, objects) { Model = model.Model, Fetcher = model.Fetcher };
    }

    /// <summary>The node pool name (Karpenter labels its nodes karpenter.sh/nodepool=&lt;it&gt;).</summary>
    public static string NodePoolName(DeploymentDescription d) => d.Name;

    private static Dictionary<string, string> Labels(DeploymentDescription d) => new()
    {
        ["app.kubernetes.io/name"] = d.Name,
        ["app.kubernetes.io/instance"] = d.Name,
        ["app.kubernetes.io/component"] = "inference",
        ["app.kubernetes.io/part-of"] = PartOf,
        ["app.kubernetes.io/managed-by"] = "harden",
    };

    /// <summary>Pod Security admission <c>restricted</c> enforced, audited and warned (threat: Elevation of privilege).</summary>
    private static V1Namespace Namespace(DeploymentDescription d) => new()
    {
        ApiVersion = "v1",
        Kind = "Namespace",
        Metadata = new V1ObjectMeta
        {
            Name = d.Namespace,
            Labels = new Dictionary<string, string>
            {
                ["kubernetes.io/metadata.name"] = d.Namespace,
                ["pod-security.kubernetes.io/enforce"] = "restricted",
                ["pod-security.kubernetes.io/enforce-version"] = "latest",
                ["pod-security.kubernetes.io/audit"] = "restricted",
                ["pod-security.kubernetes.io/audit-version"] = "latest",
                ["pod-security.kubernetes.io/warn"] = "restricted",
                ["pod-security.kubernetes.io/warn-version"] = "latest",
                // Opts the namespace into sigstore policy-controller, when that is the admission controller in use.
                ["policy.sigstore.dev/include"] = "true",
            },
        },
    };

    /// <summary>
    /// IRSA role annotation (least-privilege AWS identity, threat: Spoofing) and no automounted API token
    /// (threat: Information disclosure / Elevation — a compromised pod gets no Kubernetes credentials).
    /// </summary>
    private static V1ServiceAccount ServiceAccount(DeploymentDescription d, Dictionary<string, string> labels) => new()
    {
        ApiVersion = "v1",
        Kind = "ServiceAccount",
        Metadata = new V1ObjectMeta
        {
            Name = d.Name,
            NamespaceProperty = d.Namespace,
            Labels = labels,
            Annotations = d.RoleArn == null ? null : new Dictionary<string, string> { ["eks.amazonaws.com/role-arn"] = d.RoleArn },
        },
        AutomountServiceAccountToken = false,
    };

    /// <summary>Name of the ConfigMap holding the public key the model-fetch init container verifies with.</summary>
    public static string ModelTrustName(DeploymentDescription d) => $"{d.Name}-model-trust";

    public const string ModelKeyMountPath = "/etc/hardenimage";
    public const string ModelKeyFile = "cosign.pub";
    /// <summary>Pod-template annotation naming the pinned model (what `kubectl describe` shows; threat: Repudiation).</summary>
    public const string ModelAnnotation = "hardenimage.dev/model";
    public const string FetcherMissingAnnotation = "hardenimage.dev/model-fetcher-missing";

    /// <summary>The public key the init container verifies the model's signature with (threat: Spoofing).</summary>
    private static V1ConfigMap ModelTrust(DeploymentDescription d, Dictionary<string, string> labels, string pem) => new()
    {
        ApiVersion = "v1",
        Kind = "ConfigMap",
        Metadata = new V1ObjectMeta { Name = ModelTrustName(d), NamespaceProperty = d.Namespace, Labels = labels },
        Data = new Dictionary<string, string> { [ModelKeyFile] = pem.TrimEnd('\n') + "\n" },
        Immutable = true,
    };

    private static V1SecurityContext ContainerSecurity(DeploymentDescription d) => new()
    {
        RunAsNonRoot = true,
        RunAsUser = d.RunAsUser,
        RunAsGroup = NonRootId,
        ReadOnlyRootFilesystem = true,
        AllowPrivilegeEscalation = false,
        Privileged = false,
        Capabilities = new V1Capabilities { Drop = ["ALL"] },
        SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" },
    };

    /// <summary>
    /// Model volume, mounts and init container for the chosen mount. Image volume: the kubelet pulls REPO@sha256 and
    /// mounts it read-only. Init container: our harden image pulls by digest, verifies signature and every blob, and
    /// extracts into an emptyDir the server mounts read-only. Claim: the files are on a PVC. In every case the server
    /// checks the files against the pinned manifest (threats: Spoofing, Tampering).
    /// </summary>
    private static V1Container? ModelVolumes(DeploymentDescription d, ModelInputs model, List<V1Volume> volumes, List<V1VolumeMount> mounts,
        SortedDictionary<string, string> env)
    {
        var m = d.Model!;
        env["MODEL_DIR"] = m.MountPath;
        mounts.Add(new V1VolumeMount { Name = "model", MountPath = m.MountPath, ReadOnlyProperty = true });
        if (model.Model is { } pinned)
        {
            env[ModelPinning.DigestEnv] = pinned.Digest;
            env[ModelPinning.ManifestEnv] = pinned.ManifestBase64;
        }
        switch (m.Mount)
        {
            case ModelMount.ImageVolume:
                volumes.Add(new V1Volume { Name = "model", Image = new V1ImageVolumeSource { Reference = model.Model!.Reference, PullPolicy = m.PullPolicy } });
                return null;
            case ModelMount.Claim:
                volumes.Add(new V1Volume
                {
                    Name = "model",
                    PersistentVolumeClaim = new V1PersistentVolumeClaimVolumeSource { ClaimName = m.ClaimName, ReadOnlyProperty = true },
                });
                return null;
            default:
                volumes.Add(new V1Volume { Name = "model", EmptyDir = new V1EmptyDirVolumeSource() });
                volumes.Add(new V1Volume
                {
                    Name = "model-trust",
                    ConfigMap = new V1ConfigMapVolumeSource { Name = ModelTrustName(d), DefaultMode = Convert.ToInt32("444", 8) },
                });
                return new V1Container
                {
                    Name = "model-fetch",
                    // Absent harden image: a tag that no digest policy admits, and an annotation saying why.
                    Image = model.Fetcher?.Reference ?? "harden-image-not-pushed:see-annotation",
                    ImagePullPolicy = "IfNotPresent",
                    Args = ["model", "fetch", model.Model!.Reference, "--key", $"{ModelKeyMountPath}/{ModelKeyFile}", "--into", "/model-out"],
                    Resources = new V1ResourceRequirements
                    {
                        Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("250m"), ["memory"] = new("256Mi"), ["ephemeral-storage"] = new("64Mi") },
                        Limits = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("1"), ["memory"] = new("512Mi"), ["ephemeral-storage"] = new("256Mi") },
                    },
                    SecurityContext = ContainerSecurity(d),
                    VolumeMounts =
                    [
                        new V1VolumeMount { Name = "model", MountPath = "/model-out" },
                        new V1VolumeMount { Name = "model-trust", MountPath = ModelKeyMountPath, ReadOnlyProperty = true },
                        new V1VolumeMount { Name = "tmp", MountPath = "/tmp" },
                    ],
                    TerminationMessagePolicy = "FallbackToLogsOnError",
                };
        }
    }

    private static V1Deployment Deployment(DeploymentDescription d, PinnedImage image, Dictionary<string, string> labels,
        Dictionary<string, string> selector, ModelInputs model)
    {
        var resources = new V1ResourceRequirements
        {
            Requests = new Dictionary<string, ResourceQuantity>
            {
                ["cpu"] = new(d.Resources.Requests.Cpu),
                ["memory"] = new(d.Resources.Requests.Memory),
                ["ephemeral-storage"] = new("1Gi"),
            },
            Limits = new Dictionary<string, ResourceQuantity>
            {
                ["cpu"] = new(d.Resources.Limits.Cpu),
                ["memory"] = new(d.Resources.Limits.Memory),
                ["ephemeral-storage"] = new("2Gi"),
            },
        };
        if (d.Accelerator.ResourceName is { } accel)
        {
            // Extended resources are not overcommitted: request = limit.
            resources.Requests[accel] = new(d.Accelerator.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
            resources.Limits[accel] = new(d.Accelerator.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var env = new SortedDictionary<string, string>(d.Env, StringComparer.Ordinal)
        {
            ["PORT"] = d.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        var mounts = new List<V1VolumeMount> { new() { Name = "tmp", MountPath = "/tmp" } };
        var volumes = new List<V1Volume>
        {
            new() { Name = "tmp", EmptyDir = new V1EmptyDirVolumeSource { Medium = "Memory", SizeLimit = new ResourceQuantity(d.TmpSize) } },
        };
        var fetch = d.Model != null ? ModelVolumes(d, model, volumes, mounts, env) : null;

        var container = new V1Container
        {
            Name = "inference",
            Image = image.Reference,
            ImagePullPolicy = "IfNotPresent",
            Command = d.Command,
            Args = d.Args,
            Ports = [new V1ContainerPort { Name = "http", ContainerPort = d.Port, Protocol = "TCP" }],
            Env = env.Select(kv => new V1EnvVar { Name = kv.Key, Value = kv.Value }).ToList(),
            Resources = resources,
            SecurityContext = ContainerSecurity(d),
            StartupProbe = new V1Probe
            {
                // Loading and hash-checking a model can take minutes: allow 5 minutes before liveness takes over.
                HttpGet = new V1HTTPGetAction { Path = d.Probes.Readiness, Port = "http" },
                PeriodSeconds = 10,
                TimeoutSeconds = 3,
                FailureThreshold = 30,
            },
            LivenessProbe = new V1Probe
            {
                HttpGet = new V1HTTPGetAction { Path = d.Probes.Liveness, Port = "http" },
                PeriodSeconds = 10,
                TimeoutSeconds = 3,
                FailureThreshold = 3,
            },
            ReadinessProbe = new V1Probe
            {
                HttpGet = new V1HTTPGetAction { Path = d.Probes.Readiness, Port = "http" },
                PeriodSeconds = 5,
                TimeoutSeconds = 3,
                FailureThreshold = 3,
            },
            VolumeMounts = mounts,
            TerminationMessagePolicy = "FallbackToLogsOnError",
        };

        var tolerations = d.Accelerator.ResourceName is { } taint
            ? new List<V1Toleration> { new() { Key = taint, OperatorProperty = "Exists", Effect = "NoSchedule" } }
            : null;
        var nodeSelector = new Dictionary<string, string> { ["kubernetes.io/os"] = "linux" };
        if (d.NodePool != null)
        {
            nodeSelector["karpenter.sh/nodepool"] = NodePoolName(d);
            if (d.NodePool.Architectures.Count == 1) nodeSelector["kubernetes.io/arch"] = d.NodePool.Architectures[0];
        }

        return new V1Deployment
        {
            ApiVersion = "apps/v1",
            Kind = "Deployment",
            Metadata = new V1ObjectMeta { Name = d.Name, NamespaceProperty = d.Namespace, Labels = labels },
            Spec = new V1DeploymentSpec
            {
                Replicas = d.Replicas,
                RevisionHistoryLimit = 5,
                Selector = new V1LabelSelector { MatchLabels = selector },
                Strategy = new V1DeploymentStrategy
                {
                    Type = "RollingUpdate",
                    RollingUpdate = new V1RollingUpdateDeployment { MaxSurge = 1, MaxUnavailable = 0 },
                },
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta { Labels = labels, Annotations = PodAnnotations(model) },
                    Spec = new V1PodSpec
                    {
                        InitContainers = fetch != null ? [fetch] : null,
                        ServiceAccountName = d.Name,
                        AutomountServiceAccountToken = false,
                        EnableServiceLinks = false,
                        HostNetwork = false,
                        HostPID = false,
                        HostIPC = false,
                        TerminationGracePeriodSeconds = 30,
                        SecurityContext = new V1PodSecurityContext
                        {
                            RunAsNonRoot = true,
                            RunAsUser = d.RunAsUser,
                            RunAsGroup = NonRootId,
                            FsGroup = NonRootId,
                            FsGroupChangePolicy = "OnRootMismatch",
                            SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" },
                        },
                        Containers = [container],
                        Volumes = volumes,
                        NodeSelector = nodeSelector,
                        Tolerations = tolerations,
                        TopologySpreadConstraints =
                        [
                            new V1TopologySpreadConstraint
                            {
                                MaxSkew = 1, TopologyKey = "topology.kubernetes.io/zone", WhenUnsatisfiable = "ScheduleAnyway",
                                LabelSelector = new V1LabelSelector { MatchLabels = selector },
                            },
                            new V1TopologySpreadConstraint
                            {
                                MaxSkew = 1, TopologyKey = "kubernetes.io/hostname", WhenUnsatisfiable = "DoNotSchedule",
                                LabelSelector = new V1LabelSelector { MatchLabels = selector },
                            },
                        ],
                    },
                },
            },
        };
    }

    private static Dictionary<string, string>? PodAnnotations(ModelInputs model)
    {
        var a = new Dictionary<string, string>();
        if (model.Model != null) a[ModelAnnotation] = model.Model.Reference;
        if (model.FetcherMissing != null) a[FetcherMissingAnnotation] = model.FetcherMissing;
        return a.Count > 0 ? a : null;
    }

    private static V1Service Service(DeploymentDescription d, Dictionary<string, string> labels, Dictionary<string, string> selector) => new()
    {
        ApiVersion = "v1",
        Kind = "Service",
        Metadata = new V1ObjectMeta { Name = d.Name, NamespaceProperty = d.Namespace, Labels = labels },
        Spec = new V1ServiceSpec
        {
            Type = "ClusterIP",
            Selector = selector,
            Ports = [new V1ServicePort { Name = "http", Port = d.Port, TargetPort = "http", Protocol = "TCP" }],
        },
    };

    /// <summary>Default deny of all ingress and egress in the namespace (threats: Information disclosure, lateral movement).</summary>
    private static V1NetworkPolicy DefaultDeny(DeploymentDescription d) => new()
    {
        ApiVersion = "networking.k8s.io/v1",
        Kind = "NetworkPolicy",
        Metadata = new V1ObjectMeta { Name = "default-deny-all", NamespaceProperty = d.Namespace },
        Spec = new V1NetworkPolicySpec { PodSelector = new V1LabelSelector(), PolicyTypes = ["Ingress", "Egress"] },
    };

    /// <summary>Ingress only from the gateway namespace to the service port (threat: Spoofing of callers, Denial of service).</summary>
    private static V1NetworkPolicy AllowGateway(DeploymentDescription d, Dictionary<string, string> labels, Dictionary<string, string> selector) => new()
    {
        ApiVersion = "networking.k8s.io/v1",
        Kind = "NetworkPolicy",
        Metadata = new V1ObjectMeta { Name = $"{d.Name}-allow-gateway", NamespaceProperty = d.Namespace, Labels = labels },
        Spec = new V1NetworkPolicySpec
        {
            PodSelector = new V1LabelSelector { MatchLabels = selector },
            PolicyTypes = ["Ingress"],
            Ingress =
            [
                new V1NetworkPolicyIngressRule
                {
                    FromProperty =
                    [
                        new V1NetworkPolicyPeer
                        {
                            NamespaceSelector = new V1LabelSelector
                            {
                                MatchLabels = new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = d.GatewayNamespace },
                            },
                        },
                    ],
                    Ports = [new V1NetworkPolicyPort { Protocol = "TCP", Port = d.Port }],
                },
            ],
        },
    };

    /// <summary>Egress only to cluster DNS (threat: Information disclosure — no exfiltration path, no IMDS).</summary>
    private static V1NetworkPolicy AllowDns(DeploymentDescription d) => new()
    {
        ApiVersion = "networking.k8s.io/v1",
        Kind = "NetworkPolicy",
        Metadata = new V1ObjectMeta { Name = "allow-dns-egress", NamespaceProperty = d.Namespace },
        Spec = new V1NetworkPolicySpec
        {
            PodSelector = new V1LabelSelector(),
            PolicyTypes = ["Egress"],
            Egress =
            [
                new V1NetworkPolicyEgressRule
                {
                    To =
                    [
                        new V1NetworkPolicyPeer
                        {
                            NamespaceSelector = new V1LabelSelector
                            {
                                MatchLabels = new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = "kube-system" },
                            },
                            PodSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["k8s-app"] = "kube-dns" } },
                        },
                    ],
                    Ports = [new V1NetworkPolicyPort { Protocol = "UDP", Port = 53 }, new V1NetworkPolicyPort { Protocol = "TCP", Port = 53 }],
                },
            ],
        },
    };

    /// <summary>At most one pod down during voluntary disruption (threat: Denial of service during node drains).</summary>
    private static V1PodDisruptionBudget Pdb(DeploymentDescription d, Dictionary<string, string> labels, Dictionary<string, string> selector) => new()
    {
        ApiVersion = "policy/v1",
        Kind = "PodDisruptionBudget",
        Metadata = new V1ObjectMeta { Name = d.Name, NamespaceProperty = d.Namespace, Labels = labels },
        Spec = new V1PodDisruptionBudgetSpec
        {
            MaxUnavailable = 1,
            Selector = new V1LabelSelector { MatchLabels = selector },
            UnhealthyPodEvictionPolicy = "AlwaysAllow",
        },
    };

    /// <summary>Scales on CPU within fixed bounds (threat: Denial of service — load is absorbed, cost is capped).</summary>
    private static V2HorizontalPodAutoscaler Hpa(DeploymentDescription d, Dictionary<string, string> labels) => new()
    {
        ApiVersion = "autoscaling/v2",
        Kind = "HorizontalPodAutoscaler",
        Metadata = new V1ObjectMeta { Name = d.Name, NamespaceProperty = d.Namespace, Labels = labels },
        Spec = new V2HorizontalPodAutoscalerSpec
        {
            ScaleTargetRef = new V2CrossVersionObjectReference { ApiVersion = "apps/v1", Kind = "Deployment", Name = d.Name },
            MinReplicas = d.Autoscaler!.Min,
            MaxReplicas = d.Autoscaler.Max,
            Metrics =
            [
                new V2MetricSpec
                {
                    Type = "Resource",
                    Resource = new V2ResourceMetricSource
                    {
                        Name = "cpu",
                        Target = new V2MetricTarget { Type = "Utilization", AverageUtilization = d.Autoscaler.CpuTarget },
                    },
                },
            ],
        },
    };

    /// <summary>
    /// Karpenter NodePool (karpenter.sh/v1): the instance families of the accelerator, tainted so that only pods
    /// asking for the device land there (threat: Denial of service — GPUs are not taken by unrelated pods).
    /// </summary>
    private static JsonObject KarpenterNodePool(DeploymentDescription d)
    {
        var p = d.NodePool!;
        var requirements = new JsonArray
        {
            Requirement("karpenter.k8s.aws/instance-family", p.InstanceFamilies),
            Requirement("karpenter.sh/capacity-type", p.CapacityTypes),
            Requirement("kubernetes.io/arch", p.Architectures),
            Requirement("kubernetes.io/os", ["linux"]),
        };
        var spec = new JsonObject
        {
            ["nodeClassRef"] = new JsonObject { ["group"] = "karpenter.k8s.aws", ["kind"] = "EC2NodeClass", ["name"] = NodePoolName(d) },
            ["requirements"] = requirements,
            ["expireAfter"] = "720h",
        };
        if (d.Accelerator.ResourceName is { } taint)
            spec["taints"] = new JsonArray { new JsonObject { ["key"] = taint, ["effect"] = "NoSchedule" } };
        return new JsonObject
        {
            ["apiVersion"] = "karpenter.sh/v1",
            ["kind"] = "NodePool",
            ["metadata"] = new JsonObject { ["name"] = NodePoolName(d), ["labels"] = LabelsJson(d) },
            ["spec"] = new JsonObject
            {
                ["template"] = new JsonObject
                {
                    ["metadata"] = new JsonObject { ["labels"] = new JsonObject { ["hardenimage.dev/accelerator"] = d.Accelerator.Kind.ToString().ToLowerInvariant() } },
                    ["spec"] = spec,
                },
                ["disruption"] = new JsonObject { ["consolidationPolicy"] = "WhenEmptyOrUnderutilized", ["consolidateAfter"] = "5m" },
            },
        };
    }

    /// <summary>
    /// Karpenter EC2NodeClass (karpenter.k8s.aws/v1): accelerated AMI alias, IMDSv2 only with hop limit 1 (threat:
    /// Spoofing / Information disclosure — pods cannot borrow the node's IAM role), encrypted root volume.
    /// </summary>
    private static JsonObject KarpenterNodeClass(DeploymentDescription d)
    {
        var p = d.NodePool!;
        JsonArray Discovery() => [new JsonObject { ["tags"] = new JsonObject { ["karpenter.sh/discovery"] = p.Cluster } }];
        var rootDevice = p.AmiAlias.StartsWith("bottlerocket", StringComparison.Ordinal) ? "/dev/xvdb" : "/dev/xvda";
        return new JsonObject
        {
            ["apiVersion"] = "karpenter.k8s.aws/v1",
            ["kind"] = "EC2NodeClass",
            ["metadata"] = new JsonObject { ["name"] = NodePoolName(d), ["labels"] = LabelsJson(d) },
            ["spec"] = new JsonObject
            {
                ["role"] = p.NodeRole,
                ["amiSelectorTerms"] = new JsonArray { new JsonObject { ["alias"] = p.AmiAlias } },
                ["subnetSelectorTerms"] = Discovery(),
                ["securityGroupSelectorTerms"] = Discovery(),
                ["metadataOptions"] = new JsonObject
                {
                    ["httpEndpoint"] = "enabled",
                    ["httpProtocolIPv6"] = "disabled",
                    ["httpPutResponseHopLimit"] = 1,
                    ["httpTokens"] = "required",
                },
                ["blockDeviceMappings"] = new JsonArray
                {
                    new JsonObject
                    {
                        ["deviceName"] = rootDevice,
                        ["ebs"] = new JsonObject
                        {
                            ["volumeSize"] = d.Accelerator.Kind == AcceleratorKind.None ? "50Gi" : "200Gi",
                            ["volumeType"] = "gp3",
                            ["encrypted"] = true,
                            ["deleteOnTermination"] = true,
                        },
                    },
                },
                ["tags"] = new JsonObject { ["app.kubernetes.io/part-of"] = PartOf, ["hardenimage.dev/deployment"] = d.Name },
            },
        };
    }

    private static JsonObject Requirement(string key, IEnumerable<string> values) => new()
    {
        ["key"] = key,
        ["operator"] = "In",
        ["values"] = new JsonArray(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray()),
    };

    private static JsonObject LabelsJson(DeploymentDescription d) =>
        new(Labels(d).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value))));

    private static RenderedObject Wrap(string file, JsonObject document)
    {
        var sorted = (JsonObject)ManifestYaml.Sorted(document)!;
        var meta = sorted["metadata"]!;
        return new RenderedObject(file, (string)sorted["apiVersion"]!, (string)sorted["kind"]!, (string)meta["name"]!,
            (string?)meta["namespace"], sorted);
    }

    private static RenderedObject Wrap(string file, IKubernetesObject obj) =>
        Wrap(file, (JsonObject)JsonNode.Parse(KubernetesJson.Serialize(obj))!);
}
