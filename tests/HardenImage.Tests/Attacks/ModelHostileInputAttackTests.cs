using System.Formats.Tar;
using System.Text;
using HardenImage.Common;
using HardenImage.Model;
using HardenImage.Tests.Infrastructure;
using HardenImage.Tests.Model;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// Audit of issue 16 (threats T, D, E): a model card someone else wrote and a model artifact someone else published —
/// signed by the release key itself, so only the content checks stand — end in one clear refusal that names the
/// layer or the file, and leave nothing behind.
/// </summary>
public sealed class ModelHostileInputAttackTests
{
    [Theory]
    [InlineData("billion laughs", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\nlimitations: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n")]
    [InlineData("duplicate key", "license: Apache-2.0\nlicense: MIT\n")]
    [InlineData("deep nesting", "description: " + "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n")]
    [InlineData("not YAML", "description: 'unterminated\n")]
    public void Card_Hostile_IsOneLineErrorNamingTheCard(string what, string yaml)
    {
        using var dir = new TempDir("hi-card");
        var path = dir.Combine("card.yaml");
        File.WriteAllText(path, yaml);
        var e = Record.Exception(() => ModelCard.Load(path));
        Assert.True(e is HardenException, $"{what}: {e?.GetType().Name}: {e?.Message}");
        Assert.Contains(path, e!.Message);
        Assert.DoesNotContain("\n   at ", e.Message);
    }

    [Fact]
    public void Card_HugeString_IsRefusedByTheSizeBound()
    {
        using var dir = new TempDir("hi-card");
        var path = dir.Combine("card.yaml");
        File.WriteAllText(path, "description: " + new string('x', 2 << 20) + "\n");
        var e = Assert.Throws<HardenException>(() => ModelCard.Load(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public async Task Fetch_ManifestListingOneLayerTwice_IsRefused()
    {
        using var kit = new ModelTestKit();
        var hostile = new HostileArtifact(kit) { LayerRepeat = 2 };
        hostile.AddFile("model.bin", "weights"u8.ToArray());
        var model = await hostile.PublishAsync();
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, kit.Combine("fetched")));
        Assert.Contains("file path 'model.bin' is listed by two layers", ex.Message);
        Assert.False(Directory.Exists(kit.Combine("fetched")));
    }

    // Two layers with one blob but different annotated paths: the blob holds one path, so the other layer lies.
    [Fact]
    public async Task Fetch_OneBlobUnderTwoPaths_IsRefused()
    {
        using var kit = new ModelTestKit();
        var hostile = new HostileArtifact(kit);
        hostile.AddFile("model.bin", "weights"u8.ToArray());
        hostile.AddLayer("copy.bin", "weights"u8.ToArray(), tar =>
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "model.bin") { DataStream = new MemoryStream("weights"u8.ToArray()) }));
        var model = await hostile.PublishAsync();
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, kit.Combine("fetched")));
        Assert.Contains("holds file 'model.bin', but the signed manifest says the layer is 'copy.bin'", ex.Message);
        Assert.False(Directory.Exists(kit.Combine("fetched")));
    }

    [Theory]
    [InlineData("model\0.bin", "NUL byte in path")]
    [InlineData("weights/../../etc/passwd", "'..' segment")]
    [InlineData("", "empty path")]
    public async Task Fetch_FilePathAnnotationWithNulOrDotDot_IsRefused(string path, string reason)
    {
        using var kit = new ModelTestKit();
        var hostile = new HostileArtifact(kit);
        hostile.AddLayer(path, "x"u8.ToArray(), tar =>
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "model.bin") { DataStream = new MemoryStream("x"u8.ToArray()) }));
        var model = await hostile.PublishAsync();
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, kit.Combine("fetched")));
        Assert.Contains($"({reason})", ex.Message);
        Assert.False(Directory.Exists(kit.Combine("fetched")));
    }

    // The registry serves more bytes than the signed descriptor says: refused as they arrive, not after the disk fills.
    [Fact]
    public async Task Fetch_LayerLargerThanDeclared_IsRefused_NamingTheLayer()
    {
        using var kit = new ModelTestKit();
        var hostile = new HostileArtifact(kit) { LayerSizeDelta = -512 };
        hostile.AddFile("model.bin", Encoding.ASCII.GetBytes(new string('w', 4096)));
        var model = await hostile.PublishAsync();
        var ex = await Assert.ThrowsAsync<HardenException>(() => kit.FetchAsync(model, kit.Combine("fetched")));
        Assert.Contains("layer 0 (model.bin", ex.Message);
        Assert.Contains("longer than", ex.Message);
        Assert.False(Directory.Exists(kit.Combine("fetched")));
    }
}
