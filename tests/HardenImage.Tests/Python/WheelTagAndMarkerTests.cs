using HardenImage.Common;
using HardenImage.Python;

namespace HardenImage.Tests.Python;

/// <summary>Wheel tags for the image's CPython and glibc (pypa/packaging order) and PEP 508 markers.</summary>
public sealed class WheelTagAndMarkerTests
{
    private static WheelFileName W(string name) => WheelFileName.TryParse(name) ?? throw new InvalidOperationException(name);

    [Fact]
    public void Tags_PreferTheMostSpecificWheel_AsPipDoes()
    {
        var c = new WheelCompatibility("cp313", "amd64", (2, 41));
        var native = c.Rank(W("numpy-2.2.0-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"));
        var abi3 = c.Rank(W("cryptography-44.0.0-cp39-abi3-manylinux_2_34_x86_64.whl"));
        var pure = c.Rank(W("certifi-2023.5.7-py3-none-any.whl"));
        Assert.NotNull(native); Assert.NotNull(abi3); Assert.NotNull(pure);
        Assert.True(native < abi3 && abi3 < pure);
        // Newer manylinux (closer to the image's glibc) ranks before older.
        Assert.True(c.Rank(W("x-1-cp313-cp313-manylinux_2_28_x86_64.whl")) < c.Rank(W("x-1-cp313-cp313-manylinux_2_17_x86_64.whl")));
    }

    [Theory]
    [InlineData("x-1-cp313-cp313-manylinux_2_99_x86_64.whl", "needs glibc 2.99, the image has glibc 2.41")]
    [InlineData("x-1-cp313-cp313-musllinux_1_2_x86_64.whl", "is for musl libc")]
    [InlineData("x-1-cp313-cp313-manylinux_2_17_aarch64.whl", "is for aarch64, this image is x86_64")]
    [InlineData("x-1-cp312-cp312-manylinux_2_17_x86_64.whl", "does not run on the image's CPython cp313")]
    [InlineData("x-1-cp313-cp313t-manylinux_2_17_x86_64.whl", "does not run on the image's CPython cp313")]
    [InlineData("x-1-cp313-cp313-win_amd64.whl", "is not a Linux platform")]
    public void Tags_RefuseWheelsTheImageCannotRun_WithTheReason(string wheel, string reason)
    {
        var c = new WheelCompatibility("cp313", "amd64", (2, 41));
        Assert.Null(c.Rank(W(wheel)));
        Assert.Contains(reason, c.WhyNot(W(wheel)));
    }

    [Fact]
    public void Tags_WithoutGlibcOnlyPureWheelsFit()
    {
        var c = new WheelCompatibility("cp313", "arm64", null);
        Assert.Null(c.Rank(W("x-1-cp313-cp313-manylinux_2_17_aarch64.whl")));
        Assert.NotNull(c.Rank(W("x-1-py3-none-any.whl")));
    }

    [Theory]
    [InlineData("2.41-12", 2, 41)]
    [InlineData("2.36-9+deb12u10", 2, 36)]
    public void Glibc_ComesFromTheLockedLibc6Version(string libc6, int major, int minor) =>
        Assert.Equal((major, minor), WheelCompatibility.GlibcFromLibc6(libc6));

    [Theory]
    [InlineData("python_version >= \"3.10\" and platform_machine == \"x86_64\"", "amd64", true)]
    [InlineData("python_version >= \"3.10\" and platform_machine == \"x86_64\"", "arm64", false)]
    [InlineData("python_version < '3.11' or (sys_platform == 'linux' and extra == '')", "arm64", true)]
    [InlineData("'linux' in sys_platform and platform_machine not in 'x86_64 i686'", "arm64", true)]
    [InlineData("python_full_version ~= '3.13.0'", "amd64", true)]
    [InlineData("python_version > '3.9'", "amd64", true)]
    public void Markers_EvaluateForTheImageAndArchitecture(string marker, string arch, bool expected) =>
        Assert.Equal(expected, EnvironmentMarker.Evaluate(marker, EnvironmentMarker.EnvironmentFor("3.13", arch), "r.txt:1"));

    [Theory]
    [InlineData("platform_machin == 'x86_64'", "unknown variable 'platform_machin'")]
    [InlineData("python_version >= '3.10' and", "ends too early")]
    [InlineData("(os_name == 'posix'", "missing ')'")]
    public void Markers_Malformed_AreErrorsNeverTrue(string marker, string reason)
    {
        var e = Assert.Throws<HardenException>(() => EnvironmentMarker.Evaluate(marker, EnvironmentMarker.EnvironmentFor("3.13", "amd64"), "r.txt:3"));
        Assert.StartsWith("r.txt:3: environment marker", e.Message);
        Assert.Contains(reason, e.Message);
    }
}
