using HardenImage.Common;
using HardenImage.Common.Streams;

namespace HardenImage.Deb;

/// <summary>
/// A read-only window of exactly <c>length</c> bytes over a forward-only stream. Reading past the window returns
/// end of stream; an underlying stream that ends before the window does is a truncated file and fails loudly
/// (a silent short read would let a cut-off .deb pass as a smaller, different package).
/// </summary>
internal sealed class BoundedReadStream : ReadOnlyStream
{
    private readonly Stream _inner;
    private readonly string _what;
    private long _remaining;

    public BoundedReadStream(Stream inner, long length, string what)
    {
        _inner = inner;
        _remaining = length;
        _what = what;
        Length = length;
    }

    public long Remaining => _remaining;

    public override long Length { get; }
    public override long Position { get => Length - _remaining; }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_remaining == 0 || buffer.Length == 0) return 0;
        if (buffer.Length > _remaining) buffer = buffer[..(int)_remaining];
        var n = _inner.Read(buffer);
        if (n == 0)
            throw new HardenException($"{_what} is truncated: the file ends {_remaining} bytes before the member does. " +
                                      "Download the package again and check its SHA-256 against the lock.");
        _remaining -= n;
        return n;
    }

    public override int ReadByte()
    {
        Span<byte> one = stackalloc byte[1];
        return Read(one) == 0 ? -1 : one[0];
    }

    /// <summary>Reads and discards what is left of the window, so the underlying stream stands right after it.</summary>
    public void SkipRest()
    {
        if (_remaining == 0) return;
        if (_inner.CanSeek)
        {
            var available = _inner.Length - _inner.Position;
            if (available < _remaining)
                throw new HardenException($"{_what} is truncated: the file ends {_remaining - available} bytes before the member does. " +
                                          "Download the package again and check its SHA-256 against the lock.");
            _inner.Seek(_remaining, SeekOrigin.Current);
            _remaining = 0;
            return;
        }
        var scratch = new byte[(int)Math.Min(_remaining, 81920)];
        while (_remaining > 0)
        {
            var n = Read(scratch.AsSpan(0, (int)Math.Min(scratch.Length, _remaining)));
            if (n == 0) break;
        }
    }
}
