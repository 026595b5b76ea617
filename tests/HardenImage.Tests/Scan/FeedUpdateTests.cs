using System.IO.Compression;
using System.Net;
using System.Text;
using HardenImage.Common;
using HardenImage.Scan;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Scan;

public class FeedUpdateTests
{
    [Trait("Category", "Integration")]
    [Fact]
    public async Task DbUpdate_UnreachableFeedFailsFastWithTheOfflineAlternative()
    {
        using var dir = new TempDir("hi-feeds");
        var port = LoopbackPort.Free(); // nothing listens there
        using var http = AdvisoryFeedUpdater.CreateHttpClient(TimeSpan.FromSeconds(5));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<HardenException>(() => new AdvisoryFeedUpdater(http).UpdateAsync(dir.Path,
            AdvisoryFeedUpdater.Feeds($"http://127.0.0.1:{port}/tracker/data/json", $"http://127.0.0.1:{port}")));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"took {sw.Elapsed}"); // refused at once; only a hang reaches this generous bound
        Assert.Contains($"http://127.0.0.1:{port}/tracker/data/json", e.Message);
        Assert.Contains("--db", e.Message);
        Assert.Empty(Directory.GetFiles(dir.Path)); // nothing half-written
    }

    [Fact]
    public void DbUpdate_DefaultsAreTheRealFeeds()
    {
        var feeds = AdvisoryFeedUpdater.Feeds();
        Assert.Contains(feeds, f => f.Url == "https://security-tracker.debian.org/tracker/data/json");
        Assert.Contains(feeds, f => f.Url == "https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip");
        Assert.Contains(feeds, f => f.Url == "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip");
    }

    private sealed class MirrorHandler(Dictionary<string, byte[]> content) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(content.TryGetValue(request.RequestUri!.AbsolutePath, out var body)
                ? new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(body) }
                : new HttpResponseMessage(HttpStatusCode.NotFound));
    }

    [Fact]
    public async Task DbUpdate_WritesFeedsThatIndex()
    {
        static byte[] Zip(string name, string json)
        {
            using var ms = new MemoryStream();
            using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
            using (var w = new StreamWriter(zip.CreateEntry(name).Open())) w.Write(json);
            return ms.ToArray();
        }
        var tracker = File.ReadAllBytes(ScanFixtures.Data("vulndb", "debian", "anchore-vunnel-fixtures", "debian.json"));
        var handler = new MirrorHandler(new()
        {
            ["/tracker/data/json"] = tracker,
            ["/Debian/all.zip"] = Zip("DEBIAN-CVE-1.json", """{"id":"DEBIAN-CVE-1","modified":"2025-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:13","name":"zlib"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}"""),
            ["/PyPI/all.zip"] = Zip("PYSEC-1.json", """{"id":"PYSEC-1","modified":"2025-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"Jinja2"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.1.5"}]}]}]}"""),
        });
        using var dir = new TempDir("hi-feeds");
        using var http = new HttpClient(handler);
        var files = await new AdvisoryFeedUpdater(http).UpdateAsync(dir.Path, AdvisoryFeedUpdater.Feeds("http://mirror.invalid/tracker/data/json", "http://mirror.invalid"));
        Assert.Equal(3, files.Count);
        var idx = AdvisoryIndexStore.Build(dir.Path);
        Assert.Single(idx.Lookup("PyPI", "jinja2"));
        Assert.Single(idx.Lookup("Debian:13", "zlib"));
        Assert.NotEmpty(idx.Lookup("Debian:12", "sope"));

        var e = await Assert.ThrowsAsync<HardenException>(() => new AdvisoryFeedUpdater(http).UpdateAsync(dir.Path, [("x.json", "http://mirror.invalid/missing")]));
        Assert.Contains("HTTP 404", e.Message);
    }
}
