using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;
using static HardenImage.Tests.Oci.OciTestImages;

namespace HardenImage.Tests.Oci;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public class LayerWriterTests
{
    [Fact]
    public void Tar_IsIdenticalForAnyInsertionOrder()
    {
        var entries = SampleEntries();
        var expected = Tar(entries);
        var rng = new Random(7);
        for (var i = 0; i < 10; i++)
        {
            var shuffled = entries.OrderBy(_ => rng.Next()).ToList();
            Assert.Equal(expected, Tar(shuffled));
        }
    }

    [Fact]
    public void Tar_IgnoresUmaskAndFileTimesOfSourceFiles()
    {
        // The same bytes on disk, created under different umasks and with different mtimes, must give the same tar:
        // the entry's declared mode and the epoch are all that reach the header.
        using var dir = new TempDir();
        byte[] Build(string sub, UnixFileMode fileMode, DateTime mtime)
        {
            var path = dir.Combine(sub);
            File.WriteAllBytes(path, Encoding.ASCII.GetBytes("payload\n"));
            File.SetUnixFileMode(path, fileMode);
            File.SetLastWriteTimeUtc(path, mtime);
            return Tar([LayerEntry.File("srv/data", LayerContent.FromFile(path), Octal("644"))]);
        }
        var a = Build("a", UnixFileMode.UserRead | UnixFileMode.UserWrite, new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        var b = Build("b", (UnixFileMode)Octal("777"), DateTime.UtcNow);
        Assert.Equal(a, b);
    }

    [Fact]
    public void Tar_EveryMTimeIsTheEpoch_AndOwnershipIsNumericOnly()
    {
        var entries = ReadTar(Tar(SampleEntries()));
        Assert.All(entries, e =>
        {
            Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(Epoch), e.ModificationTime);
            var posix = Assert.IsAssignableFrom<PosixTarEntry>(e);
            Assert.Equal("", posix.UserName);
            Assert.Equal("", posix.GroupName);
            Assert.Equal(TarEntryFormat.Ustar, e.Format);
        });
        Assert.NotEqual(Tar(SampleEntries(), Epoch), Tar(SampleEntries(), Epoch + 1));
    }

    [Fact]
    public void Tar_SortsParentsBeforeChildren_ByPathComponents()
    {
        var names = ReadTar(Tar(SampleEntries())).Select(e => e.Name).ToList();
        Assert.Equal(
        [
            "bin", "etc/", "etc/os-release", "etc/passwd", "home/", "home/nonroot/", "tmp/", "usr/", "usr/bin/",
            "usr/bin/group-tool", "usr/bin/tool", "usr/bin/tool-alias", "usr/lib/", "usr/lib/a/", "usr/lib/a/b", "usr/lib/a-c",
            "usr/share/", "usr/share/empty",
        ], names);
    }

    [Fact]
    public void Tar_KeepsModesSpecialBitsOwnersAndLinks()
    {
        var byName = ReadTar(Tar(SampleEntries())).ToDictionary(e => e.Name);
        Assert.Equal(Octal("4755"), (int)byName["usr/bin/tool"].Mode);
        Assert.Equal(Octal("2755"), (int)byName["usr/bin/group-tool"].Mode);
        Assert.Equal(42, byName["usr/bin/group-tool"].Gid);
        Assert.Equal(Octal("1777"), (int)byName["tmp/"].Mode);
        Assert.Equal(TarEntryType.Directory, byName["tmp/"].EntryType);
        Assert.Equal(65532, byName["home/nonroot/"].Uid);
        Assert.Equal(TarEntryType.SymbolicLink, byName["bin"].EntryType);
        Assert.Equal("usr/bin", byName["bin"].LinkName);
        Assert.Equal(TarEntryType.HardLink, byName["usr/bin/tool-alias"].EntryType);
        Assert.Equal("usr/bin/tool", byName["usr/bin/tool-alias"].LinkName);
        Assert.Equal(0, byName["usr/bin/tool-alias"].Length);
        Assert.Equal(Octal("755"), (int)byName["usr/"].Mode); // added parent
    }

    [Fact]
    public void Tar_HardLinkToALaterPath_CarriesContentOnTheEarlierPath()
    {
        // "a/link" sorts before "z/file": tar needs the content first, so the roles swap.
        var tar = Tar([LayerEntry.File("z/file", Encoding.ASCII.GetBytes("data")), LayerEntry.Hardlink("a/link", "z/file")]);
        var byName = ReadTar(tar).ToDictionary(e => e.Name);
        Assert.Equal(TarEntryType.RegularFile, byName["a/link"].EntryType);
        Assert.Equal(4, byName["a/link"].Length);
        Assert.Equal(TarEntryType.HardLink, byName["z/file"].EntryType);
        Assert.Equal("a/link", byName["z/file"].LinkName);
    }

    [Fact]
    public void Tar_UsesPaxOnlyWhereUstarCannotHoldTheName()
    {
        var longDir = string.Join('/', Enumerable.Repeat("d123456789", 12)); // 131 chars: splits into prefix + name
        var longLeaf = new string('n', 120);                                   // a single component > 100: needs pax
        var longTarget = "/" + new string('t', 150);
        var entries = new List<LayerEntry>
        {
            LayerEntry.File(longDir + "/short", [1]),
            LayerEntry.File("x/" + longLeaf, [2]),
            LayerEntry.File("x/café", [3]),
            LayerEntry.Symlink("x/long-link", longTarget),
            LayerEntry.File("x/plain", [4]),
        };
        var tar = Tar(entries);
        var read = ReadTar(tar).ToDictionary(e => e.Name);

        Assert.Equal(TarEntryFormat.Ustar, read[longDir + "/short"].Format);
        Assert.Equal(TarEntryFormat.Ustar, read["x/plain"].Format);
        Assert.Equal(TarEntryFormat.Ustar, read[longDir + "/"].Format);
        var paxNames = read.Values.Where(e => e.Format == TarEntryFormat.Pax).Select(e => e.Name).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(new[] { "x/café", "x/long-link", "x/" + longLeaf }.Order(StringComparer.Ordinal), paxNames);
        Assert.Equal(longTarget, read["x/long-link"].LinkName);

        // Only path/linkpath records: no atime, ctime or mtime that would vary between builds.
        foreach (var pax in read.Values.OfType<PaxTarEntry>())
            Assert.All(pax.ExtendedAttributes.Keys, k => Assert.Contains(k, new[] { "path", "linkpath" }));
        Assert.Equal(3, CountTypeFlags(tar, (byte)'x'));
        Assert.Equal(0, CountTypeFlags(tar, (byte)'L') + CountTypeFlags(tar, (byte)'K') + CountTypeFlags(tar, (byte)'g'));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public void Tar_IsReadByGnuTarWithTheSameNamesAndNumericOwners()
    {
        var gnuTar = RequiredService.Tool("tar", "tar");
        using var dir = new TempDir();
        var longName = "x/" + new string('n', 120);
        var path = dir.Combine("layer.tar");
        File.WriteAllBytes(path, Tar([.. SampleEntries(), LayerEntry.File(longName, [1])]));
        var listing = RequiredService.RunOk(gnuTar, ["--list", "--verbose", "--numeric-owner", "--utc", "-f", path]);
        Assert.Contains("-rwsr-xr-x 0/0", listing);
        Assert.Contains("drwxrwxrwt 0/0", listing);
        Assert.Contains("65532/65532", listing);
        Assert.Contains("2025-05-17 00:00", listing);
        Assert.Contains(longName, listing);
        Assert.Contains("usr/bin/tool-alias link to usr/bin/tool", listing);
        Assert.DoesNotContain("PaxHeaders", listing);
    }

    [Fact]
    public void Tar_UidBeyondUstarRange_GoesToPax()
    {
        var tar = Tar([LayerEntry.File("big", [1], uid: 3_000_000, gid: 5)]);
        var e = Assert.IsType<PaxTarEntry>(ReadTar(tar).Single(x => x.Name == "big"));
        Assert.Equal(3_000_000, e.Uid);
        Assert.Equal(["uid"], e.ExtendedAttributes.Keys);
    }

    [Fact]
    public void Header_SizeBeyondEightGiB_GoesToPax()
    {
        // Writing 10 GiB of data would be slow; the header alone shows the encoding.
        using var ms = new MemoryStream();
        var pax = TarHeaderWriter.Write(ms, new TarHeader("huge", TarTypeFlag.Regular, Octal("644"), 0, 0, 10L << 30, Epoch, ""));
        Assert.True(pax);
        var bytes = ms.ToArray();
        Assert.Equal((byte)'x', bytes[156]);
        Assert.Contains("size=10737418240\n", Encoding.ASCII.GetString(bytes, 512, 512));
        Assert.Equal((byte)'0', bytes[1024 + 156]);
        Assert.Equal("00000000000", Encoding.ASCII.GetString(bytes, 1024 + 124, 11));
    }

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("../escape")]
    [InlineData("a/../../b")]
    [InlineData("a//b")]
    [InlineData("./a")]
    [InlineData("")]
    public void Tar_RejectsPathsThatEscapeTheRoot(string path)
    {
        var ex = Assert.Throws<HardenException>(() => Tar([LayerEntry.File(path, [1])]));
        Assert.Contains("path", ex.Message);
    }

    [Fact]
    public void Tar_RejectsHardLinkOutsideTheLayer_AndDuplicatePaths()
    {
        Assert.Throws<HardenException>(() => Tar([LayerEntry.Hardlink("a", "missing")]));
        Assert.Throws<HardenException>(() => Tar([LayerEntry.File("a", [1]), LayerEntry.File("a", [2])]));
        Assert.Throws<HardenException>(() => Tar([LayerEntry.File("a", [1]), LayerEntry.File("a/b", [2])]));
    }

    [Fact]
    public void Tar_RejectsContentThatChangedLength()
    {
        var lying = LayerContent.FromStream(() => new MemoryStream([1, 2, 3]), 10);
        var ex = Assert.Throws<HardenException>(() => Tar([LayerEntry.File("f", lying)]));
        Assert.Contains("'f'", ex.Message);
        var longer = LayerContent.FromStream(() => new MemoryStream([1, 2, 3]), 2);
        Assert.Throws<HardenException>(() => Tar([LayerEntry.File("f", longer)]));
    }

    [Fact]
    public void Tar_DiffIdIsPinned_SoAHeaderEncodingChangeCannotSlipThrough()
    {
        // Changing this digest changes every image digest we have ever published: do it only on purpose.
        var tar = Tar(SampleEntries());
        Assert.Equal("sha256:e6681074bdb6ed4fa2b54b60ee4578b8e44c9b2fad34dc26c8bbf3107a0fbdf0", "sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar)));
    }

    [Trait("Category", "Integration")]
    [Theory]
    [InlineData(LayerCompression.Gzip, "gzip", "gzip")]
    [InlineData(LayerCompression.Zstd, "zstd", "zstd")]
    public void Layer_DecompressesWithTheReferenceTool_ToTheDiffId(LayerCompression compression, string tool, string package)
    {
        var exe = RequiredService.Tool(tool, package);
        using var dir = new TempDir();
        var layout = OciLayout.OpenOrCreate(dir.Combine("layout"));
        var layer = Writer(compression).WriteLayer(layout, new LayerSpec("x", SampleEntries()));
        var outPath = dir.Combine("layer.tar");
        RequiredService.RunOk("sh", ["-c", $"{exe} -d -c < '{layout.BlobPath(layer.Descriptor.Digest)}' > '{outPath}'"]);
        Assert.Equal(layer.DiffId, "sha256:" + Sha256Hex.OfFile(outPath));
    }

    [Fact]
    public void Gzip_HeaderHasNoNameNoTimeAndFixedOsByte()
    {
        using var dir = new TempDir();
        var layout = OciLayout.OpenOrCreate(dir.Path);
        foreach (var level in new[] { CompressionLevel.Optimal, CompressionLevel.SmallestSize, CompressionLevel.Fastest })
        {
            var w = new LayerWriter(new LayerWriterOptions { SourceDateEpoch = Epoch, GzipLevel = level });
            var layer = w.WriteLayer(layout, new LayerSpec("x", SampleEntries()));
            var head = File.ReadAllBytes(layout.BlobPath(layer.Descriptor.Digest))[..10];
            Assert.Equal(new byte[] { 0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff }, head);
        }
    }

    [Theory]
    [InlineData(LayerCompression.Gzip, "application/vnd.oci.image.layer.v1.tar+gzip")]
    [InlineData(LayerCompression.Zstd, "application/vnd.oci.image.layer.v1.tar+zstd")]
    public void Layer_DigestIsOfCompressedBytes_DiffIdOfTheTar(LayerCompression compression, string mediaType)
    {
        using var dir = new TempDir();
        var layout = OciLayout.OpenOrCreate(dir.Path);
        var layer = Writer(compression).WriteLayer(layout, new LayerSpec("x", SampleEntries()));
        var blob = File.ReadAllBytes(layout.BlobPath(layer.Descriptor.Digest));
        Assert.Equal(mediaType, layer.Descriptor.MediaType);
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(blob)), layer.Descriptor.Digest);
        Assert.Equal(blob.Length, layer.Descriptor.Size);
        var tar = Tar(SampleEntries());
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar)), layer.DiffId);
        Assert.Equal(tar.Length, layer.Tar.Size);
        using var decompressed = new OciLayoutReader(layout).OpenUncompressed(layer.Descriptor);
        using var ms = new MemoryStream();
        decompressed.CopyTo(ms);
        Assert.Equal(tar, ms.ToArray());
        Assert.DoesNotContain(Directory.GetFiles(layout.BlobsDir), f => Path.GetFileName(f).StartsWith(".tmp", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Layers_CompressedInParallel_MatchSequentialResultsInOrder()
    {
        // The build writes each layer on its own task as soon as its image is assembled, several at once.
        using var dir = new TempDir();
        var layout = OciLayout.OpenOrCreate(dir.Path);
        var specs = Enumerable.Range(0, 5).Select(i => new LayerSpec($"l{i}",
            [LayerEntry.File($"f{i}", Encoding.ASCII.GetBytes(new string((char)('a' + i), 100_000 * (i + 1))))])).ToList();
        var parallel = await Task.WhenAll(specs.Select(s => Task.Run(() => Writer().WriteLayer(layout, s))));
        var sequential = specs.Select(s => Writer().WriteLayer(layout, s)).ToList();
        Assert.Equal(sequential.Select(l => l.Descriptor.Digest), parallel.Select(l => l.Descriptor.Digest));
        Assert.Equal(specs.Select(s => s.Name), parallel.Select(l => l.Name));
    }

    private static int CountTypeFlags(byte[] tar, byte flag)
    {
        // Walk header blocks: sizes are octal at 124..135; a zero block ends the archive.
        var count = 0;
        var pos = 0;
        while (pos + 512 <= tar.Length && tar[pos] != 0)
        {
            if (tar[pos + 156] == flag) count++;
            var size = Convert.ToInt64(Encoding.ASCII.GetString(tar, pos + 124, 11), 8);
            pos += 512 + (int)((size + 511) / 512 * 512);
        }
        return count;
    }
}
