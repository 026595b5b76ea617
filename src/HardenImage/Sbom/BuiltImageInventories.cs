using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Lock;
using HardenImage.Oci;

namespace HardenImage.Sbom;

/// <summary>
/// Finds the images of a build (artifacts/build.json) in the OCI layout and reads an inventory per image and
/// architecture, with the lock entries of the image and all its parents.
/// </summary>
public sealed class BuiltImageInventories
{
    private readonly OciLayout _layout;
    private readonly BuildManifest _build;
    private readonly LockFile? _lock;
    private readonly Func<string, OriginDistribution> _distributionOf;

    /// <param name="sourceDefinitions">images/sources.yaml's sources, when the image set is at hand: a source whose
    /// <c>distro</c> is not Debian is never matched against Debian advisories.</param>
    public BuiltImageInventories(OciLayout layout, BuildManifest build, LockFile? lockFile,
        IReadOnlyDictionary<string, SourceDefinition>? sourceDefinitions = null)
    {
        _layout = layout; _build = build; _lock = lockFile;
        _distributionOf = OriginDistributions.For(lockFile, sourceDefinitions);
    }

    /// <summary>
    /// <c>harden sbom</c>'s and <c>harden scan</c>'s view of a build: <paramref name="artifactsDir"/>/build.json, the
    /// layout, the lock when present (else <paramref name="warn"/> is told the .deb hashes will be missing) and the
    /// image set's sources.yaml beside the lock — a package's release comes from there, never from the image.
    /// </summary>
    public static BuiltImageInventories Open(string layoutDir, string artifactsDir, string lockPath, Action<string> warn)
    {
        var build = BuildManifest.Load(ArtifactPaths.BuildRecord(artifactsDir));
        var layout = OciLayout.Open(layoutDir);
        LockFile? lockFile = null;
        if (File.Exists(lockPath)) lockFile = LockFile.Load(lockPath);
        else warn($"{lockPath} not found: .deb hashes will be missing from the SBOM");
        var sourcesYaml = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(lockPath))!, "sources.yaml");
        var definitions = File.Exists(sourcesYaml) ? ImageSet.Load(Path.GetDirectoryName(sourcesYaml)!).Sources : null;
        return new BuiltImageInventories(layout, build, lockFile, definitions);
    }

    /// <summary>
    /// Every (image, architecture) of the selection in the order sbom and scan walk them: images by name, then
    /// architectures by name; <paramref name="architectures"/> null = all.
    /// </summary>
    public IEnumerable<(BuiltImage Image, BuiltArchitecture Architecture)> Targets(string? imageName, IReadOnlyCollection<string>? architectures)
    {
        foreach (var image in Select(imageName))
            foreach (var arch in image.Architectures.Where(a => architectures == null || architectures.Contains(a.Architecture))
                         .OrderBy(a => a.Architecture, StringComparer.Ordinal))
                yield return (image, arch);
    }

    /// <summary>The images selected by <paramref name="imageName"/> (all when null), failing when the name is unknown.</summary>
    public IReadOnlyList<BuiltImage> Select(string? imageName)
    {
        if (imageName is null) return _build.Images.OrderBy(i => i.Name, StringComparer.Ordinal).ToList();
        var image = _build.Images.FirstOrDefault(i => i.Name == imageName)
            ?? throw new HardenException($"image '{imageName}' is not in the build result (known: {string.Join(", ", _build.Images.Select(i => i.Name))}). Run 'harden build' or check --image.");
        return [image];
    }

    /// <summary>Lock entries of <paramref name="image"/> and its parents (from:) for one architecture.</summary>
    public IReadOnlyList<LockedPackage> LockEntries(string image, string architecture)
    {
        var result = new List<LockedPackage>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var current = _lock?.Image(image);
        while (current != null && seen.Add(current.Name))
        {
            var arch = current.Architectures.FirstOrDefault(a => a.Architecture == architecture);
            if (arch != null) result.AddRange(arch.Packages);
            current = current.From is null ? null : _lock!.Image(current.From);
        }
        return result;
    }

    public ImageInventory Read(BuiltImage image, BuiltArchitecture arch, IReadOnlyList<string>? payloadPaths = null) =>
        ImageInventoryReader.Read(_layout, arch.Manifest, LockEntries(image.Name, arch.Architecture), image.Name, payloadPaths, _distributionOf);
}
