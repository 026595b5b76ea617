using System.Security.Cryptography;

namespace HardenImage.Common.Streams;

/// <summary>
/// Hashes what is read through it and throws at the end when the bytes are not the expected digest (or size),
/// so a blob is never trusted before it is proven (threat: Tampering by a registry, proxy or disk). Registry blobs
/// and the build's content store read through this one stream.
/// </summary>
public sealed class DigestVerifyingStream : ReadOnlyStream
{
    private const string Sha256Prefix = "sha256:";
    private readonly Stream _inner;
    private readonly string _expected;
    private readonly long? _expectedSize;
    private readonly IDisposable? _owner;
    private readonly Func<Exception>? _onMismatch;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _read;
    private bool _verified;

    /// <param name="expectedDigest">"sha256:&lt;64 lower-case hex&gt;".</param>
    /// <param name="expectedSize">When known, more bytes fail at once, fewer at the end; also this stream's <see cref="Length"/>.</param>
    /// <param name="owner">Disposed with the stream (e.g. the HTTP response the stream belongs to).</param>
    /// <param name="onMismatch">Makes the exception thrown for wrong bytes (e.g. a cache that evicts the file and
    /// names it); default a <see cref="HardenException"/> naming the blob.</param>
    public DigestVerifyingStream(Stream inner, string expectedDigest, long? expectedSize = null, IDisposable? owner = null,
        Func<Exception>? onMismatch = null)
    {
        if (!expectedDigest.StartsWith(Sha256Prefix, StringComparison.Ordinal) || !Sha256Hex.IsValid(expectedDigest[Sha256Prefix.Length..]))
            throw new FormatException($"'{expectedDigest}' is not a sha256 digest (sha256:<64 lower-case hex>)");
        _inner = inner;
        _expected = expectedDigest;
        _expectedSize = expectedSize;
        _owner = owner;
        _onMismatch = onMismatch;
    }

    public override long Length => _expectedSize ?? throw new NotSupportedException();
    public override long Position { get => _read; }

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

    // A zero-byte read is taken for the end of the blob and verifies then (callers that pass an empty buffer on
    // purpose must not forward it; see Model/ModelFetcher).
    private void Account(ReadOnlySpan<byte> data)
    {
        if (data.Length > 0)
        {
            _hash.AppendData(data);
            _read += data.Length;
            if (_expectedSize is { } max && _read > max)
                throw _onMismatch?.Invoke() ?? new HardenException($"blob {_expected} is longer than its descriptor's {max} bytes (tampered or wrong blob)");
            return;
        }
        if (_verified) return;
        var actual = Sha256Prefix + Convert.ToHexStringLower(_hash.GetHashAndReset());
        if (actual != _expected)
            throw _onMismatch?.Invoke() ?? new HardenException($"blob {_expected} arrived with digest {actual}: tampered or corrupt, refusing it");
        if (_expectedSize is { } size && _read != size)
            throw _onMismatch?.Invoke() ?? new HardenException($"blob {_expected} is {_read} bytes, its descriptor says {size}");
        _verified = true;
    }

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
