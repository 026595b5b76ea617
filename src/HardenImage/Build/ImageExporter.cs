using System.Formats.Tar;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Contracts;

namespace HardenImage.Build;

public enum ExportFormat { DockerArchive, OciArchive }

/// <summary>One platform of a built image, found in ARTIFACTS/build.json and its layout.</summary>
public sealed record ImageExport(BuiltImage Image, BuiltArchitecture Architecture, OciLayout Layout, ResolvedManifest Manifest);

/// <summary>
/// <c>harden export</c>'s work: one platform of a built image as a tar Docker loads (docker-archive, what Docker
/// 20.10's <c>docker load</c> takes) or skopeo/podman read (oci-archive), written atomically.
/// </summary>
public static class ImageExporter
{
    public static ImageExport Find(string artifactsDir, string image, string architecture)
    {
        var build = BuildManifest.Load(ArtifactPaths.BuildRecord(artifactsDir));
        var built = build.Image(image)
                    ?? throw new HardenException($"{ArtifactPaths.BuildRecord(artifactsDir)}: no built image '{image}'{NameSuggestions.DidYouMean(image, build.Images.Select(i => i.Name))}; run 'harden build --image {image}' first");
        var builtArch = built.Architectures.FirstOrDefault(a => a.Architecture == architecture)
                        ?? throw new HardenException($"image '{built.Name}' has no {PlatformName.ForArchitecture(architecture)} (it has {string.Join(", ", built.Architectures.Select(a => PlatformName.ForArchitecture(a.Architecture)))})");
        var layout = OciLayout.Open(ArtifactPaths.Layout(artifactsDir));
        var manifest = new OciLayoutReader(layout).ReadManifest(new Descriptor { MediaType = MediaTypes.ImageManifest, Digest = builtArch.Manifest, Size = builtArch.ManifestSize });
        return new ImageExport(built, builtArch, layout, manifest);
    }

    /// <param name="tag">The name it gets in Docker (REPO:TAG).</param>
    public static Task WriteAsync(ImageExport export, ExportFormat format, string tag, string outputPath, CancellationToken ct) =>
        AtomicFile.WriteAsync(outputPath, async stream =>
        {
            if (format == ExportFormat.DockerArchive)
                new DockerArchiveWriter(export.Layout).Write(export.Manifest, [tag], stream, ct);
            else
                await WriteOciArchiveAsync(export.Layout, export.Manifest, tag, stream, ct);
        });

    /// <summary>An OCI layout holding just this manifest, as a tar (skopeo's oci-archive), entries in a fixed order.</summary>
    private static async Task WriteOciArchiveAsync(OciLayout layout, ResolvedManifest image, string tag, Stream output, CancellationToken ct)
    {
        var refName = tag[(tag.LastIndexOf(':') + 1)..];
        var index = new ImageIndex
        {
            Manifests = [image.Descriptor with { Annotations = new SortedDictionary<string, string>(StringComparer.Ordinal) { [Annotations.RefName] = refName } }],
        };
        var mtime = DateTimeOffset.UnixEpoch;
        await using var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        async Task Add(string name, Stream content)
        {
            var entry = new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = content, ModificationTime = mtime, Mode = (UnixFileMode)0b110_100_100 };
            await tar.WriteEntryAsync(entry, ct);
        }
        await Add("oci-layout", new MemoryStream("{\"imageLayoutVersion\":\"1.0.0\"}"u8.ToArray()));
        await Add("index.json", new MemoryStream(OciJson.Serialize(index)));
        var digests = new[] { image.Descriptor.Digest, image.Manifest.Config.Digest }.Concat(image.Manifest.Layers.Select(l => l.Digest)).Distinct();
        foreach (var d in digests)
        {
            await using var blob = layout.OpenBlob(d);
            await Add($"blobs/sha256/{Digest.Parse(d).Hex}", blob);
        }
    }
}
