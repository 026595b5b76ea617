using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Deb;
using HardenImage.Lock;
using HardenImage.Oci;
using HardenImage.Python;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Python;

/// <summary>
/// The repository's own images/inference-llm.yaml and inference-llm-neuron.yaml: skipped by the default pipeline with
/// the reason (their indexes are unreachable here), and locked and installed against mirrored fixture wheels (same
/// names and pins; the fixture's tags are ours, standing in for the real wheels) on two loopback indexes.
/// </summary>
public sealed class InferenceLlmImageTests
{
    private static string CopyImages(TempDir dir)
    {
        var source = Path.Combine(RepoRoot.Find(), "images");
        var target = dir.Combine("images");
        foreach (var f in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(target, Path.GetRelativePath(source, f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
        return target;
    }

    [Fact]
    public void DefaultPipeline_SkipsTheLlmImages_SayingWhichIndexesAreUnreachable()
    {
        var set = ImageSet.Load(Path.Combine(RepoRoot.Find(), "images"));
        var buildable = Selection.Buildable(set, [], out var skipped);
        Assert.DoesNotContain("inference-llm", buildable);
        Assert.Contains(skipped, s => s.Image == "inference-llm" && s.Why.Contains("PyPI (pypi.org)", StringComparison.Ordinal));
        Assert.Contains(skipped, s => s.Image == "inference-llm-neuron" && s.Why.Contains("pip.repos.neuron.amazonaws.com", StringComparison.Ordinal));
        Assert.Equal(["inference-llm-neuron", "inference-llm"], set.Images.Values.Where(i => i.Python != null).Select(i => i.Name).OrderDescending());
    }

    [Fact]
    public async Task ShippedRequirements_WithoutHashes_AreRefusedLineByLine()
    {
        using var dir = new TempDir("hi-llm");
        var set = ImageSet.Load(CopyImages(dir));
        using var http = new HttpClient();
        var locker = new PythonLocker(new SimpleIndexClient(http), http, new WheelCache(dir.Combine("cache")));
        var e = await Assert.ThrowsAsync<HardenException>(() => locker.LockAsync(set, set.Images["inference-llm"], new Dictionary<string, (int, int)?>(), default));
        Assert.Contains("inference-llm.requirements.txt:", e.Message);
        Assert.Contains("transformers has no --hash=sha256", e.Message);
    }

    [Trait("Category", "Integration")]
    [Theory]
    [InlineData("inference-llm", "amd64")]
    [InlineData("inference-llm", "arm64")]
    [InlineData("inference-llm-neuron", "amd64")]
    public async Task LockAndInstall_AgainstMirroredWheels(string image, string arch)
    {
        using var dir = new TempDir("hi-llm");
        var images = CopyImages(dir);
        using var pypi = new PythonIndexServer();
        using var neuron = new PythonIndexServer();
        var wheels = new List<(PythonIndexServer Index, WheelBuilder Wheel)>
        {
            (pypi, new WheelBuilder("transformers", "4.51.3").File("transformers/__init__.py", "__version__ = '4.51.3'\n").ConsoleScript("transformers-cli", "transformers.commands.transformers_cli:main")),
            (pypi, new WheelBuilder("huggingface_hub", "0.30.2").File("huggingface_hub/__init__.py", "__version__ = '0.30.2'\n")),
        };
        foreach (var machine in new[] { "x86_64", "aarch64" })
        {
            wheels.Add((pypi, new WheelBuilder("tokenizers", "0.21.1", $"cp39-abi3-manylinux_2_17_{machine}.manylinux2014_{machine}").File("tokenizers/tokenizers.abi3.so", "ELF " + machine)));
            wheels.Add((pypi, new WheelBuilder("safetensors", "0.5.3", $"cp38-abi3-manylinux_2_17_{machine}.manylinux2014_{machine}").File("safetensors/_safetensors_rust.abi3.so", "ELF " + machine)));
        }
        wheels.Add((pypi, new WheelBuilder("torch", "2.8.0", "cp313-cp313-manylinux_2_28_x86_64").File("torch/__init__.py", "x\n")));
        wheels.Add((neuron, new WheelBuilder("torch_neuronx", "2.8.0.2.10.13553", "py3-none-any").File("torch_neuronx/__init__.py", "x\n")));
        wheels.Add((neuron, new WheelBuilder("neuronx_cc", "2.21.18209.0", "cp313-cp313-manylinux_2_28_x86_64").File("neuronxcc/__init__.py", "x\n")));
        foreach (var (index, wheel) in wheels) index.Add(wheel.FileName.Split('-')[0].Replace('_', '-'), wheel);

        // Hash the shipped pins with the mirrored wheels, as pip-compile --generate-hashes would against the real indexes.
        var reqFile = Path.Combine(images, "python", image + ".requirements.txt");
        var hashed = string.Join("", File.ReadAllLines(reqFile).Where(l => l.Contains("==", StringComparison.Ordinal) && !l.StartsWith('#')).Select(l =>
        {
            var name = l.Split("==")[0];
            var matching = wheels.Where(w => w.Wheel.FileName.StartsWith(name.Replace('-', '_') + "-", StringComparison.Ordinal)).Select(w => w.Wheel).ToArray();
            Assert.NotEmpty(matching);
            return PythonImageSet.Requirement(name, l.Split("==")[1], matching);
        }));
        File.WriteAllText(reqFile, hashed);
        var yaml = Path.Combine(images, image + ".yaml");
        File.WriteAllText(yaml, File.ReadAllText(yaml).Replace("https://pypi.org/simple/", pypi.SimpleUrl).Replace("https://pip.repos.neuron.amazonaws.com/", neuron.SimpleUrl));
        var set = ImageSet.Load(images);
        using var http = new HttpClient();
        var cache = dir.Combine("cache");
        var glibc = new Dictionary<string, (int, int)?> { ["amd64"] = (2, 41), ["arm64"] = (2, 41) };
        var report = await new PythonLocker(new SimpleIndexClient(http), http, new WheelCache(cache)).LockAsync(set, set.Images[image], glibc, default);
        Assert.True(report.Written);
        // Dependency confusion guard on the real definition: the Neuron packages came from AWS's index only.
        Assert.DoesNotContain(pypi.Requests, r => r.Contains("neuron", StringComparison.Ordinal));

        var tree = new FsTree();
        var installed = new WheelInstaller(new ContentStore(cache), new WheelCache(cache))
            .Install(set, set.Images[image], arch, (2, 41), tree, new PathSafety(), tree.Set);
        const string site = "usr/local/lib/python3.13/dist-packages";
        Assert.NotNull(tree.Get($"{site}/transformers/__init__.py"));
        Assert.NotNull(tree.Get("usr/local/bin/transformers-cli"));
        var machineName = arch == "amd64" ? "x86_64" : "aarch64";
        Assert.Equal($"ELF {machineName}", System.Text.Encoding.UTF8.GetString(new ContentStore(cache).ReadVerified(tree.Get($"{site}/tokenizers/tokenizers.abi3.so")!.ContentSha256!)));
        if (image == "inference-llm-neuron") Assert.Contains(installed, w => w.Name == "torch-neuronx");
    }
}
