namespace HardenImage.Common.Streams;

/// <summary>
/// The Stream members every forward-only, write-only pass-through answers the same way (no read, no seek), so a
/// subclass spells out only its Write and Flush and what it adds; the write-side twin of <see cref="ReadOnlyStream"/>.
/// </summary>
public abstract class WriteOnlyStream : Stream
{
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
