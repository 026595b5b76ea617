using System.Text.Json;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Registry;

/// <summary>Pushes to a real distribution 2.8 registry (docker-registry), read back by skopeo and by us.</summary>
[Trait("Category", "Integration")]
public sealed class DistributionPushTests
{
    [Fact]
    public async Task Push_MultiArchImage_SkopeoReadsItAndBlobsComeBackVerified()
    {
        var skopeo = RequiredService.Tool("skopeo", "skopeo");
        using var dir = new TempDir();
        using var server = RegistryFixture.Start();
        var (layout, baseIndex, _) = RegistryTestKit.TwoImages(dir);
        var registry = RegistryTestKit.Client(server.Host);
        var pusher = new ImagePusher(layout, registry, "hardened");

        var results = await pusher.PushAsync(ImagePusher.ImagesInLayout(layout, only: "base"));

        var r = Assert.Single(results);
        Assert.Equal("hardened/base", r.Repository);
        Assert.Equal(baseIndex.Digest, r.IndexDigest);
        Assert.Equal(["linux/amd64", "linux/arm64"], r.ManifestDigests.Keys.Order()); // the OCI spelling build.json uses
        Assert.Equal(TestImages.BlobsOf(layout, baseIndex).Sum(b => b.Size), r.UploadedBytes);

        var raw = RequiredService.RunOk(skopeo, ["inspect", "--raw", "--tls-verify=false", $"docker://{server.Host}/hardened/base:latest"]);
        Assert.Equal(baseIndex.Digest, Digest.Of(System.Text.Encoding.UTF8.GetBytes(raw)).ToString());
        var inspect = RequiredService.RunOk(skopeo, ["inspect", "--tls-verify=false", "--override-arch", "arm64", $"docker://{server.Host}/hardened/base:latest"]);
        using var doc = JsonDocument.Parse(inspect);
        Assert.Equal("arm64", doc.RootElement.GetProperty("Architecture").GetString());
        var arm = layout.ReadJson<ImageManifest>(r.ManifestDigests["linux/arm64"]);
        Assert.Equal(arm.Layers.Select(l => l.Digest), doc.RootElement.GetProperty("Layers").EnumerateArray().Select(e => e.GetString()));

        await RegistryTestKit.AssertAllBlobsVerify(registry, "hardened/base", layout, baseIndex);
        Assert.Equal(["latest"], await registry.ListTagsAsync("hardened/base"));
    }

    [Fact]
    public async Task Push_Again_UploadsNothingBecauseEveryBlobIsAHeadHit()
    {
        using var dir = new TempDir();
        using var server = RegistryFixture.Start();
        using var proxy = new RegistryProxy(server.Host);
        var (layout, _, _) = RegistryTestKit.TwoImages(dir);
        var pusher = new ImagePusher(layout, RegistryTestKit.Client(proxy.Authority), "ns");
        var images = ImagePusher.ImagesInLayout(layout);
        await pusher.PushAsync(images);
        proxy.ClearLog();

        var again = await pusher.PushAsync(images);

        Assert.All(again, r => Assert.Equal(0, r.UploadedBytes + r.MountedBytes));
        Assert.All(again, r => Assert.True(r.SkippedBlobs > 0));
        Assert.DoesNotContain(proxy.Log, RegistryProxy.IsUpload);
        Assert.DoesNotContain(proxy.Log, r => r.Method is "POST" or "PUT" or "PATCH");
    }

    [Fact]
    public async Task Push_SharedParentLayer_IsMountedFromTheSiblingRepository()
    {
        using var dir = new TempDir();
        using var server = RegistryFixture.Start();
        using var proxy = new RegistryProxy(server.Host);
        var (layout, baseIndex, appIndex) = RegistryTestKit.TwoImages(dir, parentBytes: 512 * 1024);
        var shared = Assert.Single(TestImages.BlobsOf(layout, baseIndex).IntersectBy(TestImages.BlobsOf(layout, appIndex).Select(b => b.Digest), b => b.Digest));
        var pusher = new ImagePusher(layout, RegistryTestKit.Client(proxy.Authority), "ns");

        var results = await pusher.PushAsync(ImagePusher.ImagesInLayout(layout));

        // Images go in name order: "app" uploads the parent layer, "base" mounts it.
        Assert.Equal(["app", "base"], results.Select(r => r.Image));
        Assert.Equal(0, results[0].MountedBlobs);
        Assert.Equal(1, results[1].MountedBlobs);
        Assert.Equal(shared.Size, results[1].MountedBytes);
        var mounts = proxy.Log.Where(r => r.Method == "POST" && r.PathAndQuery.Contains("mount=")).ToList();
        Assert.Single(mounts);
        Assert.Equal(201, mounts[0].Status);
        Assert.Contains("/v2/ns/base/blobs/uploads/", mounts[0].PathAndQuery);
        Assert.Contains("from=ns%2Fapp", mounts[0].PathAndQuery);
        Assert.DoesNotContain(proxy.Log, r => RegistryProxy.IsUpload(r) && r.PathAndQuery.StartsWith("/v2/ns/base/") && r.BodyBytes == shared.Size);
        await RegistryTestKit.AssertAllBlobsVerify(RegistryTestKit.Client(server.Host), "ns/app", layout, appIndex);
    }

    [Fact]
    public async Task Referrers_OnRegistryWithoutTheApi_ReturnNull_AndTheFallbackTagResolves()
    {
        using var dir = new TempDir();
        using var server = RegistryFixture.Start();
        var (layout, baseIndex, _) = RegistryTestKit.TwoImages(dir);
        var registry = RegistryTestKit.Client(server.Host);
        await new ImagePusher(layout, registry).PushAsync(ImagePusher.ImagesInLayout(layout, only: "base"));

        Assert.Null(await registry.GetReferrersAsync("base", baseIndex.Digest));

        // A cosign-style signature manifest stored under the fallback tag is found by tag.
        var payload = "{}"u8.ToArray();
        var layer = layout.WriteBlob(payload, MediaTypes.CosignSimpleSigning);
        var config = layout.WriteJson(new ImageConfig { Architecture = "", RootFs = new RootFs { DiffIds = [layer.Digest] } }, MediaTypes.ImageConfig);
        foreach (var b in new[] { layer, config })
            await registry.PushBlobAsync("base", b, new MemoryStream(layout.ReadBlob(b.Digest)));
        var sig = OciJson.Serialize(new ImageManifest { Config = config, Layers = [layer] });
        var tag = IRegistry.ReferrersFallbackTag(baseIndex.Digest, ".sig");
        await registry.PutManifestAsync("base", tag, sig, MediaTypes.ImageManifest);
        var found = await registry.ResolveManifestAsync("base", tag);
        Assert.Equal(Digest.Of(sig).ToString(), found?.Digest);
        Assert.Contains(tag, await registry.ListTagsAsync("base"));
    }

    [Fact]
    public async Task GetManifest_MissingTag_IsNull_AndUnknownRepositoryHasNoTags()
    {
        using var server = RegistryFixture.Start();
        var registry = RegistryTestKit.Client(server.Host);
        Assert.Null(await registry.GetManifestAsync("nothing/here", "latest"));
        Assert.Null(await registry.ResolveManifestAsync("nothing/here", "latest"));
        Assert.Empty(await registry.ListTagsAsync("nothing/here"));
        Assert.False(await registry.BlobExistsAsync("nothing/here", Digest.Of([1]).ToString()));
    }

    [Fact]
    public async Task GetManifest_WhoseBytesDoNotMatchTheRequestedDigest_IsRefused()
    {
        using var dir = new TempDir();
        using var server = RegistryFixture.Start();
        var (layout, baseIndex, appIndex) = RegistryTestKit.TwoImages(dir);
        var direct = RegistryTestKit.Client(server.Host);
        await new ImagePusher(layout, direct).PushAsync(ImagePusher.ImagesInLayout(layout));
        // A proxy that answers a request for base's index with app's index (a substituted manifest).
        using var proxy = new RegistryProxy(server.Host) { Rewrite = path => path.Replace($"/v2/base/manifests/{baseIndex.Digest}", $"/v2/app/manifests/{appIndex.Digest}") };
        var swapped = RegistryTestKit.Client(proxy.Authority);

        var e = await Assert.ThrowsAsync<RegistryException>(() => swapped.GetManifestAsync("base", baseIndex.Digest));
        Assert.Contains("tampered", e.Message);

        // Same for a blob: the bytes of another blob under the requested digest fail while streaming.
        var blob = TestImages.BlobsOf(layout, baseIndex).First(b => b.MediaType == MediaTypes.ImageConfig);
        var other = TestImages.BlobsOf(layout, appIndex).First(b => b.MediaType == MediaTypes.ImageConfig);
        using var p2 = new RegistryProxy(server.Host) { Rewrite = path => path.Replace($"/v2/base/blobs/{blob.Digest}", $"/v2/app/blobs/{other.Digest}") };
        await using var stream = await RegistryTestKit.Client(p2.Authority).GetBlobAsync("base", blob.Digest);
        var bad = await Assert.ThrowsAsync<HardenImage.Common.HardenException>(() => stream.CopyToAsync(Stream.Null));
        Assert.Contains("tampered", bad.Message);
    }
}
