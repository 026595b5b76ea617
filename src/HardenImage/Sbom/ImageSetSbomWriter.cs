using HardenImage.Common;
using HardenImage.Contracts;

namespace HardenImage.Sbom;

/// <summary>One SBOM written: which image and architecture, what it lists, and where it went.</summary>
public sealed record WrittenSbom(string Image, string Architecture, ImageInventory Inventory, string Path);

/// <summary><c>harden sbom</c>'s work: a CycloneDX 1.6 SBOM per image and architecture, ARTIFACTS/sbom/IMAGE.ARCH.cdx.json.</summary>
public static class ImageSetSbomWriter
{
    /// <param name="architectures">Only these architectures; null = all.</param>
    /// <param name="payloadPaths">Image paths whose files are listed with their SHA-256.</param>
    public static IReadOnlyList<WrittenSbom> WriteAll(BuiltImageInventories images, string artifactsDir, string? imageName,
        IReadOnlyCollection<string>? architectures, IReadOnlyList<string> payloadPaths, CancellationToken ct)
    {
        var dir = ArtifactPaths.SbomDirectory(artifactsDir);
        Directory.CreateDirectory(dir);
        var written = new List<WrittenSbom>();
        foreach (var (image, arch) in images.Targets(imageName, architectures))
        {
            ct.ThrowIfCancellationRequested();
            var inventory = images.Read(image, arch, payloadPaths);
            var path = Path.Combine(dir, $"{image.Name}.{arch.Architecture}.cdx.json");
            AtomicFile.WriteAllBytes(path, CycloneDxWriter.Write(inventory));
            written.Add(new WrittenSbom(image.Name, arch.Architecture, inventory, path));
        }
        return written;
    }
}
