using HardenImage.Apt;

namespace HardenImage.Tests.Apt;

/// <summary>
/// A version that is not a Debian version must never be compared as if it were one (a malformed "newer" version
/// in a Packages index would otherwise win or lose the resolver's choice arbitrarily), and every comparison
/// operator must agree with dpkg's order. The dpkg vectors themselves are in <see cref="DebianVersionTests"/>.
/// </summary>
public sealed class DebianVersionRejectionTests
{
    [Theory]
    [InlineData(":1")]      // empty epoch
    [InlineData("a:1")]     // epoch not a number
    [InlineData("+1:1")]    // a sign is not a digit (NumberStyles.None)
    [InlineData(" -1:1")]   // nor a minus, even after trimming
    [InlineData("1 :1")]    // nor a blank inside the epoch
    [InlineData("99999999999999999999:1")] // epoch overflows
    [InlineData("-1")]      // empty upstream before the revision
    [InlineData("1:")]      // empty upstream after the epoch
    [InlineData("1:-1")]    // both
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(null)]
    public void TryParse_RefusesTextThatIsNotAVersion(string? text)
    {
        Assert.False(DebianVersion.TryParse(text, out var v));
        Assert.Null(v);
    }

    [Theory]
    [InlineData(":1")]
    [InlineData("a:1")]
    [InlineData("-1")]
    public void Parse_NamesTheRefusedText(string text)
    {
        var e = Assert.Throws<FormatException>(() => DebianVersion.Parse(text));
        Assert.Equal($"'{text}' is not a Debian version", e.Message);
    }

    [Fact]
    public void Compare_RefusesAnInvalidOperandOnEitherSide()
    {
        Assert.Throws<FormatException>(() => DebianVersion.Compare("a:1", "1"));
        Assert.Throws<FormatException>(() => DebianVersion.Compare("1", "-1"));
    }

    [Theory]
    [InlineData(" 1.0-2 ", 0L, "1.0", "2")]
    [InlineData("\t3:1.0\n", 3L, "1.0", "")]
    [InlineData("0:1", 0L, "1", "")]
    [InlineData("1.0-", 0L, "1.0", "")]   // the parser keeps an empty revision; dpkg would warn
    [InlineData("12:a-b-c", 12L, "a-b", "c")]
    public void TryParse_SplitsEpochUpstreamRevision(string text, long epoch, string upstream, string revision)
    {
        Assert.True(DebianVersion.TryParse(text, out var v));
        Assert.Equal((epoch, upstream, revision), (v!.Epoch, v.Upstream, v.Revision));
    }

    [Theory]
    [InlineData("1:2.3-4", "1:2.3-4")]
    [InlineData("0:2.3", "2.3")]     // epoch 0 is not written
    [InlineData("2.3-0", "2.3-0")]
    [InlineData("7:1", "7:1")]
    public void ToString_WritesTheCanonicalForm(string text, string expected) =>
        Assert.Equal(expected, DebianVersion.Parse(text).ToString());

    public static TheoryData<string, string, int> Ordered => new()
    {
        { "1.0", "1.1", -1 }, { "1.1", "1.0", 1 }, { "1.0", "1.00", 0 },
        { "1:1.0", "2:0.1", -1 }, { "2:0.1", "1:9.9", 1 }, { "1:1.0", "1:1.0-0", 0 },
        { "1.0-1", "1.0-2", -1 }, { "1.0-10", "1.0-9", 1 },
        { "1.0~rc1", "1.0", -1 }, { "1.0", "1.0+b1", -1 }, { "1.0a", "1.0b", -1 }, { "1.0Z", "1.0a", -1 },
        { "1.0+", "1.0.", -1 }, { "1.0~", "1.0~~", 1 }, { "1.01", "1.1", 0 }, { "1.10", "1.9", 1 },
        { "1.0-a", "1.0-a1", -1 }, { "1.0-a", "1.0-a0", 0 },
    };

    [Theory]
    [MemberData(nameof(Ordered))]
    public void EveryOperatorAgreesWithTheOrder(string a, string b, int sign)
    {
        var x = DebianVersion.Parse(a);
        var y = DebianVersion.Parse(b);
        Assert.Equal(sign, Math.Sign(x.CompareTo(y)));
        Assert.Equal(-sign, Math.Sign(y.CompareTo(x)));
        Assert.Equal(sign < 0, x < y);
        Assert.Equal(sign > 0, x > y);
        Assert.Equal(sign <= 0, x <= y);
        Assert.Equal(sign >= 0, x >= y);
        Assert.Equal(sign == 0, x.Equals(y));
        Assert.Equal(sign == 0, x.Equals((object)y));
        if (sign == 0) Assert.Equal(x.GetHashCode(), y.GetHashCode());
    }

    [Fact]
    public void Equality_WithNullAndOtherTypes()
    {
        var v = DebianVersion.Parse("1.0-1");
        Assert.Equal(1, v.CompareTo(null));
        Assert.False(v.Equals((DebianVersion?)null));
        Assert.False(v.Equals((object?)null));
        Assert.False(v.Equals((object)"1.0-1"));
        Assert.True(v.Equals((object)DebianVersion.Parse("0:1.0-1")));
    }

    [Fact]
    public void CompareTo_EpochDecidesBeforeUpstream()
    {
        Assert.Equal(-1, DebianVersion.Parse("1:9").CompareTo(DebianVersion.Parse("2:1")));
        Assert.Equal(1, DebianVersion.Parse("2:1").CompareTo(DebianVersion.Parse("1:9")));
        Assert.Equal(-1, DebianVersion.Parse("9").CompareTo(DebianVersion.Parse("1:1")));
    }
}
