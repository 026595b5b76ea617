using HardenImage.Apt;
using HardenImage.Common;

namespace HardenImage.Tests.Apt;

/// <summary>Tampering: bytes that differ from the signed index never enter (or stay in) the cache.</summary>
public class FetchTamperingTests : IDisposable
{
    private readonly string _cacheDir = Directory.CreateTempSubdirectory("hi-fetch-").FullName;
    private readonly HttpClient _http = new();

    public void Dispose()
    {
        _http.Dispose();
        Directory.Delete(_cacheDir, recursive: true);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Fetch_RejectsTamperedDeb_AndCachesNothing()
    {
        await using var server = new LoopbackDebServer();
        var genuine = FetchFixture.RandomBytes(4096, 1);
        var tampered = (byte[])genuine.Clone();
        tampered[2000] ^= 0x01;
        var url = server.Serve("/pool/libfoo_1.0-1_amd64.deb", ScriptedResponse.Ok(tampered));
        var fetcher = new DebFetcher(_http, new DebCache(_cacheDir), FetchFixture.FastRetries);

        var e = await Assert.ThrowsAsync<HardenException>(() => fetcher.FetchAsync(new[] { FetchFixture.Deb("libfoo", url, genuine) }));

        Assert.Contains("refusing tampered .deb libfoo 1.0-1", e.Message);
        Assert.Contains(url, e.Message);
        Assert.Empty(FetchFixture.FilesIn(_cacheDir));              // neither the file nor a temp file
        Assert.Equal(1, server.HitsOn("/pool/libfoo_1.0-1_amd64.deb")); // tampering is not retried
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Fetch_RejectsABodyLongerThanLocked_WithoutReadingItAll()
    {
        await using var server = new LoopbackDebServer();
        var genuine = FetchFixture.RandomBytes(1000, 1);
        var longer = genuine.Concat(FetchFixture.RandomBytes(5000, 2)).ToArray();
        var url = server.Serve("/big.deb", ScriptedResponse.Ok(longer));
        var fetcher = new DebFetcher(_http, new DebCache(_cacheDir), FetchFixture.FastRetries);

        var e = await Assert.ThrowsAsync<HardenException>(() => fetcher.FetchAsync(new[] { FetchFixture.Deb("big", url, genuine) }));

        Assert.Contains("refusing tampered .deb", e.Message);
        Assert.Contains("6000 bytes, the lock says 1000", e.Message);
        Assert.Empty(FetchFixture.FilesIn(_cacheDir));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Fetch_CorruptedCachedFile_IsEvictedAndFetchedAgain()
    {
        await using var server = new LoopbackDebServer();
        var body = FetchFixture.RandomBytes(8192, 5);
        var deb = FetchFixture.Deb("libbar", server.Serve("/libbar.deb", ScriptedResponse.Ok(body)), body);
        var cache = new DebCache(_cacheDir);
        var fetcher = new DebFetcher(_http, cache, FetchFixture.FastRetries);
        var path = (await fetcher.FetchAsync(new[] { deb }))[0].Path;

        var bytes = await File.ReadAllBytesAsync(path);
        bytes[100] ^= 0xff; // same size, different content: only the hash can tell
        await File.WriteAllBytesAsync(path, bytes);

        var again = (await fetcher.FetchAsync(new[] { deb }))[0];

        Assert.False(again.CacheHit);
        Assert.True(again.EvictedCorruptCopy);
        Assert.Equal(body, await File.ReadAllBytesAsync(again.Path));
        Assert.Equal(2, server.HitsOn("/libbar.deb"));
    }

    [Fact]
    public async Task Cache_TruncatedFile_IsEvicted()
    {
        var body = FetchFixture.RandomBytes(100, 6);
        var cache = new DebCache(_cacheDir);
        var sha = Sha256Hex.Of(body);
        Directory.CreateDirectory(cache.DebsDirectory);
        await File.WriteAllBytesAsync(cache.PathFor(sha), body.AsSpan(0, 50).ToArray());

        Assert.Equal(DebCacheState.Evicted, await cache.VerifyAsync(sha, body.Length));
        Assert.False(File.Exists(cache.PathFor(sha)));
        Assert.Equal(DebCacheState.Missing, await cache.VerifyAsync(sha, body.Length));
    }

    [Fact]
    public async Task Fetch_LockEntryWithBadDigest_IsRefusedBeforeAnyDownload()
    {
        var fetcher = new DebFetcher(_http, new DebCache(_cacheDir), FetchFixture.FastRetries);

        var e = await Assert.ThrowsAsync<HardenException>(() => fetcher.FetchAsync(new[]
        {
            new DebDownload("evil", "1", "http://127.0.0.1:9/evil.deb", "../../../../etc/passwd", 10),
        }));

        Assert.Contains("not 64 hex digits", e.Message);
    }
}
