using System.IO.Compression;
using System.Text;
using HardenImage.Common;
using HardenImage.Scan;
using HardenImage.Tests.Infrastructure;
using static HardenImage.Tests.Scan.ScanFixtures;

namespace HardenImage.Tests.Scan;

public class AdvisoryStoreTests
{
    [Fact]
    public void TrackerJson_ReadsRealExcerptIncludingEmptyReleases()
    {
        var (records, sources) = AdvisorySourceReader.ReadAll(Data("vulndb", "debian", "anchore-vunnel-fixtures", "debian.json"));
        var sope = records.Single(r => r.Package == "sope" && r.Id == "CVE-2025-53603" && r.Ecosystem == "Debian:12");
        Assert.Equal(new TrackerStatus("resolved", "5.8.0-1+deb12u1", "not yet assigned", null, null), sope.Tracker);
        var proto = records.First(r => r.Package == "prototypejs" && r.Id == "CVE-2008-7220");
        Assert.Equal("high", proto.Tracker!.Urgency); // "high**" means "from NVD"; the stars are dropped
        Assert.DoesNotContain(records, r => r.Package == "chromium-browser"); // "releases": [] carries nothing
        Assert.Single(sources);
    }

    [Fact]
    public void VulnList_DerivesReleaseStatusLikeTheTracker()
    {
        var idx = RealIndex;
        AdvisoryRecord Rec(string eco, string pkg, string id) => idx.Lookup(eco, pkg).Single(r => r.Id == id && r.Origin == AdvisoryOrigins.DebianTracker);
        // Own release line: [bookworm] - glibc <no-dsa> (Minor issue)
        Assert.Equal(new TrackerStatus("open", null, "not yet assigned", "Minor issue", null), Rec("Debian:12", "glibc", "CVE-2025-4802").Tracker);
        // No trixie line: trixie inherits the sid line "- glibc 2.39-4".
        Assert.Equal("2.39-4", Rec("Debian:13", "glibc", "CVE-2025-4802").Tracker!.FixedVersion);
        // No bookworm line, but DSA-5514-1 (xref'd) fixed glibc in bookworm.
        Assert.Equal("2.36-9+deb12u3", Rec("Debian:12", "glibc", "CVE-2023-4911").Tracker!.FixedVersion);
        // sid line with Severity: unimportant.
        Assert.Equal("unimportant", Rec("Debian:13", "glibc", "CVE-2019-1010022").Tracker!.Urgency);
    }

    [Fact]
    public void Osv_ReadsJsonYamlAndJsonlAndDropsDuplicates()
    {
        var idx = RealIndex;
        var pillow = idx.Lookup("PyPI", "pillow");
        Assert.Equal(pillow.Count, pillow.Select(r => r.Id).Distinct().Count()); // YAML + derived JSONL hold the same records
        Assert.Contains(pillow, r => r.Id == "PYSEC-2014-10" && r.Aliases.Contains("CVE-2014-3589"));
        var torch = idx.Lookup("PyPI", "torch").Single(r => r.Id == "GHSA-53q9-r3pm-6pq6");
        Assert.Contains("CVE-2025-32434", torch.Aliases);
        Assert.Contains(idx.Sources, s => s.Contains("OSV YAML", StringComparison.Ordinal));
        Assert.DoesNotContain(idx.All, r => r.Id == "PYSEC-2022-43059"); // withdrawn
    }

    [Fact]
    public void Index_IsCachedByDataDigestAndRebuiltWhenDamaged()
    {
        using var cache = new TempDir("hi-idx");
        using var db = new TempDir("hi-db");
        File.Copy(Data("vulndb", "debian", "anchore-vunnel-fixtures", "debian.json"), db.Combine("debian.json"));
        var store = new AdvisoryIndexStore(cache.Path);
        var first = store.LoadOrBuild(db.Path);
        Assert.False(store.LastWasCacheHit);
        var second = store.LoadOrBuild(db.Path);
        Assert.True(store.LastWasCacheHit);
        Assert.Equal(first.RecordCount, second.RecordCount);
        Assert.Equal(first.Lookup("Debian:12", "sope").Single().Tracker, second.Lookup("Debian:12", "sope").Single().Tracker);

        // Tampered cache: checksum fails, the index is rebuilt from the data rather than trusted.
        var path = store.CachePathFor(first.DataDigest);
        var bytes = File.ReadAllBytes(path);
        var at = Encoding.UTF8.GetBytes("5.8.0-1+deb12u1");
        var pos = bytes.AsSpan().IndexOf(at);
        bytes[pos] = (byte)'9';
        File.WriteAllBytes(path, bytes);
        var third = store.LoadOrBuild(db.Path);
        Assert.False(store.LastWasCacheHit);
        Assert.Equal("5.8.0-1+deb12u1", third.Lookup("Debian:12", "sope").Single().Tracker!.FixedVersion);

        // Changed data ⇒ another digest ⇒ no stale answer.
        File.WriteAllText(db.Combine("extra.json"), """{"id":"PYSEC-X-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"Foo_Bar"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0"}]}]}]}""");
        var fourth = store.LoadOrBuild(db.Path);
        Assert.False(store.LastWasCacheHit);
        Assert.NotEqual(first.DataDigest, fourth.DataDigest);
        Assert.Single(fourth.Lookup("PyPI", "foo-bar"));
    }

    [Fact]
    public void Index_RoundTripsEveryRecordOfTheRealExcerpts()
    {
        var idx = RealIndex;
        var copy = AdvisoryIndex.Deserialize(idx.Serialize());
        Assert.Equal(idx.RecordCount, copy.RecordCount);
        var a = idx.All.OrderBy(r => (r.Ecosystem, r.Package, r.Id, r.Origin).ToString(), StringComparer.Ordinal).ToList();
        var b = copy.All.OrderBy(r => (r.Ecosystem, r.Package, r.Id, r.Origin).ToString(), StringComparer.Ordinal).ToList();
        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal(a[i].Tracker, b[i].Tracker);
            Assert.Equal(a[i].Aliases, b[i].Aliases);
            Assert.Equal(a[i].Versions, b[i].Versions);
            Assert.Equal(a[i].Ranges.SelectMany(r => r.Events), b[i].Ranges.SelectMany(r => r.Events));
            Assert.Equal(a[i].CvssVector, b[i].CvssVector);
        }
    }

    [Fact]
    public void OsvZip_IsReadLikeTheOsvExports()
    {
        using var dir = new TempDir("hi-zip");
        var zipPath = dir.Combine("all.zip");
        using (var zip = ZipFile.Open(zipPath, ZipArchiveMode.Create))
        {
            var e = zip.CreateEntry("DEBIAN-CVE-2025-0001.json");
            using var w = new StreamWriter(e.Open());
            w.Write("""{"id":"DEBIAN-CVE-2025-0001","modified":"2025-01-01T00:00:00Z","upstream":["CVE-2025-0001"],"affected":[{"package":{"ecosystem":"Debian:13","name":"openssl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.5.1-1+deb13u1"}]}]}]}""");
        }
        var (records, _) = AdvisorySourceReader.ReadAll(zipPath);
        var r = Assert.Single(records);
        Assert.Equal(("Debian:13", "openssl", "CVE-2025-0001"), (r.Ecosystem, r.Package, r.Aliases.Single()));
    }

    [Fact]
    public void MissingData_SaysHowToProvideIt()
    {
        var e = Assert.Throws<HardenException>(() => AdvisoryIndexStore.ComputeDataDigest("/nonexistent/vulndb"));
        Assert.Contains("--db", e.Message);
        Assert.Contains("harden db update", e.Message);
    }
}
