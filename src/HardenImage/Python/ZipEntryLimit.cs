using HardenImage.Common;

namespace HardenImage.Python;

/// <summary>
/// Reads a zip entry but fails once it yields more than the entry declares (or more than the cap): a deflate
/// stream can inflate far beyond its central-directory size (a zip bomb), and the wheel's RECORD size is checked
/// only after the bytes are stored.
/// </summary>
internal sealed class ZipEntryLimit(Stream inner, long limit, string what) : Stream
{
    private long _read;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        _read += n;
        if (_read > limit) throw new HardenException($"{what}: inflates beyond its declared {limit} bytes (a zip bomb or a corrupt wheel); refused.");
        return n;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _read; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
