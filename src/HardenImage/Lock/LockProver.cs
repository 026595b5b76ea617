using HardenImage.Apt;
using HardenImage.Common;
using HardenImage.Contracts;

namespace HardenImage.Lock;

/// <summary>A lock entry proven by a signed index, with the URL derived from the source's url and the index's Filename.</summary>
public sealed record ProvenDeb(string Image, string Architecture, LockedPackage Entry, string Url)
{
    public DebDownload ToDownload() => new(Entry.Name, Entry.Version, Url, Entry.Sha256, Entry.Size);
}

/// <summary>Every entry of the selected images, proven; what to report (forged caches rebuilt, rollbacks allowed).</summary>
public sealed record LockProof(IReadOnlyList<ProvenDeb> Debs, IReadOnlyList<SuiteProof> Suites, IReadOnlyList<string> Notices)
{
    /// <summary>Downloads of the proven entries, one per SHA-256.</summary>
    public IReadOnlyList<DebDownload> Downloads() =>
        Debs.DistinctBy(d => d.Entry.Sha256).OrderBy(d => d.Entry.Name, StringComparer.Ordinal)
            .ThenBy(d => d.Entry.Architecture, StringComparer.Ordinal).Select(d => d.ToDownload()).ToList();

    /// <summary>The cached path of <paramref name="entry"/>, only when that exact entry was proven (the build's DebLocator).</summary>
    public string Locate(LockedPackage entry, IReadOnlyDictionary<string, string> pathsBySha256)
    {
        if (!_proven.Contains(Key(entry)) || !pathsBySha256.TryGetValue(entry.Sha256, out var path))
            throw new HardenException($"lock entry {entry.Name} {entry.Version} ({entry.Architecture}) was not proven by a signed index; not building from it. Run 'harden lock'.");
        return path;
    }

    private readonly HashSet<(string, string, string, string, long, string)> _proven = Debs.Select(d => Key(d.Entry)).ToHashSet();

    private static (string, string, string, string, long, string) Key(LockedPackage p) =>
        (p.Name, p.Version, p.Architecture, p.Sha256, p.Size, p.Url);
}

public sealed record LockProofOptions
{
    /// <summary>Accept a Release older than the Date the lock records for its suite (said loudly).</summary>
    public bool AllowRollback { get; init; }
}

/// <summary>
/// Proves a lock before anything uses it (threat T/S: a lock arrives through pull requests; it is input, not proof).
/// For every entry of the selected images, (package, version, architecture, SHA-256, size) must appear in a Packages
/// index whose hash chain ends in an InRelease verified against the source's keyring — the one the lock records for
/// that suite when it can be had (content store, mirror), else the mirror's current one. The download URL is the
/// source's url plus the index's Filename; a lock entry whose url says otherwise is refused. The lock must also be
/// complete: every requested package (minus exclude) and every dependency of every locked package is in it, for
/// every architecture. Nothing falls back to trusting the lock: when proof cannot be had the error names the entry
/// and the command that re-locks.
/// </summary>
public sealed class LockProver(ISuiteIndexReader reader)
{
    private const int MaxListed = 8;

    public async Task<LockProof> ProveAsync(ImageSet set, LockFile lockFile, IReadOnlyCollection<string>? images,
        LockProofOptions? options = null, IProgress<string>? progress = null, CancellationToken ct = default)
    {
        options ??= new LockProofOptions();
        var selected = set.Select(images);
        var relock = $"harden lock --update{string.Concat(selected.Select(i => " --image " + i.Name))}";
        var rows = new List<(ImageDefinition Image, LockedArchitecture Arch)>();
        var problems = new List<string>();
        foreach (var image in selected)
        {
            var locked = lockFile.Image(image.Name);
            if (locked == null) { problems.Add($"image '{image.Name}' is not in the lock"); continue; }
            var built = ImageSet.Effective(set, image).Architectures;
            foreach (var extra in locked.Architectures.Where(a => !built.Contains(a.Architecture)))
                problems.Add($"image '{image.Name}' is locked for {extra.Architecture}, which it does not build");
            foreach (var arch in built.Order(StringComparer.Ordinal))
            {
                var a = locked.Architectures.FirstOrDefault(x => x.Architecture == arch);
                if (a == null) problems.Add($"image '{image.Name}' has no lock entry for {arch}");
                else rows.Add((image, a));
            }
        }
        Fail(problems, relock);

        // A child's layer is unpacked over its parents': the same package locked twice would silently replace the
        // parent's files (and its scanner record) with another version's. The resolver never writes that; refuse it.
        foreach (var (image, arch) in rows)
            foreach (var ancestor in set.Ancestors(image))
            {
                var theirs = lockFile.Image(ancestor.Name)?.Architectures.FirstOrDefault(a => a.Architecture == arch.Architecture)?.Packages;
                if (theirs == null) continue;
                foreach (var p in arch.Packages)
                    foreach (var q in theirs.Where(q => q.Name == p.Name))
                        problems.Add($"{Entry(image, arch, p)}: package {p.Name} is also locked by its parent image '{ancestor.Name}' at {q.Version}; " +
                                     $"a child layer must not replace its parent's package (child {p.Version}, parent {q.Version})");
            }
        Fail(problems, relock);

        // Which suites to prove, for which architectures; the lock's record of each suite must match sources.yaml.
        var wanted = new SortedDictionary<string, (SourceDefinition Source, string Suite, LockedSource Locked, SortedSet<string> Archs)>(StringComparer.Ordinal);
        foreach (var (image, arch) in rows)
            foreach (var p in arch.Packages)
            {
                var slash = p.Origin.IndexOf('/');
                var sourceName = slash > 0 ? p.Origin[..slash] : p.Origin;
                var suite = slash > 0 ? p.Origin[(slash + 1)..] : "";
                var imageSources = ImageSet.Effective(set, image).Sources;
                if (!imageSources.Contains(sourceName))
                {
                    problems.Add($"{Entry(image, arch, p)}: origin '{p.Origin}' is not one of the image's sources ({string.Join(", ", imageSources)})");
                    continue;
                }
                if (wanted.TryGetValue(p.Origin, out var w)) { w.Archs.Add(arch.Architecture); continue; }
                var lockedSource = lockFile.Sources.FirstOrDefault(s => s.Name == p.Origin);
                if (!set.Sources.TryGetValue(sourceName, out var source) || !source.Suites.Contains(suite))
                    problems.Add($"{Entry(image, arch, p)}: origin '{p.Origin}' is not a source/suite of sources.yaml");
                else if (lockedSource == null)
                    problems.Add($"{Entry(image, arch, p)}: the lock has no record of suite '{p.Origin}' (its InRelease digest and Date)");
                else if (lockedSource.Url.TrimEnd('/') != source.Url.TrimEnd('/'))
                    problems.Add($"lock source '{p.Origin}': url {lockedSource.Url} is not the url of sources.yaml ({source.Url})");
                else
                    wanted[p.Origin] = (source, suite, lockedSource, new SortedSet<string>(StringComparer.Ordinal) { arch.Architecture });
            }
        Fail(problems.Distinct().ToList(), relock);

        var proofs = new Dictionary<string, SuiteProof>(StringComparer.Ordinal);
        await Task.WhenAll(wanted.Select(async kv =>
        {
            progress?.Report($"proving {kv.Key}");
            var names = rows.SelectMany(r => r.Arch.Packages).Where(p => p.Origin == kv.Key).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
            var proof = await reader.ProveAsync(kv.Value.Source, kv.Value.Suite, kv.Value.Archs.ToList(), kv.Value.Locked.InReleaseSha256, names, ct);
            lock (proofs) proofs[kv.Key] = proof;
        }));

        var notices = proofs.Values.SelectMany(p => p.Notices).ToList();
        foreach (var (name, (_, _, locked, _)) in wanted)
        {
            var proof = proofs[name];
            if (proof.Pinned && proof.Date != locked.Date)
                problems.Add($"lock source '{name}': records Date {locked.Date:u}, but its InRelease {Short(locked.InReleaseSha256)} says {proof.Date:u} (the lock was edited)");
            else if (proof.Date < locked.Date)
            {
                var what = $"{name}: the mirror serves an InRelease dated {proof.Date:u}, older than the {locked.Date:u} the lock records (a replayed or stale mirror)";
                if (options.AllowRollback) notices.Add($"ROLLBACK ALLOWED (--allow-rollback): {what}");
                else problems.Add($"{what}; refusing it — use an up-to-date mirror, or pass --allow-rollback to accept going back");
            }
        }
        Fail(problems, relock);

        // Each entry against its suite's signed list: same name, version, architecture, SHA-256, size, and URL.
        var lookup = proofs.ToDictionary(kv => kv.Key, kv => kv.Value.Packages.ToDictionary(a => a.Key,
            a => (a.Value.BaseUrl, Index: a.Value.Entries.GroupBy(e => (e.Name, e.Version, e.Architecture))
                .ToDictionary(g => g.Key, g => g.ToList())), StringComparer.Ordinal), StringComparer.Ordinal);
        var debs = new List<ProvenDeb>();
        var byImageArch = new Dictionary<(string, string), List<ProvenIndexEntry>>();
        foreach (var (image, arch) in rows)
        {
            var entries = byImageArch[(image.Name, arch.Architecture)] = new List<ProvenIndexEntry>();
            foreach (var p in arch.Packages)
            {
                var proof = proofs[p.Origin];
                var (baseUrl, index) = lookup[p.Origin][arch.Architecture];
                var listed = index.GetValueOrDefault((p.Name, p.Version, p.Architecture)) ?? [];
                var match = listed.FirstOrDefault(e => e.Sha256 == p.Sha256.ToLowerInvariant() && e.Size == p.Size);
                if (match == null)
                {
                    var against = proof.Pinned
                        ? $"the InRelease the lock records ({Short(proof.InReleaseSha256)}, {proof.Date:u})"
                        : $"the mirror's current InRelease ({Short(proof.InReleaseSha256)}, {proof.Date:u}; the one the lock records, {Short(wanted[p.Origin].Locked.InReleaseSha256)}, is neither in the cache nor served any more)";
                    var why = listed.Count == 0
                        ? $"is not listed in the signed index of {p.Origin} by {against}"
                        : listed.Any(e => e.Sha256 == p.Sha256.ToLowerInvariant())
                            ? $"has size {p.Size}, but the signed index of {p.Origin} says {listed[0].Size}"
                            : $"has SHA-256 {p.Sha256}, but the signed index of {p.Origin} says {listed[0].Sha256}";
                    problems.Add($"{Entry(image, arch, p)} {why}");
                    continue;
                }
                if (!TryDeriveUrl(baseUrl, match.Filename, out var url))
                {
                    problems.Add($"{Entry(image, arch, p)}: the signed index gives Filename '{match.Filename}', which leaves the repository (absolute, '..' or a URL)");
                    continue;
                }
                // Source and source version decide which advisories the scan matches: proven like the rest.
                if (p.Source != match.SourceName || p.SourceVersion != match.SourceVersion)
                {
                    problems.Add($"{Entry(image, arch, p)}: source {p.Source} {p.SourceVersion} is not what the signed index says ({match.SourceName} {match.SourceVersion})");
                    continue;
                }
                if (p.Url != url)
                {
                    problems.Add($"{Entry(image, arch, p)}: url {p.Url} is not where the signed index puts it ({url})");
                    continue;
                }
                entries.Add(match);
                debs.Add(new ProvenDeb(image.Name, arch.Architecture, p, url));
            }
        }
        Fail(problems, relock);

        foreach (var (image, arch) in rows)
            problems.AddRange(Incomplete(set, image, arch, byImageArch));
        Fail(problems, relock);
        return new LockProof(debs, proofs.Values.OrderBy(p => p.Name, StringComparer.Ordinal).ToList(), notices);
    }

    /// <summary>
    /// Completeness (issue 17 §4): each requested package (minus exclude) is in the image or its parents, and every
    /// Pre-Depends/Depends group of the image's own packages is met by the image or its parents, or is a dropped
    /// edge the lock lists whose excluded satisfier really is in <c>exclude</c>. And nothing extra: each own entry is
    /// reachable from the requested packages.
    /// </summary>
    private static IEnumerable<string> Incomplete(ImageSet set, ImageDefinition image, LockedArchitecture arch,
        Dictionary<(string, string), List<ProvenIndexEntry>> byImageArch)
    {
        var present = new List<ProvenIndexEntry>();
        foreach (var i in set.Ancestors(image).Prepend(image))
            if (byImageArch.TryGetValue((i.Name, arch.Architecture), out var list)) present.AddRange(list);
        var byName = present.GroupBy(e => e.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var provided = new Dictionary<string, List<(Relation Provide, ProvenIndexEntry By)>>(StringComparer.Ordinal);
        foreach (var e in present)
            foreach (var r in Relation.ParseProvides(e.Provides))
            {
                if (!provided.TryGetValue(r.Name, out var l)) provided[r.Name] = l = new();
                l.Add((r, e));
            }
        // Present packages that meet a relation (null: any version), by name or Provides (Policy §7.5 for versions).
        IEnumerable<ProvenIndexEntry> Meeting(string name, Relation? r)
        {
            if (byName.TryGetValue(name, out var real))
                foreach (var p in real)
                    if (r == null || DebianVersion.TryParse(p.Version, out var v) && r.AcceptsVersion(v!)) yield return p;
            if (provided.TryGetValue(name, out var prov))
                foreach (var (pr, by) in prov)
                    if (r == null || r.Operator == RelationOperator.None || pr.Version != null && r.AcceptsVersion(pr.Version)) yield return by;
        }
        // Declared provides (image and parents) meet relations like an installed package's Provides.
        var declared = set.ProvidesWithAncestors(image).Select(t => Relation.ParseProvides(t).Single()).ToList();
        bool DeclaredMeets(Relation r) => declared.Any(d => d.Name == r.Name &&
            (r.Operator == RelationOperator.None || d.Version != null && r.AcceptsVersion(d.Version)));
        var excluded = image.Exclude.ToHashSet(StringComparer.Ordinal);
        var where = $"image '{image.Name}' ({arch.Architecture})";

        foreach (var spec in image.Packages)
        {
            var name = ImageSet.PackageName(spec);
            if (!excluded.Contains(name) && !byName.ContainsKey(name) && !provided.ContainsKey(name))
                yield return $"{where}: requested package '{name}' is not in the lock";
        }
        var own = byImageArch.GetValueOrDefault((image.Name, arch.Architecture)) ?? [];
        foreach (var e in own)
            foreach (var group in Relation.ParseField(e.PreDepends).Concat(Relation.ParseField(e.Depends)))
            {
                var alternatives = group.Alternatives.Where(a => a.AppliesTo(arch.Architecture)).ToList();
                if (alternatives.Count == 0) continue;
                if (alternatives.Any(a => Meeting(a.Name, a).Any() || DeclaredMeets(a))) continue;
                var dropped = arch.DroppedDependencies.FirstOrDefault(d => d.Package == e.Name && d.Dependency == group.Text);
                var satisfier = dropped?.Reason.StartsWith("excluded: ", StringComparison.Ordinal) == true ? dropped.Reason["excluded: ".Length..] : null;
                if (satisfier != null && excluded.Contains(satisfier)) continue;
                yield return $"{where}: {e.Name} depends on '{group.Text}', which nothing in the lock provides";
            }

        // Nothing extra: every own entry is reached from the requested packages through dependencies present in the
        // lock, so an unrequested package (a shell, a debugger) cannot be smuggled in by adding a valid entry.
        var reached = new HashSet<string>(StringComparer.Ordinal);
        var queue = new Queue<ProvenIndexEntry>();
        void Reach(IEnumerable<ProvenIndexEntry> found)
        {
            foreach (var p in found) if (reached.Add(p.Name)) queue.Enqueue(p);
        }
        foreach (var spec in image.Packages) Reach(Meeting(ImageSet.PackageName(spec), null));
        while (queue.Count > 0)
        {
            var next = queue.Dequeue();
            foreach (var group in Relation.ParseField(next.PreDepends).Concat(Relation.ParseField(next.Depends)))
                foreach (var a in group.Alternatives.Where(a => a.AppliesTo(arch.Architecture)))
                    Reach(Meeting(a.Name, a));
        }
        foreach (var e in own.Where(e => !reached.Contains(e.Name)))
            yield return $"{where}: {e.Name} is in the lock, but neither requested nor needed by a requested package";
    }

    /// <summary>Base URL + Filename; a Filename that is absolute, has a scheme or a '..' segment is refused.</summary>
    private static bool TryDeriveUrl(string baseUrl, string filename, out string url)
    {
        url = "";
        if (filename.Length == 0 || filename.Contains("://", StringComparison.Ordinal) || filename.Contains('\\')
            || filename.Split('/').Any(s => s == "..") || filename.Any(char.IsControl)) return false;
        // The same spelling the resolver writes (ResolvedPackage.Url), so an honest lock compares equal.
        url = baseUrl.TrimEnd('/') + "/" + filename.TrimStart('/');
        return true;
    }

    private static string Short(string sha256) => sha256.Length > 12 ? sha256[..12] : sha256;

    private static string Entry(ImageDefinition image, LockedArchitecture arch, LockedPackage p) =>
        $"lock entry {image.Name} ({arch.Architecture}) {p.Name} {p.Version}";

    private static void Fail(List<string> problems, string relock)
    {
        if (problems.Count == 0) return;
        var shown = string.Join("; ", problems.Take(MaxListed)) + (problems.Count > MaxListed ? $"; and {problems.Count - MaxListed} more" : "");
        throw new HardenException($"the lock is not proven by the signed indices: {shown}. Nothing was written, fetched or built from it. " +
                                  $"Re-lock from the signed indices with '{relock}' and review the diff.", 1);
    }
}
