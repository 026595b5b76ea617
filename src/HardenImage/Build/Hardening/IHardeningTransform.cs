using HardenImage.Lock;
using HardenImage.Oci;
namespace HardenImage.Build.Hardening;

/// <summary>What a transform needs to know about the image it hardens.</summary>
public sealed record HardeningContext
{
    public required ImageDefinition Image { get; init; }
    public required string Architecture { get; init; }
    /// <summary>True for an image without a parent: it gets accounts, /tmp and the other root files.</summary>
    public required bool IsRootImage { get; init; }
    /// <summary>Packages installed by this layer, with their control records and md5sums.</summary>
    public required IReadOnlyList<InstalledPackage> Packages { get; init; }
    /// <summary>Reads a file's content from the content store (for transforms that derive files, e.g. the CA bundle).</summary>
    public required Func<FsNode, byte[]> ReadContent { get; init; }
    /// <summary>The image's own Python (from the lock, host architecture), or null when it has none.</summary>
    public IPythonByteCodeCompiler? Python { get; init; }
}

/// <summary>A package as installed into a layer: its control record, md5sums and maintainer scripts.</summary>
public sealed record InstalledPackage
{
    public required string Name { get; init; }
    public required string Version { get; init; }
    public required string Architecture { get; init; }
    /// <summary>The control file (deb822 text), written to status.d.</summary>
    public required string ControlText { get; init; }
    public string? Md5sums { get; init; }
    /// <summary>Names of maintainer scripts the package carries (preinst, postinst, …): we never run them.</summary>
    public IReadOnlyList<string> MaintainerScripts { get; init; } = [];
    /// <summary>Links the postinst would have made with update-alternatives.</summary>
    public IReadOnlyList<AlternativeLink> Alternatives { get; init; } = [];
}

/// <summary>One line of the build report: what a transform removed, changed or added.</summary>
public sealed record HardeningAction(string Transform, string Action, string Path, string Detail);

/// <summary>
/// A named hardening step over a layer's tree. Each documents the STRIDE threat it answers and reports every
/// change so the build output says exactly what hardening did.
/// </summary>
public interface IHardeningTransform
{
    string Name { get; }
    /// <summary>STRIDE letter(s) answered, e.g. "E" (elevation of privilege).</summary>
    string Threat { get; }
    string Description { get; }
    void Apply(FsTree tree, HardeningContext context, ICollection<HardeningAction> report);
}
