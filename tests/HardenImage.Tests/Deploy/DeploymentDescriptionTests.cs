using HardenImage.Common;
using HardenImage.Deploy;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Deploy;

public sealed class DeploymentDescriptionTests
{
    [Fact]
    public void ShippedDescriptions_LoadWithTheirAccelerators()
    {
        var all = DeploymentDescriptions.LoadDirectory(Path.Combine(RepoRoot.Find(), "deploy"), ["inference-cpu", "inference-cuda", "inference-cuda-debian", "inference-neuron"]);
        Assert.Equal(["inference-cpu", "inference-cuda-debian", "inference-cuda", "inference-neuron"], all.Select(d => d.Name)); // by file name, ordinal
        Assert.Equal([AcceleratorKind.None, AcceleratorKind.Nvidia, AcceleratorKind.Nvidia, AcceleratorKind.Neuron], all.Select(d => d.Accelerator.Kind));
        Assert.All(all, d => Assert.NotNull(d.NodePool));
    }

    [Theory]
    [InlineData("replica: 3\n", "unknown field 'replica'", "did you mean replicas")]
    [InlineData("accelerator:\n  kind: tpu\n", "accelerator.kind: 'tpu'", "none, nvidia or neuron")]
    [InlineData("serviceAccount:\n  roleArn: admin\n", "not an IAM role ARN", "arn:aws:iam::")]
    [InlineData("resources:\n  requests: { cpu: lots, memory: 1Gi }\n  limits: { cpu: \"1\", memory: 1Gi }\n", "cpu: 'lots'", "quantity")]
    [InlineData("port: 80\n", "port: 80", "nonroot")]
    [InlineData("nodepool:\n  cluster: c\n  instanceFamilies: [g5]\n  amiAlias: ubuntu\n", "amiAlias", "al2023")]
    public void InvalidDescription_NamesFileLineAndFix(string extra, string what, string fix)
    {
        using var dir = new TempDir();
        var file = dir.Combine("svc.yaml");
        File.WriteAllText(file, "name: svc\nimage: inference-cpu\n" + extra);
        var e = Assert.Throws<HardenException>(() => DeploymentDescriptions.Load(file, ["inference-cpu"]));
        Assert.Contains(file + ":", e.Message);
        Assert.Contains(what, e.Message);
        Assert.Contains(fix, e.Message);
    }

    [Fact]
    public void UnknownImage_IsRefusedWithTheSetsNames()
    {
        using var dir = new TempDir();
        var file = dir.Combine("svc.yaml");
        File.WriteAllText(file, "name: svc\nimage: inference-cpuu\n");
        var e = Assert.Throws<HardenException>(() => DeploymentDescriptions.Load(file, ["inference-cpu", "base"]));
        Assert.Contains("svc.yaml:2", e.Message);
        Assert.Contains("did you mean inference-cpu", e.Message);
    }
}
