using System.Text.Json.Nodes;
using HardenImage.Common;
using HardenImage.Deploy;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Deploy;

public sealed class DeployRenderTests
{
    [Fact]
    public void Render_IsByteIdenticalForTheSameInputs()
    {
        using var a = new DeployWorkspace();
        using var b = new DeployWorkspace(["inference-neuron", "inference-cuda-debian", "inference-cuda", "inference-cpu"]); // other build.json order
        new DeployRenderer().RenderAndWrite(a.Options());
        new DeployRenderer().RenderAndWrite(b.Options());
        new DeployRenderer().RenderAndWrite(b.Options()); // re-render over existing output
        var filesA = Files(a);
        var filesB = Files(b);
        Assert.Equal(filesA.Keys, filesB.Keys);
        Assert.True(filesA.Count >= 30, $"only {filesA.Count} files");
        foreach (var (rel, bytes) in filesA) Assert.True(bytes.AsSpan().SequenceEqual(filesB[rel]), $"{rel} differs between renders");
    }

    [Fact]
    public void Deployment_CarriesThePodHardeningAndDigestPin()
    {
        using var ws = new DeployWorkspace();
        var cpu = new DeployRenderer().Render(ws.Options()).Deployments.Single(d => d.Description.Name == "inference-cpu");
        var pod = cpu.Deployment.Spec.Template.Spec;
        var c = pod.Containers.Single();
        Assert.Equal($"{DeployWorkspace.Registry}/inference-cpu@{DeployWorkspace.DigestOf("inference-cpu")}", c.Image);
        Assert.True(pod.SecurityContext.RunAsNonRoot);
        Assert.Equal(65532, pod.SecurityContext.RunAsUser);
        Assert.Equal(65532, pod.SecurityContext.FsGroup);
        Assert.Equal("RuntimeDefault", pod.SecurityContext.SeccompProfile.Type);
        Assert.True(c.SecurityContext.ReadOnlyRootFilesystem);
        Assert.False(c.SecurityContext.AllowPrivilegeEscalation);
        Assert.Equal(["ALL"], c.SecurityContext.Capabilities.Drop);
        Assert.False(pod.AutomountServiceAccountToken);
        Assert.Equal("/healthz", c.LivenessProbe.HttpGet.Path);
        Assert.Equal("/readyz", c.ReadinessProbe.HttpGet.Path);
        Assert.NotNull(c.StartupProbe);
        Assert.Contains(c.VolumeMounts, m => m.MountPath == "/models" && m.ReadOnlyProperty == true);
        Assert.Contains(pod.Volumes, v => v.EmptyDir is { Medium: "Memory" } && v.EmptyDir.SizeLimit != null);
        Assert.Equal("inference-cpu", pod.NodeSelector["karpenter.sh/nodepool"]);
        Assert.Null(pod.Tolerations);
        Assert.Equal(2, pod.TopologySpreadConstraints.Count);

        var ns = Doc(cpu, "Namespace");
        Assert.Equal("restricted", (string)ns["metadata"]!["labels"]!["pod-security.kubernetes.io/enforce"]!);
        var sa = Doc(cpu, "ServiceAccount");
        Assert.False((bool)sa["automountServiceAccountToken"]!);
        Assert.StartsWith("arn:aws:iam::", (string)sa["metadata"]!["annotations"]!["eks.amazonaws.com/role-arn"]!);
        var yaml = cpu.Objects.Single(o => o.Kind == "Deployment").Yaml;
        Assert.Contains("@sha256:", yaml);
        Assert.DoesNotContain(":latest", yaml);
    }

    [Theory]
    [InlineData("inference-cuda", "nvidia.com/gpu", "g6")]
    [InlineData("inference-neuron", "aws.amazon.com/neuron", "inf2")]
    public void Accelerator_GetsDeviceLimitTolerationTaintAndInstanceFamily(string name, string resource, string family)
    {
        using var ws = new DeployWorkspace();
        var d = new DeployRenderer().Render(ws.Options()).Deployments.Single(x => x.Description.Name == name);
        var c = d.Deployment.Spec.Template.Spec.Containers.Single();
        Assert.Equal("1", c.Resources.Limits[resource].ToString());
        Assert.Equal("1", c.Resources.Requests[resource].ToString());
        Assert.Contains(d.Deployment.Spec.Template.Spec.Tolerations, t => t.Key == resource && t.Effect == "NoSchedule");
        var pool = Doc(d, "NodePool");
        Assert.Equal(resource, (string)pool["spec"]!["template"]!["spec"]!["taints"]![0]!["key"]!);
        var req = pool["spec"]!["template"]!["spec"]!["requirements"]!.AsArray()
            .Single(r => (string)r!["key"]! == "karpenter.k8s.aws/instance-family");
        Assert.Contains(family, req!["values"]!.AsArray().Select(v => (string)v!));
        var nodeClass = Doc(d, "EC2NodeClass");
        Assert.Equal("required", (string)nodeClass["spec"]!["metadataOptions"]!["httpTokens"]!);
        Assert.Equal(1, (int)nodeClass["spec"]!["metadataOptions"]!["httpPutResponseHopLimit"]!);
    }

    [Fact]
    public void NetworkPolicies_DenyByDefault_IngressOnlyFromGateway_EgressOnlyDns()
    {
        using var ws = new DeployWorkspace();
        var d = new DeployRenderer().Render(ws.Options()).Deployments[0];
        var policies = d.Objects.Where(o => o.Kind == "NetworkPolicy").ToDictionary(o => o.Name, o => o.Document);
        var deny = policies["default-deny-all"];
        Assert.Empty(deny["spec"]!["podSelector"]!.AsObject());
        Assert.Equal(["Egress", "Ingress"], deny["spec"]!["policyTypes"]!.AsArray().Select(v => (string)v!).Order());
        Assert.Null(deny["spec"]!["ingress"]);
        Assert.Null(deny["spec"]!["egress"]);
        var ingress = policies[$"{d.Description.Name}-allow-gateway"];
        Assert.Equal("gateway", (string)ingress["spec"]!["ingress"]![0]!["from"]![0]!["namespaceSelector"]!["matchLabels"]!["kubernetes.io/metadata.name"]!);
        Assert.Equal(8080, (int)ingress["spec"]!["ingress"]![0]!["ports"]![0]!["port"]!);
        var dns = policies["allow-dns-egress"];
        var ports = dns["spec"]!["egress"]![0]!["ports"]!.AsArray().Select(p => $"{p!["protocol"]}/{p["port"]}").Order();
        Assert.Equal(["TCP/53", "UDP/53"], ports);
        Assert.Equal("kube-dns", (string)dns["spec"]!["egress"]![0]!["to"]![0]!["podSelector"]!["matchLabels"]!["k8s-app"]!);
    }

    [Fact]
    public void AdmissionPolicies_CarryTheKeyDigestRulesAndAttestationConditions()
    {
        using var ws = new DeployWorkspace();
        var result = new DeployRenderer().Render(ws.Options());
        var pem = File.ReadAllText(Path.Combine(ws.Artifacts, "keys", "cosign.pub")).Trim();
        var verify = result.AdmissionPolicies.Single(o => o.FileName == "kyverno-verify-images.yaml").Document;
        var vi = verify["spec"]!["rules"]![0]!["verifyImages"]![0]!;
        Assert.True((bool)vi["mutateDigest"]!);
        Assert.True((bool)vi["verifyDigest"]!);
        Assert.True((bool)vi["required"]!);
        Assert.Equal(pem, ((string)vi["attestors"]![0]!["entries"]![0]!["keys"]!["publicKeys"]!).Trim());
        Assert.Contains($"{DeployWorkspace.Registry}/inference-cpu@*", vi["imageReferences"]!.AsArray().Select(v => (string)v!));
        var types = vi["attestations"]!.AsArray().Select(a => (string)a!["type"]!).ToList();
        Assert.Equal([AdmissionPolicyRenderer.SbomPredicate, AdmissionPolicyRenderer.VulnPredicate], types);
        var vuln = vi["attestations"]![1]!["conditions"]![0]!["all"]![0]!;
        Assert.Contains("critical", (string)vuln["key"]!);
        Assert.Equal(0, (int)vuln["value"]!);

        var hardening = result.AdmissionPolicies.Single(o => o.FileName == "kyverno-pod-hardening.yaml").Document;
        var rules = hardening["spec"]!["rules"]!.AsArray().Select(r => (string)r!["name"]!).ToList();
        Assert.Equal(["require-run-as-non-root", "disallow-privilege-escalation", "require-drop-all-capabilities",
            "require-read-only-root-filesystem", "require-seccomp-runtime-default", "require-image-digest"], rules);

        var cip = result.AdmissionPolicies.Single(o => o.Kind == "ClusterImagePolicy");
        Assert.Equal(pem, ((string)cip.Document["spec"]!["authorities"]![0]!["key"]!["data"]!).Trim());
        Assert.Contains("BEGIN PUBLIC KEY", cip.Yaml);
        Assert.Contains("count(critical) == 0", cip.Yaml);
    }

    [Fact]
    public void Refuses_ImageWithoutDigest()
    {
        using var ws = new DeployWorkspace(["inference-cpu", "inference-cuda", "inference-cuda-debian"]); // no neuron build
        var e = Assert.Throws<HardenException>(() => new DeployRenderer().Render(ws.Options()));
        Assert.Contains("inference-neuron", e.Message);
        Assert.Contains("no digest", e.Message);
        Assert.Contains("harden build", e.Message);
        Assert.False(Directory.Exists(Path.Combine(ws.Artifacts, "deploy")));
    }

    [Fact]
    public void Refuses_BuiltImageWithoutRegistry()
    {
        using var ws = new DeployWorkspace();
        var e = Assert.Throws<HardenException>(() => new DeployRenderer().Render(ws.Options(registry: null)));
        Assert.Contains("--registry", e.Message);
    }

    [Fact]
    public void Refuses_PodRunningAsRoot()
    {
        using var ws = new DeployWorkspace();
        var file = Path.Combine(ws.DeployDir, "inference-cpu.yaml");
        File.AppendAllText(file, "runAsUser: 0\n");
        var e = Assert.Throws<HardenException>(() => new DeployRenderer().Render(ws.Options()));
        Assert.Contains("inference-cpu.yaml:", e.Message);
        Assert.Contains("root", e.Message);
    }

    [Fact]
    public void Refuses_ImageWhoseConfigUserIsRoot()
    {
        using var ws = new DeployWorkspace();
        var layout = OciLayout.OpenOrCreate(Path.Combine(ws.Artifacts, "oci"));
        string Index(string? user)
        {
            var config = layout.WriteJson(new ImageConfig
            {
                Architecture = "amd64",
                Config = new ContainerConfig { User = user },
                RootFs = new RootFs { DiffIds = [] },
            }, MediaTypes.ImageConfig);
            var manifest = layout.WriteJson(new ImageManifest { Config = config, Layers = [] }, MediaTypes.ImageManifest);
            return layout.WriteJson(new ImageIndex { Manifests = [manifest with { Platform = new Platform { Architecture = "amd64" } }] }, MediaTypes.ImageIndex).Digest;
        }
        ws.WriteBuildJson([("inference-cpu", Index("65532:65532")), ("inference-cuda", Index(null)), ("inference-cuda-debian", Index("65532:65532")), ("inference-neuron", Index("65532"))]);
        var e = Assert.Throws<HardenException>(() => new DeployRenderer().Render(ws.Options()));
        Assert.Contains("inference-cuda", e.Message);
        Assert.Contains("runs as root", e.Message);

        ws.WriteBuildJson([("inference-cpu", Index("65532:65532")), ("inference-cuda", Index("65532:65532")), ("inference-cuda-debian", Index("65532:65532")), ("inference-neuron", Index("65532"))]);
        var ok = new DeployRenderer().Render(ws.Options());
        Assert.Empty(ok.Warnings);
    }

    [Fact]
    public void Refuses_MissingSigningKey()
    {
        using var ws = new DeployWorkspace(withKey: false);
        var e = Assert.Throws<HardenException>(() => new DeployRenderer().RenderAndWrite(ws.Options()));
        Assert.Contains("cosign.pub", e.Message);
        Assert.Contains("not found", e.Message);
        Assert.False(Directory.Exists(Path.Combine(ws.Artifacts, "deploy")));
    }

    [Fact]
    public void PinnedImages_PushedJsonWins_ThroughOneReferenceGrammar_AndAStalePushIsRefused()
    {
        using var ws = new DeployWorkspace();
        var cpu = DeployWorkspace.DigestOf("inference-cpu");
        File.WriteAllText(Path.Combine(ws.Artifacts, "pushed.json"),
            """{"registry":"registry.example:5000/ml","images":{"inference-cpu":{"repository":"ml/inference-cpu","index":"CPU","tags":["0.1.0"]}}}""".Replace("CPU", cpu));
        var pins = new PinnedImages(ws.Artifacts, null);
        Assert.Equal($"registry.example:5000/ml/inference-cpu@{cpu}", pins.Resolve("inference-cpu").Reference);

        // The entry's own reference (one grammar: Registry.ImageReference) wins over --registry.
        File.WriteAllText(Path.Combine(ws.Artifacts, "pushed.json"),
            """{"registry":"ghcr.io/acme","images":{"inference-cpu":{"repository":"acme/inference-cpu","index":"CPU","reference":"docker://ghcr.io/acme/inference-cpu@CPU"}}}""".Replace("CPU", cpu));
        Assert.Equal($"ghcr.io/acme/inference-cpu@{cpu}", new PinnedImages(ws.Artifacts, DeployWorkspace.Registry).Resolve("inference-cpu").Reference);

        // A reference that disagrees with the recorded index is refused, never silently preferred.
        var other = DeployWorkspace.DigestOf("something else");
        File.WriteAllText(Path.Combine(ws.Artifacts, "pushed.json"),
            """{"registry":"ghcr.io/acme","images":{"inference-cpu":{"repository":"acme/inference-cpu","index":"CPU","reference":"ghcr.io/acme/inference-cpu@OTHER"}}}""".Replace("CPU", cpu).Replace("OTHER", other));
        Assert.Contains("records reference", Assert.Throws<HardenException>(() => new PinnedImages(ws.Artifacts, null)).Message);

        File.WriteAllText(Path.Combine(ws.Artifacts, "pushed.json"),
            """{"registry":"ghcr.io/acme","images":{"inference-cpu":{"repository":"acme/inference-cpu","index":"OTHER"}}}""".Replace("CPU", cpu).Replace("OTHER", other));
        var e = Assert.Throws<HardenException>(() => new PinnedImages(ws.Artifacts, null).Resolve("inference-cpu"));
        Assert.Contains("harden push", e.Message);

        // An OCI layout directory is not something a cluster can pull from: build.json + --registry is used instead.
        File.WriteAllText(Path.Combine(ws.Artifacts, "pushed.json"),
            """{"registry":"oci:artifacts/registry","images":{"inference-cpu":{"repository":"inference-cpu","index":"CPU"}}}""".Replace("CPU", cpu));
        Assert.Equal($"{DeployWorkspace.Registry}/inference-cpu@{cpu}", new PinnedImages(ws.Artifacts, DeployWorkspace.Registry).Resolve("inference-cpu").Reference);
    }

    [Fact]
    public void StaleOutputFiles_AreRemoved()
    {
        using var ws = new DeployWorkspace();
        new DeployRenderer().RenderAndWrite(ws.Options());
        var hpa = Path.Combine(ws.Artifacts, "deploy", "inference-cpu", "08-horizontalpodautoscaler.yaml");
        Assert.True(File.Exists(hpa));
        var file = Path.Combine(ws.DeployDir, "inference-cpu.yaml");
        var text = File.ReadAllText(file);
        File.WriteAllText(file, text.Replace("hpa:\n  min: 2\n  max: 8\n  cpuTarget: 70\n", "", StringComparison.Ordinal));
        new DeployRenderer().RenderAndWrite(ws.Options());
        Assert.False(File.Exists(hpa));
    }

    [Fact]
    public void PodToContainerSpec_TranslatesTheRenderedRestrictionsAndProbes()
    {
        using var ws = new DeployWorkspace();
        var cpu = new DeployRenderer().Render(ws.Options()).Deployments.Single(d => d.Description.Name == "inference-cpu");
        var run = PodToContainerSpec.Translate(cpu.Deployment, "hardenimage/inference-cpu:local");
        Assert.Equal("hardenimage/inference-cpu:local", run.Spec.Image);
        Assert.Equal("65532:65532", run.Spec.User);
        Assert.True(run.Spec.ReadOnlyRootFilesystem);
        Assert.True(run.Spec.DropAllCapabilities);
        Assert.True(run.Spec.NoNewPrivileges);
        Assert.Equal(4L << 30, run.Spec.MemoryBytes);
        Assert.Equal("rw,nosuid,nodev,size=268435456", run.Spec.Tmpfs["/tmp"]);
        Assert.Equal("/models", run.Spec.Env["MODEL_DIR"]);
        Assert.Equal("8080", run.Spec.Env["PORT"]);
        Assert.Empty(run.PersistentVolumeClaims);
        Assert.Equal([$"{ws.ModelRepository}@{ws.Packed.Manifest.Digest}:/models"], run.ImageVolumes);
        Assert.Contains(new LocalProbe("liveness", "/healthz", 8080), run.Probes);
        Assert.Contains(new LocalProbe("readiness", "/readyz", 8080), run.Probes);
    }

    [Fact]
    public void Stride_EveryThreatMapsToARenderedControl_AndTheThreatModelShowsIt()
    {
        using var ws = new DeployWorkspace();
        var result = new DeployRenderer().Render(ws.Options());
        foreach (var threat in Enum.GetValues<Stride>())
            Assert.Contains(ClusterThreatModel.Controls, c => c.Threat == threat);
        foreach (var control in ClusterThreatModel.Controls)
        {
            var objects = control.File.StartsWith("<name>/", StringComparison.Ordinal)
                ? result.Deployments.Where(d => d.Description.NodePool != null || control.Kind != "EC2NodeClass")
                    .Select(d => d.Objects.Single(o => o.FileName == control.File["<name>/".Length..]))
                : [result.AdmissionPolicies.Single(o => $"{AdmissionPolicyRenderer.OutputDirectoryName}/{o.FileName}" == control.File)];
            foreach (var o in objects)
            {
                Assert.Equal(control.Kind, o.Kind);
                Assert.True(PathExists(o.Document, control.EvidencePath), $"{control.Threat}: {control.EvidencePath} missing in {o.FileName}");
            }
        }
        var doc = File.ReadAllText(Path.Combine(RepoRoot.Find(), "docs", "threat-model.md"));
        Assert.Contains("## Cluster", doc);
        foreach (var control in ClusterThreatModel.Controls)
            Assert.Contains(control.Control, doc);
    }

    private static bool PathExists(JsonNode? node, string path)
    {
        var parts = path.Replace("\\.", "\u0001", StringComparison.Ordinal).Split('.').Select(p => p.Replace('\u0001', '.')).ToList();
        IEnumerable<JsonNode?> current = [node];
        foreach (var part in parts)
        {
            var name = part.EndsWith("[]", StringComparison.Ordinal) ? part[..^2] : part;
            current = current.Select(n => n is JsonObject o ? o[name] : null).Where(n => n != null);
            if (part.EndsWith("[]", StringComparison.Ordinal)) current = current.SelectMany(n => n as JsonArray ?? []);
        }
        return current.Any(n => n != null);
    }

    private static JsonObject Doc(RenderedDeployment d, string kind) => d.Objects.Single(o => o.Kind == kind).Document;

    private static SortedDictionary<string, byte[]> Files(DeployWorkspace ws)
    {
        var root = Path.Combine(ws.Artifacts, "deploy");
        return new SortedDictionary<string, byte[]>(
            Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(root, f), File.ReadAllBytes),
            StringComparer.Ordinal);
    }
}
