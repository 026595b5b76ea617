using System.Text;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Common;

/// <summary>
/// Issue 17: the lock, build.json, pushed.json and OCI documents are read through one bounded JSON reader: a null
/// where the model needs a value (also inside lists), nesting past 64 levels or a file past its size bound is one
/// HardenException naming the file and the JSON path, never a NullReferenceException later.
/// </summary>
public sealed class JsonBoundsTests
{
    private const string Pkg = """{"name":"a","version":"1","architecture":"amd64","source":"a","sourceVersion":"1","url":"http://x/a.deb","sha256":"00","size":1,"origin":"o"}""";

    private static string Lock(string packages) =>
        $$"""{"lockVersion":1,"sources":[],"images":[{"name":"base","inputsSha256":"00","architectures":[{"architecture":"amd64","packages":{{packages}}}]}]}""";

    public static TheoryData<string, string> NullsInTheLock() => new()
    {
        { Lock("null"), "$.images[0].architectures[0].packages" },
        { Lock("[null]"), "$.images[0].architectures[0].packages[0]" },
        { Lock($"[{Pkg.Replace("\"sha256\":\"00\"", "\"sha256\":null")}]"), "$.images[0].architectures[0].packages[0].sha256" },
        { Lock($"[{Pkg.Replace("\"requiredBy\"", "\"x\"")[..^1]},\"requiredBy\":[null]}}]"), "$.images[0].architectures[0].packages[0].requiredBy[0]" },
        { """{"lockVersion":1,"sources":[null],"images":[]}""", "$.sources[0]" },
        { """{"lockVersion":1,"sources":[],"images":null}""", "$.images" },
    };

    [Theory]
    [MemberData(nameof(NullsInTheLock))]
    public void NullInTheLock_IsRefused_WithItsJsonPath(string json, string path)
    {
        using var dir = new TempDir("hi-jsonnull");
        var file = dir.Combine("images.lock.json");
        File.WriteAllText(file, json);
        var e = Assert.Throws<HardenException>(() => LockFile.Load(file));
        Assert.StartsWith($"{file}: ", e.Message);
        Assert.Contains(path, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void DuplicateKey_IsRefused_NotReadAsFirstOrLastWins()
    {
        // Tampering: two parsers that disagree on {"sha256":"good","sha256":"evil"} can be played against each other.
        using var dir = new TempDir("hi-jsondup");
        var file = dir.Combine("images.lock.json");
        File.WriteAllText(file, Lock($"[{Pkg.Replace("\"sha256\":\"00\"", "\"sha256\":\"00\",\"sha256\":\"ff\"")}]"));
        var e = Assert.Throws<HardenException>(() => LockFile.Load(file));
        Assert.Contains("$.images[0].architectures[0].packages[0]", e.Message);
        var scan = Assert.Throws<HardenException>(() => BoundedJson.ParseNode("{\"image\":1,\"image\":2}"u8, "scan.json", "scan report", 1 << 20));
        Assert.StartsWith("scan.json: ", scan.Message);
        var doc = Assert.Throws<HardenException>(() => BoundedJson.Parse("{\"id\":\"a\",\"id\":\"b\"}"u8.ToArray(), "osv.json", "advisory file", 1 << 20));
        Assert.StartsWith("osv.json: ", doc.Message);
    }

    [Fact]
    public void JsonNull_AsTheWholeLock_IsRefused()
    {
        using var dir = new TempDir("hi-jsonnull");
        var file = dir.Combine("images.lock.json");
        File.WriteAllText(file, "null");
        var e = Assert.Throws<HardenException>(() => LockFile.Load(file));
        Assert.Contains("empty (JSON null)", e.Message);
    }

    [Fact]
    public void DeepJson_IsRefused_AtTheDepthLimit()
    {
        // Typed fields stop a deep value at the first type mismatch; free-form ones (ExposedPorts, advisories) need the depth bound.
        using var dir = new TempDir("hi-jsondeep");
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        var deep = Encoding.UTF8.GetBytes("{\"architecture\":\"amd64\",\"rootfs\":{\"diff_ids\":[]},\"config\":{\"ExposedPorts\":{\"80/tcp\":"
                                          + new string('[', 100_000) + new string(']', 100_000) + "}}}");
        var digest = Digest.Of(deep).ToString();
        Directory.CreateDirectory(Path.GetDirectoryName(layout.BlobPath(digest))!);
        File.WriteAllBytes(layout.BlobPath(digest), deep);
        var e = Assert.Throws<HardenException>(() => layout.ReadJson<ImageConfig>(digest));
        Assert.StartsWith($"{layout.Root}: blob {digest}: ", e.Message);
        Assert.True(e.Message.Contains("depth", StringComparison.OrdinalIgnoreCase), e.Message);
        Assert.Contains("$.config.ExposedPorts", e.Message);

        var advisory = Assert.Throws<HardenException>(() => BoundedJson.Parse(Encoding.UTF8.GetBytes(new string('[', 65) + new string(']', 65)), "tracker.json", "advisory file", 1 << 20));
        Assert.True(advisory.Message.Contains("depth", StringComparison.OrdinalIgnoreCase), advisory.Message);
        Assert.StartsWith("tracker.json: ", advisory.Message);
    }

    [Fact]
    public void NullInBuildJson_IsRefused_WithItsJsonPath()
    {
        using var dir = new TempDir("hi-jsonnull");
        var file = dir.Combine("build.json");
        File.WriteAllText(file, """{"version":1,"images":[{"name":"base","index":"sha256:00","architectures":[null]}]}""");
        var e = Assert.Throws<HardenException>(() => BuildManifest.Load(file));
        Assert.Contains("$.images[0].architectures[0]", e.Message);
        // Readers get the same clear line; only the build itself builds over it, with a warning.
        Assert.Contains("$.images[0].architectures[0]", Assert.Throws<HardenException>(() => BuildManifest.TryLoad(file)).Message);
        var warnings = new List<string>();
        Assert.Null(BuildManifest.LoadOrRebuildOver(file, warnings.Add));
        Assert.Contains("$.images[0].architectures[0]", Assert.Single(warnings));
    }

    [Fact]
    public void OversizedLock_IsRefusedBeforeReading()
    {
        using var dir = new TempDir("hi-jsonbig");
        var file = dir.Combine("images.lock.json");
        using (var fs = File.Create(file)) fs.SetLength(InputLimits.MaxLockBytes + 1);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<HardenException>(() => LockFile.Load(file));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 8L << 20);
        Assert.Contains("larger than 64 MiB", e.Message);
    }

    public static TheoryData<string, string> BrokenOciIndexes() => new()
    {
        { """{"schemaVersion":2,"manifests":null}""", "$.manifests" },
        { """{"schemaVersion":2,"manifests":[null]}""", "$.manifests[0]" },
        { """{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":null,"size":1}]}""", "$.manifests[0].digest" },
        { """{"schemaVersion":2,"manifests":[{"mediaType":"m","digest":"d","size":"big"}]}""", "$.manifests[0].size" },
        { """{"schemaVersion":2,"manifests":[{"mediaType":"m","digest":"d","size":1,"annotations":{"a":null}}]}""", "$.manifests[0].annotations.a" },
        { """{"schemaVersion":2}""", "manifests" },
        { """{"schemaVersion":2,"manifests":[""", "$.manifests" },
    };

    [Theory]
    [MemberData(nameof(BrokenOciIndexes))]
    public void BrokenOciIndex_IsRefused_WithItsJsonPath(string json, string path)
    {
        using var dir = new TempDir("hi-ociindex");
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        File.WriteAllText(layout.IndexPath, json);
        var e = Assert.Throws<HardenException>(() => new OciLayoutReader(layout).Tags());
        Assert.StartsWith(layout.IndexPath, e.Message);
        Assert.Contains(path, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void OversizedManifestBlob_IsRefused_OnTheBytesRead()
    {
        using var dir = new TempDir("hi-ociblob");
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        var big = Encoding.UTF8.GetBytes("{\"a\":\"" + new string('x', (int)InputLimits.MaxOciDocumentBytes) + "\"}");
        var digest = Digest.Of(big).ToString();
        Directory.CreateDirectory(Path.GetDirectoryName(layout.BlobPath(digest))!);
        File.WriteAllBytes(layout.BlobPath(digest), big);
        var e = Assert.Throws<HardenException>(() => layout.ReadJson<ImageManifest>(digest));
        Assert.Contains("larger than 4 MiB", e.Message);
    }

    [Fact]
    public void NullInPushedJson_IsAClearError_NotACrash_NorANoRecord()
    {
        using var dir = new TempDir("hi-pushed");
        var file = dir.Combine("pushed.json");
        File.WriteAllText(file, """{"registry":"r","images":{"base":null}}""");
        var e = Assert.Throws<HardenException>(() => PushedFile.TryLoad(file));
        Assert.Contains("$.images.base", e.Message);
        Assert.Contains("Re-run 'harden push'", e.Message);
    }
}
