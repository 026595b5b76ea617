using HardenImage.Common.Storage;

namespace HardenImage.Tests.Cache;

/// <summary>
/// <see cref="LastUse"/>, the one place a cache read records its use: at most once an hour per file (Go's rule), never
/// through a symlink, and never an error.
/// </summary>
public sealed class CacheLastUseTests : IDisposable
{
    private readonly CacheTree _t = new();

    public void Dispose() => _t.Dispose();

    private static TimeSpan Age(string path) => DateTime.UtcNow - File.GetLastWriteTimeUtc(path);

    [Fact]
    public void AFileOlderThanAnHour_IsMarkedUsedNow_AFresherOneIsNotWritten()
    {
        var old = _t.Deb(TimeSpan.FromHours(2));
        var fresh = _t.Deb(TimeSpan.FromMinutes(30));
        var freshTime = File.GetLastWriteTimeUtc(fresh);

        LastUse.Refresh(old, fresh);

        Assert.True(Age(old) < TimeSpan.FromMinutes(1), $"{Age(old)}");
        Assert.Equal(freshTime, File.GetLastWriteTimeUtc(fresh)); // within the hour: no write at all
    }

    [Fact]
    public void ASymlink_IsNeverFollowed_TheFileItNamesKeepsItsTime()
    {
        var target = _t.Outside("home", "file");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.WriteAllText(target, "the user's");
        CacheTree.Age(target, TimeSpan.FromDays(3));
        var before = File.GetLastWriteTimeUtc(target);
        var link = _t.Path("debs/sha256/" + new string('a', 64));
        Directory.CreateDirectory(Path.GetDirectoryName(link)!);
        File.CreateSymbolicLink(link, target);
        CacheTree.Age(link, TimeSpan.FromDays(3));

        LastUse.Refresh(link);

        Assert.Equal(before, File.GetLastWriteTimeUtc(target));
        Assert.True(new FileInfo(link).LinkTarget != null);
    }

    [Fact]
    public void AFileThatIsGone_OrADirectory_IsNoError()
    {
        LastUse.Refresh(_t.Path("debs/sha256/" + new string('b', 64)), _t.Root, "", "relative/\0nul");
        Assert.True(Directory.Exists(_t.Root));
    }
}
