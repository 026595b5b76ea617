using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using HardenImage.Deb;
using HardenImage.Tests.Infrastructure;
using HardenImage.Common.Compression;

namespace HardenImage.Tests.Deb;

/// <summary>Reads .debs that the real dpkg-deb built and compares every entry with GNU tar's own listing.</summary>
[Trait("Category", "Integration")]
public sealed class DebPackageReaderTests(BuiltDebFixture fixture) : IClassFixture<BuiltDebFixture>
{
    [Theory]
    [InlineData("gzip", XzDecoder.Auto)]
    [InlineData("xz", XzDecoder.LibLzma)]
    [InlineData("xz", XzDecoder.Managed)]
    [InlineData("zstd", XzDecoder.Auto)]
    [InlineData("none", XzDecoder.Auto)]
    public void Read_MatchesTarListingAndFileContents(string compressor, XzDecoder xz)
    {
        var deb = fixture.Deb(compressor);
        var expected = TarListing(deb);

        using var reader = DebPackageReader.Open(deb, new DebReaderOptions { Xz = xz });
        var expectedCompression = compressor switch
        {
            "gzip" => DebCompression.Gzip, "xz" => DebCompression.Xz, "zstd" => DebCompression.Zstd, _ => DebCompression.None,
        };
        Assert.Equal(expectedCompression, reader.DataCompression);
        Assert.Equal("2.0", reader.FormatVersion);

        var actual = new List<string>();
        foreach (var entry in reader.ReadDataEntries())
        {
            actual.Add(Describe(entry));
            if (entry.Type == DebEntryType.File)
            {
                using var ms = new MemoryStream();
                entry.Content.CopyTo(ms);
                Assert.Equal(entry.Size, ms.Length);
                Assert.True(File.ReadAllBytes(Path.Combine(fixture.Root, entry.Path)).AsSpan().SequenceEqual(ms.ToArray()),
                    $"content of {entry.Path} differs from the file that was packaged");
            }
        }
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Read_ReportsSpecialEntriesExactly()
    {
        using var reader = DebPackageReader.Open(fixture.Deb("xz"));
        var entries = reader.ReadDataEntries().ToDictionary(e => e.Path);

        Assert.DoesNotContain("", entries.Keys); // the "./" root is not handed out
        Assert.All(entries.Values, e => Assert.False(e.Path.StartsWith("./") || e.Path.StartsWith('/') || e.Path.EndsWith('/')));
        Assert.All(entries.Values, e => Assert.Equal((0, 0), (e.Uid, e.Gid)));

        var suid = entries["usr/bin/hi-suid"];
        Assert.True(suid.IsSetuid);
        Assert.Equal(Convert.ToInt32("4755", 8), suid.ModeBits);

        var sticky = entries["var/tmp-sticky"];
        Assert.Equal(DebEntryType.Directory, sticky.Type);
        Assert.Equal(Convert.ToInt32("1777", 8), sticky.ModeBits);

        var hard = entries["usr/lib/hi-fixture/hardlink.bin"];
        Assert.Equal(DebEntryType.HardLink, hard.Type);
        Assert.Equal("usr/lib/hi-fixture/data.bin", hard.LinkTarget);

        Assert.Equal(("data.bin", DebEntryType.Symlink), (entries["usr/lib/hi-fixture/relative-link"].LinkTarget, entries["usr/lib/hi-fixture/relative-link"].Type));
        Assert.Equal("/etc/hi-fixture/hi.conf", entries["usr/share/hi-fixture/absolute-link"].LinkTarget);

        Assert.True(BuiltDebFixture.LongPath.Length > 100);
        Assert.Equal(DebEntryType.File, entries[BuiltDebFixture.LongPath].Type);
        Assert.Equal(DebEntryType.File, entries[BuiltDebFixture.NonAsciiPath].Type);
        Assert.Equal(new DateTimeOffset(2021, 3, 4, 5, 6, 7, TimeSpan.Zero), entries["usr/bin/hi-tool"].ModificationTime);
        Assert.Equal(300_000, entries["usr/lib/hi-fixture/data.bin"].Size);
    }

    [Theory]
    [InlineData("gzip")]
    [InlineData("xz")]
    [InlineData("zstd")]
    [InlineData("none")]
    public void Read_ParsesControlMd5SumsConffilesAndScripts(string compressor)
    {
        using var reader = DebPackageReader.Open(fixture.Deb(compressor));
        var control = reader.Control;

        Assert.Equal("hi-fixture", control.Package);
        Assert.Equal("1:2.3-4", control.Version);
        Assert.Equal("all", control.Architecture);
        Assert.Equal("libc6 (>= 2.36), base-files", control.Fields["depends"]);
        Assert.Equal("HardenImage test fixture\n A package with every kind of entry.\n .\n Second paragraph.", control.Fields["Description"]);

        Assert.Equal(fixture.Md5SumsText, control.Md5SumsText);
        var md5 = control.Md5Sums.ToDictionary(m => m.Path, m => m.Md5);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(Encoding.UTF8.GetBytes("setting = 1\n"))),
            md5["etc/hi-fixture/hi.conf"]);
        Assert.Contains(BuiltDebFixture.NonAsciiPath, md5.Keys);

        Assert.Equal(["/etc/hi-fixture/hi.conf"], control.Conffiles);
        Assert.Equal(["postinst", "prerm"], control.MaintainerScripts.Keys.ToArray());
        Assert.Contains("echo configured", control.MaintainerScripts["postinst"]);
        Assert.Empty(control.OtherFiles);
    }

    [Fact]
    public void Read_WorksFromForwardOnlyStream()
    {
        var bytes = File.ReadAllBytes(fixture.Deb("xz"));
        using var reader = DebPackageReader.Open(new ForwardOnlyStream(new MemoryStream(bytes)), "stream.deb");
        long total = 0;
        foreach (var e in reader.ReadDataEntries())
        {
            // Read only part of each file: the reader must skip the rest itself.
            var buffer = new byte[7];
            total += e.Content.Read(buffer);
        }
        Assert.True(total > 0);
        Assert.Equal("hi-fixture", reader.Control.Package);
    }

    [Fact]
    public void ReadDataEntries_CanBeEnumeratedOnlyOnce()
    {
        using var reader = DebPackageReader.Open(fixture.Deb("gzip"));
        _ = reader.ReadDataEntries().Count();
        Assert.Throws<InvalidOperationException>(() => reader.ReadDataEntries());
    }

    /// <summary>GNU tar's verbose listing of the package's data.tar in the same text form as <see cref="Describe"/>.</summary>
    private static List<string> TarListing(string deb)
    {
        var listing = RequiredService.RunOk("sh",
            ["-c", "dpkg-deb --fsys-tarfile \"$1\" | tar -tv --numeric-owner --full-time --quoting-style=literal", "sh", deb],
            env: new Dictionary<string, string> { ["TZ"] = "UTC" });
        var line = new Regex(@"^(\S+) (\d+)/(\d+) +(\d+) (\S+ \S+) \./(.*)$");
        var result = new List<string>();
        foreach (var l in listing.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var m = line.Match(l);
            Assert.True(m.Success, $"unexpected tar listing line: {l}");
            var name = m.Groups[6].Value;
            if (name.Length == 0) continue; // "./"
            var link = "";
            if (m.Groups[1].Value[0] == 'l') { var i = name.IndexOf(" -> ", StringComparison.Ordinal); link = " -> " + name[(i + 4)..]; name = name[..i]; }
            if (m.Groups[1].Value[0] == 'h') { var i = name.IndexOf(" link to ./", StringComparison.Ordinal); link = " => " + name[(i + 11)..]; name = name[..i]; }
            result.Add($"{m.Groups[1].Value} {m.Groups[2].Value}/{m.Groups[3].Value} {m.Groups[4].Value} {m.Groups[5].Value} {name.TrimEnd('/')}{link}");
        }
        return result;
    }

    private static string Describe(DebEntry e)
    {
        var type = e.Type switch { DebEntryType.Directory => 'd', DebEntryType.Symlink => 'l', DebEntryType.HardLink => 'h', _ => '-' };
        var bits = e.ModeBits;
        var sb = new StringBuilder().Append(type);
        for (var shift = 6; shift >= 0; shift -= 3)
        {
            var special = shift switch { 6 => (bits & 0x800) != 0, 3 => (bits & 0x400) != 0, _ => (bits & 0x200) != 0 };
            var specialChar = shift == 0 ? 't' : 's';
            sb.Append((bits >> shift & 4) != 0 ? 'r' : '-');
            sb.Append((bits >> shift & 2) != 0 ? 'w' : '-');
            var x = (bits >> shift & 1) != 0;
            sb.Append(special ? (x ? specialChar : char.ToUpperInvariant(specialChar)) : (x ? 'x' : '-'));
        }
        var link = e.Type switch { DebEntryType.Symlink => " -> " + e.LinkTarget, DebEntryType.HardLink => " => " + e.LinkTarget, _ => "" };
        var time = e.ModificationTime.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        return $"{sb} {e.Uid}/{e.Gid} {e.Size} {time} {e.Path}{link}";
    }
}

/// <summary>A stream that cannot seek or report its length, like an HTTP response body.</summary>
internal sealed class ForwardOnlyStream(Stream inner) : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, Math.Min(count, 1000));
    public override int Read(Span<byte> buffer) => inner.Read(buffer[..Math.Min(buffer.Length, 1000)]);
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    protected override void Dispose(bool disposing) { if (disposing) inner.Dispose(); base.Dispose(disposing); }
}
