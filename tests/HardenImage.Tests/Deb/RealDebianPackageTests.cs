using System.Security.Cryptography;
using HardenImage.Common;
using HardenImage.Deb;

namespace HardenImage.Tests.Deb;

/// <summary>Reads a real Debian 13 package (base-files 13.8+deb13u8, see TestData/Deb/ATTRIBUTION.md).</summary>
public sealed class RealDebianPackageTests
{
    private static readonly string BaseFilesDeb =
        Path.Combine(AppContext.BaseDirectory, "TestData", "Deb", "base-files_13.8+deb13u8_amd64.deb");

    [Fact]
    public void Read_BaseFilesFromTheDebianArchive()
    {
        // The archive's own checksum (trixie Packages): the test data is the real, unmodified package.
        Assert.Equal("f5a0546098f38bad5843380521781fe7214e5a283d3bed63f79c505545f262af", Sha256Hex.OfFile(BaseFilesDeb));

        using var deb = DebPackageReader.Open(BaseFilesDeb);
        Assert.Equal((DebCompression.Xz, DebCompression.Xz), (deb.ControlCompression, deb.DataCompression));
        var control = deb.Control;
        Assert.Equal(("base-files", "13.8+deb13u8", "amd64"), (control.Package, control.Version, control.Architecture));
        Assert.Equal("yes", control.Fields["Essential"]);
        Assert.Contains("usr-is-merged", control.Fields["Provides"]);
        Assert.Equal(["/etc/debian_version", "/etc/dpkg/origins/debian", "/etc/host.conf", "/etc/issue", "/etc/issue.net",
            "/etc/update-motd.d/10-uname"], control.Conffiles);
        Assert.Equal(["postinst", "postrm", "preinst", "triggers"], control.MaintainerScripts.Keys.ToArray());
        Assert.Contains("interest-noawait /usr/lib32", control.MaintainerScripts["triggers"]);
        Assert.Empty(control.OtherFiles);

        var listed = control.Md5Sums.ToDictionary(m => m.Path, m => m.Md5);
        Assert.Equal(38, listed.Count);
        var entries = new List<DebEntry>();
        var unlisted = new List<string>();
        foreach (var entry in deb.ReadDataEntries())
        {
            entries.Add(entry);
            Assert.Equal((0, 0), (entry.Uid, entry.Gid));
            if (entry.Type != DebEntryType.File) continue;
            var md5 = Convert.ToHexStringLower(MD5.HashData(entry.Content));
            if (listed.Remove(entry.Path, out var expected)) Assert.Equal(expected, md5);
            else unlisted.Add("/" + entry.Path);
        }
        Assert.Empty(listed);                       // every md5sums line names a shipped file, with that content
        Assert.Equal(control.Conffiles, unlisted);  // dpkg leaves conffiles out of md5sums

        Assert.Equal(100, entries.Count + 1);       // dpkg-deb -c lists 100 including "./"
        Assert.Equal(Convert.ToInt32("1777", 8), entries.Single(e => e.Path == "tmp").ModeBits);
        Assert.Equal(Convert.ToInt32("700", 8), entries.Single(e => e.Path == "root").ModeBits);
        Assert.Equal("../usr/lib/os-release", entries.Single(e => e.Path == "etc/os-release").LinkTarget);

        // Debian 13 is merged-/usr: these four are the alias symlinks, everything else is a normal entry.
        Assert.Equal(["bin", "lib", "lib64", "sbin"], entries.Where(MergedUsr.IsAliasSymlink).Select(e => e.Path).ToArray());
        var safety = new PathSafety(entries.Where(e => e.Type == DebEntryType.Symlink).Select(e => KeyValuePair.Create(e.Path, e.LinkTarget!)));
        Assert.All(entries, e => Assert.Null(safety.FindSymlinkOnPath(e.Path)));
        // A later, pre-merge package shipping bin/sh would write through base-files' bin symlink; canonicalised it does not.
        Assert.Equal("bin", safety.FindSymlinkOnPath("bin/sh"));
        Assert.Null(safety.FindSymlinkOnPath(MergedUsr.Canonicalise("bin/sh")));
    }
}
