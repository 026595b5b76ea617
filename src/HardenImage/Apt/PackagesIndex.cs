using System.Collections.Concurrent;
using System.IO.Compression;
using System.Text;
using HardenImage.Common.Streams;
using HardenImage.Common.Compression;
using HardenImage.Deb;

namespace HardenImage.Apt;

/// <summary>
/// Reads a Packages index (plain, .gz or .xz) into <see cref="BinaryPackage"/>s, streaming: decompression runs on
/// a second thread a few chunks ahead of the deb822 parser, so decoding and parsing overlap on two cores and the
/// uncompressed index (56 MB for trixie main amd64) is never held whole in memory.
/// </summary>
public static class PackagesIndex
{
    /// <summary>Opens <paramref name="path"/> decompressed according to the extension of <paramref name="formatName"/>
    /// (.xz, .gz, else plain; defaults to the path itself: cache blobs have no extension, their URL does).</summary>
    public static Stream OpenDecompressed(string path, string? formatName = null, bool readAhead = true, bool preferNativeXz = true) =>
        OpenDecompressed(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16), formatName ?? path, readAhead, preferNativeXz);

    /// <summary>The decompressed bytes of an open file (disposed with the result); <paramref name="formatName"/>'s ending says the compression.</summary>
    public static Stream OpenDecompressed(Stream file, string formatName, bool readAhead = true, bool preferNativeXz = true)
    {
        Stream decoded = formatName.EndsWith(".xz", StringComparison.Ordinal) ? XzDecompression.Open(file, preferNativeXz)
            : formatName.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress)
            : file;
        return readAhead && decoded != file ? new ReadAheadStream(decoded) : decoded;
    }

    /// <summary>
    /// Parses stanzas into packages. <paramref name="keepArchitecture"/> filters (flat repositories mix
    /// architectures in one index); stanzas that are not packages of this index throw with their line number.
    /// </summary>
    public static IEnumerable<BinaryPackage> Read(Stream decompressed, string origin, string baseUrl,
        Func<string, bool>? keepArchitecture = null, string indexName = "Packages")
    {
        using var reader = new StreamReader(decompressed, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false, bufferSize: 1 << 16);
        using var paragraphs = Deb822.Read(reader).GetEnumerator();
        while (true)
        {
            BinaryPackage pkg;
            // Parsing errors surface in MoveNext (a line without a colon), not only in FromParagraph.
            try
            {
                if (!paragraphs.MoveNext()) break;
                pkg = BinaryPackage.FromParagraph(paragraphs.Current, origin, baseUrl);
            }
            catch (Exception e) when (e is FormatException or InvalidDataException)
            {
                throw new Common.HardenException($"{indexName} of source '{origin}': {e.Message.TrimEnd('.')}. The index is malformed.", inner: e);
            }
            if (keepArchitecture == null || keepArchitecture(pkg.Architecture)) yield return pkg;
        }
    }

    /// <summary>Reads a whole index file into a list (the common case).</summary>
    public static List<BinaryPackage> ReadFile(string path, string origin, string baseUrl, Func<string, bool>? keepArchitecture = null,
        string? formatName = null, long uncompressedSize = 0, bool preferNativeXz = true) =>
        ReadFile(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16), formatName ?? path, origin, baseUrl,
            keepArchitecture, uncompressedSize, preferNativeXz);

    /// <summary>Reads a whole index from an open file (disposed here), e.g. the one whose hash was just checked.</summary>
    /// <param name="formatName">Its name or URL: the ending says the compression.</param>
    public static List<BinaryPackage> ReadFile(FileStream file, string formatName, string origin, string baseUrl, Func<string, bool>? keepArchitecture = null,
        long uncompressedSize = 0, bool preferNativeXz = true)
    {
        using var owned = file;
        if (uncompressedSize <= 0) uncompressedSize = EstimateUncompressedSize(file.Length, formatName);
        // ~2.9 bytes allocated per uncompressed byte (UTF-16 strings + objects), measured on trixie main amd64.
        using var quiet = GcQuietScope.For(uncompressedSize * 7 / 2 + (32 << 20));
        using var stream = OpenDecompressed(file, formatName, preferNativeXz: preferNativeXz);
        return Read(stream, origin, baseUrl, keepArchitecture, Path.GetFileName(formatName)).ToList();
    }

    private static long EstimateUncompressedSize(long size, string formatName)
    {
        return formatName.EndsWith(".xz", StringComparison.Ordinal) ? size * 6
            : formatName.EndsWith(".gz", StringComparison.Ordinal) ? size * 5
            : size;
    }
}

/// <summary>
/// Reads an inner stream on a background thread into a small bounded queue of chunks (at most 8 × 256 KiB ahead, pooled: fresh large chunks would land on the LOH and trigger full GCs),
/// so a CPU-bound decoder and a CPU-bound consumer run in parallel. Errors of the inner stream surface on Read.
/// </summary>
internal sealed class ReadAheadStream : ReadOnlyStream
{
    private const int ChunkSize = 1 << 18;
    private static readonly System.Buffers.ArrayPool<byte> Pool = System.Buffers.ArrayPool<byte>.Shared;
    private readonly Stream _inner;
    private readonly BlockingCollection<byte[]> _chunks = new(boundedCapacity: 8);
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private Exception? _error;
    private bool _disposed;
    private byte[]? _current;
    private int _currentLength, _currentOffset;

    public ReadAheadStream(Stream inner)
    {
        _inner = inner;
        _thread = new Thread(Produce) { IsBackground = true, Name = "index-decompress" };
        _thread.Start();
    }

    private void Produce()
    {
        try
        {
            while (true)
            {
                var chunk = Pool.Rent(ChunkSize + 4);
                int filled = 0;
                while (filled < ChunkSize)
                {
                    var n = _inner.Read(chunk, 4 + filled, ChunkSize - filled);
                    if (n == 0) break;
                    filled += n;
                }
                if (filled == 0) { Pool.Return(chunk); break; }
                BitConverter.TryWriteBytes(chunk.AsSpan(0, 4), filled);
                _chunks.Add(chunk, _stop.Token);
                if (filled < ChunkSize) break;
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception e) { _error = e; }
        finally { _chunks.CompleteAdding(); }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (buffer.Length == 0) return 0;
        if (_current == null || _currentOffset >= _currentLength)
        {
            if (_current != null) { Pool.Return(_current); _current = null; }
            if (!_chunks.TryTake(out _current, Timeout.Infinite))
            {
                if (_error != null) throw new IOException("decompressing the index failed: " + _error.Message, _error);
                return 0;
            }
            _currentLength = 4 + BitConverter.ToInt32(_current, 0);
            _currentOffset = 4;
        }
        var n = Math.Min(buffer.Length, _currentLength - _currentOffset);
        _current.AsSpan(_currentOffset, n).CopyTo(buffer);
        _currentOffset += n;
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            _stop.Cancel();
            while (_chunks.TryTake(out _)) { }
            _thread.Join();
            _inner.Dispose();
            _chunks.Dispose();
            _stop.Dispose();
        }
        base.Dispose(disposing);
    }

}
