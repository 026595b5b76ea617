using HardenImage.Apt;
using HardenImage.Common;

namespace HardenImage.Tests.Apt;

public class ReleaseFileTests
{
    private static ReleaseFile TrixieRelease()
    {
        var v = new InReleaseVerifier(new FixedClock(new DateTimeOffset(2026, 11, 26, 0, 0, 0, TimeSpan.Zero)))
            .Verify(File.ReadAllBytes(TestFiles.Path("trixie.InRelease")), OpenPgpKeyring.Load(TestFiles.Path("debian-archive-keyring.gpg")), "trixie");
        return ReleaseFile.Parse(v.ReleaseText, "trixie");
    }

    [Fact]
    public void Parse_RealTrixieRelease()
    {
        var r = TrixieRelease();
        Assert.Equal("Debian", r.Origin);
        Assert.Equal("stable", r.Suite);
        Assert.Equal("trixie", r.Codename);
        Assert.Equal(new DateTimeOffset(2026, 11, 21, 9, 15, 44, TimeSpan.Zero), r.Date);
        Assert.Null(r.ValidUntil);
        Assert.Contains("amd64", r.Architectures);
        Assert.Contains("arm64", r.Architectures);
        Assert.Equal(["main", "contrib", "non-free-firmware", "non-free"], r.Components);
        Assert.True(r.AcquireByHash);
        var xz = r.Sha256["main/binary-amd64/Packages.xz"];
        Assert.Equal("be3d7d96a040eda0505c1808cccc67f183bbc05dff0842c50f88e6c396557412", xz.Sha256);
        Assert.Equal(9679304, xz.Size);
    }

    [Theory]
    [InlineData("Sat, 21 Nov 2026 09:15:44 UTC", "2026-11-21T09:15:44Z")]
    [InlineData("Sat, 21 Nov 2026 09:15:44 GMT", "2026-11-21T09:15:44Z")]
    [InlineData("Sat, 21 Nov 2026 10:15:44 +0100", "2026-11-21T09:15:44Z")]
    [InlineData("1 Jan 2026 00:00:00 -0130", "2026-01-01T01:30:00Z")]
    public void ParseDate_Rfc2822Forms(string text, string expected) =>
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), ReleaseFile.ParseDate(text));

    [Theory]
    [InlineData("yesterday")]
    [InlineData("Sat, 21 Nov 2026 09:15:44 CEST")]
    [InlineData("Sat, 32 Nov 2026 09:15:44 UTC")]
    public void ParseDate_RejectsOtherForms(string text) => Assert.Null(ReleaseFile.ParseDate(text));

    private static ReleaseFile Sample(string extra = "") => ReleaseFile.Parse(
        "Suite: stable\nDate: Sat, 21 Nov 2026 09:15:44 UTC\n" + extra +
        "SHA256:\n 0000000000000000000000000000000000000000000000000000000000000000 0 main/binary-amd64/Packages\n", "src");

    [Fact]
    public void CheckFreshness_RejectsExpiredValidUntil_AndSaysHowToOverride()
    {
        var r = Sample("Valid-Until: Sat, 28 Nov 2026 09:15:44 UTC\n");
        var now = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        var e = Assert.Throws<HardenException>(() => r.CheckFreshness(now, TimeSpan.FromMinutes(5), allowExpired: false, "source 'debian'"));
        Assert.Contains("source 'debian'", e.Message);
        Assert.Contains("expired", e.Message);
        Assert.Contains("AllowExpiredRelease", e.Message);
        r.CheckFreshness(now, TimeSpan.FromMinutes(5), allowExpired: true, "s"); // the explicit override
        r.CheckFreshness(new DateTimeOffset(2026, 11, 27, 0, 0, 0, TimeSpan.Zero), TimeSpan.FromMinutes(5), false, "s");
    }

    [Fact]
    public void CheckFreshness_RejectsDateInTheFutureBeyondSkew()
    {
        var r = Sample();
        var justBefore = r.Date.AddMinutes(-4);
        r.CheckFreshness(justBefore, TimeSpan.FromMinutes(5), false, "s");
        var e = Assert.Throws<HardenException>(() => r.CheckFreshness(r.Date.AddHours(-1), TimeSpan.FromMinutes(5), false, "source 'x'"));
        Assert.Contains("in the future", e.Message);
        Assert.Contains("source 'x'", e.Message);
    }

    [Fact]
    public void Parse_RejectsReleaseWithoutDateOrSha256()
    {
        Assert.Contains("no Date", Assert.Throws<HardenException>(() => ReleaseFile.Parse("Suite: x\nSHA256:\n 00 1 a\n", "s")).Message);
        Assert.Contains("no SHA256", Assert.Throws<HardenException>(() => ReleaseFile.Parse("Suite: x\nDate: Sat, 21 Nov 2026 09:15:44 UTC\nMD5Sum:\n 00 1 a\n", "s")).Message);
        Assert.Contains("not a SHA-256", Assert.Throws<HardenException>(() => ReleaseFile.Parse("Date: Sat, 21 Nov 2026 09:15:44 UTC\nSHA256:\n abc 1 a\n", "s")).Message);
    }
}
