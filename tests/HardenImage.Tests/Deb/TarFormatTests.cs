using System.Formats.Tar;
using HardenImage.Common;
using HardenImage.Deb;

namespace HardenImage.Tests.Deb;

/// <summary>
/// data.tar in the formats other tools write (dpkg-deb writes GNU, covered with real packages elsewhere): PAX and
/// ustar long names, and a PAX header that tries to hide a traversal behind an innocent ustar name.
/// </summary>
public sealed class TarFormatTests
{
    private static readonly string LongName = "usr/share/" + string.Join('/', Enumerable.Repeat("sixteen-chars-xx", 12)) + "/ünïcödé-file";

    [Theory]
    [InlineData(TarEntryFormat.Pax)]
    [InlineData(TarEntryFormat.Gnu)]
    public void Read_HandlesLongAndNonAsciiNames(TarEntryFormat format)
    {
        Assert.True(LongName.Length > 200);
        var deb = BuildData(format, tw =>
        {
            tw.WriteEntry(Entry(format, TarEntryType.RegularFile, "./" + LongName, content: "long"u8.ToArray()));
            tw.WriteEntry(Entry(format, TarEntryType.SymbolicLink, "./usr/share/link", linkName: "../" + LongName));
        });
        using var reader = DebPackageReader.Open(new MemoryStream(deb), "long.deb");
        var entries = reader.ReadDataEntries().Select(e => (e.Path, e.Type, e.LinkTarget, Text: new StreamReader(e.Content).ReadToEnd())).ToList();
        Assert.Equal([(LongName, DebEntryType.File, (string?)null, "long"), ("usr/share/link", DebEntryType.Symlink, "../" + LongName, "")], entries);
    }

    [Fact]
    public void Read_HandlesUstarPrefixField()
    {
        var name = "./usr/lib/" + new string('p', 90) + "/" + new string('n', 90); // > 100, split into prefix + name
        var deb = BuildData(TarEntryFormat.Ustar, tw => tw.WriteEntry(Entry(TarEntryFormat.Ustar, TarEntryType.RegularFile, name, content: [1])));
        using var reader = DebPackageReader.Open(new MemoryStream(deb), "ustar.deb");
        Assert.Equal(name[2..], reader.ReadDataEntries().Single().Path);
    }

    [Fact]
    public void Read_RejectsTraversalHiddenInPaxPathAttribute()
    {
        // Written by hand: TarWriter keeps a PAX 'path' in step with the entry name, a hostile tool need not.
        // The ustar header says "./innocent"; the PAX record before it overrides that with a traversal.
        const string record = "path=./usr/../../etc/cron.d/x\n";
        var withLength = $"{record.Length + 3} {record}";
        Assert.Equal(record.Length + 3, withLength.Length);
        var tar = new MemoryStream();
        WriteRawEntry(tar, "./PaxHeaders/innocent", 'x', System.Text.Encoding.ASCII.GetBytes(withLength));
        WriteRawEntry(tar, "./innocent", '0', [1]);
        tar.Write(new byte[1024]);
        var deb = CraftedDeb.Ar(("debian-binary", "2.0\n"u8.ToArray()), ("control.tar", CraftedDeb.ControlTar(CraftedDeb.Control)),
            ("data.tar", tar.ToArray()));

        var error = Assert.Throws<HardenException>(() =>
        {
            using var reader = DebPackageReader.Open(new MemoryStream(deb), "pax.deb");
            _ = reader.ReadDataEntries().ToList();
        });
        Assert.Contains("'./usr/../../etc/cron.d/x'", error.Message);
        Assert.Contains("'..'", error.Message);
    }

    /// <summary>A ustar header block (POSIX.1-1988 layout, checksum over the block with the field as spaces) and its padded data.</summary>
    private static void WriteRawEntry(Stream s, string name, char type, byte[] data)
    {
        var h = new byte[512];
        void Put(int offset, string text) => System.Text.Encoding.ASCII.GetBytes(text).CopyTo(h, offset);
        Put(0, name);
        Put(100, "0000644\0");
        Put(108, "0000000\0");
        Put(116, "0000000\0");
        Put(124, Convert.ToString(data.Length, 8).PadLeft(11, '0') + "\0");
        Put(136, "00000000000\0");
        Put(148, "        ");
        h[156] = (byte)type;
        Put(257, "ustar\0");
        Put(263, "00");
        Put(148, Convert.ToString(h.Sum(b => b), 8).PadLeft(6, '0') + "\0 ");
        s.Write(h);
        s.Write(data);
        s.Write(new byte[(512 - data.Length % 512) % 512]);
    }

    private static byte[] BuildData(TarEntryFormat format, Action<TarWriter> add)
    {
        var data = new MemoryStream();
        using (var tw = new TarWriter(data, format, leaveOpen: true)) add(tw);
        return CraftedDeb.Ar(("debian-binary", "2.0\n"u8.ToArray()), ("control.tar", CraftedDeb.ControlTar(CraftedDeb.Control)),
            ("data.tar", data.ToArray()));
    }

    private static TarEntry Entry(TarEntryFormat format, TarEntryType type, string name, byte[]? content = null, string? linkName = null)
    {
        TarEntry e = format switch
        {
            TarEntryFormat.Pax => new PaxTarEntry(type, name),
            TarEntryFormat.Ustar => new UstarTarEntry(type, name),
            _ => new GnuTarEntry(type, name),
        };
        if (content != null) e.DataStream = new MemoryStream(content);
        if (linkName != null) e.LinkName = linkName;
        return e;
    }
}
