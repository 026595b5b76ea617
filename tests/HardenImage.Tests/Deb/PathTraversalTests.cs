using System.Formats.Tar;
using HardenImage.Common;
using HardenImage.Deb;

namespace HardenImage.Tests.Deb;

/// <summary>
/// Hostile data.tar entries (Tampering / Elevation of privilege): each crafted package must be refused with a
/// message naming the package and the offending path, before any of its content could be written.
/// </summary>
public sealed class PathTraversalTests
{
    private static readonly byte[] Content = "x"u8.ToArray();

    [Theory]
    [InlineData("../etc/cron.d/evil")]
    [InlineData("./usr/../../etc/passwd")]
    [InlineData("usr/lib/../../../root/.ssh/authorized_keys")]
    public void Read_RejectsParentSegments(string name)
    {
        var error = ReadAll(CraftedDeb.Build(tw => tw.WriteEntry(CraftedDeb.File(name, Content))));
        Assert.Contains("evil", error.Message);
        Assert.Contains(name, error.Message);
        Assert.Contains("'..'", error.Message);
    }

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("//etc/shadow")]
    public void Read_RejectsAbsolutePaths(string name)
    {
        var error = ReadAll(CraftedDeb.Build(tw => tw.WriteEntry(CraftedDeb.File(name, Content))));
        Assert.Contains(name, error.Message);
        Assert.Contains("absolute path", error.Message);
    }

    [Theory]
    [InlineData(TarEntryType.CharacterDevice, "device node")]
    [InlineData(TarEntryType.BlockDevice, "device node")]
    [InlineData(TarEntryType.Fifo, "fifo")]
    public void Read_RejectsDevicesAndFifos(TarEntryType type, string expected)
    {
        var error = ReadAll(CraftedDeb.Build(tw =>
        {
            tw.WriteEntry(CraftedDeb.Dir("./dev/"));
            var node = new GnuTarEntry(type, "./dev/sda");
            if (type != TarEntryType.Fifo) (node.DeviceMajor, node.DeviceMinor) = (8, 0);
            tw.WriteEntry(node);
        }));
        Assert.Contains("'dev/sda'", error.Message);
        Assert.Contains(expected, error.Message);
        Assert.Contains("evil 6.6.6", error.Message);
    }

    [Theory]
    [InlineData("/etc/shadow", "absolute path")]
    [InlineData("../../etc/shadow", "'..'")]
    [InlineData("./usr/bin/not-in-package", "not an earlier entry")]
    [InlineData("./usr/bin", "directory")]
    public void Read_RejectsHardLinksOutsideThePackage(string target, string expected)
    {
        var error = ReadAll(CraftedDeb.Build(tw =>
        {
            tw.WriteEntry(CraftedDeb.Dir("./usr/"));
            tw.WriteEntry(CraftedDeb.Dir("./usr/bin/"));
            tw.WriteEntry(CraftedDeb.File("./usr/bin/real", Content));
            tw.WriteEntry(CraftedDeb.Link(TarEntryType.HardLink, "./usr/bin/innocent", target));
        }));
        Assert.Contains("'usr/bin/innocent'", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Read_AcceptsHardLinkToEarlierFileOfThePackage()
    {
        var bytes = CraftedDeb.Build(tw =>
        {
            tw.WriteEntry(CraftedDeb.Dir("./usr/"));
            tw.WriteEntry(CraftedDeb.File("./usr/real", Content));
            tw.WriteEntry(CraftedDeb.Link(TarEntryType.HardLink, "./usr/alias", "./usr/real"));
        });
        using var reader = DebPackageReader.Open(new MemoryStream(bytes), "ok.deb");
        var link = reader.ReadDataEntries().Single(e => e.Path == "usr/alias");
        Assert.Equal((DebEntryType.HardLink, "usr/real"), (link.Type, link.LinkTarget));
    }

    [Fact]
    public void Read_RejectsHardLinkToAFileThatComesLater()
    {
        var error = ReadAll(CraftedDeb.Build(tw =>
        {
            tw.WriteEntry(CraftedDeb.Link(TarEntryType.HardLink, "./early", "./late"));
            tw.WriteEntry(CraftedDeb.File("./late", Content));
        }));
        Assert.Contains("not an earlier entry", error.Message);
    }

    [Fact]
    public void Read_RejectsEntryWrittenThroughItsOwnSymlink()
    {
        var error = ReadAll(CraftedDeb.Build(tw =>
        {
            tw.WriteEntry(CraftedDeb.Dir("./usr/lib/"));
            tw.WriteEntry(CraftedDeb.Link(TarEntryType.SymbolicLink, "./usr/lib/foo", "/etc"));
            tw.WriteEntry(CraftedDeb.File("./usr/lib/foo/cron.d/evil", Content));
        }));
        Assert.Contains("'usr/lib/foo/cron.d/evil'", error.Message);
        Assert.Contains("symlink 'usr/lib/foo' -> '/etc'", error.Message);
    }

    [Fact]
    public void Read_RejectsDuplicateEntries()
    {
        var error = ReadAll(CraftedDeb.Build(tw =>
        {
            tw.WriteEntry(CraftedDeb.File("./etc/motd", "hello"u8.ToArray()));
            tw.WriteEntry(CraftedDeb.Link(TarEntryType.SymbolicLink, "./etc/motd", "/etc/shadow"));
        }));
        Assert.Contains("'etc/motd'", error.Message);
        Assert.Contains("duplicate", error.Message);
    }

    [Fact]
    public void Read_AllowsSymlinksThatPointAnywhere()
    {
        // A symlink is data: pointing outside the package is normal (/etc/alternatives/...). What matters is
        // never writing THROUGH it, which the assembler checks with PathSafety.
        var bytes = CraftedDeb.Build(tw =>
        {
            tw.WriteEntry(CraftedDeb.Link(TarEntryType.SymbolicLink, "./usr/bin/editor", "/etc/alternatives/editor"));
            tw.WriteEntry(CraftedDeb.Link(TarEntryType.SymbolicLink, "./usr/bin/up", "../../../../etc"));
        });
        using var reader = DebPackageReader.Open(new MemoryStream(bytes), "links.deb");
        Assert.Equal(["/etc/alternatives/editor", "../../../../etc"], reader.ReadDataEntries().Select(e => e.LinkTarget!).ToArray());
    }

    private static HardenException ReadAll(byte[] deb) => Assert.Throws<HardenException>(() =>
    {
        using var reader = DebPackageReader.Open(new MemoryStream(deb), "evil_6.6.6_all.deb");
        foreach (var entry in reader.ReadDataEntries()) entry.Content.CopyTo(Stream.Null);
    });
}
