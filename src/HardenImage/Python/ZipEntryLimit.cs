using HardenImage.Common;
using HardenImage.Common.Streams;

namespace HardenImage.Python;

/// <summary>
/// Reads a zip entry but fails once it yields more than the entry declares (or more than the cap): a deflate
/// stream can inflate far beyond its central-directory size (a zip bomb), and the wheel's RECORD size is checked
/// only after the bytes are stored.
/// </summary>
internal sealed class ZipEntryLimit(Stream inner, long limit, string what) : ReadOnlyWrapperStream(inner)
{
    private long _read;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = Inner.Read(buffer);
        _read += n;
        if (_read > limit) throw new HardenException($"{what}: inflates beyond its declared {limit} bytes (a zip bomb or a corrupt wheel); refused.");
        return n;
    }

    public override long Position { get => _read; }
}
