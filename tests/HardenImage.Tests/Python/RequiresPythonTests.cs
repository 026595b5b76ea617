using HardenImage.Common;
using HardenImage.Python;

namespace HardenImage.Tests.Python;

/// <summary>
/// PEP 503 data-requires-python / PEP 691 requires-python (audit of issue 18): the index's word that a file does not
/// run on the image's interpreter. pip and uv skip such a file; the locker did not read it at all.
/// </summary>
[Trait("Category", "Integration")]
public sealed class RequiresPythonTests
{
    [Theory]
    [InlineData(">=3.8", true)]
    [InlineData(">=3.9,<3.14", true)]
    [InlineData(">=3.14", false)]
    [InlineData("<3.13", false)]
    [InlineData("!=3.13.*", false)]
    [InlineData("==3.13.*", true)]
    [InlineData(">=3.13.2", true)]   // some 3.13 patch satisfies it
    [InlineData("==3.13.5", true)]
    [InlineData("~=3.12", true)]     // >=3.12, ==3.*
    [InlineData("~=3.12.0", false)]  // >=3.12.0, ==3.12.*
    [InlineData(">=3.6, !=3.13.*, <4", false)]
    [InlineData("not a specifier", true)] // ignored, as pip ignores it
    public void RequiresPython_AgainstCPython313(string specifier, bool admitted) =>
        Assert.Equal(admitted, RequiresPython.Admits(specifier, "3.13"));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Lock_SkipsAWheelWhoseRequiresPythonExcludesTheImage_SayingSo(bool json)
    {
        using var ws = new PythonImageSet();
        ws.Public.Json = json;
        var w = new WheelBuilder("newonly", "1.0").File("newonly/__init__.py", "match x:\n    case _: pass\n");
        ws.Public.Add(new IndexedFile("newonly", w.FileName, w.Build(), RequiresPython: ">=3.14"));
        var set = ws.Write(PythonImageSet.Requirement("newonly", "1.0", w));
        var e = await Assert.ThrowsAsync<HardenException>(() => ws.LockAsync(set));
        Assert.Contains($"{w.FileName}: the index says it requires Python >=3.14, the image has CPython 3.13", e.Message);
        Assert.False(File.Exists(ws.PylockPath));
    }
}
