using System.IO.Compression;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Oci;

/// <summary>
/// The layer compressor: one gzip member from independently compressed 1 MiB chunks. What must hold is what a layer
/// digest needs — any gzip reader gets the exact input back, and the bytes never depend on the core count, the
/// order chunks finish in or how the writer split its writes.
/// </summary>
public class ParallelGzipStreamTests
{
    private const int Chunk = ParallelGzipStream.ChunkSize;

    public static TheoryData<int> Sizes => new() { 0, 1, 511, Chunk - 1, Chunk, Chunk + 1, 2 * Chunk, 3 * Chunk + 17 };

    private static byte[] Data(int size, int seed)
    {
        // Half text-like (compressible), half random (not): both paths of deflate, across chunk boundaries.
        var rng = new Random(seed);
        var data = new byte[size];
        for (var i = 0; i < size; i++) data[i] = (i / 4096 % 2 == 0) ? (byte)"harden layer tar "[(i * 7 + i / 97) % 17] : (byte)rng.Next(256);
        return data;
    }

    private static byte[] Compress(ReadOnlySpan<byte> data, int maxInFlight = 0, int[]? writeSizes = null, CompressionLevel level = CompressionLevel.Optimal)
    {
        using var output = new MemoryStream();
        using (var gzip = new ParallelGzipStream(output, level, maxInFlight))
        {
            var at = 0;
            for (var n = 0; at < data.Length; n++)
            {
                var size = writeSizes == null ? data.Length : Math.Min(writeSizes[n % writeSizes.Length], data.Length - at);
                gzip.Write(data.Slice(at, size));
                at += size;
            }
        }
        return output.ToArray();
    }

    private static byte[] Decompress(byte[] gzip)
    {
        using var input = new GZipStream(new MemoryStream(gzip), CompressionMode.Decompress);
        using var output = new MemoryStream();
        input.CopyTo(output);
        return output.ToArray();
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void RoundTrips_ThroughZlibsGzipReader(int size)
    {
        var data = Data(size, size);
        var gzip = Compress(data);
        Assert.Equal(data, Decompress(gzip));
        Assert.Equal(new byte[] { 0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff }, gzip[..10]);
        Assert.Equal((uint)size, BitConverter.ToUInt32(gzip, gzip.Length - 4));
    }

    [Fact]
    public void Bytes_DoNotDependOnCoresInFlightOrHowTheWritesWereSplit()
    {
        var data = Data(3 * Chunk + 4321, 11);
        var reference = Compress(data, maxInFlight: 1);
        Assert.Equal(reference, Compress(data, maxInFlight: 2));
        Assert.Equal(reference, Compress(data, maxInFlight: 7));
        Assert.Equal(reference, Compress(data, writeSizes: [1, 4096, 65536, 3, Chunk + 5]));
        Assert.Equal(reference, Compress(data, maxInFlight: 3, writeSizes: [512]));
    }

    [Fact]
    public void WithinAFewTenthsOfAPercent_OfOneDeflateStream()
    {
        var data = Data(4 * Chunk, 5);
        using var single = new MemoryStream();
        using (var gzip = new GZipStream(single, CompressionLevel.Optimal, leaveOpen: true)) gzip.Write(data);
        var chunked = Compress(data).Length;
        Assert.InRange(chunked, single.Length * 0.99, single.Length * 1.01);
    }

    [Fact]
    public void CorruptTrailer_IsRefusedByTheReader_SoTheCrcIsReallyChecked()
    {
        // The CRC-32 the stream computes is the reader's check of every chunk: a wrong one must not pass.
        var gzip = Compress(Data(Chunk + 99, 3));
        gzip[^8] ^= 1;
        Assert.ThrowsAny<InvalidDataException>(() => Decompress(gzip));
    }

    [Fact]
    public void AFailingDestination_FailsTheWrite_AndDisposeDoesNotHang()
    {
        var destination = new FailAfter(Chunk / 4);
        var ex = Assert.ThrowsAny<IOException>(() =>
        {
            using var gzip = new ParallelGzipStream(destination, CompressionLevel.Optimal, maxInFlight: 2);
            for (var i = 0; i < 8; i++) gzip.Write(Data(Chunk, i));
        });
        Assert.Contains("destination full", ex.Message);
    }

    [Fact]
    public async Task ManyLayersAtOnce_HoldNoMoreChunksInMemory_ThanTheProcessBound()
    {
        // A build writes as many layers at once as there are cores, each allowing many chunks: without one bound
        // for the process, memory grew with the square of the core count.
        var data = Data(6 * Chunk + 5, 21);
        var outputs = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => Compress(data, maxInFlight: 16))));
        Assert.InRange(ParallelGzipStream.PeakInFlight, 1, ParallelGzipStream.ProcessLimit);
        foreach (var output in outputs) Assert.Equal(data, Decompress(output));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public void RoundTrips_ThroughGnuGzip_WhichChecksTheCrcAndLength()
    {
        var gzipTool = RequiredService.Tool("gzip", "gzip");
        using var dir = new TempDir();
        var data = Data(2 * Chunk + 1234, 9);
        var path = dir.Combine("layer.gz");
        File.WriteAllBytes(path, Compress(data));
        RequiredService.RunOk(gzipTool, ["-t", path]);
        RequiredService.RunOk("sh", ["-c", $"{gzipTool} -dc '{path}' > '{dir.Combine("layer")}'"]);
        Assert.Equal(data, File.ReadAllBytes(dir.Combine("layer")));
    }

    private sealed class FailAfter(int limit) : HardenImage.Common.Streams.WriteOnlyStream
    {
        private long _written;

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (_written + buffer.Length > limit) throw new IOException("destination full");
            _written += buffer.Length;
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Flush() { }
    }
}
