using HardenImage.Apt;
using HardenImage.Common;
using HardenImage.Contracts;

namespace HardenImage.Lock;

/// <summary>One suite of one source, verified and parsed: what the resolver sees.</summary>
public sealed record SuiteIndex
{
    public required string Source { get; init; }
    public required string Suite { get; init; }
    public required string Url { get; init; }
    public required string InReleaseSha256 { get; init; }
    public required DateTimeOffset Date { get; init; }
    public DateTimeOffset? ValidUntil { get; init; }
    /// <summary>Architecture → packages (architecture-specific and <c>all</c>).</summary>
    public required IReadOnlyDictionary<string, IReadOnlyList<BinaryPackage>> Packages { get; init; }
    /// <summary>Parsed-index cache entries found forged and re-derived while reading.</summary>
    public IReadOnlyList<string> Notices { get; init; } = [];

    public string Name => $"{Source}/{Suite}";
}

/// <summary>What one suite's signed index lists, for proving lock entries (see <see cref="LockProver"/>).</summary>
public sealed record SuiteProof
{
    public required string Source { get; init; }
    public required string Suite { get; init; }
    public required string InReleaseSha256 { get; init; }
    public required DateTimeOffset Date { get; init; }
    /// <summary>Proven against the InRelease the lock records (else against the mirror's current one).</summary>
    public required bool Pinned { get; init; }
    /// <summary>Architecture → (repository URL the Filenames are relative to, entries of that architecture and <c>all</c>).</summary>
    public required IReadOnlyDictionary<string, (string BaseUrl, IReadOnlyList<ProvenIndexEntry> Entries)> Packages { get; init; }
    public IReadOnlyList<string> Notices { get; init; } = [];

    public string Name => $"{Source}/{Suite}";
}

/// <summary>Fetches and verifies one suite of a source (InRelease signature, index hashes).</summary>
public interface ISuiteIndexReader
{
    Task<SuiteIndex> ReadAsync(SourceDefinition source, string suite, IReadOnlyList<string> architectures, CancellationToken ct);

    /// <summary>The suite's signed package list, preferably from the InRelease <paramref name="pinnedInReleaseSha256"/>;
    /// with <paramref name="names"/>, only those packages' entries.</summary>
    Task<SuiteProof> ProveAsync(SourceDefinition source, string suite, IReadOnlyList<string> architectures, string? pinnedInReleaseSha256,
        IReadOnlySet<string>? names, CancellationToken ct);
}

public sealed record LockOptions
{
    /// <summary>Re-resolve everything to the newest versions (otherwise pins stay while satisfiable).</summary>
    public bool Update { get; init; }
    /// <summary>Limit to these images (and their ancestors).</summary>
    public IReadOnlyCollection<string>? Images { get; init; }
    /// <summary>Accept a Release older than the Date the lock records for its suite (reported loudly).</summary>
    public bool AllowRollback { get; init; }
}

/// <summary>What locking one image × architecture did, for the report.</summary>
public sealed record LockReportEntry(
    string Image, string Architecture, bool Resolved, int Packages, long Bytes,
    IReadOnlyDictionary<string, IReadOnlyList<string>> PulledIn,
    IReadOnlyList<DroppedDependency> Dropped, IReadOnlyList<string> AssumedEssential,
    IReadOnlyList<string> Changes);

public sealed record LockOutcome(LockFile Lock, IReadOnlyList<LockReportEntry> Report, IReadOnlyList<string> SourcesRead)
{
    /// <summary>Every package version that goes down ("image (arch): name old → new"): never silent.</summary>
    public IReadOnlyList<string> Downgrades { get; init; } = [];
    /// <summary>Allowed rollbacks and rebuilt forged cache entries, to be shown.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>Why a lock no longer matches images/*.yaml (for <c>harden lock --check</c>).</summary>
public sealed record LockStaleness(string Image, string Reason);

/// <summary>
/// Turns images/*.yaml into images/images.lock.json (threat T: every byte that enters an image is pinned by
/// SHA-256 from a signed index). Locks change only when someone asks: an image whose inputs are unchanged
/// keeps its entry untouched, and re-resolved images keep their pins while still satisfiable.
/// </summary>
public sealed class ImageLocker(ISuiteIndexReader reader)
{
    public async Task<LockOutcome> LockAsync(ImageSet set, LockFile? existing, LockOptions options, IProgress<string>? progress = null, CancellationToken ct = default)
    {
        var selected = set.Select(options.Images);
        var resolveNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var image in selected)
        {
            var old = existing?.Image(image.Name);
            var stale = options.Update || old == null || old.InputsSha256 != set.InputsSha256(image)
                        || (image.From != null && resolveNames.Contains(image.From));
            if (stale) resolveNames.Add(image.Name);
        }

        // Fetch every suite the re-resolved images need, in parallel, once.
        var needed = new Dictionary<string, (SourceDefinition Source, string Suite, SortedSet<string> Archs)>(StringComparer.Ordinal);
        foreach (var image in selected.Where(i => resolveNames.Contains(i.Name)))
        {
            var eff = ImageSet.Effective(set, image);
            foreach (var sourceName in eff.Sources)
            {
                var source = set.Sources[sourceName];
                foreach (var suite in source.Suites)
                {
                    var key = $"{sourceName}/{suite}";
                    if (!needed.TryGetValue(key, out var entry)) needed[key] = entry = (source, suite, new SortedSet<string>(StringComparer.Ordinal));
                    foreach (var a in eff.Architectures) entry.Archs.Add(a);
                }
            }
        }
        var indexes = new Dictionary<string, SuiteIndex>(StringComparer.Ordinal);
        var tasks = needed.OrderBy(k => k.Key, StringComparer.Ordinal).Select(async kv =>
        {
            progress?.Report($"reading {kv.Key} ({string.Join(", ", kv.Value.Archs)})");
            SuiteIndex index;
            using (Timings.Span($"lock: read {kv.Key} ({string.Join(", ", kv.Value.Archs)})"))
                index = await reader.ReadAsync(kv.Value.Source, kv.Value.Suite, kv.Value.Archs.ToList(), ct);
            lock (indexes) indexes[kv.Key] = index;
        }).ToList();
        await Task.WhenAll(tasks);

        // No silent rollback: a validly signed but older Release (replayed by a mirror) must not move the lock back.
        var warnings = new List<string>();
        foreach (var index in indexes.Values.OrderBy(i => i.Name, StringComparer.Ordinal))
        {
            var recorded = existing?.Sources.FirstOrDefault(s => s.Name == index.Name);
            if (recorded == null || index.Date >= recorded.Date) continue;
            var what = $"{index.Name}: the mirror ({index.Url}) serves an InRelease dated {index.Date:u}, older than the {recorded.Date:u} the lock records";
            if (!options.AllowRollback)
                throw new HardenException($"{what} — a replayed or stale mirror. Refusing it; the lock is unchanged. " +
                                          "Use an up-to-date mirror, or pass --allow-rollback if you mean to go back.", 2);
            warnings.Add($"ROLLBACK ALLOWED (--allow-rollback): {what}");
        }
        warnings.AddRange(indexes.Values.OrderBy(i => i.Name, StringComparer.Ordinal).SelectMany(i => i.Notices));

        var images = new Dictionary<string, LockedImage>(StringComparer.Ordinal);
        foreach (var img in existing?.Images ?? []) images[img.Name] = img;
        var report = new List<LockReportEntry>();
        var universes = new Dictionary<string, PackageUniverse>(StringComparer.Ordinal);
        // Every universe the resolutions below need, built side by side (each indexes ~70k packages; independent).
        var universeInputs = selected.Where(i => resolveNames.Contains(i.Name)).Select(i => ImageSet.Effective(set, i))
            .SelectMany(eff => eff.Architectures.Select(arch => (Arch: arch,
                SuiteKeys: eff.Sources.SelectMany(s => set.Sources[s].Suites.Select(suite => $"{s}/{suite}")).ToList())))
            .DistinctBy(u => u.Arch + "|" + string.Join(",", u.SuiteKeys)).ToList();
        IEnumerable<BinaryPackage> PackagesOf(IEnumerable<string> suiteKeys, string arch) =>
            suiteKeys.SelectMany(k => indexes[k].Packages.TryGetValue(arch, out var list) ? list : []);
        using (Timings.Span($"lock: {universeInputs.Count} package universes"))
        {
            // A universe whose suites include another's (debian + debian-nonfree over debian) extends that one with the
            // further suites' packages instead of indexing the ~65k shared packages again.
            static string Key((string Arch, List<string> SuiteKeys) u) => u.Arch + "|" + string.Join(",", u.SuiteKeys);
            (string Arch, List<string> SuiteKeys)? SmallerOf((string Arch, List<string> SuiteKeys) u) =>
                universeInputs.Where(o => o.Arch == u.Arch && o.SuiteKeys.Count < u.SuiteKeys.Count && !o.SuiteKeys.Except(u.SuiteKeys).Any())
                    .OrderByDescending(o => o.SuiteKeys.Count).Select(o => ((string, List<string>)?)o).FirstOrDefault();
            var roots = universeInputs.Where(u => SmallerOf(u) == null).ToList();
            var built = await Task.WhenAll(roots.Select(u => Task.Run(() => new PackageUniverse(u.Arch, PackagesOf(u.SuiteKeys, u.Arch)), ct)));
            for (var i = 0; i < built.Length; i++) universes[Key(roots[i])] = built[i];
            var pending = universeInputs.Where(u => !universes.ContainsKey(Key(u))).OrderBy(u => u.SuiteKeys.Count).ToList();
            while (pending.Count > 0)
            {
                // Each round extends the universes whose smaller one is built (a chain of subsets takes a round per step).
                var ready = pending.Where(u => universes.ContainsKey(Key(SmallerOf(u)!.Value))).ToList();
                if (ready.Count == 0) throw new InvalidOperationException("package universes: no smaller universe built for " + Key(pending[0]));
                var extended = await Task.WhenAll(ready.Select(u => Task.Run(() =>
                {
                    var smaller = SmallerOf(u)!.Value;
                    return universes[Key(smaller)].Extend(PackagesOf(u.SuiteKeys.Except(smaller.SuiteKeys), u.Arch));
                }, ct)));
                for (var i = 0; i < extended.Length; i++) universes[Key(ready[i])] = extended[i];
                pending.RemoveAll(ready.Contains);
            }
        }

        foreach (var image in selected)
        {
            var eff = ImageSet.Effective(set, image);
            if (!resolveNames.Contains(image.Name))
            {
                foreach (var a in images[image.Name].Architectures)
                    report.Add(new(image.Name, a.Architecture, false, a.Packages.Count, a.Packages.Sum(p => p.Size),
                        new Dictionary<string, IReadOnlyList<string>>(), a.DroppedDependencies, a.AssumedEssential, []));
                continue;
            }
            var old = existing?.Image(image.Name);
            var archs = new List<LockedArchitecture>();
            foreach (var arch in eff.Architectures.Order(StringComparer.Ordinal))
            {
                var suiteKeys = eff.Sources.SelectMany(s => set.Sources[s].Suites.Select(suite => $"{s}/{suite}")).ToList();
                var universeKey = arch + "|" + string.Join(",", suiteKeys);
                if (!universes.TryGetValue(universeKey, out var universe))
                {
                    var packages = suiteKeys.SelectMany(k => indexes[k].Packages.TryGetValue(arch, out var list) ? list : []);
                    using (Timings.Span($"lock: package universe {universeKey}"))
                        universes[universeKey] = universe = new PackageUniverse(arch, packages);
                }
                var installed = InstalledByAncestors(set, image, arch, images);
                var oldArch = old?.Architectures.FirstOrDefault(a => a.Architecture == arch);
                var pins = options.Update || oldArch == null
                    ? new Dictionary<string, string>()
                    : oldArch.Packages.ToDictionary(p => p.Name, p => p.Version, StringComparer.Ordinal);
                var result = new DependencyResolver(universe).Resolve(new ResolveRequest
                {
                    Architecture = arch,
                    Packages = image.Packages,
                    Excluded = image.Exclude,
                    Installed = installed,
                    Provided = set.ProvidesWithAncestors(image),
                    Pins = pins,
                    Sources = suiteKeys,
                    Image = $"{image.File}",
                });
                var locked = result.ToLockedArchitecture();
                archs.Add(locked);
                var pulled = result.Packages
                    .SelectMany(p => p.RequiredBy.Select(r => (Root: r, p.Name)))
                    .GroupBy(x => x.Root, StringComparer.Ordinal)
                    .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)g.Select(x => x.Name).Where(n => n != g.Key).Order(StringComparer.Ordinal).ToList(), StringComparer.Ordinal);
                report.Add(new(image.Name, arch, true, locked.Packages.Count, locked.Packages.Sum(p => p.Size), pulled,
                    locked.DroppedDependencies, locked.AssumedEssential, Diff(oldArch, locked)));
            }
            images[image.Name] = new LockedImage
            {
                Name = image.Name,
                From = image.From,
                InputsSha256 = set.InputsSha256(image),
                Architectures = archs,
            };
        }

        // Drop entries for images that no longer exist in the set.
        foreach (var name in images.Keys.Where(n => !set.Images.ContainsKey(n)).ToList()) images.Remove(name);

        // Sources: fresh ones from this run, earlier ones kept while an unchanged image still uses them.
        var sources = new Dictionary<string, LockedSource>(StringComparer.Ordinal);
        var stillUsed = images.Values.SelectMany(i => i.Architectures).SelectMany(a => a.Packages).Select(p => p.Origin).ToHashSet(StringComparer.Ordinal);
        foreach (var s in existing?.Sources ?? [])
            if (stillUsed.Contains(s.Name)) sources[s.Name] = s;
        foreach (var idx in indexes.Values)
            sources[idx.Name] = new LockedSource
            {
                Name = idx.Name, Url = idx.Url, Suite = idx.Suite, InReleaseSha256 = idx.InReleaseSha256,
                Date = idx.Date, ValidUntil = idx.ValidUntil,
            };
        var lockFile = new LockFile { Sources = sources.Values.ToList(), Images = images.Values.ToList() }.Normalized();

        // Kept entries are input, not proof: every entry of the selection is proven before the lock is written.
        var proof = await new LockProver(reader).ProveAsync(set, lockFile, options.Images,
            new LockProofOptions { AllowRollback = options.AllowRollback }, progress, ct);
        warnings.AddRange(proof.Notices.Where(n => !warnings.Contains(n)));
        var downgrades = report.SelectMany(r => r.Changes.Where(c => c.StartsWith("↓", StringComparison.Ordinal))
            .Select(c => $"{r.Image} ({r.Architecture}): {c[2..]}")).ToList();
        return new LockOutcome(lockFile, report, indexes.Keys.Order(StringComparer.Ordinal).ToList())
        {
            Downgrades = downgrades, Warnings = warnings,
        };
    }

    /// <summary>Packages the parent chain installs for this architecture, name → version.</summary>
    private static Dictionary<string, string> InstalledByAncestors(ImageSet set, ImageDefinition image, string arch, Dictionary<string, LockedImage> images)
    {
        var installed = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var ancestor in set.Ancestors(image))
        {
            if (!images.TryGetValue(ancestor.Name, out var locked))
                throw new HardenException($"{image.File}: parent '{ancestor.Name}' has no lock entry; lock it too (harden lock --image {ancestor.Name}).");
            var a = locked.Architectures.FirstOrDefault(x => x.Architecture == arch)
                    ?? throw new HardenException($"{image.File}: parent '{ancestor.Name}' is not locked for {arch}.");
            foreach (var p in a.Packages) installed.TryAdd(p.Name, p.Version);
        }
        return installed;
    }

    private static IReadOnlyList<string> Diff(LockedArchitecture? before, LockedArchitecture after)
    {
        var changes = new List<string>();
        var old = before?.Packages.ToDictionary(p => p.Name, p => p.Version, StringComparer.Ordinal) ?? new();
        var now = after.Packages.ToDictionary(p => p.Name, p => p.Version, StringComparer.Ordinal);
        foreach (var (n, v) in now.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            if (!old.TryGetValue(n, out var ov)) changes.Add($"+ {n} {v}");
            else if (ov != v)
                changes.Add(DebianVersion.TryParse(ov, out var o) && DebianVersion.TryParse(v, out var nv) && nv!.CompareTo(o) < 0
                    ? $"↓ {n} {ov} → {v}" : $"~ {n} {ov} → {v}");
        }
        foreach (var n in old.Keys.Except(now.Keys).Order(StringComparer.Ordinal)) changes.Add($"- {n} {old[n]}");
        return changes;
    }

    /// <summary>Offline check that the lock still matches the image set (CI gate: exit 1 when stale).</summary>
    public static IReadOnlyList<LockStaleness> Check(ImageSet set, LockFile? existing, IReadOnlyCollection<string>? images = null)
    {
        var problems = new List<LockStaleness>();
        foreach (var image in set.Select(images))
        {
            var entry = existing?.Image(image.Name);
            if (entry == null) { problems.Add(new(image.Name, "not in the lock")); continue; }
            if (entry.InputsSha256 != set.InputsSha256(image))
                problems.Add(new(image.Name, $"{Path.GetFileName(image.File)}, its parents or sources.yaml changed since it was locked"));
            var eff = ImageSet.Effective(set, image);
            var lockedArchs = entry.Architectures.Select(a => a.Architecture).Order(StringComparer.Ordinal);
            if (!lockedArchs.SequenceEqual(eff.Architectures.Order(StringComparer.Ordinal)))
                problems.Add(new(image.Name, "architectures differ from the lock"));
        }
        foreach (var img in existing?.Images ?? [])
            if (!set.Images.ContainsKey(img.Name)) problems.Add(new(img.Name, "locked but no longer defined in images/"));
        return problems;
    }
}
