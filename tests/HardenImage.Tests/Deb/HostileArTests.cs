using HardenImage.Common;
using HardenImage.Deb;

namespace HardenImage.Tests.Deb;

/// <summary>Found by the fuzzer: an ar member name with a newline broke the one-line error; such names are refused.</summary>
public sealed class HostileArTests
{
    [Theory]
    [InlineData("debian-\nbinary")]
    [InlineData("data\u001b[2J.tar")]
    public void ArMemberName_WithControlCharacters_IsRefused(string name)
    {
        var deb = CraftedDeb.Ar((name, "2.0\n"u8.ToArray()));
        var e = Assert.Throws<HardenException>(() => DebPackageReader.Open(new MemoryStream(deb), "evil.deb"));
        Assert.StartsWith("evil.deb: corrupt ar member header: the name '", e.Message);
        Assert.Contains("has control characters", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.DoesNotContain('\u001b', e.Message);
    }
}
