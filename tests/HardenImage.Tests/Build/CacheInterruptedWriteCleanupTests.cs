using HardenImage.Apt;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace HardenImage.Tests.Build;

/// <summary>
/// Denial of service by a full disk: a killed build leaves <c>.tmp-incoming-*</c> in the content store, a killed
/// download a <c>.tmp-&lt;sha256&gt;-*</c> in the .deb cache. Each is removed when the store is next opened — only our
/// own temp names, not while this process still writes one, never younger than a minute (clock injected), and never
/// a stored file.
/// </summary>
public sealed class CacheInterruptedWriteCleanupTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);

    private static string Leftover(string path, TimeSpan age)
    {
        var tmp = AtomicFile.TempPathFor(path);
        Directory.CreateDirectory(Path.GetDirectoryName(tmp)!);
        File.WriteAllBytes(tmp, new byte[4096]);
        File.SetLastWriteTimeUtc(tmp, (Now - age).UtcDateTime);
        return tmp;
    }

    private static void AssertCleaned(string dir, Action open)
    {
        var stale = Leftover(Path.Combine(dir, "incoming"), TimeSpan.FromMinutes(10));
        var young = Leftover(Path.Combine(dir, "incoming"), TimeSpan.FromSeconds(30));
        var held = Leftover(Path.Combine(dir, "incoming"), TimeSpan.FromMinutes(10));
        var stored = Path.Combine(dir, new string('a', 64));
        var foreign = Path.Combine(dir, ".tmp-incoming-notaguid");
        foreach (var f in new[] { stored, foreign })
        {
            File.WriteAllText(f, "keep");
            File.SetLastWriteTimeUtc(f, (Now - TimeSpan.FromDays(1)).UtcDateTime);
        }

        using (new FileStream(held, FileMode.Open, FileAccess.Write, FileShare.None)) open();

        Assert.False(File.Exists(stale), "a killed writer's temp file was left to fill the disk");
        Assert.True(File.Exists(young), "a temp file younger than a minute may be a writer that has not locked it yet");
        Assert.True(File.Exists(held), "a temp file a live writer holds was removed");
        Assert.Equal("keep", File.ReadAllText(stored));
        Assert.Equal("keep", File.ReadAllText(foreign));
    }

    [Fact]
    public void KilledBuildTempFile_InTheContentStore_IsRemovedOnNextOpen()
    {
        using var dir = new TempDir("hi-tmpclean-store");
        var root = new ContentStore(dir.Path).Root;
        AssertCleaned(root, () => _ = new ContentStore(dir.Path, new FakeTimeProvider(Now)));
    }

    [Fact]
    public void KilledDownloadTempFile_InTheDebCache_IsRemovedOnNextOpen()
    {
        using var dir = new TempDir("hi-tmpclean-debs");
        var debs = new DebCache(dir.Path).DebsDirectory;
        AssertCleaned(debs, () => _ = new DebCache(dir.Path, new FakeTimeProvider(Now)));
    }
}
