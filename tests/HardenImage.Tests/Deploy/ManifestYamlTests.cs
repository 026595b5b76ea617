using System.Text.Json.Nodes;
using HardenImage.Deploy;
using k8s;
using k8s.Models;

namespace HardenImage.Tests.Deploy;

public sealed class ManifestYamlTests
{
    [Theory]
    [InlineData("8080")]
    [InlineData("true")]
    [InlineData("yes")]
    [InlineData("off")]
    [InlineData("null")]
    [InlineData("~")]
    [InlineData("")]
    [InlineData("1e3")]
    [InlineData("0x1F")]
    [InlineData(".inf")]
    [InlineData("-")]
    [InlineData("a: b")]
    [InlineData("#comment")]
    [InlineData("{{ bomFormat }}")]
    [InlineData("*@sha256:*")]
    [InlineData(" leading space")]
    [InlineData("line1\nline2\n")]
    [InlineData("tab\tinside")]
    public void StringsThatLookLikeOtherTypes_StayStrings(string text)
    {
        var doc = new JsonObject { ["value"] = text, ["n"] = 8080, ["b"] = true };
        var back = ManifestYaml.Read(ManifestYaml.Write(doc))!;
        Assert.Equal(text, back["value"]!.GetValue<string>());
        Assert.Equal(8080, back["n"]!.GetValue<long>());
        Assert.True(back["b"]!.GetValue<bool>());
    }

    [Fact]
    public void WrittenDeployment_ReadsBackWithKubernetesClient_AndTranslatesTheSame()
    {
        using var ws = new DeployWorkspace();
        var cpu = new DeployRenderer().Render(ws.Options()).Deployments.Single(d => d.Description.Name == "inference-cpu");
        var yaml = cpu.Objects.Single(o => o.Kind == "Deployment").Yaml;
        var fromFile = KubernetesYaml.Deserialize<V1Deployment>(yaml);
        Assert.Equal(cpu.Deployment.Spec.Template.Spec.Containers[0].Image, fromFile.Spec.Template.Spec.Containers[0].Image);
        var a = PodToContainerSpec.Translate(cpu.Deployment, "x:local");
        var b = PodToContainerSpec.Translate(fromFile, "x:local");
        Assert.Equal(a.Probes, b.Probes);
        Assert.Equal(a.Spec.User, b.Spec.User);
        Assert.Equal(a.Spec.MemoryBytes, b.Spec.MemoryBytes);
        Assert.Equal(a.Spec.Tmpfs, b.Spec.Tmpfs);
        Assert.Equal(a.Spec.Env, b.Spec.Env);
    }
}
