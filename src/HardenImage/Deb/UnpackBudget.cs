using HardenImage.Common;
using HardenImage.Common.Streams;

namespace HardenImage.Deb;

/// <summary>
/// Bytes a whole build may decompress from .debs (<see cref="InputLimits.MaxUnpackedBytesPerBuild"/>), shared by
/// every package the build unpacks; thread-safe. Per-package bounds are the reader's own (see
/// <see cref="DebPackageReader"/>).
/// </summary>
/// <remarks>Denial of service: many packages that each stay under their own bound must still not fill the disk.</remarks>
public sealed class UnpackBudget(long maxBytes, string what)
{
    private long _used;

    public long MaxBytes { get; } = maxBytes;
    public long Used => Interlocked.Read(ref _used);

    /// <summary>Charges <paramref name="bytes"/>; throws once the total passes the bound.</summary>
    /// <param name="label">The package being read, for the message.</param>
    public void Charge(long bytes, string label)
    {
        if (Interlocked.Add(ref _used, bytes) > MaxBytes)
            throw new HardenException($"{label}: {what} has decompressed more than {BoundedFile.Size(MaxBytes)} from packages, " +
                                      "the limit per build (docs/limits.md); refusing to unpack more (a decompression bomb?).");
    }
}

/// <summary>
/// Counts the bytes a decompressor produces and stops at a bound, so a bomb (100 KB of zstd that inflates to
/// 3 GiB) fails after at most the bound has been produced, before anything downstream writes it to disk.
/// </summary>
internal sealed class DecompressionLimitStream(Stream inner, long maxBytes, string label, string why, UnpackBudget? build) : ReadOnlyWrapperStream(inner)
{
    private long _produced;

    public long Produced => _produced;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = Inner.Read(buffer);
        if (n == 0) return 0;
        _produced += n;
        if (_produced > maxBytes)
            throw new HardenException($"{label}: decompresses to more than {BoundedFile.Size(maxBytes)} ({why}); " +
                                      "refusing it as a decompression bomb or a corrupt package (docs/limits.md).");
        build?.Charge(n, label);
        return n;
    }

    public override long Position { get => _produced; }
}
