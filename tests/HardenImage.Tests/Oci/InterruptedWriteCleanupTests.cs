using System.Diagnostics;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;
using HardenImage.Tests.Registry;

namespace HardenImage.Tests.Oci;

/// <summary>
/// Denial of service by a full disk: what a killed push, build or download leaves (<c>.tmp-incoming-*</c> in the
/// layout) is removed when the layout is next opened — only our own temp names, never while another process holds
/// the file (the writers' advisory lock), never younger than a minute, and never anything else.
/// </summary>
public sealed class InterruptedWriteCleanupTests
{
    private static string LeftoverOf(OciLayout layout, string name, int bytes, TimeSpan age)
    {
        var tmp = AtomicFile.TempPathFor(Path.Combine(layout.BlobsDir, name));
        File.WriteAllBytes(tmp, new byte[bytes]);
        File.SetLastWriteTimeUtc(tmp, DateTime.UtcNow - age);
        return tmp;
    }

    [Trait("Category", "Integration")]
    [Fact]
    public void KilledPushTempFile_IsRemovedOnNextOpen_ButNotWhileAnotherProcessHoldsIt()
    {
        using var dir = new TempDir("hi-tmpclean");
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        var index = TestImages.WriteImage(layout, "base", ["amd64"], 64 * 1024, seed: 3);
        var leftover = LeftoverOf(layout, "incoming", 1 << 20, TimeSpan.FromMinutes(10));

        // Another process (flock(1) takes the same advisory lock our writers hold) is still writing it.
        var holder = Process.Start(new ProcessStartInfo("flock", ["-x", "-o", leftover, "sleep", "60"]) { UseShellExecute = false })!;
        try
        {
            WaitUntilLocked(leftover);
            OciLayout.Open(dir.Combine("oci"));
            Assert.True(File.Exists(leftover), "a temp file held by a live process was removed");
        }
        finally
        {
            holder.Kill(entireProcessTree: true); // -o: only flock itself holds the lock, so its exit releases it
            holder.WaitForExit();
            holder.Dispose();
        }

        // The holder died (as a killed push does): the next open removes the file, and only it.
        var reopened = OciLayout.Open(dir.Combine("oci"));
        Assert.False(File.Exists(leftover));
        Assert.Equal(index.Digest, reopened.Resolve("base")!.Digest);
        Assert.All(TestImages.BlobsOf(reopened, index), b => Assert.True(reopened.VerifyBlob(b.Digest)));
    }

    [Fact]
    public void Cleanup_LeavesYoungFiles_ForeignNames_InProcessWriters_AndBlobs()
    {
        using var dir = new TempDir("hi-tmpclean");
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        var old = TimeSpan.FromMinutes(10);
        var stale = LeftoverOf(layout, "incoming", 100, old);
        var staleIndex = AtomicFile.TempPathFor(layout.IndexPath);
        File.WriteAllText(staleIndex, "{");
        File.SetLastWriteTimeUtc(staleIndex, DateTime.UtcNow - old);
        var young = LeftoverOf(layout, "incoming", 100, TimeSpan.Zero);
        var heldHere = LeftoverOf(layout, "layer", 100, old);
        string[] foreign =
        [
            Path.Combine(layout.BlobsDir, ".tmp-incoming-notaguid"),
            Path.Combine(layout.BlobsDir, "notes.tmp"),
            Path.Combine(layout.BlobsDir, ".tmp-" + new string('a', 32)),
            Path.Combine(layout.Root, "my.tmp-incoming-" + new string('b', 32)),
        ];
        foreach (var f in foreign)
        {
            File.WriteAllText(f, "not ours");
            File.SetLastWriteTimeUtc(f, DateTime.UtcNow - old);
        }

        using (new FileStream(heldHere, FileMode.Open, FileAccess.Write, FileShare.None))
            Assert.Equal(2, layout.RemoveStaleTempFiles());

        Assert.False(File.Exists(stale));
        Assert.False(File.Exists(staleIndex));
        Assert.True(File.Exists(young), "a temp file younger than a minute may be a writer that has not locked it yet");
        Assert.True(File.Exists(heldHere), "a temp file this process is writing was removed");
        Assert.All(foreign, f => Assert.True(File.Exists(f), f));
        Assert.True(File.Exists(layout.IndexPath));
    }

    private static void WaitUntilLocked(string path)
    {
        for (var i = 0; i < 200; i++)
        {
            try
            {
                using (new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.None)) { }
            }
            catch (IOException)
            {
                return;
            }
            Thread.Sleep(25);
        }
        Assert.Fail("flock did not take the lock within 5 s");
    }
}
