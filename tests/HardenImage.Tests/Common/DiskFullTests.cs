using HardenImage.Common;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Common;

/// <summary>
/// Issue 17 §5: a full disk while writing an artifact is one clear HardenException (exit 2), the previous file stays
/// as it was and no temp file is left. The disk-full condition is the real errno a Linux write reports (ENOSPC,
/// as .NET raises it): /dev/full answers every write with it.
/// </summary>
public sealed class DiskFullTests
{
    private static IOException RealEnospc()
    {
        Assert.True(File.Exists("/dev/full"), "this test needs /dev/full (Linux)");
        using var full = new FileStream("/dev/full", FileMode.Open, FileAccess.Write);
        return Assert.ThrowsAny<IOException>(() => { full.Write(new byte[4096]); full.Flush(); });
    }

    [Fact]
    public async Task DiskFull_WhileWritingAnArtifact_KeepsThePreviousOne()
    {
        var enospc = RealEnospc();
        Assert.True(DiskFull.Is(enospc), $"HResult {enospc.HResult}: {enospc.Message}");
        using var dir = new TempDir("hi-diskfull");
        var path = dir.Combine("build.json");
        File.WriteAllText(path, "previous");
        var e = await Assert.ThrowsAsync<HardenException>(() => AtomicFile.WriteAsync(path, async s =>
        {
            await s.WriteAsync(new byte[100]);
            throw enospc;
        }));
        Assert.Equal(2, e.ExitCode);
        Assert.StartsWith($"{path}: the disk is full", e.Message);
        Assert.Contains("the previous file is intact", e.Message);
        Assert.Equal("previous", File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void OtherIoErrors_AreNotCalledDiskFull()
    {
        Assert.False(DiskFull.Is(new IOException("Permission denied", 13)));
    }
}
