using System.Formats.Tar;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Deb;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Deb;

/// <summary>
/// Issue 17: a 100 KB zstd data.tar that inflates to 3 GiB, deep and long paths, and many small packages are refused
/// by the .deb reader with one clear HardenException, before the bytes reach the disk, with bounded memory; the
/// content store keeps nothing half-written.
/// </summary>
public sealed class DecompressionBombTests
{
    private static HardenException ReadAll(byte[] deb, DebReaderOptions? options = null)
    {
        return Assert.Throws<HardenException>(() =>
        {
            using var reader = DebPackageReader.Open(new MemoryStream(deb), "evil.deb", options);
            foreach (var e in reader.ReadDataEntries()) e.Content.CopyTo(Stream.Null);
        });
    }

    [Fact]
    public void ZstdBomb_100KB_To3GiB_IsRefusedAtTheRatioBound_BeforeTheDiskFills()
    {
        var deb = HostileDebs.Deb(HostileDebs.ZstdZeroFileTar(3L << 30), "data.tar.zst");
        Assert.True(deb.Length < 200_000, $"the bomb is {deb.Length} bytes");

        using var dir = new TempDir("hi-bomb");
        var debPath = dir.Combine("evil_6.6.6_all.deb");
        File.WriteAllBytes(debPath, deb);
        var cache = dir.Combine("cache");
        var store = new ContentStore(cache);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<HardenException>(() => new PackageUnpacker(store, cache, CacheKey.FromSecret("bomb-test-secret-0123456789abcdefghijkl")).Get(new string('a', 64), debPath, "evil"));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 128L << 20, "memory stays bounded while refusing");
        Assert.Contains("evil.deb", e.Message.Replace("evil_6.6.6_all.deb", "evil.deb"));
        Assert.Contains("decompresses to more than 256 MiB", e.Message);
        Assert.Contains("decompression bomb", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        // Nothing half-written: no object, no temp file, no pointer to a partial unpack.
        Assert.Empty(Directory.EnumerateFiles(store.Root));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(cache, "unpacked-v4")));
    }

    [Fact]
    public void DataTar_FarBeyondDeclaredInstalledSize_IsRefused()
    {
        var control = CraftedDeb.Control + "Installed-Size: 10\n";
        var deb = HostileDebs.Deb(HostileDebs.ZstdZeroFileTar(64L << 20), "data.tar.zst", control);
        var e = ReadAll(deb);
        Assert.Contains("declares Installed-Size: 10 KiB", e.Message);
        Assert.Contains($"more than {BoundedFile.Size(InputLimits.UnpackedAllowance(10))}", e.Message);
    }

    [Fact]
    public void ManyPackages_PastThePerBuildBudget_AreRefused()
    {
        var budget = new UnpackBudget(1L << 20, "this build");
        var options = new DebReaderOptions { Build = budget };
        var small = CraftedDeb.Build(tw => tw.WriteEntry(CraftedDeb.File("./usr/share/a", new byte[600_000])));
        using (var reader = DebPackageReader.Open(new MemoryStream(small), "first.deb", options))
            foreach (var entry in reader.ReadDataEntries()) entry.Content.CopyTo(Stream.Null);
        var e = ReadAll(small, options);
        Assert.Contains("this build has decompressed more than 1 MiB", e.Message);
        Assert.Contains("evil.deb", e.Message);
    }

    [Theory]
    [InlineData(TarEntryFormat.Pax)]
    [InlineData(TarEntryFormat.Gnu)]
    public void OneMegabyteDeepPath_InATinyDeb_IsRefused_WithBoundedMemory(TarEntryFormat format)
    {
        // 4,000 levels of 250 characters: 1 MB of path in a package of about a kilobyte.
        var path = HostileDebs.DeepPath(4_000, 250);
        var deb = HostileDebs.WithPath(path, format);
        Assert.True(deb.Length < 4_096, $"the package is {deb.Length} bytes");
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = ReadAll(deb);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64L << 20, "memory stays bounded while refusing");
        Assert.Contains($"path longer than {InputLimits.MaxPathLength} bytes (PATH_MAX)", e.Message);
        Assert.True(e.Message.Length < 600, "the message quotes the start of the path only");
    }

    [Fact]
    public void PathSegment_LongerThanNameMax_IsRefused()
    {
        var e = ReadAll(HostileDebs.WithPath("./usr/" + new string('n', 256), TarEntryFormat.Pax));
        Assert.Contains($"path segment longer than {InputLimits.MaxPathSegmentLength} bytes (NAME_MAX)", e.Message);
        // Exactly at the bounds is fine.
        using var ok = DebPackageReader.Open(new MemoryStream(HostileDebs.WithPath("./usr/" + new string('n', 255), TarEntryFormat.Pax)), "ok.deb");
        Assert.Single(ok.ReadDataEntries());
    }

    [Fact]
    public void SymlinkTarget_LongerThanPathMax_IsRefused()
    {
        var e = ReadAll(CraftedDeb.Build(tw => tw.WriteEntry(CraftedDeb.Link(TarEntryType.SymbolicLink, "./usr/l", new string('t', 5000)))));
        Assert.Contains("symlink target longer than 4096", e.Message);
    }
}
