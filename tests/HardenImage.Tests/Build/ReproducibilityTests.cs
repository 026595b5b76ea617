using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Build;

/// <summary>
/// Same lock ⇒ same digests: two builds in different directories, with different caches, umask, time zone and
/// clock (libfaketime moves the second one three years ahead), must produce byte-identical layouts.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ReproducibilityTests
{
    [Fact]
    public async Task Build_IsBitForBitReproducible_AcrossDirectoriesUmaskAndClock()
    {
        using var w = new ImageSetWorkspace();
        await w.LockAsync();
        var faketime = RequiredService.Tool("faketime", "faketime");
        var harden = Path.Combine(AppContext.BaseDirectory, "harden.dll");
        string Build(string name, string umask, string prefix, string tz)
        {
            var outDir = w.Combine(name, "artifacts");
            var cache = w.Combine(name, "cache");
            var script = $"umask {umask}; exec {prefix} dotnet '{harden}' build --images '{w.ImagesDir}' --out '{outDir}' --cache '{cache}'";
            RequiredService.RunOk("/bin/sh", ["-c", script], env: new Dictionary<string, string>
            {
                ["TZ"] = tz, ["FAKETIME_DONT_FAKE_MONOTONIC"] = "1", ["COLUMNS"] = "200", ["NO_COLOR"] = "1",
            });
            return outDir;
        }
        var a = Build("first", "022", "", "UTC");
        var b = Build("second", "077", $"'{faketime}' -f '+3y'", "Pacific/Kiritimati");

        var ma = BuildManifest.Load(Path.Combine(a, "build.json"));
        var mb = BuildManifest.Load(Path.Combine(b, "build.json"));
        Assert.Equal(ma.Epoch, mb.Epoch);
        Assert.Equal(ma.Images.Select(i => (i.Name, i.Index)), mb.Images.Select(i => (i.Name, i.Index)));
        Assert.Equal(
            ma.Images.SelectMany(i => i.Architectures.Select(x => (i.Name, x.Architecture, x.Manifest, x.Config, string.Join(",", x.Layers.Select(l => l.Digest))))),
            mb.Images.SelectMany(i => i.Architectures.Select(x => (i.Name, x.Architecture, x.Manifest, x.Config, string.Join(",", x.Layers.Select(l => l.Digest))))));
        Assert.Equal(File.ReadAllBytes(Path.Combine(a, "oci", "index.json")), File.ReadAllBytes(Path.Combine(b, "oci", "index.json")));
        var blobsA = Directory.GetFiles(Path.Combine(a, "oci", "blobs", "sha256")).Select(Path.GetFileName).Order().ToList();
        var blobsB = Directory.GetFiles(Path.Combine(b, "oci", "blobs", "sha256")).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(blobsA, blobsB);
        Assert.True(blobsA.Count >= 10);
    }
}
