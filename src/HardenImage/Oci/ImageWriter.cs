using System.Globalization;
using System.Text.RegularExpressions;
using HardenImage.Common;

namespace HardenImage.Oci;

/// <summary>One architecture of an image: its platform, ordered layers, runtime config and manifest annotations.</summary>
public sealed record PlatformImageSpec
{
    public required Platform Platform { get; init; }
    /// <summary>Bottom layer first (a parent image's layers, then this image's).</summary>
    public required IReadOnlyList<WrittenLayer> Layers { get; init; }
    public ContainerConfig? Config { get; init; }
    public string? Author { get; init; }
    /// <summary>One history entry per layer is generated from the layer names when this is null.</summary>
    public List<HistoryEntry>? History { get; init; }
    public SortedDictionary<string, string>? Annotations { get; init; }
}

/// <summary>An image of the set: name, version and one spec per architecture.</summary>
public sealed record ImageSpec
{
    public required string Name { get; init; }
    public string? Version { get; init; }
    public required IReadOnlyList<PlatformImageSpec> Platforms { get; init; }
    public SortedDictionary<string, string>? Annotations { get; init; }

    /// <summary>The ref names it is tagged with in index.json: "name" and, with a version, "name:version".</summary>
    public IReadOnlyList<string> RefNames =>
        string.IsNullOrEmpty(Version) ? [Name] : [Name, $"{Name}:{Version}"];
}

/// <summary>A manifest stored in the layout, with its config.</summary>
public sealed record WrittenManifest(Descriptor Descriptor, ImageManifest Manifest, Descriptor ConfigDescriptor, ImageConfig Config);

/// <summary>An image stored in the layout (blobs only) and the ref names it should get.</summary>
public sealed record WrittenImage(string Name, IReadOnlyList<string> RefNames, Descriptor Index, IReadOnlyList<WrittenManifest> Manifests);

/// <summary>
/// Writes configs, manifests and per-image indexes into an <see cref="OciLayout"/>. All documents go through
/// <see cref="OciJson"/> and contain nothing but their inputs and the epoch, so the same inputs give byte-identical
/// blobs (threat: Tampering — a rebuild proves the published digest). Blobs are written first; index.json is
/// replaced in one atomic step by <see cref="Tag"/>, so a build that fails halfway leaves the previous layout valid.
/// </summary>
public sealed partial class ImageWriter(OciLayout layout, long sourceDateEpoch)
{
    public OciLayout Layout { get; } = layout;
    public long SourceDateEpoch { get; } = sourceDateEpoch;

    /// <summary>The epoch as RFC 3339 UTC with seconds ("2025-05-17T00:00:00Z"), for config.created.</summary>
    public string Created => FormatEpoch(SourceDateEpoch);

    public static string FormatEpoch(long epoch) =>
        DateTimeOffset.FromUnixTimeSeconds(epoch).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>Writes the config and manifest of one architecture; the descriptor carries its platform.</summary>
    public WrittenManifest WriteManifest(PlatformImageSpec spec)
    {
        if (spec.Layers.Count == 0) throw new HardenException($"image for {spec.Platform.Architecture} has no layers");
        var history = spec.History ?? spec.Layers.Select(l => new HistoryEntry { Created = Created, CreatedBy = "harden build: " + l.Name }).ToList();
        var config = new ImageConfig
        {
            Created = Created,
            Author = spec.Author,
            Architecture = spec.Platform.Architecture,
            Os = spec.Platform.Os,
            Variant = spec.Platform.Variant,
            Config = spec.Config,
            RootFs = new RootFs { DiffIds = spec.Layers.Select(l => l.DiffId).ToList() },
            History = history,
        };
        var configDescriptor = Layout.WriteJson(config, MediaTypes.ImageConfig);
        var annotations = new SortedDictionary<string, string>(spec.Annotations ?? new(), StringComparer.Ordinal)
        {
            [Annotations.Created] = Created,
        };
        var manifest = new ImageManifest
        {
            Config = configDescriptor,
            Layers = spec.Layers.Select(l => l.Descriptor with { Annotations = null, Platform = null }).ToList(),
            Annotations = annotations,
        };
        var manifestDescriptor = Layout.WriteJson(manifest, MediaTypes.ImageManifest) with { Platform = spec.Platform };
        return new WrittenManifest(manifestDescriptor, manifest, configDescriptor, config);
    }

    /// <summary>Writes every architecture and the image's index (manifests sorted by platform); does not tag.</summary>
    public WrittenImage WriteImage(ImageSpec spec)
    {
        if (spec.Platforms.Count == 0) throw new HardenException($"image '{spec.Name}' has no architectures");
        foreach (var refName in spec.RefNames) ValidateRefName(refName);
        var manifests = spec.Platforms.Select(WriteManifest)
            .OrderBy(m => PlatformKey(m.Descriptor.Platform!), StringComparer.Ordinal).ToList();
        var dup = manifests.GroupBy(m => PlatformKey(m.Descriptor.Platform!)).FirstOrDefault(g => g.Count() > 1);
        if (dup != null) throw new HardenException($"image '{spec.Name}' lists platform {dup.Key} twice");
        var indexDescriptor = WriteIndex(spec.Name, spec.Version, spec.Annotations, manifests.Select(m => m.Descriptor));
        return new WrittenImage(spec.Name, spec.RefNames, indexDescriptor, manifests);
    }

    /// <summary>
    /// The index of an image over already written manifests (sorted by platform). A build and a fan-in that
    /// assembles per-platform jobs' manifests both write it here, so their indexes are the same bytes.
    /// </summary>
    public Descriptor WriteIndex(string name, string? version, SortedDictionary<string, string>? extraAnnotations, IEnumerable<Descriptor> manifests)
    {
        var sorted = manifests.OrderBy(m => PlatformKey(m.Platform!), StringComparer.Ordinal).ToList();
        var annotations = new SortedDictionary<string, string>(extraAnnotations ?? new(), StringComparer.Ordinal)
        {
            [Annotations.Created] = Created,
            [Annotations.Title] = name,
        };
        if (!string.IsNullOrEmpty(version)) annotations[Annotations.Version] = version;
        var index = new ImageIndex { Manifests = sorted, Annotations = annotations };
        return Layout.WriteJson(index, MediaTypes.ImageIndex);
    }

    /// <summary>Points every ref name of every image at its index in one atomic rewrite of index.json.</summary>
    public void Tag(IEnumerable<WrittenImage> images) =>
        Layout.TagAll(images.SelectMany(i => i.RefNames.Select(r => (r, i.Index))));

    /// <summary><see cref="WriteImage"/> then <see cref="Tag"/> for a single image.</summary>
    public WrittenImage WriteAndTag(ImageSpec spec)
    {
        var image = WriteImage(spec);
        Tag([image]);
        return image;
    }

    /// <summary>
    /// The image-spec grammar for org.opencontainers.image.ref.name: components of [A-Za-z0-9] joined by
    /// [-._:@+] or "--", separated by "/". Anything else is refused before it reaches index.json.
    /// </summary>
    public static string ValidateRefName(string refName)
    {
        if (!RefNamePattern().IsMatch(refName))
            throw new HardenException($"'{refName}' is not a valid OCI ref name (image name and version may use letters, digits and -._:@+ between them, '/' between components)");
        return refName;
    }

    [GeneratedRegex(@"^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$")]
    private static partial Regex RefNamePattern();

    internal static string PlatformKey(Platform p) => $"{p.Os}/{p.Architecture}" + (p.Variant is null ? "" : "/" + p.Variant);
}
