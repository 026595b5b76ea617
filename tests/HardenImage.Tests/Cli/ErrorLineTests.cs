using HardenImage.Cli;
using HardenImage.Common;

namespace HardenImage.Tests.Cli;

/// <summary>The one error line the CLI prints: a hostile value quoted in a message cannot add lines or reorder text.</summary>
public class ErrorLineTests
{
    [Fact]
    public void HostileTextInAMessage_IsPrintedOnOneLine_WithBreaksAndBidiOverridesEscapedOrFlattened()
    {
        var e = new HardenException("x.deb: unsupported field 'a\nok: image verified\u202Egnp.exe\u0007'", 2);
        using var stderr = new StringWriter();
        var code = CliHost.Report(e, [], [], stderr, TimeProvider.System);
        var printed = stderr.ToString();
        Assert.Equal(2, code);
        Assert.Equal(1, printed.Count(c => c == '\n'));
        Assert.Equal("error: x.deb: unsupported field 'a ok: image verified\\u202egnp.exe\\x07'" + Environment.NewLine, printed);
    }
}
