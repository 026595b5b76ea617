using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using HardenImage.Oci;

namespace HardenImage.Tests.Infrastructure;

/// <summary>
/// Generates small real multi-arch images into an <see cref="OciLayout"/>: gzip layers of tars built with
/// System.Formats.Tar (seeded random file contents, so sizes are honest and digests stable), configs with the
/// layers' diff_ids, one manifest per architecture, an index tagged with the image name.
/// </summary>
public static class TestImages
{
    public sealed record Layer(Descriptor Descriptor, string DiffId);

    /// <summary>A gzip tar layer holding one file of <paramref name="bytes"/> seeded random bytes.</summary>
    public static Layer WriteLayer(OciLayout layout, string fileName, int bytes, int seed)
    {
        var data = new byte[bytes];
        new Random(seed).NextBytes(data);
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            var entry = new PaxTarEntry(TarEntryType.RegularFile, fileName)
            {
                DataStream = new MemoryStream(data),
                ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
                Mode = UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
            };
            writer.WriteEntry(entry);
        }
        return WriteTarLayer(layout, tar.ToArray());
    }

    /// <summary>Stores <paramref name="tar"/> as a gzip (fastest) or zstd (level 3) layer blob; returns it with its diff_id.</summary>
    public static Layer WriteTarLayer(OciLayout layout, byte[] tar, bool zstd = false)
    {
        using var compressed = new MemoryStream();
        if (zstd)
        {
            using (var z = new ZstdSharp.CompressionStream(compressed, 3, leaveOpen: true)) z.Write(tar);
            return new Layer(layout.WriteBlob(compressed.ToArray(), MediaTypes.LayerZstd), "sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar)));
        }
        using (var z = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true)) z.Write(tar);
        return new Layer(layout.WriteBlob(compressed.ToArray(), MediaTypes.LayerGzip), "sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar)));
    }

    /// <summary>
    /// Writes image <paramref name="name"/> for <paramref name="architectures"/>: the <paramref name="parents"/>
    /// layers (shared with other images) plus one own layer per architecture of <paramref name="ownBytes"/>.
    /// Tags the index <c>name</c> in the layout; returns the index descriptor.
    /// </summary>
    public static Descriptor WriteImage(OciLayout layout, string name, string[] architectures, int ownBytes, IReadOnlyList<Layer>? parents = null, int seed = 0, int ownLayers = 1)
    {
        parents ??= [];
        var manifests = new List<Descriptor>();
        foreach (var (arch, i) in architectures.Select((a, i) => (a, i)))
        {
            var own = Enumerable.Range(0, ownLayers)
                .Select(k => WriteLayer(layout, $"opt/{name}/{arch}-{k}.bin", ownBytes, StableSeed($"{name}/{arch}/{seed}/{k}"))).ToList();
            var layers = parents.Concat(own).ToList();
            var config = new ImageConfig
            {
                Architecture = arch,
                Created = "2023-11-14T22:13:20Z",
                Config = new ContainerConfig { User = "65532", Entrypoint = ["/opt/" + name] },
                RootFs = new RootFs { DiffIds = layers.Select(l => l.DiffId).ToList() },
            };
            var configDesc = layout.WriteJson(config, MediaTypes.ImageConfig);
            var manifest = new ImageManifest { Config = configDesc, Layers = layers.Select(l => l.Descriptor).ToList() };
            var md = layout.WriteJson(manifest, MediaTypes.ImageManifest);
            manifests.Add(md with { Platform = new Platform { Architecture = arch } });
        }
        var index = layout.WriteJson(new ImageIndex { Manifests = manifests }, MediaTypes.ImageIndex);
        layout.Tag(name, index);
        return index;
    }

    public static int StableSeed(string text) => text.Aggregate(17, (h, c) => unchecked(h * 31 + c)) & 0x7fffffff;

    /// <summary>Every blob an index names (configs, layers) with its size.</summary>
    public static IReadOnlyList<Descriptor> BlobsOf(OciLayout layout, Descriptor index) =>
        layout.ReadJson<ImageIndex>(index.Digest).Manifests
            .SelectMany(m => { var man = layout.ReadJson<ImageManifest>(m.Digest); return man.Layers.Prepend(man.Config); })
            .DistinctBy(b => b.Digest).ToList();
}
