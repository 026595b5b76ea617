using System.Text.Json;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Deploy;
using HardenImage.Lock;
using HardenImage.Oci;
using HardenImage.Sbom;
using HardenImage.Tests.Infrastructure;
using Xunit.Abstractions;

namespace HardenImage.Tests.Smoke;

/// <summary>
/// The SBOM of the real inference-cpu image lists exactly the Python distributions Python itself sees (issue 10 §7):
/// importlib.metadata is run inside the image under the smoke restrictions (read-only root, uid 65532, no network)
/// and compared both ways with the SBOM's sys.path components and with the dpkg package records. Uses the image
/// `dotnet cake` wrote to artifacts/ (or $HARDEN_ARTIFACTS); when it is missing the test FAILS saying how to build it.
/// </summary>
[Trait("Category", "Integration")]
public sealed class InferenceCpuPythonInventoryTests(ITestOutputHelper output)
{
    private const string Image = "inference-cpu";
    private const string ImportlibScript =
        "import importlib.metadata as m, json; print(json.dumps(sorted((d.metadata['Name'], d.version) for d in m.distributions())))";

    [Fact]
    public async Task InferenceCpuSbom_EqualsImportlibMetadata_AndEveryDistributionHasItsDebianPackage()
    {
        var artifacts = Environment.GetEnvironmentVariable("HARDEN_ARTIFACTS") is { Length: > 0 } a ? Path.GetFullPath(a) : Path.Combine(RepoRoot.Find(), "artifacts");
        var arch = SmokeRunner.HostArchitecture();
        var build = BuildManifest.TryLoad(Path.Combine(artifacts, "build.json"));
        if (build?.Image(Image) is not { } image || image.Architectures.FirstOrDefault(x => x.Architecture == arch) is not { } built)
        {
            Assert.Fail($"{artifacts}/build.json has no {Image} image for {arch}. Build it first: 'dotnet cake' (or harden lock/fetch/build --image {Image}), "
                        + "or point HARDEN_ARTIFACTS at a directory that has it.");
            return;
        }
        var layout = OciLayout.Open(Path.Combine(artifacts, "oci"));
        var imagesDir = Path.Combine(RepoRoot.Find(), "images");
        var inventories = new BuiltImageInventories(layout, build, LockFile.Load(Path.Combine(imagesDir, "images.lock.json")), ImageSet.Load(imagesDir).Sources);
        var inv = inventories.Read(image, built);

        // What the SBOM document says is on sys.path (normalised name, version), plus the raw names from the inventory.
        using var sbom = JsonDocument.Parse(CycloneDxWriter.Write(inv));
        var sbomSysPath = sbom.RootElement.GetProperty("components").EnumerateArray()
            .Where(c => c.GetProperty("purl").GetString()!.StartsWith("pkg:pypi/", StringComparison.Ordinal)
                        && c.GetProperty("properties").EnumerateArray().Any(p => p.GetProperty("name").GetString() == "hardenimage:python:location"
                                                                                   && p.GetProperty("value").GetString() == PythonLocations.SysPath))
            .Select(c => (c.GetProperty("name").GetString()!, c.GetProperty("version").GetString()!)).ToHashSet();
        var inventoryRaw = inv.PythonDistributions.Where(d => d.Location == PythonLocations.SysPath).Select(d => (d.Name, d.Version)).ToHashSet();

        // What Python sees, inside the image as it runs in a pod.
        using var engine = new DockerEngine(RequiredService.DockerHost());
        var tag = $"hardenimage-test/{Image}-pyinventory:{built.Manifest[7..19]}";
        await engine.LoadAsync(layout, Image, arch, tag);
        ContainerRunResult run;
        try
        {
            run = await engine.RunAsync(new ContainerRunSpec { Image = tag, Entrypoint = ["/usr/bin/python3"], Cmd = ["-c", ImportlibScript], Timeout = TimeSpan.FromMinutes(3) });
        }
        finally { await engine.RemoveImageAsync(tag); }
        Assert.False(run.TimedOut, "importlib.metadata run timed out");
        Assert.True(run.ExitCode == 0, $"python3 exited {run.ExitCode}: {run.StdErr}");
        var seen = JsonSerializer.Deserialize<List<List<string>>>(run.StdOut.Trim())!.Select(x => (x[0], x[1])).ToHashSet();
        var seenNormalized = seen.Select(x => (Pep440Version.NormalizeName(x.Item1), x.Item2)).ToHashSet();
        output.WriteLine($"importlib.metadata: {seen.Count} distributions; SBOM: {sbomSysPath.Count} on sys.path, {inv.PythonDistributions.Count} in all");

        Assert.Empty(seenNormalized.Except(sbomSysPath));   // every distribution Python sees is in the SBOM
        Assert.Empty(sbomSysPath.Except(seenNormalized));   // and the SBOM invents none on sys.path
        Assert.Empty(seen.Except(inventoryRaw));            // with the same (unnormalised) Name header
        Assert.Empty(inventoryRaw.Except(seen));
        // Debian ships these as egg-info: the gap this test exists for. (setuptools, sympy, mpmath, certifi and
        // markupsafe were others; the image no longer carries them — provides: and the trace's evidence.)
        foreach (var name in new[] { "torch", "uvloop", "h11", "wsproto", "email-validator" })
            Assert.Contains(sbomSysPath, x => x.Item1 == name);

        // The package records: every distribution belongs to a Debian package whose status.d record is in the image.
        var recorded = inv.Packages.Where(p => p.Evidence.Contains("status.d", StringComparison.Ordinal)).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var d in inv.PythonDistributions)
            Assert.True(d.DebianPackage != null && recorded.Contains(d.DebianPackage),
                $"{d.MetadataPath}: owned by {d.DebianPackage ?? "no package"} (status.d records: {recorded.Count})");
    }
}
