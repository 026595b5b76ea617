using System.Collections.Concurrent;
using System.Runtime.InteropServices;

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
    private readonly Lazy<string[]> _sortedNames;
    private readonly ConcurrentDictionary<BinaryPackage, IReadOnlyList<Relation>> _provides = new(ReferenceEqualityComparer.Instance);
    // Parsed lazily (a resolution touches a few hundred of 65k packages) and shared by every resolution.
    private readonly ConcurrentDictionary<BinaryPackage, IReadOnlyList<RelationGroup>> _depends = new(ReferenceEqualityComparer.Instance);

    public PackageUniverse(string architecture, IEnumerable<BinaryPackage> packages)
        : this(string.IsNullOrWhiteSpace(architecture) || architecture == "all"
            ? throw new ArgumentException("a universe is for one concrete architecture (amd64, arm64, ...)", nameof(architecture))
            : architecture, null, packages)
    {
    }

    /// <summary>
    /// This universe with more packages (further suites of the same architecture): the name and provider index are
    /// copied and only the names the new packages touch are sorted again, instead of indexing ~65k packages anew.
    /// The result is the universe of all the packages together: candidate and provider order is a total order, so it
    /// does not depend on which packages came first.
    /// </summary>
    public PackageUniverse Extend(IEnumerable<BinaryPackage> more) => new(Architecture, this, more);

    private PackageUniverse(string architecture, PackageUniverse? from, IEnumerable<BinaryPackage> packages)
    {
        Architecture = architecture;
        _byName = from != null ? new Dictionary<string, BinaryPackage[]>(from._byName, StringComparer.Ordinal)
            : new Dictionary<string, BinaryPackage[]>(packages is ICollection<BinaryPackage> c ? c.Count : 0, StringComparer.Ordinal);
        var several = new HashSet<string>(StringComparer.Ordinal);
        var providers = new Dictionary<string, List<ProvidingPackage>>(StringComparer.Ordinal);
        var essential = new SortedSet<string>(from?.EssentialNames ?? [], StringComparer.Ordinal);
        var count = (from?.Count ?? 0) + Index(architecture, packages, _byName, providers, essential, several);

        foreach (var name in several)
        {
            var arr = _byName[name];
            Array.Sort(arr, CompareCandidates);
            _byName[name] = Dedupe(arr);
        }
        _providers = from != null ? new Dictionary<string, ProvidingPackage[]>(from._providers, StringComparer.Ordinal)
            : new Dictionary<string, ProvidingPackage[]>(providers.Count, StringComparer.Ordinal);
        foreach (var (name, list) in providers)
        {
            var arr = _providers.TryGetValue(name, out var old) ? [.. old, .. list] : list.ToArray();
            if (arr.Length > 1) Array.Sort(arr, CompareProviders);
            _providers[name] = arr;
        }
        // Only error messages (name suggestions) need the sorted name list.
        _sortedNames = new Lazy<string[]>(() =>
        {
            var names = _byName.Keys.ToArray();
            Array.Sort(names, StringComparer.Ordinal);
            return names;
        });
        EssentialNames = essential.ToArray();
        Count = count;
    }

    /// <summary>
    /// Adds the packages of this architecture (and <c>all</c>) to the name index — one hash lookup each and a new
    /// array per added version, so arrays another universe shares are never written — and their Provides to
    /// <paramref name="providers"/>; names that now have several candidates go to <paramref name="several"/>.
    /// </summary>
    private static int Index(string architecture, IEnumerable<BinaryPackage> packages, Dictionary<string, BinaryPackage[]> byName,
        Dictionary<string, List<ProvidingPackage>> providers, SortedSet<string> essential, HashSet<string> several)
    {
        var count = 0;
        foreach (var p in packages)
        {
            if (p.Architecture != architecture && p.Architecture != "all") continue;
            ref var slot = ref CollectionsMarshal.GetValueRefOrAddDefault(byName, p.Name, out bool exists);
            if (!exists) slot = new[] { p };
            else
            {
                several.Add(p.Name);
                slot = [.. slot!, p];
            }
            count++;
            if (p.Essential) essential.Add(p.Name);
            if (p.Provides.Length == 0) continue;
            try { ScanProvides(p, providers); }
            catch (FormatException e)
            {
                throw new Common.HardenException(
                    $"package {p.Name} {p.Version} from source '{p.Origin}' has a malformed Provides field: {e.Message}. " +
                    "The repository index is broken; report it to the repository owner or remove that source.");
            }
        }
        return count;
    }

    /// <summary>The architecture this universe serves (never <c>all</c>).</summary>
    public string Architecture { get; }

    /// <summary>Number of packages kept (those for other architectures are left out).</summary>
    public int Count { get; }

    /// <summary>Names of real packages, sorted ordinally.</summary>
    public IReadOnlyList<string> Names => _sortedNames.Value;

    /// <summary>Names of which at least one candidate is <c>Essential: yes</c>, sorted.</summary>
    public IReadOnlyList<string> EssentialNames { get; }

    /// <summary>Candidates named <paramref name="name"/>, best first (highest version).</summary>
    public IReadOnlyList<BinaryPackage> Candidates(string name) =>
        _byName.TryGetValue(name, out var arr) ? arr : NoPackages;

    /// <summary>
    /// Packages whose Provides names <paramref name="name"/>, in the order to prefer them: most important
    /// Priority first (as apt picks mawk for 'awk'), then provider name, then best version first.
    /// </summary>
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

    /// <summary>The parsed Provides of a package of this universe.</summary>
    public IReadOnlyList<Relation> ProvidesOf(BinaryPackage p) =>
        p.Provides.Length == 0 ? Array.Empty<Relation>() : _provides.GetOrAdd(p, static pkg => Relation.ParseProvides(pkg.Provides));

    /// <summary>
    /// Indexes a Provides field without building <see cref="Relation"/>s: the common shapes <c>name</c> and
    /// <c>name (= version)</c> are scanned in place (a Debian index has ~37k entries, some fields 20 KB long);
    /// anything else goes through <see cref="Relation.ParseProvides"/>, which validates and explains.
    /// </summary>
    private static void ScanProvides(BinaryPackage p, Dictionary<string, List<ProvidingPackage>> index)
    {
        var field = p.Provides.AsSpan();
        while (field.Length > 0)
        {
            var comma = field.IndexOf(',');
            var entry = (comma < 0 ? field : field[..comma]).Trim();
            field = comma < 0 ? ReadOnlySpan<char>.Empty : field[(comma + 1)..];
            if (entry.Length == 0) continue;
            var nameEnd = entry.IndexOfAny(" \t\n(");
            var name = nameEnd < 0 ? entry : entry[..nameEnd];
            DebianVersion? version = null;
            if (nameEnd >= 0)
            {
                var rest = entry[nameEnd..].Trim();
                if (rest.Length < 4 || rest[0] != '(' || rest[^1] != ')' || rest[1] != '=' || rest[2] is '<' or '>' or '=' ||
                    !DebianVersion.TryParse(rest[2..^1].ToString(), out version))
                {
                    var parsed = Relation.ParseProvides(entry.ToString()); // throws a precise FormatException
                    name = parsed[0].Name;
                    version = parsed[0].Version;
                }
            }
            if (name.IndexOfAny('|', ':', '[') >= 0 || name.IndexOf('<') >= 0)
            {
                // Alternatives, qualifiers, restrictions: let the parser judge (and explain).
                var parsed = Relation.ParseProvides(entry.ToString());
                name = parsed[0].Name;
                version = parsed[0].Version;
            }
            var key = name.ToString();
            if (!index.TryGetValue(key, out var list)) index[key] = list = new List<ProvidingPackage>(1);
            list.Add(new ProvidingPackage(p, version));
        }
    }

    /// <summary>Pre-Depends then Depends of a package, parsed once; a malformed field is a <see cref="Common.HardenException"/>.</summary>
    public IReadOnlyList<RelationGroup> DependsOf(BinaryPackage p) => _depends.GetOrAdd(p, static pkg =>
    {
        try
        {
            var pre = Relation.ParseField(pkg.PreDepends);
            var dep = Relation.ParseField(pkg.Depends);
            return pre.Count == 0 ? dep : dep.Count == 0 ? pre : pre.Concat(dep).ToArray();
        }
        catch (FormatException e)
        {
            throw new Common.HardenException(
                $"package {pkg.Name} {pkg.Version} from source '{pkg.Origin}' has a malformed Depends/Pre-Depends field: {e.Message}. " +
                "The repository index is broken; report it to the repository owner, or exclude the package.");
        }
    });

    /// <summary>Origins (sources.yaml names) present in the universe, sorted.</summary>
    public IReadOnlyList<string> Origins() =>
        _byName.Values.SelectMany(a => a).Select(p => p.Origin).Where(o => o.Length > 0)
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    /// <summary>Priority field rank: required 0, important 1, standard 2, optional (or none) 3, extra 4.</summary>
    public static int PriorityRank(BinaryPackage p) => (p.Priority.Length > 0 ? p.Priority : p.Paragraph?["Priority"]?.Trim()) switch
    {
        "required" => 0,
        "important" => 1,
        "standard" => 2,
        "extra" => 4,
        _ => 3,
    };

    private static int CompareProviders(ProvidingPackage a, ProvidingPackage b)
    {
        var c = PriorityRank(a.Package).CompareTo(PriorityRank(b.Package));
        if (c != 0) return c;
        c = string.CompareOrdinal(a.Package.Name, b.Package.Name);
        return c != 0 ? c : CompareCandidates(a.Package, b.Package);
    }

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
