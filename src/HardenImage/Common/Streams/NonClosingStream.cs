namespace HardenImage.Common.Streams;

/// <summary>
/// Keeps a wrapper's Dispose (a decompressor, a TarReader) from closing the stream underneath it, and counts the
/// bytes read, because SharpCompress's XZStream asks for Position (block alignment) of a stream that cannot seek.
/// </summary>
internal sealed class NonClosingStream(Stream inner) : ReadOnlyStream
{
    private long _position;

    public override bool CanRead => inner.CanRead;
    public override long Position { get => _position; }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        _position += n;
        return n;
    }
}
