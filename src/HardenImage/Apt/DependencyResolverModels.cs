using HardenImage.Contracts;

namespace HardenImage.Apt;

/// <summary>What to resolve for one image and one architecture.</summary>
public sealed record ResolveRequest
{
    /// <summary>Must equal the universe's architecture.</summary>
    public required string Architecture { get; init; }
    /// <summary>Requested packages: <c>name</c> or <c>name=version</c>.</summary>
    public required IReadOnlyList<string> Packages { get; init; }
    /// <summary>Names never to install; dependencies only they satisfy become dropped edges.</summary>
    public IReadOnlyCollection<string> Excluded { get; init; } = Array.Empty<string>();
    /// <summary>Packages the parent image already installs (name → version): they satisfy dependencies and are not added again.</summary>
    public IReadOnlyDictionary<string, string> Installed { get; init; } = new Dictionary<string, string>();
    /// <summary>
    /// Declared provides of the image and its parents (<c>python3 (= 3.13.5-1)</c>): they meet relations as the
    /// Provides of an installed package would, and nothing is installed for them. A version must be one the signed
    /// index attests (a package of that name and version, or a package providing exactly that).
    /// </summary>
    public IReadOnlyList<string> Provided { get; init; } = Array.Empty<string>();
    /// <summary>Versions from the previous lock (name → version), kept while available and satisfying.</summary>
    public IReadOnlyDictionary<string, string> Pins { get; init; } = new Dictionary<string, string>();
    /// <summary>Names of the sources searched (e.g. <c>debian/trixie</c>), for error messages.</summary>
    public IReadOnlyList<string> Sources { get; init; } = Array.Empty<string>();
    /// <summary>Image name, for error messages.</summary>
    public string? Image { get; init; }
}

/// <summary>A package the image installs.</summary>
/// <param name="RequiredBy">Requested names whose dependency closure contains this package (itself when requested), sorted.</param>
public sealed record ResolvedPackage(BinaryPackage Package, IReadOnlyList<string> RequiredBy)
{
    public string Name => Package.Name;
    public string Version => Package.Version;

    /// <summary>Download URL: the repository base URL joined with the Packages <c>Filename</c>.</summary>
    public string Url => Package.BaseUrl.TrimEnd('/') + "/" + Package.Filename.TrimStart('/');
}

/// <summary>A dependency not followed because only excluded packages satisfy it.</summary>
/// <param name="Dependency">The dependency entry as written, e.g. <c>debconf (&gt;= 0.5) | debconf-2.0</c>.</param>
/// <param name="Reason"><c>excluded: &lt;name&gt;</c>.</param>
public sealed record DroppedEdge(string Package, string Dependency, string Reason);

/// <summary>A pin from the previous lock that could not be kept, and why.</summary>
public sealed record DroppedPin(string Name, string PinnedVersion, string SelectedVersion, string Reason);

/// <summary>The outcome of <see cref="DependencyResolver.Resolve"/>; every list is sorted.</summary>
public sealed record ResolveResult
{
    public required string Architecture { get; init; }
    /// <summary>Packages to install on top of the parent image, sorted by name.</summary>
    public required IReadOnlyList<ResolvedPackage> Packages { get; init; }
    public required IReadOnlyList<DroppedEdge> DroppedDependencies { get; init; }
    /// <summary>Essential packages of the universe that nothing in the image (parent included) is or provides.</summary>
    public required IReadOnlyList<string> AssumedEssential { get; init; }
    public required IReadOnlyList<DroppedPin> DroppedPins { get; init; }

    /// <summary>The lock file entry for this architecture.</summary>
    public LockedArchitecture ToLockedArchitecture() => new()
    {
        Architecture = Architecture,
        Packages = Packages.Select(p => new LockedPackage
        {
            Name = p.Package.Name,
            Version = p.Package.Version,
            Architecture = p.Package.Architecture,
            Source = p.Package.SourceName,
            SourceVersion = p.Package.SourceVersion,
            Url = p.Url,
            Sha256 = p.Package.Sha256,
            Size = p.Package.Size,
            RequiredBy = p.RequiredBy.ToList(),
            Origin = p.Package.Origin,
        }).ToList(),
        DroppedDependencies = DroppedDependencies
            .Select(d => new DroppedDependency { Package = d.Package, Dependency = d.Dependency, Reason = d.Reason }).ToList(),
        AssumedEssential = AssumedEssential.ToList(),
    };
}
