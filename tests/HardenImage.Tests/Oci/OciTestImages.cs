using System.Formats.Tar;
using System.Text;
using HardenImage.Oci;

namespace HardenImage.Tests.Oci;

/// <summary>Small layers and images used by the Oci tests.</summary>
internal static class OciTestImages
{
    public const long Epoch = 1_747_440_000; // 2025-05-17T00:00:00Z

    public static int Octal(string digits) => Convert.ToInt32(digits, 8);

    /// <summary>A little root file system with every entry kind and the special mode bits.</summary>
    public static List<LayerEntry> SampleEntries() =>
    [
        LayerEntry.Directory("etc"),
        LayerEntry.File("etc/passwd", Encoding.ASCII.GetBytes("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n")),
        LayerEntry.File("etc/os-release", Encoding.ASCII.GetBytes("ID=debian\nVERSION_ID=\"13\"\n")),
        LayerEntry.Directory("tmp", Octal("1777")),
        LayerEntry.Directory("home/nonroot", Octal("700"), 65532, 65532),
        LayerEntry.Directory("usr/bin"),
        LayerEntry.Symlink("bin", "usr/bin"),
        LayerEntry.File("usr/bin/tool", Encoding.ASCII.GetBytes("#!/bin/false\n"), Octal("4755")),
        LayerEntry.File("usr/bin/group-tool", Encoding.ASCII.GetBytes("sg\n"), Octal("2755"), 0, 42),
        LayerEntry.Hardlink("usr/bin/tool-alias", "usr/bin/tool"),
        LayerEntry.File("usr/share/empty", []),
        LayerEntry.File("usr/lib/a-c", Encoding.ASCII.GetBytes("x")),
        LayerEntry.File("usr/lib/a/b", Encoding.ASCII.GetBytes("y")),
    ];

    public static LayerWriter Writer(LayerCompression compression = LayerCompression.Gzip, long epoch = Epoch) =>
        new(new LayerWriterOptions { SourceDateEpoch = epoch, Compression = compression });

    public static byte[] Tar(IEnumerable<LayerEntry> entries, long epoch = Epoch)
    {
        using var ms = new MemoryStream();
        Writer(epoch: epoch).WriteTar(entries, ms);
        return ms.ToArray();
    }

    /// <summary>Reads a tar back with the framework reader (an independent parser of what we wrote).</summary>
    public static List<TarEntry> ReadTar(byte[] tar)
    {
        var list = new List<TarEntry>();
        using var reader = new TarReader(new MemoryStream(tar));
        while (reader.GetNextEntry(copyData: true) is { } e) list.Add(e);
        return list;
    }

    /// <summary>Writes a single-layer image for each of <paramref name="architectures"/> and tags it.</summary>
    public static WrittenImage WriteImage(OciLayout layout, string name, string version, IEnumerable<LayerEntry> entries,
        params string[] architectures)
    {
        var layer = Writer().WriteLayer(layout, new LayerSpec("rootfs", entries.ToList()));
        var writer = new ImageWriter(layout, Epoch);
        return writer.WriteAndTag(new ImageSpec
        {
            Name = name,
            Version = version,
            Platforms = architectures.Select(a => new PlatformImageSpec
            {
                Platform = new Platform { Architecture = a },
                Layers = [layer],
                Config = new ContainerConfig { User = "65532:65532", Env = ["PATH=/usr/bin"], Entrypoint = ["/usr/bin/tool"] },
            }).ToList(),
        });
    }
}
