using System.Formats.Tar;
using System.IO.Compression;
using System.Text.RegularExpressions;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Deploy;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;
using Xunit.Abstractions;

namespace HardenImage.Tests.Build;

/// <summary>
/// The real inference-cpu image (issue 14 item 1): its amd64 and arm64 layers carry the same .pyc bytes, and in the
/// Docker engine, with the pod's read-only root, `import torch, fastapi, uvicorn, numpy` loads byte-code and
/// compiles no module from source. Uses the image `dotnet cake` (or `harden build`) wrote to artifacts/ (or
/// $HARDEN_ARTIFACTS); when it is missing the test FAILS saying how to build it.
/// </summary>
// Integration: reads the main job's inference-cpu image from artifacts/.
[Trait("Category", "Integration")]
public sealed class ByteCodeInferenceCpuTests(ITestOutputHelper output)
{
    private const string Image = "inference-cpu";

    private static (string Artifacts, BuiltImage Built) Artifacts()
    {
        var artifacts = Environment.GetEnvironmentVariable("HARDEN_ARTIFACTS") is { Length: > 0 } a ? Path.GetFullPath(a) : Path.Combine(RepoRoot.Find(), "artifacts");
        var build = BuildManifest.TryLoad(Path.Combine(artifacts, "build.json"));
        if (build?.Image(Image) is not { } image || image.Architectures.Count < 2)
            Assert.Fail($"{artifacts}/build.json has no {Image} image for amd64 and arm64. Build it first: 'dotnet cake' (or harden lock/fetch/build --image {Image}), "
                        + "or point HARDEN_ARTIFACTS at a directory that has it.");
        return (artifacts, build!.Image(Image)!);
    }

    private static Dictionary<string, byte[]> Files(string artifacts, BuiltImage image, string arch, Func<string, bool> wanted)
    {
        var layer = image.Architectures.Single(x => x.Architecture == arch).Layers[^1];
        using var blob = OciLayout.Open(Path.Combine(artifacts, "oci")).OpenBlob(layer.Digest);
        using var gz = new GZipStream(blob, CompressionMode.Decompress);
        using var tar = new TarReader(gz);
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        while (tar.GetNextEntry() is { } e)
        {
            var name = e.Name.TrimStart('.', '/');
            if (e.EntryType != TarEntryType.RegularFile || !wanted(name)) continue;
            using var ms = new MemoryStream();
            e.DataStream?.CopyTo(ms);
            files[name] = ms.ToArray();
        }
        return files;
    }

    [Fact]
    public void InferenceCpu_PycIsTheSameInAmd64AndArm64_WhereverTheSourceIs()
    {
        var (artifacts, image) = Artifacts();
        static bool Wanted(string n) => n.EndsWith(".py", StringComparison.Ordinal) || n.EndsWith(".pyc", StringComparison.Ordinal);
        var amd64 = Files(artifacts, image, "amd64", Wanted);
        var arm64 = Files(artifacts, image, "arm64", Wanted);
        var pycs = amd64.Keys.Where(k => k.EndsWith(".pyc", StringComparison.Ordinal)).ToList();
        // 2 674 after slimming (sympy, networkx … are excluded); torch, numpy and fastapi must be among them.
        Assert.True(pycs.Count > 2000, $"only {pycs.Count} .pyc in the amd64 layer");
        foreach (var package in new[] { "torch", "numpy", "fastapi" })
            Assert.Contains($"usr/lib/python3/dist-packages/{package}/__pycache__/__init__.cpython-313.pyc", pycs);
        int same = 0, ownSource = 0;
        foreach (var pyc in pycs)
        {
            var source = Regex.Replace(pyc, @"__pycache__/([^/]+)\.cpython-3\d+\.pyc$", "$1.py");
            Assert.True(amd64.ContainsKey(source), $"{pyc} has no source {source}");
            Assert.True(arm64.ContainsKey(pyc), $"arm64 lacks {pyc}");
            if (arm64.TryGetValue(source, out var armSource) && armSource.AsSpan().SequenceEqual(amd64[source]))
            {
                Assert.True(amd64[pyc].AsSpan().SequenceEqual(arm64[pyc]), $"{pyc}: same source, different byte-code in amd64 and arm64");
                same++;
            }
            else ownSource++; // e.g. numpy's __config__.py records its architecture: its byte-code differs with it
        }
        output.WriteLine($"{pycs.Count} .pyc: {same} byte-identical across architectures, {ownSource} with an architecture-specific source");
        Assert.True(ownSource < 20, $"{ownSource} sources differ between architectures");
    }

    [Fact]
    public async Task InferenceCpu_OnAReadOnlyRoot_ImportsByteCode_AndCompilesNothingFromSource()
    {
        var (artifacts, image) = Artifacts();
        var arch = SmokeRunner.HostArchitecture();
        using var engine = new DockerEngine(RequiredService.DockerHost());
        var tag = $"hardenimage-test/{Image}-bytecode:{image.Architectures.Single(a => a.Architecture == arch).Manifest[7..19]}";
        await engine.LoadAsync(OciLayout.Open(Path.Combine(artifacts, "oci")), Image, arch, tag);
        ContainerRunResult run;
        try
        {
            run = await engine.RunAsync(new ContainerRunSpec
            {
                Image = tag, Entrypoint = ["/usr/bin/python3"], Cmd = ["-v", "-c", "import torch, fastapi, uvicorn, numpy; print('imported')"],
                Timeout = TimeSpan.FromMinutes(3), MemoryBytes = 2L << 30,
            });
        }
        finally { await engine.RemoveImageAsync(tag); }
        Assert.False(run.TimedOut, "import timed out");
        Assert.True(run.ExitCode == 0, $"python3 exited {run.ExitCode}: {run.StdErr[^Math.Min(3000, run.StdErr.Length)..]}");
        Assert.Contains("imported", run.StdOut);
        // -v says "code object from '<…>.pyc'" for byte-code and "code object from <…>.py" when it compiles a source.
        var fromPyc = Regex.Matches(run.StdErr, @"^# code object from '[^']+\.pyc'$", RegexOptions.Multiline).Count;
        var compiled = Regex.Matches(run.StdErr, @"^# code object from (/[^'\s]+\.py)$", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToList();
        output.WriteLine($"{fromPyc} modules from byte-code, {compiled.Count} compiled from source");
        Assert.True(fromPyc > 1000, $"only {fromPyc} modules came from byte-code");
        Assert.Empty(compiled);
    }
}
