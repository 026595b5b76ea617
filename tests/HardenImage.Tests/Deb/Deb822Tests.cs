using HardenImage.Deb;

namespace HardenImage.Tests.Deb;

public class Deb822Tests
{
    [Fact]
    public void Read_ContinuationLinesCommentsAndBlankSeparators()
    {
        const string text = "# a comment before\nPackage: a\nDescription: short\n more text\n .\n\tlast\nVersion:  1.0 \n \t \n" +
                            "Package: b\n# comment inside\nDepends: x,\n y\n\n\n";
        var ps = Deb822.Parse(text);
        Assert.Equal(2, ps.Count);
        Assert.Equal("short\n more text\n .\n\tlast", ps[0]["Description"]);
        Assert.Equal("1.0", ps[0]["version"]); // names are case-insensitive, values trimmed
        Assert.Equal(2, ps[0].Line);
        Assert.Equal("x,\n y", ps[1]["Depends"]);
        Assert.Null(ps[1]["Description"]);
        Assert.Equal("Package: a\nDescription: short\n more text\n .\n\tlast\nVersion: 1.0\n", ps[0].ToText());
    }

    [Fact]
    public void Read_CrlfLastParagraphWithoutNewlineAndEmptyValues()
    {
        var ps = Deb822.Parse("A: 1\r\nB:\r\n line\r\n\r\nC: 3");
        Assert.Equal("1", ps[0]["A"]);
        Assert.Equal("\n line", ps[0]["B"]);
        Assert.Equal("3", ps[1]["C"]);
    }

    [Fact]
    public void Read_LinesLongerThanTheBuffer()
    {
        var longValue = new string('x', 200_000);
        var ps = Deb822.Parse($"A: {longValue}\n {longValue}\nB: 2\n");
        Assert.Equal(longValue + "\n " + longValue, ps[0]["A"]);
        Assert.Equal("2", ps[0]["B"]);
    }

    [Theory]
    [InlineData(" continuation first\n", "continuation line without a field")]
    [InlineData("Package: a\nno colon here\n", "line 2: expected 'Field: value'")]
    [InlineData(": empty name\n", "expected 'Field: value'")]
    public void Read_RejectsMalformedInput(string text, string message) =>
        Assert.Contains(message, Assert.Throws<FormatException>(() => Deb822.Parse(text)).Message);

    [Fact]
    public void Read_IsStreaming()
    {
        // The first paragraph is available before the reader reaches the malformed tail.
        using var e = Deb822.Read(new StringReader("A: 1\n\n bad continuation\n")).GetEnumerator();
        Assert.True(e.MoveNext());
        Assert.Equal("1", e.Current["A"]);
        Assert.Throws<FormatException>(() => e.MoveNext());
    }
}
