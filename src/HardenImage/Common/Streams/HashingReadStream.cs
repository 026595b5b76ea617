using System.Security.Cryptography;

namespace HardenImage.Common.Streams;

/// <summary>
/// Passes reads through while counting and SHA-256-hashing them, so a blob or layer is verified in the same pass
/// that reads it (diff_ids while decompressing, layer digests while listing an image's files).
/// </summary>
/// <param name="leaveOpen">True when the caller disposes <paramref name="inner"/> itself.</param>
internal sealed class HashingReadStream(Stream inner, bool leaveOpen = false) : ReadOnlyStream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public long BytesRead { get; private set; }

    /// <summary>"sha256:&lt;hex&gt;" of everything read so far; call once, after the last read.</summary>
    public string FinishDigest() => "sha256:" + Convert.ToHexStringLower(_hash.GetHashAndReset());

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        _hash.AppendData(buffer[..n]);
        BytesRead += n;
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await inner.ReadAsync(buffer, cancellationToken);
        _hash.AppendData(buffer.Span[..n]);
        BytesRead += n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override long Position { get => BytesRead; }

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
