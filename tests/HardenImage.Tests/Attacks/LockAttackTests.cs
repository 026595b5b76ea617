using System.Text.Json.Nodes;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Tests.Build;

namespace HardenImage.Tests.Attacks;

/// <summary>Hand-edited locks the issue did not list (a lock arrives through pull requests: it is input).</summary>
[Trait("Category", "Integration")]
public sealed class LockAttackTests
{
    [Fact]
    public async Task DuplicateEntry_SameNameAnotherVersion_IsRefusedOnLoad_AndLeavesTheLockAsItWas()
    {
        // Two entries of one package in one image: each may be proven on its own (an old version from the main
        // suite, a fixed one from -security), and the later would silently overwrite the other's files.
        using var w = new ImageSetWorkspace();
        await w.LockAsync();
        var root = JsonNode.Parse(File.ReadAllText(w.LockPath))!;
        var packages = root["images"]![0]!["architectures"]![0]!["packages"]!.AsArray();
        var copy = packages[0]!.DeepClone();
        var name = copy["name"]!.GetValue<string>();
        copy["version"] = "0.1-1";
        copy["sha256"] = new string('b', 64);
        packages.Add(copy);
        File.WriteAllText(w.LockPath, root.ToJsonString());
        var before = File.ReadAllBytes(w.LockPath);

        var e = Assert.Throws<HardenException>(() => LockFile.Load(w.LockPath));
        Assert.Contains($"$.images[0].architectures[0].packages: package '{name}' is listed more than once", e.Message);
        Assert.Contains("0.1-1", e.Message);
        Assert.Equal(before, File.ReadAllBytes(w.LockPath));
    }
}
