using HardenImage.Common;
using HardenImage.Tests.Build;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// A child image's payload that replaces its parent's package record (<c>var/lib/dpkg/status.d/&lt;pkg&gt;</c>)
/// would make every scanner that reads the image (ECR/Inspector, trivy, grype) see a patched version that is not there.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PayloadAttackTests
{
    [Fact]
    public async Task PayloadSpoofingAParentsPackageRecord_IsRefused_AndLeavesThePreviousBuildIntact()
    {
        using var w = new ImageSetWorkspace();
        await w.LockAsync();
        var clean = await w.BuildAsync();
        var buildJson = Path.Combine(w.Artifacts, "build.json");
        var before = File.ReadAllBytes(buildJson);

        var spoof = Path.Combine(w.ImagesDir, "payload", "record");
        File.WriteAllText(spoof, "Package: libfake1\nVersion: 99.0-1\nArchitecture: amd64\nStatus: install ok installed\n");
        w.WriteImage("tool", "name: tool\nfrom: base\npackages: [fake-tool]\nfiles:\n  - source: payload/record\n    target: /var/lib/dpkg/status.d/libfake1\n");
        await w.LockAsync();

        var e = await Assert.ThrowsAsync<HardenException>(() => w.BuildAsync());
        Assert.Contains("tool.yaml:5: files: target /var/lib/dpkg/status.d/libfake1 writes /var/lib/dpkg/status.d/libfake1: package records are written by the build", e.Message);
        Assert.Equal(before, File.ReadAllBytes(buildJson));
        Assert.NotNull(clean.Manifest.Image("tool"));
    }
}
