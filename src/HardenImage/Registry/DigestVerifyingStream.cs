using System.Security.Cryptography;
using HardenImage.Common;

namespace HardenImage.Registry;

/// <summary>
/// Hashes what is read through it and throws at the end when the bytes are not the expected digest (or size),
/// so a blob is never trusted before it is proven (threat: Tampering by a registry, proxy or disk).
/// </summary>
public sealed class DigestVerifyingStream : Stream
{
    private readonly Stream _inner;
    private readonly string _expected;
    private readonly long? _expectedSize;
    private readonly IDisposable? _owner;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _read;
    private bool _verified;

    /// <param name="owner">Disposed with the stream (e.g. the HTTP response the stream belongs to).</param>
    public DigestVerifyingStream(Stream inner, string expectedDigest, long? expectedSize = null, IDisposable? owner = null)
    {
        _inner = inner;
        _expected = Oci.Digest.Parse(expectedDigest).ToString();
        _expectedSize = expectedSize;
        _owner = owner;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _read; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = _inner.Read(buffer);
        Account(buffer[..n]);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        var n = await _inner.ReadAsync(buffer, ct).ConfigureAwait(false);
        Account(buffer.Span[..n]);
        return n;
    }

    private void Account(ReadOnlySpan<byte> data)
    {
        if (data.Length > 0)
        {
            _hash.AppendData(data);
            _read += data.Length;
            if (_expectedSize is { } max && _read > max)
                throw new HardenException($"blob {_expected} is longer than its descriptor's {max} bytes (tampered or wrong blob)");
            return;
        }
        if (_verified) return;
        var actual = Oci.Digest.Prefix + Convert.ToHexStringLower(_hash.GetHashAndReset());
        if (actual != _expected)
            throw new HardenException($"blob {_expected} arrived with digest {actual}: tampered or corrupt, refusing it");
        if (_expectedSize is { } size && _read != size)
            throw new HardenException($"blob {_expected} is {_read} bytes, its descriptor says {size}");
        _verified = true;
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
            _owner?.Dispose();
            _hash.Dispose();
        }
        base.Dispose(disposing);
    }
}
