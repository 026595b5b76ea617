using System.IO.Compression;
using HardenImage.Common;
using HardenImage.Common.Compression;

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

/// <summary>
/// Opens decompressing streams for .deb members (xz through <see cref="XzDecompression"/>, the one xz decoder
/// choice the project has).
/// </summary>
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
                return XzDecompression.Open(compressed, what, xz, leaveOpen: true);
            default:
                throw new ArgumentOutOfRangeException(nameof(compression), compression, null);
        }
    }
}
