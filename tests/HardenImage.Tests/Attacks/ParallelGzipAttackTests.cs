using System.IO.Compression;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// The layer compressor attacked from the caller's side: a writer that flushes, writes nothing, writes a byte at a
/// time or ends exactly on a chunk boundary must get the same bytes, and readers other than .NET's must accept them.
/// </summary>
public class ParallelGzipAttackTests
{
    private const int Chunk = ParallelGzipStream.ChunkSize;

    private static byte[] Data(int size)
    {
        var rng = new Random(size);
        var data = new byte[size];
        for (var i = 0; i < size; i++) data[i] = i / 5000 % 2 == 0 ? (byte)('a' + i % 13) : (byte)rng.Next(256);
        return data;
    }

    private static byte[] Compress(byte[] data, Action<Stream, byte[]> write)
    {
        using var output = new MemoryStream();
        using (var gzip = new ParallelGzipStream(output, CompressionLevel.Optimal)) write(gzip, data);
        return output.ToArray();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(Chunk)]
    [InlineData(2 * Chunk)]
    [InlineData(Chunk + 1)]
    public void FlushesZeroLengthWritesAndSingleBytes_DoNotChangeTheBytes(int size)
    {
        var data = Data(size);
        var reference = Compress(data, (s, d) => s.Write(d));
        Assert.Equal(reference, Compress(data, (s, d) =>
        {
            s.Flush();
            for (var at = 0; at < d.Length;)
            {
                var n = Math.Min(d.Length - at, at % 3 == 0 ? 1 : 70_001);
                if (n == 1) s.WriteByte(d[at]); else s.Write(d, at, n);
                s.Write([], 0, 0);
                s.Flush();
                at += n;
            }
            s.Flush();
        }));
    }

    [Trait("Category", "Integration")]
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(Chunk)]
    [InlineData(2 * Chunk)]
    public void EndingOnAChunkBoundary_IsAcceptedByGnuGzipAndPythonsZlib(int size)
    {
        using var dir = new TempDir();
        var data = Data(size);
        var path = dir.Combine("layer.gz");
        File.WriteAllBytes(path, Compress(data, (s, d) => s.Write(d)));
        RequiredService.RunOk(RequiredService.Tool("gzip", "gzip"), ["-t", path]);
        File.WriteAllBytes(dir.Combine("layer"), data);
        RequiredService.RunOk("python3", ["-c",
            "import gzip,sys; a=gzip.decompress(open(sys.argv[1],'rb').read()); b=open(sys.argv[2],'rb').read(); sys.exit(0 if a==b else 1)",
            path, dir.Combine("layer")]);
    }
}
