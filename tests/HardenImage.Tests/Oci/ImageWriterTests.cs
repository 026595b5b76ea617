using System.Text;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;
using static HardenImage.Tests.Oci.OciTestImages;

namespace HardenImage.Tests.Oci;

public class ImageWriterTests
{
    [Fact]
    public void Build_IsBitForBitReproducible_AcrossLayouts()
    {
        using var a = new TempDir();
        using var b = new TempDir();
        var imageA = WriteImage(OciLayout.OpenOrCreate(a.Path), "base", "1.0", SampleEntries(), "amd64", "arm64");
        var shuffled = SampleEntries().AsEnumerable().Reverse().ToList();
        var imageB = WriteImage(OciLayout.OpenOrCreate(b.Path), "base", "1.0", shuffled, "arm64", "amd64");
        Assert.Equal(imageA.Index.Digest, imageB.Index.Digest);
        Assert.Equal(File.ReadAllBytes(Path.Combine(a.Path, "index.json")), File.ReadAllBytes(Path.Combine(b.Path, "index.json")));
        Assert.Equal(Directory.GetFiles(Path.Combine(a.Path, "blobs", "sha256")).Select(Path.GetFileName).Order(),
            Directory.GetFiles(Path.Combine(b.Path, "blobs", "sha256")).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void Config_CreatedIsTheEpochInRfc3339_AndDiffIdsFollowLayers()
    {
        using var dir = new TempDir();
        var layout = OciLayout.OpenOrCreate(dir.Path);
        var image = WriteImage(layout, "base", "1.0", SampleEntries(), "amd64");
        var m = Assert.Single(image.Manifests);
        Assert.Equal("2025-05-17T00:00:00Z", m.Config.Created);
        var configJson = Encoding.UTF8.GetString(layout.ReadBlob(m.ConfigDescriptor.Digest));
        Assert.Contains("\"created\":\"2025-05-17T00:00:00Z\"", configJson);
        Assert.Contains("\"architecture\":\"amd64\"", configJson);
        Assert.Single(m.Config.RootFs.DiffIds);
        Assert.Equal("amd64", m.Descriptor.Platform!.Architecture);
        Assert.Equal(["base", "base:1.0"], new OciLayoutReader(layout).Tags());
    }

    [Fact]
    public void Tag_ReplacesOnlyTheImagesOwnTags()
    {
        using var dir = new TempDir();
        var layout = OciLayout.OpenOrCreate(dir.Path);
        WriteImage(layout, "base", "1.0", SampleEntries(), "amd64");
        var python1 = WriteImage(layout, "python", "3.13", [LayerEntry.File("py", [1])], "amd64");
        var python2 = WriteImage(layout, "python", "3.13", [LayerEntry.File("py", [2])], "amd64");
        Assert.NotEqual(python1.Index.Digest, python2.Index.Digest);
        var reader = new OciLayoutReader(layout);
        Assert.Equal(["base", "base:1.0", "python", "python:3.13"], reader.Tags());
        Assert.Equal(python2.Index.Digest, reader.ResolveTag("python:3.13").Digest);
    }

    [Fact]
    public void Tag_KeepsUntaggedEntriesOfOtherTools()
    {
        using var dir = new TempDir();
        var layout = OciLayout.OpenOrCreate(dir.Path);
        var image = WriteImage(layout, "base", "1.0", SampleEntries(), "amd64");
        var untagged = image.Manifests[0].Descriptor with { Annotations = null };
        layout.WriteIndex(layout.ReadIndex() with { Manifests = [.. layout.ReadIndex().Manifests, untagged] });
        layout.Tag("extra", image.Index);
        var manifests = layout.ReadIndex().Manifests;
        Assert.Equal(4, manifests.Count);
        Assert.Null(manifests[0].Annotations);
        Assert.Equal(["base", "base:1.0", "extra"], new OciLayoutReader(layout).Tags());
    }

    [Theory]
    [InlineData("base", "1.0 beta")]
    [InlineData("../base", "1.0")]
    [InlineData("base", "")]
    public void RefNames_OutsideTheSpecGrammar_AreRefused(string name, string version)
    {
        using var dir = new TempDir();
        var layout = OciLayout.OpenOrCreate(dir.Path);
        if (version == "") name += "/"; // a trailing slash is as bad as a space
        Assert.Throws<HardenException>(() => WriteImage(layout, name, version, SampleEntries(), "amd64"));
        Assert.Empty(new OciLayoutReader(layout).Tags());
    }

    [Fact]
    public void FailingBuild_LeavesThePreviousLayoutValid()
    {
        using var dir = new TempDir();
        var layout = OciLayout.OpenOrCreate(dir.Path);
        var first = WriteImage(layout, "base", "1.0", SampleEntries(), "amd64");
        var indexBefore = File.ReadAllBytes(layout.IndexPath);

        var broken = LayerContent.FromStream(() => throw new IOException("disk read failed"), 100);
        Assert.Throws<IOException>(() => WriteImage(layout, "base", "1.0", [.. SampleEntries(), LayerEntry.File("broken", broken)], "amd64"));

        Assert.Equal(indexBefore, File.ReadAllBytes(layout.IndexPath));
        var reader = new OciLayoutReader(layout);
        Assert.Empty(reader.Verify("base:1.0", checkDiffIds: true));
        Assert.Equal(first.Index.Digest, reader.ResolveTag("base").Digest);
        Assert.DoesNotContain(Directory.GetFiles(layout.BlobsDir), f => Path.GetFileName(f).StartsWith(".tmp", StringComparison.Ordinal));
    }

    [Fact]
    public void Verify_ReportsTamperedAndMissingBlobs()
    {
        using var dir = new TempDir();
        var layout = OciLayout.OpenOrCreate(dir.Path);
        var image = WriteImage(layout, "base", "1.0", SampleEntries(), "amd64", "arm64");
        var reader = new OciLayoutReader(layout);
        Assert.Empty(reader.Verify("base", checkDiffIds: true));

        var layerPath = layout.BlobPath(image.Manifests[0].Manifest.Layers[0].Digest);
        var bytes = File.ReadAllBytes(layerPath);
        bytes[^5] ^= 0xff;
        File.WriteAllBytes(layerPath, bytes);
        Assert.Contains(reader.Verify("base"), p => p.Contains("does not match its digest"));
        var ex = Assert.Throws<HardenException>(() => new DockerArchiveWriter(layout).Write(reader.ResolveAll("base")[0], ["base:1"], Stream.Null));
        Assert.Contains(image.Manifests[0].Manifest.Layers[0].Digest, ex.Message);

        File.Delete(layout.BlobPath(image.Manifests[1].ConfigDescriptor.Digest));
        Assert.Contains(reader.Verify("base"), p => p.Contains("is missing"));
        Assert.Equal(["tag 'nope' is not in index.json"], reader.Verify("nope"));
    }

    [Fact]
    public void Resolve_FindsEachPlatformAndNamesTheMissingOne()
    {
        using var dir = new TempDir();
        var layout = OciLayout.OpenOrCreate(dir.Path);
        WriteImage(layout, "base", "1.0", SampleEntries(), "amd64", "arm64");
        var reader = new OciLayoutReader(layout);
        Assert.Equal(["amd64", "arm64"], reader.ResolveAll("base").Select(m => m.Platform.Architecture));
        Assert.Equal("arm64", reader.Resolve("base", new Platform { Architecture = "arm64" }).Config.Architecture);
        var ex = Assert.Throws<HardenException>(() => reader.Resolve("base", new Platform { Architecture = "s390x" }));
        Assert.Contains("linux/amd64, linux/arm64", ex.Message);
    }
}
