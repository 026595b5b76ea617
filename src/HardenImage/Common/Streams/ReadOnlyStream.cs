namespace HardenImage.Common.Streams;

/// <summary>
/// The Stream members every forward-only, read-only stream answers the same way (no seek, no write, no length,
/// nothing to flush), so a subclass spells out only its Read and what it adds. A subclass that counts what it
/// has read overrides <see cref="Position"/>'s getter; the setter keeps refusing.
/// </summary>
public abstract class ReadOnlyStream : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
