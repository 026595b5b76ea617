namespace HardenImage.Apt;

/// <summary>
/// Every candidate package for one architecture (that architecture's packages plus <c>Architecture: all</c>),
/// from all sources and suites together, indexed by name and by the names they Provide.
/// Candidates of a name are ordered best first: highest version, then a stable tie-break (origin, filename,
/// SHA-256) so that the order of the input lists never changes the outcome.
/// </summary>
public sealed class PackageUniverse
{
    private static readonly IReadOnlyList<BinaryPackage> NoPackages = Array.Empty<BinaryPackage>();
    private static readonly IReadOnlyList<ProvidingPackage> NoProviders = Array.Empty<ProvidingPackage>();

    private readonly Dictionary<string, BinaryPackage[]> _byName;
    private readonly Dictionary<string, ProvidingPackage[]> _providers;
    private readonly string[] _sortedNames;

    public PackageUniverse(string architecture, IEnumerable<BinaryPackage> packages)
    {
        if (string.IsNullOrWhiteSpace(architecture) || architecture == "all")
            throw new ArgumentException("a universe is for one concrete architecture (amd64, arm64, ...)", nameof(architecture));
        Architecture = architecture;

        var byName = new Dictionary<string, List<BinaryPackage>>(StringComparer.Ordinal);
        var providers = new Dictionary<string, List<ProvidingPackage>>(StringComparer.Ordinal);
        var essential = new SortedSet<string>(StringComparer.Ordinal);
        int count = 0;
        foreach (var p in packages)
        {
            if (p.Architecture != architecture && p.Architecture != "all") continue;
            if (!byName.TryGetValue(p.Name, out var list)) byName[p.Name] = list = new List<BinaryPackage>(1);
            list.Add(p);
            count++;
            if (p.Essential) essential.Add(p.Name);
            if (p.Provides.Length == 0) continue;
            IReadOnlyList<Relation> provides;
            try { provides = Relation.ParseProvides(p.Provides); }
            catch (FormatException e)
            {
                throw new Common.HardenException(
                    $"package {p.Name} {p.Version} from source '{p.Origin}' has a malformed Provides field: {e.Message}. " +
                    "The repository index is broken; report it to the repository owner or remove that source.");
            }
            foreach (var r in provides)
            {
                if (!providers.TryGetValue(r.Name, out var pl)) providers[r.Name] = pl = new List<ProvidingPackage>(1);
                pl.Add(new ProvidingPackage(p, r.Version));
            }
        }

        _byName = new Dictionary<string, BinaryPackage[]>(byName.Count, StringComparer.Ordinal);
        foreach (var (name, list) in byName)
        {
            var arr = list.ToArray();
            if (arr.Length > 1) Array.Sort(arr, CompareCandidates);
            _byName[name] = Dedupe(arr);
        }
        _providers = new Dictionary<string, ProvidingPackage[]>(providers.Count, StringComparer.Ordinal);
        foreach (var (name, list) in providers)
        {
            var arr = list.Distinct().ToArray();
            if (arr.Length > 1)
                Array.Sort(arr, (a, b) =>
                {
                    var c = string.CompareOrdinal(a.Package.Name, b.Package.Name);
                    return c != 0 ? c : CompareCandidates(a.Package, b.Package);
                });
            _providers[name] = arr;
        }
        _sortedNames = _byName.Keys.ToArray();
        Array.Sort(_sortedNames, StringComparer.Ordinal);
        EssentialNames = essential.ToArray();
        Count = count;
    }

    /// <summary>The architecture this universe serves (never <c>all</c>).</summary>
    public string Architecture { get; }

    /// <summary>Number of packages kept (those for other architectures are left out).</summary>
    public int Count { get; }

    /// <summary>Names of real packages, sorted ordinally.</summary>
    public IReadOnlyList<string> Names => _sortedNames;

    /// <summary>Names of which at least one candidate is <c>Essential: yes</c>, sorted.</summary>
    public IReadOnlyList<string> EssentialNames { get; }

    /// <summary>Candidates named <paramref name="name"/>, best first (highest version).</summary>
    public IReadOnlyList<BinaryPackage> Candidates(string name) =>
        _byName.TryGetValue(name, out var arr) ? arr : NoPackages;

    /// <summary>Packages whose Provides names <paramref name="name"/>, by provider name then best version first.</summary>
    public IReadOnlyList<ProvidingPackage> Providers(string name) =>
        _providers.TryGetValue(name, out var arr) ? arr : NoProviders;

    /// <summary>True when some package has this name or provides it.</summary>
    public bool Knows(string name) => _byName.ContainsKey(name) || _providers.ContainsKey(name);

    /// <summary>The candidate with exactly this version (dpkg equality), or null.</summary>
    public BinaryPackage? Find(string name, DebianVersion version)
    {
        foreach (var p in Candidates(name))
            if (p.ParsedVersion.Equals(version)) return p;
        return null;
    }

    /// <summary>Origins (sources.yaml names) present in the universe, sorted.</summary>
    public IReadOnlyList<string> Origins() =>
        _byName.Values.SelectMany(a => a).Select(p => p.Origin).Where(o => o.Length > 0)
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    // Highest version first; equal versions (the same package in trixie and trixie-updates, say) in a fixed order.
    private static int CompareCandidates(BinaryPackage a, BinaryPackage b)
    {
        var c = b.ParsedVersion.CompareTo(a.ParsedVersion);
        if (c != 0) return c;
        c = string.CompareOrdinal(a.Origin, b.Origin);
        if (c != 0) return c;
        c = string.CompareOrdinal(a.Filename, b.Filename);
        return c != 0 ? c : string.CompareOrdinal(a.Sha256, b.Sha256);
    }

    // The very same file listed by two suites is one candidate; keep the first in the stable order.
    private static BinaryPackage[] Dedupe(BinaryPackage[] sorted)
    {
        if (sorted.Length < 2) return sorted;
        var kept = new List<BinaryPackage>(sorted.Length);
        foreach (var p in sorted)
            if (!kept.Any(k => k.Sha256 == p.Sha256 && k.Version == p.Version)) kept.Add(p);
        return kept.Count == sorted.Length ? sorted : kept.ToArray();
    }
}

/// <summary>A package that provides a (usually virtual) name, with the provided version when it declares one.</summary>
public sealed record ProvidingPackage(BinaryPackage Package, DebianVersion? ProvidedVersion);
