using HardenImage.Deb;

namespace HardenImage.Apt;

/// <summary>
/// Opens an .xz index for reading, through the one liblzma binding the project has (<see cref="LibLzmaXzStream"/>,
/// also used for .deb members), else SharpCompress's managed XZStream.
/// Measured with bench/AptBench on trixie main amd64 Packages.xz (9.7 MB → 56.6 MB): liblzma 0.69-0.87 s CPU,
/// SharpCompress XZStream 1.51-1.60 s CPU (about 2x slower; `xz -dc` itself takes ~0.75 s), hence the native path.
/// </summary>
public static class XzDecompression
{
    /// <summary>True when the system liblzma can be used.</summary>
    public static bool NativeAvailable => LibLzmaXzStream.IsAvailable;

    /// <summary>A decompressing stream that owns (and disposes) <paramref name="compressed"/>.</summary>
    public static Stream Open(Stream compressed, bool preferNative = true) =>
        preferNative && LibLzmaXzStream.IsAvailable
            ? new LibLzmaXzStream(compressed, "Packages.xz", leaveOpen: false)
            : new SharpCompress.Compressors.Xz.XZStream(compressed);
}
