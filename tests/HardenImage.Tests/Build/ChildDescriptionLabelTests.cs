using HardenImage.Oci;

namespace HardenImage.Tests.Build;

/// <summary>Issue 11 §7: a child image carries its own description label, not its parent's.</summary>
[Trait("Category", "Integration")]
public sealed class ChildDescriptionLabelTests
{
    [Fact]
    public async Task ChildImage_HasItsOwnDescriptionLabel_ParentKeepsItsExplicitOne()
    {
        using var ws = new ImageSetWorkspace();
        var baseYaml = File.ReadAllText(Path.Combine(ws.ImagesDir, "base.yaml"));
        ws.WriteImage("base", baseYaml.TrimEnd() + "\ndescription: the fixture base\nlabels:\n  org.opencontainers.image.description: fixture distroless-style base\n");
        ws.WriteImage("tool", "name: tool\nfrom: base\ndescription: base plus fake-tool\npackages: [fake-tool]\n");
        await ws.LockAsync();
        var build = (await ws.BuildAsync()).Manifest;
        var layout = OciLayout.Open(Path.Combine(ws.Artifacts, "oci"));
        string Label(string image) => layout.ReadJson<ImageConfig>(build.Image(image)!.Architectures[0].Config).Config!.Labels!["org.opencontainers.image.description"];
        Assert.Equal("fixture distroless-style base", Label("base"));
        Assert.Equal("base plus fake-tool", Label("tool"));
    }
}
