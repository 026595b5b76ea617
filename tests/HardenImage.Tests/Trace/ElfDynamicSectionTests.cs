using HardenImage.Tests.Infrastructure;
using HardenImage.Trace;

namespace HardenImage.Tests.Trace;

/// <summary>The ELF reader agrees with binutils' readelf on real objects, and refuses to read outside a file.</summary>
public class ElfDynamicSectionTests
{
    [Trait("Category", "Integration")]
    [Theory]
    [InlineData("/usr/bin/apt-get")]
    [InlineData("/usr/lib/x86_64-linux-gnu/libapt-pkg.so")]
    public void Needed_AndSoname_MatchReadelf(string path)
    {
        var readelf = RequiredService.Tool("readelf", "binutils");
        var candidates = Directory.GetFiles(Path.GetDirectoryName(path)!, Path.GetFileName(path) + "*");
        Assert.NotEmpty(candidates);
        var file = candidates.Order(StringComparer.Ordinal).First();
        var text = RequiredService.RunOk(readelf, ["-d", "-W", file]);
        string[] Values(string tag) => text.Split('\n').Where(l => l.Contains($"({tag})"))
            .Select(l => l[(l.IndexOf('[') + 1)..l.LastIndexOf(']')]).ToArray();

        var info = ElfDynamicSection.Read(file);

        Assert.NotNull(info);
        Assert.Equal(Values("NEEDED"), info!.Needed);
        Assert.Equal(Values("SONAME").FirstOrDefault(), info.Soname);
    }

    [Fact]
    public void NotElf_TruncatedOrPointingOutside_GivesNull()
    {
        using var dir = new TempDir("hi-elf");
        var text = dir.Combine("text");
        File.WriteAllText(text, "#!/usr/bin/python3\nprint(1)\n");
        Assert.Null(ElfDynamicSection.Read(text));

        var real = File.ReadAllBytes("/usr/bin/apt-get");
        var truncated = dir.Combine("truncated");
        File.WriteAllBytes(truncated, real[..200]); // program headers claimed beyond the end
        Assert.Null(ElfDynamicSection.Read(truncated));

        var bogus = (byte[])real.Clone();
        BitConverter.GetBytes(long.MaxValue / 2).CopyTo(bogus, 32); // e_phoff far outside the file
        var outside = dir.Combine("outside");
        File.WriteAllBytes(outside, bogus);
        Assert.Null(ElfDynamicSection.Read(outside));
    }
}
