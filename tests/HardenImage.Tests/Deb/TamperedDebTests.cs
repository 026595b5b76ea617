using System.Text;
using HardenImage.Common;
using HardenImage.Deb;
using HardenImage.Common.Compression;

namespace HardenImage.Tests.Deb;

/// <summary>
/// Damaged packages (Tampering, or a broken download): cut short, bytes flipped, members out of order. Each must
/// fail with a HardenException that says what is wrong, never yield a silently shorter or different package.
/// </summary>
[Trait("Category", "Integration")]
public sealed class TamperedDebTests(BuiltDebFixture fixture) : IClassFixture<BuiltDebFixture>
{
    [Theory]
    [InlineData("xz")]
    [InlineData("gzip")]
    [InlineData("zstd")]
    [InlineData("none")]
    public void Read_RejectsTruncatedDeb(string compressor)
    {
        var bytes = File.ReadAllBytes(fixture.Deb(compressor));
        var (dataStart, dataSize) = MemberSpan(bytes, "data.tar");
        var cuts = new[]
        {
            4,                              // inside the global header
            8 + 30,                         // inside the first member header
            dataStart - 20,                 // inside the data member's header
            dataStart + dataSize / 2,       // in the middle of data.tar
            dataStart + dataSize - 1,       // one byte short
        };
        foreach (var cut in cuts)
        {
            var error = Assert.Throws<HardenException>(() => ReadEverything(bytes.AsSpan(0, cut).ToArray()));
            Assert.True(error.Message.Contains("truncated") || error.Message.Contains("not a Debian package"),
                $"cut at {cut} of {bytes.Length}: unclear message: {error.Message}");
            Assert.Contains("fixture.deb", error.Message);
        }
    }

    [Theory]
    [InlineData("xz", XzDecoder.LibLzma)]
    [InlineData("xz", XzDecoder.Managed)]
    [InlineData("gzip", XzDecoder.Auto)]
    [InlineData("zstd", XzDecoder.Auto)]
    public void Read_RejectsFlippedByteInCompressedData(string compressor, XzDecoder xz)
    {
        var bytes = File.ReadAllBytes(fixture.Deb(compressor));
        var (dataStart, dataSize) = MemberSpan(bytes, "data.tar");
        bytes[dataStart + dataSize / 2] ^= 0x55;
        var error = Assert.Throws<HardenException>(() => ReadEverything(bytes, xz));
        Assert.Contains("data.tar", error.Message);
        Assert.True(error.Message.Contains("corrupt") || error.Message.Contains("truncated"), error.Message);
    }

    [Fact]
    public void Open_RejectsFileThatIsNotADeb()
    {
        var error = Assert.Throws<HardenException>(() => ReadEverything(Encoding.ASCII.GetBytes("PK\x03\x04 this is a zip file, not a deb")));
        Assert.Contains("not a Debian package", error.Message);
    }

    [Fact]
    public void Open_RejectsMembersOutOfOrder()
    {
        var deb = CraftedDeb.Ar(("debian-binary", "2.0\n"u8.ToArray()), ("data.tar", new byte[1024]),
            ("control.tar", CraftedDeb.ControlTar(CraftedDeb.Control)));
        var error = Assert.Throws<HardenException>(() => ReadEverything(deb));
        Assert.Contains("unexpected member 'data.tar' where control.tar", error.Message);
    }

    [Fact]
    public void Open_RejectsUnknownFormatVersion()
    {
        var deb = CraftedDeb.Ar(("debian-binary", "3.0\n"u8.ToArray()), ("control.tar", CraftedDeb.ControlTar(CraftedDeb.Control)));
        var error = Assert.Throws<HardenException>(() => ReadEverything(deb));
        Assert.Contains("format version '3.0'", error.Message);
    }

    [Theory]
    [InlineData("2\n6", "'2\\x0a6'")]       // found by ParserFuzzTests (seed 5DSX-BPNEHr6): the message had two lines
    [InlineData("2\r\nOK verified", "'2\\x0d\\x0aOK verified'")]
    [InlineData("3\u2028ok", "'3???ok'")]        // read as ASCII: the separator's UTF-8 bytes are not text
    public void FormatVersion_WithLineBreaks_IsRefusedInOneLine_SoItCannotForgeALogLine(string version, string shown)
    {
        var deb = CraftedDeb.Ar(("debian-binary", Encoding.UTF8.GetBytes(version + "\n")), ("control.tar", CraftedDeb.ControlTar(CraftedDeb.Control)));
        var error = Assert.Throws<HardenException>(() => ReadEverything(deb));
        Assert.Contains("format version " + shown, error.Message);
        Assert.DoesNotContain('\n', error.Message);
        Assert.DoesNotContain('\r', error.Message);
        Assert.DoesNotContain('\u2028', error.Message);
    }

    [Fact]
    public void Open_RejectsControlWithoutPackageField()
    {
        var deb = CraftedDeb.Build(_ => { }, control: "Version: 1.0\nArchitecture: all\n");
        var error = Assert.Throws<HardenException>(() => ReadEverything(deb));
        Assert.Contains("no 'Package' field", error.Message);
    }

    [Fact]
    public void Open_RejectsUnknownDataCompression()
    {
        var deb = CraftedDeb.Build(_ => { }, dataMemberName: "data.tar.lz4");
        var error = Assert.Throws<HardenException>(() => ReadEverything(deb));
        Assert.Contains("unsupported data member 'data.tar.lz4'", error.Message);
    }

    [Fact]
    public void Open_SkipsUnderscoreMembersAsDeb5Says()
    {
        var data = new MemoryStream();
        using (var tw = new System.Formats.Tar.TarWriter(data, System.Formats.Tar.TarEntryFormat.Gnu, leaveOpen: true))
            tw.WriteEntry(CraftedDeb.File("./a", "abc"u8.ToArray()));
        var deb = CraftedDeb.Ar(("debian-binary", "2.0\n"u8.ToArray()), ("_gpgorigin", "sig"u8.ToArray()),
            ("control.tar", CraftedDeb.ControlTar(CraftedDeb.Control)), ("data.tar", data.ToArray()), ("trailing-extra", [1]));
        using var reader = DebPackageReader.Open(new MemoryStream(deb), "underscore.deb");
        Assert.Equal(["a"], reader.ReadDataEntries().Select(e => e.Path).ToArray());
    }

    private static void ReadEverything(byte[] deb, XzDecoder xz = XzDecoder.Auto)
    {
        using var reader = DebPackageReader.Open(new MemoryStream(deb), "fixture.deb", new DebReaderOptions { Xz = xz });
        foreach (var entry in reader.ReadDataEntries()) entry.Content.CopyTo(Stream.Null);
    }

    /// <summary>Offset and size of the member whose name starts with <paramref name="stem"/>.</summary>
    private static (int Start, int Size) MemberSpan(byte[] deb, string stem)
    {
        var offset = 8;
        while (offset + 60 <= deb.Length)
        {
            var name = Encoding.ASCII.GetString(deb, offset, 16).TrimEnd(' ', '/');
            var size = int.Parse(Encoding.ASCII.GetString(deb, offset + 48, 10).Trim());
            if (name.StartsWith(stem, StringComparison.Ordinal)) return (offset + 60, size);
            offset += 60 + size + (size & 1);
        }
        throw new InvalidOperationException($"no {stem} member");
    }
}
