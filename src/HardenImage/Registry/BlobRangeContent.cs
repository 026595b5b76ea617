using System.Net;

namespace HardenImage.Registry;

/// <summary>
/// Request content streamed from a byte range of a seekable blob stream, without buffering it in memory. Every
/// send seeks back to the start of the range, so the same request can be sent again (auth retry) and a resumed
/// upload re-reads exactly what it needs. Reports bytes sent, for progress bars.
/// </summary>
public sealed class BlobRangeContent : HttpContent
{
    private const int BufferSize = 256 * 1024;
    private readonly Stream _source;
    private readonly long _offset;
    private readonly long _length;
    private readonly Action<long>? _sent;

    /// <param name="sent">Called with the bytes of this range sent so far.</param>
    public BlobRangeContent(Stream source, long offset, long length, Action<long>? sent = null)
    {
        if (!source.CanSeek) throw new ArgumentException("blob stream must be seekable", nameof(source));
        _source = source;
        _offset = offset;
        _length = length;
        _sent = sent;
    }

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken ct)
    {
        _source.Position = _offset;
        var buffer = new byte[(int)Math.Min(BufferSize, Math.Max(1, _length))];
        long done = 0;
        while (done < _length)
        {
            var n = await _source.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, _length - done)), ct).ConfigureAwait(false);
            if (n == 0) throw new IOException($"blob stream ended after {_offset + done} bytes, expected {_offset + _length}");
            await stream.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
            done += n;
            _sent?.Invoke(done);
        }
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override bool TryComputeLength(out long length)
    {
        length = _length;
        return true;
    }
}
