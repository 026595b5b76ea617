using System.Text;
using HardenImage.Common;
using HardenImage.Deb;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Deb;

public sealed class ArReaderTests
{
    [Fact]
    public void Read_HandlesGnuBsdAndPlainNamesAndOddPadding()
    {
        var ms = new MemoryStream();
        ms.Write("!<arch>\n"u8);
        // GNU long-name table, then a member that refers into it.
        var table = "a-very-long-member-name-over-16.txt/\n"u8.ToArray();
        Member(ms, "//", table);
        Member(ms, "/0", "long"u8.ToArray());
        // BSD: "#1/<len>", the name is the first <len> bytes of the data.
        Member(ms, "#1/20", [.. "bsd-name-is-long.bin"u8, .. "bsd"u8]);
        Member(ms, "gnu-short/", "odd"u8.ToArray());        // 3 bytes: padded with '\n'
        Member(ms, "plain", "even"u8.ToArray());
        ms.Position = 0;

        using var ar = new ArReader(ms, "mixed.a");
        var members = new List<(string, string)>();
        while (ar.ReadNextMember() is { } m)
            members.Add((m.Name, new StreamReader(m.Content).ReadToEnd()));
        Assert.Equal([("a-very-long-member-name-over-16.txt", "long"), ("bsd-name-is-long.bin", "bsd"),
            ("gnu-short", "odd"), ("plain", "even")], members);
    }

    [Fact]
    public void Read_SkipsUnreadContentOfForwardOnlyStream()
    {
        var ms = new MemoryStream();
        ms.Write("!<arch>\n"u8);
        Member(ms, "first", new byte[12345]);
        Member(ms, "second", "2"u8.ToArray());
        using var ar = new ArReader(new ForwardOnlyStream(new MemoryStream(ms.ToArray())), "fwd.a");
        Assert.Equal(12345, ar.ReadNextMember()!.Size);
        var second = ar.ReadNextMember()!;
        Assert.Equal(("second", "2"), (second.Name, new StreamReader(second.Content).ReadToEnd()));
        Assert.Null(ar.ReadNextMember());
    }

    [Trait("Category", "Integration")]
    [Fact]
    public void Read_MatchesGnuArOutput()
    {
        var ar = RequiredService.Tool("ar", "binutils");
        using var dir = new TempDir("hi-ar");
        File.WriteAllText(dir.Combine("one.txt"), "1");
        File.WriteAllText(dir.Combine("a-name-longer-than-sixteen-bytes.txt"), "22");
        RequiredService.RunOk(ar, ["rc", dir.Combine("x.a"), "one.txt", "a-name-longer-than-sixteen-bytes.txt"], dir.Path);

        using var reader = new ArReader(File.OpenRead(dir.Combine("x.a")), "x.a");
        var names = new List<string>();
        while (reader.ReadNextMember() is { } m) names.Add($"{m.Name}={new StreamReader(m.Content).ReadToEnd()}");
        Assert.Equal(["one.txt=1", "a-name-longer-than-sixteen-bytes.txt=22"], names);
    }

    [Theory]
    [InlineData("debian-binary   0           0     0     100644  4x        `\n", "size field")]
    [InlineData("debian-binary   0           0     0     100644  4         !!", "bad terminator")]
    [InlineData("debian-binary   0           0     0     100644            `\n", "empty size")]
    public void Read_RejectsCorruptHeaders(string header, string expected)
    {
        var bytes = Encoding.ASCII.GetBytes("!<arch>\n" + header + "2.0\n");
        using var ar = new ArReader(new MemoryStream(bytes), "bad.deb");
        var error = Assert.Throws<HardenException>(() => ar.ReadNextMember());
        Assert.Contains("bad.deb", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Read_ReportsMemberLongerThanFileAsTruncated()
    {
        var bytes = Encoding.ASCII.GetBytes("!<arch>\n" + CraftedDeb.ArHeader("data.tar", 1000) + "short");
        using var ar = new ArReader(new MemoryStream(bytes), "cut.deb");
        var member = ar.ReadNextMember()!;
        var error = Assert.Throws<HardenException>(() => member.Content.CopyTo(Stream.Null));
        Assert.Contains("cut.deb: ar member 'data.tar' is truncated", error.Message);
    }

    private static void Member(Stream s, string name, byte[] data)
    {
        s.Write(Encoding.ASCII.GetBytes(CraftedDeb.ArHeader(name, data.Length)));
        s.Write(data);
        if (data.Length % 2 == 1) s.WriteByte((byte)'\n');
    }
}
