using HardenImage.Common;
using HardenImage.Deb;

namespace HardenImage.Tests.Deb;

/// <summary>
/// Every refusal of <see cref="DebPath"/>, <see cref="PathSafety"/> and <see cref="MergedUsr"/>, each reached with the
/// input that triggers it and checked for its specific reason (a different refusal, or none, fails the test).
/// </summary>
public sealed class PathSafetyRejectionTests
{
    private static DebEntry Entry(string path, DebEntryType type, string? target = null) =>
        new(path, type, (UnixFileMode)0x1ED, 0, 0, 0, target, DateTimeOffset.UnixEpoch);

    [Theory]
    [InlineData("usr/bin/a\0b", "NUL byte in path")]
    [InlineData("\0", "NUL byte in path")]
    [InlineData("usr/bin/a\0/../../etc/shadow", "NUL byte in path")]  // NUL is checked before the segments
    [InlineData("", "empty path")]
    [InlineData("/etc/shadow", "absolute path")]
    [InlineData("/", "absolute path")]
    [InlineData("/a\0", "absolute path")]
    [InlineData("..", "'..' segment")]
    [InlineData("usr/../../etc/x", "'..' segment")]
    [InlineData("./usr/bin/..", "'..' segment")]
    public void TryNormalise_RefusesWithTheSpecificReason(string raw, string reason)
    {
        Assert.Null(DebPath.TryNormalise(raw, out var problem));
        Assert.Equal(reason, problem);
    }

    [Theory]
    [InlineData("usr/bin/env", "usr/bin")]
    [InlineData("usr", "")]
    [InlineData("a/b/c/d", "a/b/c")]
    public void Parent_DropsTheLastSegment(string path, string parent) => Assert.Equal(parent, DebPath.Parent(path));

    [Fact]
    public void MergedUsr_AliasListIsExactlyDebiansTopLevelLinks() =>
        Assert.Equal(["bin", "sbin", "lib", "lib32", "lib64", "libx32", "libo32"], MergedUsr.Aliases);

    public static TheoryData<string> AliasNames => new() { "bin", "sbin", "lib", "lib32", "lib64", "libx32", "libo32" };

    [Theory]
    [MemberData(nameof(AliasNames))]
    public void MergedUsr_EveryAliasIsCanonicalisedAndKnownAsSymlink(string alias)
    {
        Assert.Equal($"usr/{alias}/x", MergedUsr.Canonicalise($"{alias}/x"));
        Assert.Equal($"usr/{alias}", MergedUsr.Canonicalise(alias));
        Assert.True(MergedUsr.IsAliasSymlink(alias, $"usr/{alias}"));
        Assert.True(MergedUsr.IsAliasSymlink(alias, $"/usr/{alias}/"));
        Assert.False(MergedUsr.IsAliasSymlink(alias, $"usr/{alias}x"));
        Assert.False(MergedUsr.IsAliasSymlink(alias, $"/etc/{alias}"));

        // A base that knows the aliases refuses a path written through any of them, and names the link.
        var safety = MergedUsr.NewPathSafety();
        Assert.Equal($"usr/{alias}", safety.Symlinks[alias]);
        var e = Assert.Throws<HardenException>(() => safety.EnsureNotThroughSymlink($"{alias}/evil", "evil_1_all.deb"));
        Assert.Contains($"through the symlink '{alias}' -> 'usr/{alias}'", e.Message);
        safety.EnsureNotThroughSymlink(MergedUsr.Canonicalise($"{alias}/evil"), "evil_1_all.deb");

        // An entry AT the alias name that is not the alias symlink would replace usr/<alias> wholesale.
        foreach (var (type, target) in new (DebEntryType, string?)[] {
                     (DebEntryType.File, null), (DebEntryType.HardLink, "etc/passwd"), (DebEntryType.Symlink, "/tmp"),
                     (DebEntryType.Symlink, null), (DebEntryType.Symlink, $"usr/{alias}/sub") })
        {
            var refused = Assert.Throws<HardenException>(() => MergedUsr.Canonicalise(Entry(alias, type, target), "evil_1_all.deb"));
            Assert.StartsWith($"evil_1_all.deb: refusing entry '{alias}' ({type.ToString().ToLowerInvariant()}", refused.Message);
            Assert.Contains($"'{alias}' must be the symlink to usr/{alias}", refused.Message);
            Assert.Equal($"evil_1_all.deb: refusing entry '{alias}' ({type.ToString().ToLowerInvariant()}" +
                         (target != null ? $" -> '{target}'" : "") +
                         $"): on a merged-/usr system '{alias}' must be the symlink to usr/{alias}, and this entry would replace it.", refused.Message);
        }
        var link = Entry(alias, DebEntryType.Symlink, $"/usr/{alias}");
        Assert.True(MergedUsr.IsAliasSymlink(link));
        Assert.Same(link, MergedUsr.Canonicalise(link, "p"));
        Assert.Equal($"usr/{alias}", MergedUsr.Canonicalise(Entry(alias, DebEntryType.Directory), "p").Path);
    }

    [Theory]
    [InlineData("usr/bin")]
    [InlineData("lib/x")]
    [InlineData("binx")]
    [InlineData("etc")]
    public void MergedUsr_NonAliasNamesAreNotAliasSymlinks(string path)
    {
        Assert.False(MergedUsr.IsAliasSymlink(path, "usr/" + path));
        Assert.False(MergedUsr.IsAliasSymlink(Entry(path, DebEntryType.Symlink, "usr/" + path)));
    }

    [Fact]
    public void MergedUsr_OnlyHardLinkTargetsMoveWithTheEntry()
    {
        // A hard link's target is a path from the image root: it moves under usr/ like the entry itself.
        var hard = MergedUsr.Canonicalise(Entry("etc/alt/x", DebEntryType.HardLink, "libx32/a"), "p");
        Assert.Equal(("etc/alt/x", "usr/libx32/a"), (hard.Path, hard.LinkTarget));
        var hardNoTarget = MergedUsr.Canonicalise(Entry("libo32/b", DebEntryType.HardLink), "p");
        Assert.Equal(("usr/libo32/b", (string?)null), (hardNoTarget.Path, hardNoTarget.LinkTarget));
        // A symlink's target is relative to its own directory (or absolute, resolved by the kernel at run time):
        // rewriting "bin/x" there would point it somewhere else.
        var soft = MergedUsr.Canonicalise(Entry("etc/alt/y", DebEntryType.Symlink, "bin/x"), "p");
        Assert.Equal(("etc/alt/y", "bin/x"), (soft.Path, soft.LinkTarget));
        // Nothing to rewrite: the very same entry comes back.
        var plain = Entry("etc/passwd", DebEntryType.File);
        Assert.Same(plain, MergedUsr.Canonicalise(plain, "p"));
        var plainLink = Entry("etc/l", DebEntryType.HardLink, "etc/passwd");
        Assert.Same(plainLink, MergedUsr.Canonicalise(plainLink, "p"));
    }

    [Fact]
    public void PathSafety_KnowsWhatItWasToldAndNothingElse()
    {
        var safety = new PathSafety([new("usr/lib/foo", "/etc")]);
        Assert.True(safety.IsSymlink("usr/lib/foo"));
        Assert.False(safety.IsSymlink("usr/lib"));
        Assert.Equal("/etc", Assert.Single(safety.Symlinks).Value);
        Assert.False(safety.RemoveSymlink("usr/lib"));
        Assert.True(safety.RemoveSymlink("usr/lib/foo"));
        Assert.Null(safety.FindSymlinkOnPath("usr/lib/foo/x"));
        safety.EnsureNotThroughSymlink("usr/lib/foo/x", "p"); // no link left: no refusal

        var empty = new PathSafety();
        Assert.Null(empty.FindSymlinkOnPath("a/b/c"));
        Assert.Empty(empty.Symlinks);
    }

    [Fact]
    public void PathSafety_RefusalNamesPackageEntryLinkAndTarget()
    {
        var safety = new PathSafety();
        safety.AddSymlink("opt/app", "../../etc");
        var e = Assert.Throws<HardenException>(() => safety.EnsureNotThroughSymlink("opt/app/cron.d/x", "evil_1.0_all.deb"));
        Assert.Equal("evil_1.0_all.deb: entry 'opt/app/cron.d/x' would be written through the symlink 'opt/app' -> '../../etc'. " +
                     "Refusing: a package must not place files behind a symlink (it could land anywhere in the image). " +
                     "Remove the package from the image or report it to its maintainer.", e.Message);
    }
}
