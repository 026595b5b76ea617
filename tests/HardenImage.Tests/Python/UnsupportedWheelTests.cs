using HardenImage.Common;

namespace HardenImage.Tests.Python;

/// <summary>
/// A wheel the image cannot run is refused at lock time with the reason: a manylinux tag needing a newer glibc than
/// the image's locked libc6, a musllinux-only build, and a package published only as an sdist (building it runs code).
/// </summary>
[Trait("Category", "Integration")]
public sealed class UnsupportedWheelTests
{
    [Fact]
    public async Task Lock_RefusesAManylinuxWheelNeedingANewerGlibcThanTheImage()
    {
        using var ws = new PythonImageSet();
        var newer = new WheelBuilder("hinew", "2.0", "cp313-cp313-manylinux_2_99_x86_64").File("hinew/__init__.py", "x\n");
        ws.Public.Add("hinew", newer);
        var e = await Assert.ThrowsAsync<HardenException>(() => ws.LockAsync(ws.Write(PythonImageSet.Requirement("hinew", "2.0", newer)), glibc: (2, 41)));
        Assert.Contains("no wheel of hinew==2.0 fits app (amd64, CPython 3.13)", e.Message);
        Assert.Contains("manylinux_2_99_x86_64 needs glibc 2.99, the image has glibc 2.41 (its locked libc6)", e.Message);
        Assert.False(File.Exists(ws.PylockPath));
    }

    [Fact]
    public async Task Lock_RefusesMusllinuxOnlyWheels()
    {
        using var ws = new PythonImageSet();
        var musl = new WheelBuilder("himusl", "1.0", "cp313-cp313-musllinux_1_2_x86_64").File("himusl/__init__.py", "x\n");
        ws.Public.Add("himusl", musl);
        var e = await Assert.ThrowsAsync<HardenException>(() => ws.LockAsync(ws.Write(PythonImageSet.Requirement("himusl", "1.0", musl))));
        Assert.Contains("musllinux_1_2_x86_64 is for musl libc; the image's libc is glibc (musllinux wheels are refused)", e.Message);
    }

    [Fact]
    public async Task Lock_RefusesASdistOnlyPackage()
    {
        using var ws = new PythonImageSet();
        var sdist = System.Text.Encoding.UTF8.GetBytes("a source tarball whose setup.py would run at build time");
        ws.Public.Add(new IndexedFile("hisrc", "hisrc-1.0.tar.gz", sdist));
        var req = $"hisrc==1.0 --hash=sha256:{WheelBuilder.Sha256(sdist)}\n";
        var e = await Assert.ThrowsAsync<HardenException>(() => ws.LockAsync(ws.Write(req)));
        Assert.Contains("hisrc==1.0 is published on 'public' only as an sdist (hisrc-1.0.tar.gz); building it would run its setup code, so it is refused", e.Message);
        Assert.False(File.Exists(ws.PylockPath));
    }
}
