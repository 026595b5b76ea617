using System.Security.Cryptography;
using HardenImage.Common.Streams;

namespace HardenImage.Oci;

/// <summary>A write-only pass-through that hashes and counts what goes by (digest while streaming, no buffering).</summary>
internal sealed class HashingWriteStream(Stream inner, bool leaveOpen = true) : WriteOnlyStream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public long BytesWritten { get; private set; }

    /// <summary>"sha256:&lt;hex&gt;" of everything written so far; call once, after the last write.</summary>
    public string FinishDigest() => Digest.Prefix + Convert.ToHexStringLower(_hash.GetHashAndReset());

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _hash.AppendData(buffer);
        BytesWritten += buffer.Length;
        inner.Write(buffer);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void WriteByte(byte value) => Write([value]);

    public override void Flush() => inner.Flush();

    public override long Length => BytesWritten;
    public override long Position { get => BytesWritten; }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
            if (!leaveOpen) inner.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>
/// Rewrites the 10-byte gzip member header that zlib emits into one fixed form: <c>1f 8b 08 00 00000000 00 ff</c>
/// (deflate, no flags, no file name, mtime 0, XFL 0, OS "unknown") — the header Go's compress/gzip writes, so
/// the bytes do not vary with the compression level or the OS zlib was built for. A header with flags set (a name
/// or extra field we did not ask for) is refused rather than silently mangled.
/// </summary>
internal sealed class GzipHeaderNormalizingStream(Stream inner) : WriteOnlyStream
{
    public static readonly byte[] FixedHeader = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];
    private long _position;

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_position < FixedHeader.Length && buffer.Length > 0)
        {
            var n = (int)Math.Min(buffer.Length, FixedHeader.Length - _position);
            for (var i = 0; i < n; i++)
            {
                var at = (int)_position + i;
                if (at is 0 or 1 or 2 or 3 && buffer[i] != FixedHeader[at])
                    throw new InvalidOperationException($"unexpected gzip header byte {at}: 0x{buffer[i]:x2}");
            }
            inner.Write(FixedHeader.AsSpan((int)_position, n));
            _position += n;
            buffer = buffer[n..];
        }
        if (buffer.Length == 0) return;
        inner.Write(buffer);
        _position += buffer.Length;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void WriteByte(byte value) => Write([value]);

    public override void Flush() => inner.Flush();

    public override long Length => _position;
    public override long Position { get => _position; }
}
