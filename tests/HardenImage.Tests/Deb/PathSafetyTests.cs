using CsCheck;
using HardenImage.Common;
using HardenImage.Deb;

namespace HardenImage.Tests.Deb;

/// <summary>Writing through symlinks across packages, merged-/usr canonicalisation, path normalisation.</summary>
public sealed class PathSafetyTests
{
    [Fact]
    public void FindSymlinkOnPath_FindsLinkPlantedByAnEarlierPackage()
    {
        // Package A ships usr/lib/foo -> /etc; package B then ships usr/lib/foo/x, which would land in /etc/x.
        var safety = new PathSafety();
        safety.AddSymlink("usr/lib/foo", "/etc");

        Assert.Equal("usr/lib/foo", safety.FindSymlinkOnPath("usr/lib/foo/x"));
        Assert.Equal("usr/lib/foo", safety.FindSymlinkOnPath("usr/lib/foo/deeper/still/x"));
        Assert.Null(safety.FindSymlinkOnPath("usr/lib/foo"));      // replacing the link itself is not traversal
        Assert.Null(safety.FindSymlinkOnPath("usr/lib/foobar/x")); // a sibling with a common prefix
        Assert.Null(safety.FindSymlinkOnPath("usr/lib/x"));

        var error = Assert.Throws<HardenException>(() => safety.EnsureNotThroughSymlink("usr/lib/foo/x", "b_1.0_all.deb"));
        Assert.Contains("b_1.0_all.deb", error.Message);
        Assert.Contains("'usr/lib/foo/x'", error.Message);
        Assert.Contains("'usr/lib/foo' -> '/etc'", error.Message);
    }

    [Fact]
    public void FindSymlinkOnPath_ReportsOutermostLinkAndForgetsRemovedOnes()
    {
        var safety = new PathSafety([new("opt", "/srv"), new("opt/a/b", "c")]);
        Assert.Equal("opt", safety.FindSymlinkOnPath("opt/a/b/c"));
        Assert.True(safety.RemoveSymlink("opt"));
        Assert.Equal("opt/a/b", safety.FindSymlinkOnPath("opt/a/b/c"));
    }

    [Theory]
    [InlineData("bin/bash", "usr/bin/bash")]
    [InlineData("sbin/ldconfig", "usr/sbin/ldconfig")]
    [InlineData("lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/libc.so.6")]
    [InlineData("lib64/ld-linux-x86-64.so.2", "usr/lib64/ld-linux-x86-64.so.2")]
    [InlineData("lib32/x", "usr/lib32/x")]
    [InlineData("bin", "usr/bin")]
    [InlineData("usr/bin/bash", "usr/bin/bash")]
    [InlineData("binaries/x", "binaries/x")]
    [InlineData("library", "library")]
    [InlineData("etc/bin/x", "etc/bin/x")]
    public void MergedUsr_CanonicalisesAliasedTopLevelDirectories(string path, string expected) =>
        Assert.Equal(expected, MergedUsr.Canonicalise(path));

    [Fact]
    public void MergedUsr_RewrittenPathsNoLongerTraverseTheAliasLinks()
    {
        // base-files (Debian 13) ships bin -> usr/bin; an older package ships bin/x.
        var safety = MergedUsr.NewPathSafety();
        Assert.Equal("bin", safety.FindSymlinkOnPath("bin/x"));
        Assert.Null(safety.FindSymlinkOnPath(MergedUsr.Canonicalise("bin/x")));

        Assert.True(MergedUsr.IsAliasSymlink("bin", "usr/bin"));
        Assert.True(MergedUsr.IsAliasSymlink("lib64", "/usr/lib64"));
        Assert.False(MergedUsr.IsAliasSymlink("bin", "/etc"));
        Assert.False(MergedUsr.IsAliasSymlink("usr/bin", "usr/bin"));
    }

    [Fact]
    public void MergedUsr_CanonicalisesEntriesAndHardLinkTargets()
    {
        var t = DateTimeOffset.UnixEpoch;
        var file = new DebEntry("bin/ls", DebEntryType.File, (UnixFileMode)0x1ED, 0, 0, 3, null, t);
        var hard = new DebEntry("sbin/b", DebEntryType.HardLink, (UnixFileMode)0x1ED, 0, 0, 0, "bin/a", t);
        var dir = new DebEntry("lib", DebEntryType.Directory, (UnixFileMode)0x1ED, 0, 0, 0, null, t);
        var alias = new DebEntry("lib64", DebEntryType.Symlink, (UnixFileMode)0x1FF, 0, 0, 0, "usr/lib64", t);
        var relative = new DebEntry("bin/sh", DebEntryType.Symlink, (UnixFileMode)0x1FF, 0, 0, 0, "dash", t);

        Assert.Equal("usr/bin/ls", MergedUsr.Canonicalise(file, "p").Path);
        Assert.Equal(("usr/sbin/b", "usr/bin/a"), (MergedUsr.Canonicalise(hard, "p").Path, MergedUsr.Canonicalise(hard, "p").LinkTarget));
        Assert.Equal("usr/lib", MergedUsr.Canonicalise(dir, "p").Path);
        Assert.Same(alias, MergedUsr.Canonicalise(alias, "p"));
        // A symlink's target is relative to its directory, which is the same after the move: left as shipped.
        Assert.Equal(("usr/bin/sh", "dash"), (MergedUsr.Canonicalise(relative, "p").Path, MergedUsr.Canonicalise(relative, "p").LinkTarget));
    }

    [Theory]
    [InlineData(DebEntryType.Symlink, "/tmp")]
    [InlineData(DebEntryType.File, null)]
    public void MergedUsr_RefusesEntriesThatWouldReplaceAnAliasedDirectory(DebEntryType type, string? target)
    {
        var entry = new DebEntry("lib", type, (UnixFileMode)0x1FF, 0, 0, 0, target, DateTimeOffset.UnixEpoch);
        var error = Assert.Throws<HardenException>(() => MergedUsr.Canonicalise(entry, "evil_1_all.deb"));
        Assert.Contains("evil_1_all.deb", error.Message);
        Assert.Contains("refusing entry 'lib'", error.Message);
    }

    [Theory]
    [InlineData("./", "")]
    [InlineData("./usr/", "usr")]
    [InlineData("./usr//bin/./env", "usr/bin/env")]
    [InlineData("usr/bin/", "usr/bin")]
    [InlineData("a..b/..c/d..", "a..b/..c/d..")]
    public void TryNormalise_NormalisesHarmlessForms(string raw, string expected)
    {
        Assert.Equal(expected, DebPath.TryNormalise(raw, out var problem));
        Assert.Null(problem);
    }

    [Fact]
    public void TryNormalise_NeverReturnsAPathThatEscapesTheRoot()
    {
        string[] segments = ["a", "b c", "..", ".", "", "é", "..."];
        var segment = Gen.Int[0, segments.Length - 1].Select(i => segments[i]);
        var paths = Gen.Select(Gen.Bool, segment.Array[1, 6], (abs, parts) => (abs ? "/" : "") + string.Join('/', parts));
        paths.Sample(raw =>
        {
            var normal = DebPath.TryNormalise(raw, out var problem);
            var escapes = raw.StartsWith('/') || raw.Split('/').Contains("..");
            if (escapes || raw.Length == 0) return normal == null && problem != null;
            return normal == "" || normal != null && normal.Split('/').All(s => s is not (".." or "." or ""));
        });
    }
}
