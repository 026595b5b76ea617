using System.IO.Compression;
using HardenImage.Common;

namespace HardenImage.Deb;

/// <summary>How a .deb's control.tar or data.tar member is compressed (from the member name's suffix).</summary>
public enum DebCompression
{
    None,
    Gzip,
    Xz,
    Zstd,
    Bzip2,
}

/// <summary>Which xz implementation decodes xz members.</summary>
public enum XzDecoder
{
    /// <summary>liblzma when it loads, else the managed decoder.</summary>
    Auto,
    /// <summary>The system's liblzma.so.5 (fails when missing).</summary>
    LibLzma,
    /// <summary>SharpCompress's managed XZStream.</summary>
    Managed,
}

/// <summary>
/// Opens decompressing streams for .deb members.
/// </summary>
/// <remarks>
/// xz decoder choice, measured 2026-11-26 with bench/DebBench (Release build, .NET 10, liblzma 5.4.1 from Debian 12,
/// SharpCompress 0.50.8) on a 2-core machine shared with other jobs (load ~35), so CPU time is the fair figure;
/// MB/s of tar output, medians of 5 interleaved runs:
/// <list type="bullet">
/// <item>libpython3.13-stdlib 3.13.5-2+deb13u5 (1.95 MB xz, 9.18 MB tar): liblzma 0.122 s CPU = 75 MB/s, allocating
/// 0.2 MB; SharpCompress 0.254 s CPU = 36 MB/s, allocating 71 MB.</item>
/// <item>python3.13-minimal 3.13.5-2+deb13u5 (2.22 MB xz, 6.92 MB tar): liblzma 48 MB/s, 0.2 MB allocated;
/// SharpCompress 26 MB/s, 80 MB allocated.</item>
/// <item>Full DebPackageReader read of libicu72 72.1-3+deb12u1 (9.4 MB xz, 37 MB tar) in a fresh process:
/// liblzma 0.76 s user, 48 MB peak RSS; SharpCompress 1.48 s user, 79 MB peak RSS.</item>
/// </list>
/// liblzma is about twice as fast, allocates almost nothing (the managed decoder allocates ~8 bytes per byte of
/// output, which is GC work on a 2-core builder) and is the decoder dpkg itself uses, so <see cref="XzDecoder.Auto"/>
/// picks it. It is on every Debian system (liblzma5 is required by dpkg); SharpCompress stays as the fallback when
/// the library cannot be loaded (other OSes, minimal containers), and both are tested against the same packages.
/// </remarks>
public static class DebDecompression
{
    /// <summary>The compression named by a member name such as <c>data.tar.xz</c>; null when the suffix is unknown.</summary>
    public static DebCompression? FromMemberName(string memberName, string stem)
    {
        if (memberName == stem) return DebCompression.None;
        if (!memberName.StartsWith(stem + ".", StringComparison.Ordinal)) return null;
        return memberName[(stem.Length + 1)..] switch
        {
            "gz" => DebCompression.Gzip,
            "xz" => DebCompression.Xz,
            "zst" => DebCompression.Zstd,
            "bz2" => DebCompression.Bzip2,
            _ => null,
        };
    }

    /// <summary>A stream of the decompressed bytes of <paramref name="compressed"/>; disposing it leaves <paramref name="compressed"/> open.</summary>
    /// <param name="what">Names the member in error messages.</param>
    public static Stream Open(Stream compressed, DebCompression compression, string what, XzDecoder xz = XzDecoder.Auto)
    {
        switch (compression)
        {
            case DebCompression.None:
                return compressed;
            case DebCompression.Gzip:
                return new GZipStream(compressed, CompressionMode.Decompress, leaveOpen: true);
            case DebCompression.Zstd:
                return new ZstdSharp.DecompressionStream(compressed, checkEndOfStream: true, leaveOpen: true);
            case DebCompression.Bzip2:
                return SharpCompress.Compressors.BZip2.BZip2Stream.Create(compressed,
                    SharpCompress.Compressors.CompressionMode.Decompress, decompressConcatenated: true, leaveOpen: true);
            case DebCompression.Xz:
                var useNative = xz switch
                {
                    XzDecoder.LibLzma => LibLzmaXzStream.IsAvailable
                        ? true
                        : throw new HardenException("liblzma.so.5 is not loadable here; install it (apt-get install -y liblzma5) or use the managed xz decoder."),
                    XzDecoder.Managed => false,
                    _ => LibLzmaXzStream.IsAvailable,
                };
                return useNative
                    ? new LibLzmaXzStream(compressed, what, leaveOpen: true)
                    : new SharpCompress.Compressors.Xz.XZStream(new NonClosingStream(compressed));
            default:
                throw new ArgumentOutOfRangeException(nameof(compression), compression, null);
        }
    }

    /// <summary>
    /// Keeps a wrapper's Dispose from closing the archive stream underneath it, and counts bytes read because
    /// SharpCompress's XZStream asks for Position (block alignment) of a stream that cannot seek.
    /// </summary>
    private sealed class NonClosingStream(Stream inner) : Stream
    {
        private long _position;
        public override bool CanRead => inner.CanRead;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer);
            _position += n;
            return n;
        }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
