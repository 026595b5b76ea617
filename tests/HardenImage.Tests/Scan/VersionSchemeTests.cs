using HardenImage.Common;
using HardenImage.Scan;

namespace HardenImage.Tests.Scan;

public class VersionSchemeTests
{
    private static IReadOnlyList<string> PypaVersions() =>
        File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "TestData", "Scan", "pep440-versions.txt"))
            .Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();

    [Fact]
    public void Pep440_OrdersPypaPackagingVectors()
    {
        var versions = PypaVersions();
        Assert.Equal(92, versions.Count);
        var parsed = versions.Select(Pep440Version.Parse).ToList();
        for (int i = 0; i < parsed.Count; i++)
            for (int j = 0; j < parsed.Count; j++)
                Assert.True(Math.Sign(parsed[i].CompareTo(parsed[j])) == Math.Sign(i.CompareTo(j)),
                    $"{versions[i]} vs {versions[j]}: expected {Math.Sign(i.CompareTo(j))}, got {parsed[i].CompareTo(parsed[j])}");
    }

    [Theory]
    [InlineData("1.0dev", "1.0.dev0")]
    [InlineData("1.0-DEV1", "1.0.dev1")]
    [InlineData("1.0.ALPHA1", "1.0a1")]
    [InlineData("1.0-beta", "1.0b0")]
    [InlineData("1.0c", "1.0rc0")]
    [InlineData("1.0.RC1", "1.0rc1")]
    [InlineData("1.0rev", "1.0.post0")]
    [InlineData("1.0-5", "1.0.post5")]
    [InlineData("1.0-r5", "1.0.post5")]
    [InlineData("1.0+AbC", "1.0+abc")]
    [InlineData("1.01", "1.1")]
    [InlineData("1.0c056", "1.0rc56")]
    [InlineData("00!1.2", "1.2")]
    [InlineData("0100!0.0", "100!0.0")]
    [InlineData("v1.0", "1.0")]
    [InlineData("   v1.0\t\n", "1.0")]
    public void Pep440_NormalisesAlternateSpellings(string input, string normalised) =>
        Assert.Equal(normalised, Pep440Version.Parse(input).ToString());

    [Theory]
    [InlineData("french toast")]
    [InlineData("1.0+a+")]
    [InlineData("1.0++")]
    [InlineData("1.0+_foobar")]
    [InlineData("1.0+1+1")]
    [InlineData("1. 0")]
    [InlineData("1.0a 1")]
    [InlineData("٠١٢.٣٤٥.٦٧٨٩")]
    [InlineData("1..0")]
    [InlineData("1.0.")]
    [InlineData("1.0+\u0130")]
    public void Pep440_RejectsInvalid(string input) => Assert.False(Pep440Version.TryParse(input, out _));

    [Fact]
    public void Pep440_DevSortsBeforePreAndReleaseBeforePost()
    {
        Assert.True(Pep440Version.Compare("1.0.dev0", "1.0a0") < 0);
        Assert.True(Pep440Version.Compare("1.0a0", "1.0") < 0);
        Assert.True(Pep440Version.Compare("1.0", "1.0.post1") < 0);
        Assert.Equal(0, Pep440Version.Compare("1.0", "1.0.0"));
        Assert.Equal(0, Pep440Version.Compare("1.0rc1", "1.0c1"));
        Assert.Equal("jinja2", Pep440Version.NormalizeName("Jinja2"));
        Assert.Equal("python-multipart", Pep440Version.NormalizeName("Python_Multipart"));
        Assert.Equal("zope-interface", Pep440Version.NormalizeName("zope..Interface"));
    }

    [Theory]
    [InlineData("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8)]
    [InlineData("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0)]
    [InlineData("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8)]
    [InlineData("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5)]
    [InlineData("CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H", 5.5)]
    [InlineData("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1)]
    [InlineData("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N", 6.8)]
    [InlineData("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0)]
    public void Cvss31_BaseScoreMatchesSpecificationExamples(string vector, double expected)
    {
        Assert.True(CvssV3.TryBaseScore(vector, out var score));
        Assert.Equal(expected, score, 1);
    }

    [Fact]
    public void Cvss_RejectsIncompleteVectors()
    {
        Assert.False(CvssV3.TryBaseScore("CVSS:3.1/AV:N/AC:L", out _));
        Assert.False(CvssV3.TryBaseScore("AV:N/AC:L/Au:N/C:P/I:P/A:P", out _));
        Assert.Equal(Severity.Critical, CvssV3.Rating(9.8));
        Assert.Equal(Severity.High, CvssV3.Rating(7.0));
        Assert.Equal(Severity.Medium, CvssV3.Rating(6.9));
        Assert.Equal(Severity.Low, CvssV3.Rating(0.1));
    }

    private static OsvRange Range(params (OsvEventKind, string)[] events) => new("ECOSYSTEM", events.Select(e => new OsvEvent(e.Item1, e.Item2)).ToList());

    [Fact]
    public void Osv_EvaluatesRangesAsTheSpecDoes()
    {
        var py = Pep440VersionScheme.Instance;
        var r = new[] { Range((OsvEventKind.Introduced, "0"), (OsvEventKind.Fixed, "2.3.2"), (OsvEventKind.Introduced, "2.5"), (OsvEventKind.Fixed, "2.5.2")) };
        Assert.Equal((true, "2.3.2"), OsvEvaluator.Evaluate("2.3.1", r, [], py));
        Assert.Equal((false, null), OsvEvaluator.Evaluate("2.3.2", r, [], py));
        Assert.Equal((false, null), OsvEvaluator.Evaluate("2.4.0", r, [], py));
        Assert.Equal((true, "2.5.2"), OsvEvaluator.Evaluate("2.5.1", r, [], py));
        Assert.Equal((false, null), OsvEvaluator.Evaluate("2.5.2", r, [], py));
        // Events out of order are sorted first.
        var unordered = new[] { Range((OsvEventKind.Fixed, "1.5"), (OsvEventKind.Introduced, "1.0")) };
        Assert.True(OsvEvaluator.Evaluate("1.2", unordered, [], py).Affected);
        Assert.False(OsvEvaluator.Evaluate("0.9", unordered, [], py).Affected);
        var last = new[] { Range((OsvEventKind.Introduced, "0"), (OsvEventKind.LastAffected, "2.1.214")) };
        Assert.Equal((true, null), OsvEvaluator.Evaluate("2.1.214", last, [], py));
        Assert.False(OsvEvaluator.Evaluate("2.1.215", last, [], py).Affected);
        var limit = new[] { Range((OsvEventKind.Introduced, "1.0"), (OsvEventKind.Limit, "2.0")) };
        Assert.True(OsvEvaluator.Evaluate("1.9", limit, [], py).Affected);
        Assert.False(OsvEvaluator.Evaluate("2.0", limit, [], py).Affected);
        // versions[] alone
        Assert.True(OsvEvaluator.Evaluate("0.4.1", [], ["0.4.1", "0.5.0"], py).Affected);
        Assert.False(OsvEvaluator.Evaluate("0.4.2", [], ["0.4.1", "0.5.0"], py).Affected);
        // Debian ordering for Debian ecosystems: ~ sorts before the release.
        var deb = new[] { Range((OsvEventKind.Introduced, "0"), (OsvEventKind.Fixed, "3.0.17-1~deb12u3")) };
        Assert.True(OsvEvaluator.Evaluate("3.0.17-1~deb12u2", deb, [], DebianVersionScheme.Instance).Affected);
        Assert.False(OsvEvaluator.Evaluate("3.0.17-1", deb, [], DebianVersionScheme.Instance).Affected);
    }
}
