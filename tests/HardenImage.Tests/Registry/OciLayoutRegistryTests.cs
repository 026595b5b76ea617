using System.Text.Json;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Registry;

public sealed class OciLayoutRegistryTests
{
    [Trait("Category", "Integration")]
    [Fact]
    public async Task LayoutRegistry_RoundTrip_SkopeoReadsEachRepository_AndRepushSkipsEverything()
    {
        var skopeo = RequiredService.Tool("skopeo", "skopeo");
        using var dir = new TempDir();
        var (layout, baseIndex, appIndex) = RegistryTestKit.TwoImages(dir);
        var registry = (OciLayoutRegistry)RegistryFactory.Create(RegistryTarget.Parse("oci:" + dir.Combine("registry")));
        var pusher = new ImagePusher(layout, registry, "ns");

        var results = await pusher.PushAsync(ImagePusher.ImagesInLayout(layout));

        Assert.Equal(1, results.Single(r => r.Image == "base").MountedBlobs);
        var raw = RequiredService.RunOk(skopeo, ["inspect", "--raw", $"oci:{registry.RepositoryPath("ns/app")}:latest"]);
        Assert.Equal(appIndex.Digest, Digest.Of(System.Text.Encoding.UTF8.GetBytes(raw)).ToString());
        var inspect = RequiredService.RunOk(skopeo, ["inspect", $"oci:{registry.RepositoryPath("ns/base")}:latest"]);
        Assert.Equal("amd64", JsonDocument.Parse(inspect).RootElement.GetProperty("Architecture").GetString());

        await RegistryTestKit.AssertAllBlobsVerify(registry, "ns/base", layout, baseIndex);
        Assert.Equal(["latest"], await registry.ListTagsAsync("ns/app"));
        var manifest = await registry.GetManifestAsync("ns/app", "latest");
        Assert.Equal(MediaTypes.ImageIndex, manifest?.MediaType);
        Assert.Null(await registry.GetReferrersAsync("ns/app", appIndex.Digest));

        var again = await pusher.PushAsync(ImagePusher.ImagesInLayout(layout));
        Assert.All(again, r => Assert.Equal(0, r.UploadedBytes + r.MountedBytes));
    }

    [Fact]
    public async Task LayoutRegistry_RejectsRepositoryNamesThatEscapeTheRoot()
    {
        using var dir = new TempDir();
        var registry = new OciLayoutRegistry(dir.Combine("registry"));
        var blob = new Descriptor { MediaType = MediaTypes.LayerTar, Digest = Digest.Of([1]).ToString(), Size = 1 };
        await Assert.ThrowsAsync<HardenException>(() => registry.PushBlobAsync("../escape", blob, new MemoryStream([1])));
        await Assert.ThrowsAsync<HardenException>(() => registry.PushBlobAsync("a/../../b", blob, new MemoryStream([1])));
        Assert.False(Directory.Exists(dir.Combine("escape")));
    }

    [Fact]
    public async Task LayoutRegistry_TamperedBlobFailsOnRead()
    {
        using var dir = new TempDir();
        var registry = new OciLayoutRegistry(dir.Combine("registry"));
        var bytes = "hello layer"u8.ToArray();
        var blob = new Descriptor { MediaType = MediaTypes.LayerTar, Digest = Digest.Of(bytes).ToString(), Size = bytes.Length };
        await registry.PushBlobAsync("repo", blob, new MemoryStream(bytes));
        var path = Path.Combine(registry.RepositoryPath("repo"), "blobs", "sha256", Digest.Parse(blob.Digest).Hex);
        File.WriteAllBytes(path, "jello layer"u8.ToArray());

        await using var s = await registry.GetBlobAsync("repo", blob.Digest);
        var e = await Assert.ThrowsAsync<HardenException>(() => s.CopyToAsync(Stream.Null));
        Assert.Contains("tampered", e.Message);
    }

    [Fact]
    public async Task PushBlob_WrongContent_IsRejectedAndNotStored()
    {
        using var dir = new TempDir();
        var registry = new OciLayoutRegistry(dir.Combine("registry"));
        var blob = new Descriptor { MediaType = MediaTypes.LayerTar, Digest = Digest.Of("right"u8).ToString(), Size = 5 };
        await Assert.ThrowsAsync<HardenException>(() => registry.PushBlobAsync("repo", blob, new MemoryStream("wrong"u8.ToArray())));
        Assert.False(await registry.BlobExistsAsync("repo", blob.Digest));
    }
}
