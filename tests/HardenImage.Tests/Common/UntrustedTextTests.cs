using HardenImage.Common;

namespace HardenImage.Tests.Common;

/// <summary>Hostile text inside an error message: one line, nothing that reorders or hides what a terminal shows.</summary>
public class UntrustedTextTests
{
    [Theory]
    [InlineData("plain 2.0", "plain 2.0")]
    [InlineData("a\nb", "a\\x0ab")]
    [InlineData("a\r\nb\tc\u0000", "a\\x0d\\x0ab\\x09c\\x00")]
    [InlineData("x\u0085y", "x\\x85y")]                 // NEL, a C1 line break
    [InlineData("x\u2028y\u2029z", "x\\u2028y\\u2029z")] // line and paragraph separators
    [InlineData("evil\u202Etxt.exe", "evil\\u202etxt.exe")] // right-to-left override
    [InlineData("zero\u200Bwidth", "zero\\u200bwidth")]
    [InlineData("ünïcödé ✓", "ünïcödé ✓")]
    public void Escape_LeavesPrintableText_AndEscapesWhatBreaksOrReordersALine(string input, string expected) =>
        Assert.Equal(expected, UntrustedText.Escape(input));

    [Fact]
    public void Escape_CutsLongText_AndSaysSo()
    {
        var escaped = UntrustedText.Escape(new string('a', 500), max: 10);
        Assert.Equal(new string('a', 10) + "…", escaped);
    }
}
