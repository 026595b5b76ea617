using System.Security.Cryptography;
using HardenImage.Common;
using HardenImage.Deb;

namespace HardenImage.Tests.Deb;

/// <summary>Reads a real package from the Debian archive (netbase 6.4, see TestData/Deb/ATTRIBUTION.md).</summary>
public sealed class RealDebianPackageTests
{
    private static readonly string NetbaseDeb = Path.Combine(AppContext.BaseDirectory, "TestData", "Deb", "netbase_6.4_all.deb");

    [Fact]
    public void Read_NetbaseFromTheDebianArchive()
    {
        // The archive's own checksum (bookworm Packages): the test data is the real, unmodified package.
        Assert.Equal("29b23c48c0fe6f878e56c5ddc9f65d1c05d729360f3690a593a8c795031cd867", Sha256Hex.OfFile(NetbaseDeb));

        using var deb = DebPackageReader.Open(NetbaseDeb);
        Assert.Equal((DebCompression.Xz, DebCompression.Xz), (deb.ControlCompression, deb.DataCompression));
        Assert.Equal(("netbase", "6.4", "all"), (deb.Control.Package, deb.Control.Version, deb.Control.Architecture));
        Assert.Equal("foreign", deb.Control.Fields["Multi-Arch"]);
        Assert.Equal(["/etc/ethertypes", "/etc/protocols", "/etc/rpc", "/etc/services"], deb.Control.Conffiles);
        Assert.Equal(["postinst", "postrm"], deb.Control.MaintainerScripts.Keys.ToArray());
        Assert.StartsWith("#!/bin/sh", deb.Control.MaintainerScripts["postinst"]);

        var expectedMd5 = deb.Control.Md5Sums.ToDictionary(m => m.Path, m => m.Md5);
        Assert.Equal(2, expectedMd5.Count);
        var paths = new List<string>();
        var checkedFiles = 0;
        foreach (var entry in deb.ReadDataEntries())
        {
            paths.Add(entry.Path);
            Assert.Equal((0, 0), (entry.Uid, entry.Gid));
            if (entry.Type != DebEntryType.File) continue;
            var md5 = Convert.ToHexStringLower(MD5.HashData(entry.Content));
            if (expectedMd5.TryGetValue(entry.Path, out var listed))
            {
                Assert.Equal(listed, md5);
                checkedFiles++;
            }
        }
        Assert.Equal(2, checkedFiles); // the md5sums lines name the shipped files exactly
        Assert.Equal(["etc", "etc/ethertypes", "etc/protocols", "etc/rpc", "etc/services", "usr", "usr/share",
            "usr/share/doc", "usr/share/doc/netbase", "usr/share/doc/netbase/changelog.gz", "usr/share/doc/netbase/copyright"], paths);
    }
}
