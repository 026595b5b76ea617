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
