using System.Text.Json.Nodes;
using HardenImage.Deploy;

namespace HardenImage.Tests.Deploy;

/// <summary>
/// deploy/inference-cuda-debian.yaml (the CUDA image the default pipeline builds) renders onto a GPU node pool:
/// one nvidia.com/gpu per pod, the pool's nvidia.com/gpu:NoSchedule taint tolerated, g6/g5 (amd64) and g5g
/// (arm64) instances, and every object valid against Kubernetes 1.36 and Karpenter v1's CRDs.
/// </summary>
public sealed class GpuPoolDeployTests(SchemaFixture fixture) : IClassFixture<SchemaFixture>
{
    private static RenderedDeployment Render(DeployWorkspace ws) =>
        new DeployRenderer().Render(ws.Options()).Deployments.Single(d => d.Description.Name == "inference-cuda-debian");

    private static JsonObject Doc(RenderedDeployment d, string kind) => d.Objects.Single(o => o.Kind == kind).Document;

    [Fact]
    public void DebianCudaDeployment_AsksForOneGpu_AndToleratesOnlyTheGpuTaint()
    {
        using var ws = new DeployWorkspace();
        var d = Render(ws);
        var pod = d.Deployment.Spec.Template.Spec;
        var c = pod.Containers.Single();
        Assert.Equal("1", c.Resources.Limits["nvidia.com/gpu"].ToString());
        Assert.Equal("1", c.Resources.Requests["nvidia.com/gpu"].ToString());
        var toleration = Assert.Single(pod.Tolerations);
        Assert.Equal(("nvidia.com/gpu", "Exists", "NoSchedule"), (toleration.Key, toleration.OperatorProperty, toleration.Effect));
        Assert.Equal("inference-cuda-debian", pod.NodeSelector["karpenter.sh/nodepool"]);
        // Both architectures are built and pushed as one index: the pod is not pinned to one of them.
        Assert.False(pod.NodeSelector.ContainsKey("kubernetes.io/arch"));
        Assert.Contains("@sha256:", c.Image);
        Assert.Equal(65532, c.SecurityContext.RunAsUser ?? pod.SecurityContext.RunAsUser);
    }

    [Fact]
    public void DebianCudaNodePool_IsTaintedForGpus_WithAmd64AndArm64GpuFamilies()
    {
        using var ws = new DeployWorkspace();
        var pool = Doc(Render(ws), "NodePool");
        var spec = pool["spec"]!["template"]!["spec"]!;
        var taint = Assert.Single(spec["taints"]!.AsArray());
        Assert.Equal("nvidia.com/gpu", (string)taint!["key"]!);
        Assert.Equal("NoSchedule", (string)taint["effect"]!);
        string[] Values(string key) => spec["requirements"]!.AsArray().Single(r => (string)r!["key"]! == key)!["values"]!.AsArray().Select(v => (string)v!).ToArray();
        Assert.Equal(["g6", "g5", "g5g"], Values("karpenter.k8s.aws/instance-family"));
        Assert.Equal(["amd64", "arm64"], Values("kubernetes.io/arch"));
    }

    [Fact]
    public void DebianCudaDeployment_EveryObjectValidatesAgainstKubernetesAndKarpenterSchemas()
    {
        using var ws = new DeployWorkspace();
        var d = Render(ws);
        Assert.Contains(d.Objects, o => o.Kind == "NodePool");
        Assert.Contains(d.Objects, o => o.Kind == "EC2NodeClass");
        foreach (var o in d.Objects)
        {
            var problems = fixture.Schemas.Validate(o.Document);
            Assert.True(problems.Count == 0, $"{o.FileName}:\n{string.Join("\n", problems.Take(20))}");
        }
    }
}
