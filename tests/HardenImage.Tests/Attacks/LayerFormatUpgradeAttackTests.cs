using System.IO.Compression;
using HardenImage.Build;
using HardenImage.Oci;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// A previous layer is reused, and a build called up to date, when its layer key matches (sealed record, intact
/// blob). The key holds <see cref="ImageBuilder.ToolVersion"/>: when harden writes other bytes for the same tar, the
/// version must move on, or an upgraded harden keeps the old bytes as current while a clean machine gets other
/// digests from the same lock (threat T: "anyone can rebuild and compare" fails).
/// </summary>
public class LayerFormatUpgradeAttackTests
{
    /// <summary>What harden-build/4 wrote: one zlib stream, the gzip header fixed to Go's.</summary>
    private static byte[] SingleStreamGzip(byte[] tar)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true)) gzip.Write(tar);
        var bytes = output.ToArray();
        ParallelGzipStream.Header.CopyTo(bytes);
        return bytes;
    }

    [Fact]
    public void ChunkedGzip_DiffersFromWhatHardenBuild4Wrote_SoTheToolVersionMovedOn()
    {
        var rng = new Random(4);
        var tar = new byte[3 * ParallelGzipStream.ChunkSize + 100];
        for (var i = 0; i < tar.Length; i++) tar[i] = i / 3000 % 2 == 0 ? (byte)('a' + i % 7) : (byte)rng.Next(256);
        using var chunked = new MemoryStream();
        using (var gzip = new ParallelGzipStream(chunked, CompressionLevel.Optimal)) gzip.Write(tar);

        Assert.NotEqual(SingleStreamGzip(tar), chunked.ToArray());
        Assert.NotEqual("harden-build/4", ImageBuilder.ToolVersion);
    }
}
