namespace HardenImage.Trace;

/// <summary>A package of the traced image as its status.d records describe it.</summary>
/// <param name="Files">Image paths without the leading '/', /usr-merged (status.d/&lt;pkg&gt;.md5sums).</param>
/// <param name="Depends">Pre-Depends and Depends groups, each the alternative names in order.</param>
/// <param name="Own">True for this image's own packages (its lock entries); parents' packages are never proposed.</param>
public sealed record TracedPackage(string Name, IReadOnlyList<string> Files, long Bytes, IReadOnlyList<IReadOnlyList<string>> Depends, bool Own);

/// <summary>What the workload was seen to use. Paths as in <see cref="TracedPackage.Files"/>.</summary>
/// <param name="Loaded">path → how it was seen (mapped by a process, imported by Python).</param>
/// <param name="Needed">ELF path → the image paths its DT_NEEDED sonames resolve to (unresolved ones omitted).</param>
public sealed record TraceEvidence(IReadOnlyDictionary<string, string> Loaded, IReadOnlyDictionary<string, IReadOnlyList<string>> Needed);

public sealed record ProposedExclude(string Package, long Bytes, int Files, string Evidence);
public sealed record ProposedRemove(string Path, string Package, string Evidence);
/// <summary>A candidate that was not proposed, and the loaded object that needs it.</summary>
public sealed record RefusedProposal(string Entry, string Reason);

public sealed record SlimmingProposal(
    IReadOnlyList<ProposedExclude> Exclude,
    IReadOnlyList<ProposedRemove> Remove,
    IReadOnlyList<string> DroppedWith,
    IReadOnlyList<RefusedProposal> Refused,
    int LoadedFiles,
    int ProtectedFiles)
{
    public long Bytes => Exclude.Sum(e => e.Bytes);
}

/// <summary>
/// From trace evidence, proposes <c>exclude:</c> entries (own packages none of whose files the workload loaded or
/// needs) and <c>remove:</c> entries (files of kept packages that link to something the exclusions take away).
/// Nothing that a loaded object links to is ever proposed: the protected set is the loaded files plus their
/// DT_NEEDED closure, and a candidate whose exclusion would take a protected file away — itself, or by dropping a
/// package only it depends on — is refused naming both. Pure: same evidence, same proposal.
/// </summary>
public static class SlimmingProposer
{
    public static SlimmingProposal Propose(IReadOnlyList<TracedPackage> packages, IReadOnlyCollection<string> requested,
        TraceEvidence evidence, IReadOnlyCollection<string>? userExcludes = null, IReadOnlyCollection<string>? userRemoves = null)
    {
        var owner = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in packages) foreach (var f in p.Files) owner.TryAdd(f, p.Name);
        var byName = packages.ToDictionary(p => p.Name, StringComparer.Ordinal);

        // Protected: loaded files and, transitively, what they link to; remember who needed each.
        var neededBy = new Dictionary<string, string>(StringComparer.Ordinal);
        var queue = new Queue<string>();
        foreach (var path in evidence.Loaded.Keys.Order(StringComparer.Ordinal))
            if (neededBy.TryAdd(path, path)) queue.Enqueue(path);
        while (queue.Count > 0)
        {
            var path = queue.Dequeue();
            foreach (var dep in evidence.Needed.GetValueOrDefault(path) ?? [])
                if (neededBy.TryAdd(dep, path)) queue.Enqueue(dep);
        }
        string Why(string path) => evidence.Loaded.TryGetValue(path, out var how)
            ? $"/{path} ({how})"
            : $"/{path} (DT_NEEDED by loaded /{neededBy[path]})";
        var used = new Dictionary<string, string>(StringComparer.Ordinal); // package → first protected file
        foreach (var path in neededBy.Keys.Order(StringComparer.Ordinal))
            if (owner.TryGetValue(path, out var pkg)) used.TryAdd(pkg, path);

        var refused = new List<RefusedProposal>();
        var excluded = new HashSet<string>(StringComparer.Ordinal);
        var proposals = new List<ProposedExclude>();
        var candidates = packages.Where(p => p.Own && !used.ContainsKey(p.Name) && !requested.Contains(p.Name))
            .OrderByDescending(p => p.Bytes).ThenBy(p => p.Name, StringComparer.Ordinal).Select(p => p.Name).ToList();
        foreach (var name in userExcludes ?? [])
        {
            if (!byName.TryGetValue(name, out var p) || !p.Own)
                refused.Add(new($"exclude: {name}", p == null ? "not a package of this image" : "installed by a parent image; exclude it there"));
            else if (requested.Contains(name))
                refused.Add(new($"exclude: {name}", "requested in packages:; remove it from packages: instead"));
            else if (used.TryGetValue(name, out var file))
                refused.Add(new($"exclude: {name}", $"it ships {Why(file)}"));
            else if (!candidates.Contains(name)) candidates.Insert(0, name);
        }

        // Packages the records do not connect to the requested ones (a Depends the build resolved through a parent,
        // a hand-made record) are not blamed on a candidate.
        var unconnected = Unreachable(packages, byName, requested, new HashSet<string>(StringComparer.Ordinal)).ToHashSet(StringComparer.Ordinal);
        foreach (var name in candidates)
        {
            var trial = new HashSet<string>(excluded, StringComparer.Ordinal) { name };
            var lost = Unreachable(packages, byName, requested, trial).Where(n => used.ContainsKey(n) && !unconnected.Contains(n))
                .Order(StringComparer.Ordinal).ToList();
            if (lost.Count > 0)
            {
                refused.Add(new($"exclude: {name}", $"it would drop {lost[0]}, which ships {Why(used[lost[0]])}"));
                continue;
            }
            excluded.Add(name);
            var p = byName[name];
            proposals.Add(new ProposedExclude(name, p.Bytes, p.Files.Count, $"none of its {p.Files.Count} files was loaded or is linked by a loaded object"));
        }
        var dropped = Unreachable(packages, byName, requested, excluded).Where(n => !excluded.Contains(n) && !unconnected.Contains(n))
            .Order(StringComparer.Ordinal).ToList();
        var gone = new HashSet<string>(excluded.Concat(dropped), StringComparer.Ordinal);

        // Files left behind that link to what is gone (a plugin nobody loads): propose removing them too.
        var removes = new List<ProposedRemove>();
        foreach (var (path, deps) in evidence.Needed.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!owner.TryGetValue(path, out var pkg) || gone.Contains(pkg) || !byName[pkg].Own) continue;
            var missing = deps.FirstOrDefault(d => owner.TryGetValue(d, out var o) && gone.Contains(o));
            if (missing == null) continue;
            if (neededBy.ContainsKey(path))
            {
                refused.Add(new($"exclude: {owner[missing]}", $"/{missing} is needed by {Why(path)}"));
                continue;
            }
            removes.Add(new ProposedRemove(path, pkg, $"links to /{missing} ({owner[missing]}, proposed away); never loaded"));
        }
        foreach (var glob in userRemoves ?? [])
        {
            var hit = neededBy.Keys.Order(StringComparer.Ordinal).FirstOrDefault(p => PathGlob.Matches(glob, p));
            if (hit != null) refused.Add(new($"remove: {glob}", $"it matches {Why(hit)}"));
            else removes.Add(new ProposedRemove(glob, "", "requested with --try-remove; matches nothing loaded or linked"));
        }
        return new SlimmingProposal(proposals, removes, dropped, refused, evidence.Loaded.Count, neededBy.Count);
    }

    /// <summary>Packages no longer reachable from the requested ones when <paramref name="excluded"/> are never installed.</summary>
    private static IEnumerable<string> Unreachable(IReadOnlyList<TracedPackage> packages, Dictionary<string, TracedPackage> byName,
        IReadOnlyCollection<string> requested, HashSet<string> excluded)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var queue = new Queue<string>();
        foreach (var r in requested) if (byName.ContainsKey(r) && !excluded.Contains(r) && seen.Add(r)) queue.Enqueue(r);
        while (queue.Count > 0)
        {
            foreach (var group in byName[queue.Dequeue()].Depends)
            {
                // As the resolver: the first alternative present in the image meets the group.
                var met = group.FirstOrDefault(a => byName.ContainsKey(a) && !excluded.Contains(a));
                if (met != null && seen.Add(met)) queue.Enqueue(met);
            }
        }
        return packages.Where(p => p.Own && !seen.Contains(p.Name)).Select(p => p.Name);
    }
}

/// <summary>The <c>remove:</c> glob language, exactly as the build applies it (RemoveListedPaths).</summary>
public static class PathGlob
{
    public static bool Matches(string glob, string path) =>
        HardenImage.Build.Hardening.RemoveListedPaths.GlobToRegex(glob).IsMatch(path.TrimStart('/'));
}
