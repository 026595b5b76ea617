using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Deploy;
using HardenImage.Scan;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Common;

/// <summary>
/// Issue 17: every YAML we read is bounded in size, depth and alias-expanded node count, and refuses control bytes
/// and non-scalar keys — each with one HardenException naming the file and line, never a stack overflow (which
/// would kill the process) or an unbounded expansion. Time is bounded through allocation (no wall clock).
/// </summary>
public sealed class YamlBombTests
{
    private const long AllocationBudget = 64L << 20;

    private static HardenException Refused(Action read, out long allocated)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<HardenException>(read);
        allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(2, e.ExitCode);
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Fact]
    public void OsvYamlAliasBomb_InDbDirectory_IsRefusedAtTheAlias_WithBoundedMemory()
    {
        using var dir = new TempDir("hi-yamlbomb");
        File.WriteAllText(dir.Combine("PYSEC-0000-1.yaml"), HostileYaml.BillionLaughsOsv());
        Assert.True(new FileInfo(dir.Combine("PYSEC-0000-1.yaml")).Length < 1100, "the bomb is about 1 KB");
        var cache = dir.Combine("..", Path.GetFileName(dir.Path) + "-cache");
        try
        {
            var e = Refused(() => new AdvisoryIndexStore(cache).LoadOrBuild(dir.Path), out var allocated);
            Assert.Contains("PYSEC-0000-1.yaml:", e.Message);
            Assert.Contains($"more than {InputLimits.AdvisoryYaml.MaxNodes} nodes once its aliases are expanded", e.Message);
            Assert.True(allocated < AllocationBudget, $"allocated {allocated >> 20} MiB");
            Assert.False(Directory.Exists(Path.Combine(cache, "advisory-index")) && Directory.EnumerateFiles(Path.Combine(cache, "advisory-index")).Any(),
                "no advisory index is written for refused data");
        }
        finally { if (Directory.Exists(cache)) Directory.Delete(cache, true); }
    }

    [Fact]
    public void ModestAliases_StillLoad_AndExpand()
    {
        var json = OsvReader.YamlToJson("id: X-1\nmodified: m\nbase: &b {ecosystem: PyPI, name: foo}\naffected: [{package: *b}, {package: *b}]\n", "a.yaml");
        Assert.Equal("foo", json.GetProperty("affected")[1].GetProperty("package").GetProperty("name").GetString());
    }

    public static TheoryData<string, int> DeepShapes() => new()
    {
        { "flow", 100_000 },
        { "block", 1_000 },
    };

    [Theory]
    [MemberData(nameof(DeepShapes))]
    public void DeepNesting_IsRefusedBeforeTheTreeIsBuilt_NotAStackOverflow(string shape, int depth)
    {
        using var dir = new TempDir("hi-yamldeep");
        var text = shape == "flow" ? HostileYaml.DeepFlow(depth) : HostileYaml.DeepBlock(depth);
        var image = dir.Combine("base.yaml");
        File.WriteAllText(image, text);
        var e = Refused(() => YamlFieldReader.ReadRoot(image, "docs/images.md"), out var allocated);
        Assert.StartsWith($"{image}:", e.Message);
        Assert.True(e.Message.Contains($"nested deeper than {InputLimits.DeclarativeYaml.MaxDepth} levels"), e.Message);
        Assert.True(allocated < AllocationBudget, $"allocated {allocated >> 20} MiB");

        var policy = Refused(() => VulnerabilityPolicy.Parse(text, "policies/vulnerabilities.yaml"), out _);
        Assert.Contains("policies/vulnerabilities.yaml:", policy.Message);
        Assert.Contains("nested deeper", policy.Message);

        var osv = Refused(() => OsvReader.YamlToJson(text, "deep.yaml"), out _);
        Assert.Contains("deep.yaml:", osv.Message);
    }

    [Theory]
    [InlineData("\u0001")]
    [InlineData("\u001b[31m")]
    [InlineData("\u007f")]
    [InlineData("\0")]
    public void ControlByte_IsRefused_WithItsLine(string control)
    {
        using var dir = new TempDir("hi-yamlctl");
        var file = dir.Combine("sources.yaml");
        File.WriteAllText(file, $"sources:\n  - name: debian{control}\n");
        var e = Refused(() => YamlFieldReader.ReadRoot(file, "docs/images.md"), out _);
        Assert.StartsWith($"{file}:2: control character U+{(int)control[0]:X4}", e.Message);
    }

    [Theory]
    [InlineData("? [a, b]\n: 1\n", "list")]
    [InlineData("? {a: 1}\n: 1\n", "mapping")]
    public void NonScalarKey_IsRefused_NotAnInvalidCast(string yaml, string kind)
    {
        using var dir = new TempDir("hi-yamlkey");
        var file = dir.Combine("web.yaml");
        File.WriteAllText(file, yaml);
        var root = YamlFieldReader.ReadRoot(file, "docs/deploy.md");
        var e = Refused(() => new YamlFieldReader(file).Fields(root, "name"), out _);
        Assert.Equal($"{file}:1: a mapping key must be a plain value, not a {kind}.", e.Message);

        var osv = Refused(() => OsvReader.YamlToJson("id: X\n" + yaml, "k.yaml"), out _);
        Assert.Contains("k.yaml:2: a mapping key must be a plain value", osv.Message);
        var policy = Refused(() => VulnerabilityPolicy.Parse(yaml, "p.yaml"), out _);
        Assert.Contains("p.yaml", policy.Message);
    }

    [Fact]
    public void DuplicateKey_IsRefused_WithTheFileNamed()
    {
        using var dir = new TempDir("hi-yamldup");
        var file = dir.Combine("web.yaml");
        File.WriteAllText(file, "name: a\nname: b\n");
        var e = Refused(() => YamlFieldReader.ReadRoot(file, "docs/deploy.md"), out _);
        Assert.StartsWith(file, e.Message);
    }

    [Fact]
    public void OversizedYaml_IsRefusedOnTheBytesRead()
    {
        using var dir = new TempDir("hi-yamlbig");
        var file = dir.Combine("base.yaml");
        using (var fs = File.Create(file)) fs.SetLength(InputLimits.DeclarativeYaml.MaxBytes + 1); // sparse: no disk used
        var e = Refused(() => YamlFieldReader.ReadRoot(file, "docs/images.md"), out var allocated);
        Assert.Contains("larger than 1 MiB", e.Message);
        Assert.True(allocated < 8L << 20, $"allocated {allocated >> 20} MiB before refusing");
    }

    [Fact]
    public void DeploymentDescription_WithAliasBomb_IsRefused()
    {
        using var dir = new TempDir("hi-yamldeploy");
        var file = dir.Combine("web.yaml");
        File.WriteAllText(file, HostileYaml.BillionLaughsOsv().Replace("id: PYSEC-0000-1\n", "name: web\n"));
        var e = Refused(() => DeploymentDescriptions.Load(file), out _);
        Assert.Contains($"{file}:", e.Message);
        Assert.Contains("aliases are expanded", e.Message);
    }

    [Fact]
    public void ImageSet_WithNonUtf8Bytes_IsRefused()
    {
        using var dir = new TempDir("hi-yamlutf");
        var file = dir.Combine("base.yaml");
        File.WriteAllBytes(file, [.. "packages: [a"u8, 0xC3, 0x28, .. "]\n"u8]);
        var e = Refused(() => YamlFieldReader.ReadRoot(file, "docs/images.md"), out _);
        Assert.Equal($"{file}: not UTF-8 text; YAML files must be UTF-8.", e.Message);
    }
}
