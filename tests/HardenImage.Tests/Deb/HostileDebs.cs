using System.Formats.Tar;
using System.Text;

namespace HardenImage.Tests.Deb;

/// <summary>Bombs and deep paths built in the test (never committed): small .debs that expand enormously.</summary>
public static class HostileDebs
{
    /// <summary>zstd of <paramref name="bytes"/> as one frame.</summary>
    public static byte[] Zstd(ReadOnlySpan<byte> bytes)
    {
        using var compressor = new ZstdSharp.Compressor(19);
        return compressor.Wrap(bytes).ToArray();
    }

    /// <summary>
    /// A zstd data.tar whose one file claims <paramref name="fileBytes"/> bytes of zeros and really decompresses to
    /// them: one 64 MiB zero frame repeated (zstd frames concatenate), so 3 GiB costs ~100 KB and no time to make.
    /// </summary>
    public static byte[] ZstdZeroFileTar(long fileBytes, string name = "./usr/share/bomb")
    {
        const int frame = 64 << 20;
        if (fileBytes % frame != 0) throw new ArgumentException("a multiple of 64 MiB", nameof(fileBytes));
        var ms = new MemoryStream();
        ms.Write(Zstd(TarHeader(name, fileBytes)));
        var zeros = Zstd(new byte[frame]);
        for (long i = 0; i < fileBytes / frame; i++) ms.Write(zeros);
        ms.Write(Zstd(new byte[1024])); // end-of-archive blocks
        return ms.ToArray();
    }

    /// <summary>A GNU tar header for a regular file of <paramref name="size"/> bytes (the size field patched past what TarWriter would stream).</summary>
    public static byte[] TarHeader(string name, long size)
    {
        var ms = new MemoryStream();
        using (var tw = new TarWriter(ms, TarEntryFormat.Gnu, leaveOpen: true))
            tw.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)0b110_100_100 });
        var header = ms.ToArray()[..512];
        var sizeField = Encoding.ASCII.GetBytes(Convert.ToString(size, 8).PadLeft(11, '0') + "\0");
        sizeField.CopyTo(header, 124);
        for (var i = 148; i < 156; i++) header[i] = (byte)' ';
        var sum = header.Sum(b => (int)b);
        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(header, 148);
        return header;
    }

    public static byte[] Deb(byte[] dataTar, string dataMember, string control = CraftedDeb.Control) =>
        CraftedDeb.Ar(("debian-binary", "2.0\n"u8.ToArray()), ("control.tar", CraftedDeb.ControlTar(control)), (dataMember, dataTar));

    /// <summary>A path of <paramref name="levels"/> segments of <paramref name="segment"/> characters.</summary>
    public static string DeepPath(int levels, int segment) =>
        "./" + string.Join('/', Enumerable.Repeat(new string('d', segment), levels)) + "/f";

    /// <summary>A .deb (data.tar.zst) whose one file has <paramref name="path"/> (a PAX or GNU long name).</summary>
    public static byte[] WithPath(string path, TarEntryFormat format)
    {
        var tar = new MemoryStream();
        using (var tw = new TarWriter(tar, format, leaveOpen: true))
        {
            TarEntry e = format == TarEntryFormat.Pax
                ? new PaxTarEntry(TarEntryType.RegularFile, path)
                : new GnuTarEntry(TarEntryType.RegularFile, path);
            e.DataStream = new MemoryStream("x"u8.ToArray());
            tw.WriteEntry(e);
        }
        return Deb(Zstd(tar.ToArray()), "data.tar.zst");
    }
}
