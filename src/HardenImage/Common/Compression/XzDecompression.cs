using HardenImage.Common.Streams;

namespace HardenImage.Common.Compression;

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
/// Opens an xz stream for reading — .deb members and Packages.xz indexes alike — through the one liblzma binding
/// the project has (<see cref="LibLzmaXzStream"/>), else SharpCompress's managed XZStream.
/// </summary>
/// <remarks>
/// xz decoder choice for .deb members, measured 2026-11-26 with bench/DebBench (Release build, .NET 10, liblzma
/// 5.4.1 from Debian 12, SharpCompress 0.50.8) on a 2-core machine shared with other jobs (load ~35), so CPU time is the fair figure;
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
/// Packages indexes, measured with bench/AptBench on trixie main amd64 Packages.xz (9.7 MB → 56.6 MB): liblzma
/// 0.69-0.87 s CPU, SharpCompress XZStream 1.51-1.60 s CPU (about 2x slower; `xz -dc` itself takes ~0.75 s).
/// </remarks>
public static class XzDecompression
{
    /// <summary>True when the system liblzma can be used.</summary>
    public static bool NativeAvailable => LibLzmaXzStream.IsAvailable;

    /// <summary>A decompressing stream that owns (and disposes) <paramref name="compressed"/>: a Packages.xz index.</summary>
    public static Stream Open(Stream compressed, bool preferNative = true) =>
        Open(compressed, "Packages.xz", preferNative ? XzDecoder.Auto : XzDecoder.Managed, leaveOpen: false);

    /// <summary>A stream of the decompressed bytes of <paramref name="compressed"/>.</summary>
    /// <param name="what">Names the stream in error messages.</param>
    /// <param name="leaveOpen">True: disposing the result leaves <paramref name="compressed"/> open.</param>
    public static Stream Open(Stream compressed, string what, XzDecoder decoder, bool leaveOpen)
    {
        var useNative = decoder switch
        {
            XzDecoder.LibLzma => LibLzmaXzStream.IsAvailable
                ? true
                : throw new HardenException("liblzma.so.5 is not loadable here; install it (apt-get install -y liblzma5) or use the managed xz decoder."),
            XzDecoder.Managed => false,
            _ => LibLzmaXzStream.IsAvailable,
        };
        if (useNative) return new LibLzmaXzStream(compressed, what, leaveOpen);
        return new SharpCompress.Compressors.Xz.XZStream(leaveOpen ? new NonClosingStream(compressed) : compressed);
    }
}
