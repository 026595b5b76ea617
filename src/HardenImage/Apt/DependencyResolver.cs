using HardenImage.Common;

namespace HardenImage.Apt;

/// <summary>
/// Computes the set of packages an image installs: the requested packages and the closure of their
/// Pre-Depends and Depends (never Recommends or Suggests), one version per name, against a
/// <see cref="PackageUniverse"/>.
/// <para>
/// Choices, in order: an alternative already satisfied by the parent image or by a selected package wins;
/// otherwise the first alternative that can be satisfied; real packages before virtual providers; the pinned
/// version from the previous lock while it satisfies, otherwise the highest. Groups with several alternatives
/// are decided after every single-choice dependency, so a later hard dependency can satisfy them. When a
/// version chosen earlier turns out to violate a later relation, the relation becomes a constraint on that
/// name and resolution restarts (each restart adds a distinct constraint, so it ends).
/// </para>
/// Threat: Tampering — the output is deterministic (sorted roots, field order, stable candidate order), so a
/// lock diff shows exactly what changed and nothing depends on hash-map order.
/// </summary>
public sealed class DependencyResolver
{
    private const int MaxRestarts = 500;
    private readonly PackageUniverse _universe;

    public DependencyResolver(PackageUniverse universe)
    {
        _universe = universe;
    }

    /// <summary>Resolves <paramref name="request"/>; throws <see cref="HardenException"/> with a fix when it cannot.</summary>
    public ResolveResult Resolve(ResolveRequest request)
    {
        if (request.Architecture != _universe.Architecture)
            throw new ArgumentException($"request is for {request.Architecture} but the universe holds {_universe.Architecture}");

        var ctx = new Context(this, request);
        ctx.CheckRequestedVersusExcluded();
        var constraints = new Dictionary<string, List<Constraint>>(StringComparer.Ordinal);
        var droppedPinReasons = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int attempt = 0; ; attempt++)
        {
            var run = new Attempt(ctx, constraints, droppedPinReasons);
            var conflict = run.Run();
            if (conflict is null) return run.Result();
            if (attempt >= MaxRestarts)
                throw new HardenException($"{ctx.Subject}: gave up resolving after {MaxRestarts} version conflicts (last: {conflict.Relation} needed by {conflict.NeededBy}). " +
                                          "Request explicit versions (name=version) for the packages involved.");
            if (!constraints.TryGetValue(conflict.Relation.Name, out var list))
                constraints[conflict.Relation.Name] = list = new List<Constraint>();
            list.Add(conflict);
        }
    }

    /// <summary>A relation a name must meet, learnt from a conflict in an earlier attempt.</summary>
    private sealed record Constraint(Relation Relation, string NeededBy);

    /// <summary>Request-level facts shared by all attempts.</summary>
    private sealed class Context
    {
        public Context(DependencyResolver resolver, ResolveRequest request)
        {
            Request = request;
            Universe = resolver._universe;
            Excluded = new HashSet<string>(request.Excluded, StringComparer.Ordinal);
            Subject = request.Image is null ? $"resolving for {request.Architecture}" : $"image '{request.Image}' ({request.Architecture})";
            foreach (var (name, version) in request.Installed)
            {
                if (!DebianVersion.TryParse(version, out var v))
                    throw new HardenException($"{Subject}: the parent image lists {name} with an invalid version '{version}'. Re-lock the parent image.");
                Installed[name] = new InstalledPackage(name, v!, Universe.Find(name, v!));
            }
            foreach (var text in request.Provided)
                Provided.Add(ParseProvided(text));
            foreach (var spec in request.Packages)
                Roots.Add(ParseRoot(spec));
            // Sorted so that the order packages are listed in an image file never changes the lock.
            Roots.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
            foreach (var g in Roots.GroupBy(r => r.Name).Where(g => g.Select(r => r.Version?.ToString()).Distinct().Count() > 1))
                throw new HardenException($"{Subject}: '{g.Key}' is requested twice with different versions ({string.Join(", ", g.Select(r => r.Spec))}). Keep one.");
            Roots = Roots.DistinctBy(r => r.Name).ToList();
        }

        public ResolveRequest Request { get; }
        public PackageUniverse Universe { get; }
        public HashSet<string> Excluded { get; }
        public Dictionary<string, InstalledPackage> Installed { get; } = new(StringComparer.Ordinal);
        public List<RootRequest> Roots { get; private set; } = new();
        public List<Relation> Provided { get; } = new();
        public string Subject { get; }
        public string Architecture => Request.Architecture;

        public string SourcesText => Request.Sources.Count > 0
            ? string.Join(", ", Request.Sources)
            : Universe.Origins() is { Count: > 0 } o ? string.Join(", ", o) : "(no sources named)";

        private RootRequest ParseRoot(string spec)
        {
            var s = spec.Trim();
            var eq = s.IndexOf('=');
            if (eq < 0)
            {
                if (s.Length == 0) throw new HardenException($"{Subject}: an empty package name was requested. Remove it from the image's package list.");
                return new RootRequest(s, null, spec);
            }
            var name = s[..eq].Trim();
            var versionText = s[(eq + 1)..].Trim();
            if (name.Length == 0 || !DebianVersion.TryParse(versionText, out var v))
                throw new HardenException($"{Subject}: '{spec}' is not 'name' or 'name=version' with a Debian version. Fix the image's package list.");
            return new RootRequest(name, v, spec);
        }

        /// <summary>
        /// A declared provide; a versioned one must be attested by the signed index, so a typo or an invented
        /// version cannot make <c>python3 (&gt;= 3.20)</c> look satisfied.
        /// </summary>
        private Relation ParseProvided(string text)
        {
            Relation r;
            try { r = Relation.ParseProvides(text).Single(); }
            catch (Exception e) when (e is FormatException or InvalidOperationException)
            {
                throw new HardenException($"{Subject}: provides: '{text}' is not one Provides entry like 'python3 (= 3.13.5-1)' ({e.Message}). Fix the image's provides: list.");
            }
            if (r.Version is null) return r;
            bool attested = Universe.Candidates(r.Name).Any(p => p.ParsedVersion.Equals(r.Version))
                            || Universe.Providers(r.Name).Any(p => p.ProvidedVersion != null && p.ProvidedVersion.Equals(r.Version));
            if (!attested)
            {
                var known = Universe.Candidates(r.Name).Select(p => p.Version)
                    .Concat(Universe.Providers(r.Name).Where(p => p.ProvidedVersion != null).Select(p => p.ProvidedVersion!.ToString()))
                    .Distinct().ToList();
                throw new HardenException($"{Subject}: provides: '{text}' — no package in {SourcesText} is {r.Name} {r.Version} or provides it at that version " +
                                          $"({(known.Count == 0 ? $"nothing is or provides {r.Name}" : "the index has " + string.Join(", ", known))}). " +
                                          "Write a version the index has, or drop the version.");
            }
            return r;
        }

        public void CheckRequestedVersusExcluded()
        {
            var both = Roots.Where(r => Excluded.Contains(r.Name)).Select(r => r.Name).ToList();
            if (both.Count > 0)
                throw new HardenException($"{Subject}: {string.Join(", ", both)} {(both.Count == 1 ? "is" : "are")} both requested and excluded. " +
                                          "Remove it from 'packages' or from 'exclude'.");
        }

        public bool ArchOk(BinaryPackage p, Relation r) => r.ArchQualifier switch
        {
            null or "native" => true,
            // dpkg: ':any' is met only by a package that declares Multi-Arch: allowed.
            "any" => string.Equals(p.MultiArch, "allowed", StringComparison.OrdinalIgnoreCase),
            var q => q == Architecture,
        };
    }

    private sealed record RootRequest(string Name, DebianVersion? Version, string Spec);

    private sealed record InstalledPackage(string Name, DebianVersion Version, BinaryPackage? Known);

    /// <summary>One pass of the resolution; returns a conflict to learn from, or null when done.</summary>
    private sealed class Attempt
    {
        private readonly Context _ctx;
        private readonly Dictionary<string, List<Constraint>> _constraints;
        private readonly Dictionary<string, string> _droppedPinReasons;
        private readonly Dictionary<string, BinaryPackage> _selected = new(StringComparer.Ordinal);
        private readonly Dictionary<string, List<(string By, DebianVersion? Version, BinaryPackage? Package)>> _provided = new(StringComparer.Ordinal);
        private readonly Dictionary<string, HashSet<string>> _edges = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _pulledInBy = new(StringComparer.Ordinal);
        private readonly List<DroppedEdge> _dropped = new();
        private readonly Queue<(BinaryPackage From, RelationGroup Group)> _mandatory = new();
        private readonly Queue<(BinaryPackage From, RelationGroup Group)> _deferred = new();
        private readonly List<(RootRequest Root, string Selected)> _rootSelections = new();

        public Attempt(Context ctx, Dictionary<string, List<Constraint>> constraints, Dictionary<string, string> droppedPinReasons)
        {
            _ctx = ctx;
            _constraints = constraints;
            _droppedPinReasons = droppedPinReasons;
            foreach (var inst in ctx.Installed.Values.OrderBy(i => i.Name, StringComparer.Ordinal))
            {
                if (inst.Known is null) continue;
                foreach (var r in ctx.Universe.ProvidesOf(inst.Known))
                    AddProvided(r.Name, (inst.Name, r.Version, inst.Known));
            }
            // Declared provides behave like the Provides of an installed package (apt: an installed package's
            // Provides satisfies an or-group before any alternative is installed).
            foreach (var r in ctx.Provided)
                AddProvided(r.Name, ("provides: " + r, r.Version, null));
        }

        private PackageUniverse Universe => _ctx.Universe;

        public Constraint? Run()
        {
            foreach (var root in _ctx.Roots)
            {
                var chosen = SelectRoot(root);
                if (chosen != null) _rootSelections.Add((root, chosen));
            }
            while (_mandatory.Count > 0 || _deferred.Count > 0)
            {
                // Groups with a choice wait until every single-choice dependency is in, then run in FIFO order.
                bool fromDeferred = _mandatory.Count == 0;
                var (from, group) = fromDeferred ? _deferred.Dequeue() : _mandatory.Dequeue();
                var alternatives = Applicable(group);
                if (alternatives.Count == 0) continue;
                var conflict = Process(from, group, alternatives, mayDefer: !fromDeferred);
                if (conflict != null) return conflict;
            }
            return null;
        }

        private List<Relation> Applicable(RelationGroup group)
        {
            var list = new List<Relation>(group.Alternatives.Count);
            foreach (var a in group.Alternatives)
                if (a.AppliesTo(_ctx.Architecture)) list.Add(a);
            return list;
        }

        private Constraint? Process(BinaryPackage from, RelationGroup group, List<Relation> alternatives, bool mayDefer)
        {
            foreach (var alt in alternatives)
            {
                var by = SatisfiedBy(alt);
                if (by != null)
                {
                    AddEdge(from.Name, by);
                    return null;
                }
            }
            if (alternatives.Count > 1 && mayDefer)
            {
                _deferred.Enqueue((from, group));
                return null;
            }

            string? excludedSatisfier = null;
            Constraint? conflict = null;
            foreach (var alt in alternatives)
            {
                var pick = Candidate(alt, from, ref excludedSatisfier, ref conflict);
                if (pick is null) continue;
                Select(pick, from.Name);
                AddEdge(from.Name, pick.Name);
                return null;
            }
            if (excludedSatisfier != null)
            {
                _dropped.Add(new DroppedEdge(from.Name, group.Text, "excluded: " + excludedSatisfier));
                return null;
            }
            if (conflict != null) return conflict;
            throw Unsatisfiable(from, group, alternatives);
        }

        /// <summary>Name of the installed or selected package that meets <paramref name="r"/>, or null.</summary>
        private string? SatisfiedBy(Relation r)
        {
            if (_ctx.Installed.TryGetValue(r.Name, out var inst) && r.AcceptsVersion(inst.Version) &&
                (inst.Known is null || _ctx.ArchOk(inst.Known, r)))
                return inst.Name;
            if (_selected.TryGetValue(r.Name, out var sel) && r.AcceptsVersion(sel.ParsedVersion) && _ctx.ArchOk(sel, r))
                return sel.Name;
            if (_provided.TryGetValue(r.Name, out var providers))
                foreach (var (by, version, package) in providers)
                    if (ProvideMeets(r, version) && (package is null || _ctx.ArchOk(package, r)))
                        return by;
            return null;
        }

        // A versioned dependency is met by a Provides only when the Provides states a version (Policy §7.5).
        private static bool ProvideMeets(Relation r, DebianVersion? provided) =>
            r.Operator == RelationOperator.None || (provided != null && r.AcceptsVersion(provided));

        /// <summary>
        /// The package to select for <paramref name="r"/>: a real package of that name, else a provider.
        /// Notes an excluded satisfier, or a conflict with a version already chosen for the name.
        /// </summary>
        private BinaryPackage? Candidate(Relation r, BinaryPackage from, ref string? excludedSatisfier, ref Constraint? conflict)
        {
            var real = Universe.Candidates(r.Name);
            if (real.Count > 0 && !_ctx.Installed.ContainsKey(r.Name))
            {
                var fits = real.Where(p => r.AcceptsVersion(p.ParsedVersion) && _ctx.ArchOk(p, r)).ToList();
                if (fits.Count > 0)
                {
                    if (_ctx.Excluded.Contains(r.Name)) excludedSatisfier ??= r.Name;
                    else if (_selected.ContainsKey(r.Name))
                        conflict ??= new Constraint(r, from.Name);
                    else
                    {
                        var pick = Preferred(r.Name, fits, from, r);
                        if (pick != null) return pick;
                    }
                }
            }

            // An excluded name is excluded as a dependency, not only as a package: excluding the virtual "awk"
            // drops the edge instead of quietly installing the next awk provider (gawk after mawk).
            if (_ctx.Excluded.Contains(r.Name)) { excludedSatisfier ??= r.Name; return null; }
            var providers = Universe.Providers(r.Name);
            if (providers.Count == 0) return null;
            // Providers come in preference order; the same provider's versions are adjacent, best first.
            for (int i = 0; i < providers.Count; i++)
            {
                var p = providers[i].Package;
                if (!ProvideMeets(r, providers[i].ProvidedVersion) || !_ctx.ArchOk(p, r)) continue;
                if (_ctx.Excluded.Contains(p.Name)) { excludedSatisfier ??= p.Name; continue; }
                if (_ctx.Installed.ContainsKey(p.Name) || _selected.ContainsKey(p.Name)) continue;
                var sameName = new List<BinaryPackage> { p };
                while (i + 1 < providers.Count && providers[i + 1].Package.Name == p.Name)
                {
                    i++;
                    if (ProvideMeets(r, providers[i].ProvidedVersion) && _ctx.ArchOk(providers[i].Package, r))
                        sameName.Add(providers[i].Package);
                }
                var pick = Preferred(p.Name, sameName, from, r);
                if (pick != null) return pick;
            }
            return null;
        }

        /// <summary>
        /// Among <paramref name="fits"/> (best first) of one name: drop those that break a learnt constraint, then
        /// take the pinned version if present, else the first.
        /// </summary>
        private BinaryPackage? Preferred(string name, IReadOnlyList<BinaryPackage> fits, BinaryPackage? wantedBy = null, Relation? wanted = null)
        {
            IReadOnlyList<BinaryPackage> allowed = fits;
            if (_constraints.TryGetValue(name, out var cons))
                allowed = fits.Where(p => cons.All(c => c.Relation.AcceptsVersion(p.ParsedVersion))).ToList();
            if (allowed.Count == 0) return null;
            if (_ctx.Request.Pins.TryGetValue(name, out var pinText) && DebianVersion.TryParse(pinText, out var pin))
            {
                foreach (var p in allowed)
                    if (p.ParsedVersion.Equals(pin)) return p;
                if (!_droppedPinReasons.ContainsKey(name))
                {
                    var available = Universe.Find(name, pin!) != null;
                    string reason;
                    if (!available) reason = "no longer available in the sources";
                    else if (cons?.FirstOrDefault(c => !c.Relation.AcceptsVersion(pin!)) is { } broken)
                        reason = $"{broken.NeededBy} needs {broken.Relation}";
                    else reason = wantedBy != null ? $"{wantedBy.Name} needs {wanted}" : "a requested version overrides it";
                    _droppedPinReasons[name] = reason;
                }
            }
            return allowed[0];
        }

        private string? SelectRoot(RootRequest root)
        {
            if (_ctx.Installed.TryGetValue(root.Name, out var inst))
            {
                if (root.Version != null && !root.Version.Equals(inst.Version))
                    throw new HardenException($"{_ctx.Subject}: requests {root.Spec} but the parent image already installs {root.Name} {inst.Version}. " +
                                              "Request it in the parent image, or drop the version.");
                return null; // the parent has it: not added again
            }
            var real = Universe.Candidates(root.Name);
            if (real.Count > 0)
            {
                IReadOnlyList<BinaryPackage> fits = root.Version is null ? real : real.Where(p => p.ParsedVersion.Equals(root.Version)).ToList();
                if (fits.Count == 0)
                    throw new HardenException($"{_ctx.Subject}: {root.Spec} is not available for {_ctx.Architecture} in {_ctx.SourcesText}; " +
                                              $"available versions: {VersionsText(root.Name)}. Request one of those, or drop the version.");
                var pick = Preferred(root.Name, fits);
                if (pick is null)
                    throw new HardenException($"{_ctx.Subject}: no version of requested {root.Spec} meets {ConstraintText(root.Name)}; " +
                                              $"available versions: {VersionsText(root.Name)}. Change the requested version or the packages that need another one.");
                Select(pick, null);
                return pick.Name;
            }
            var providers = Universe.Providers(root.Name)
                .Where(p => !_ctx.Excluded.Contains(p.Package.Name))
                .Select(p => p.Package.Name).Distinct().ToList();
            if (providers.Count == 0)
                throw Missing(root);
            if (root.Version != null || providers.Count > 1)
                throw new HardenException($"{_ctx.Subject}: '{root.Name}' is a virtual package provided by {string.Join(", ", providers.Take(10))}" +
                                          $"{(providers.Count > 10 ? ", …" : "")}. Request one of them by name.");
            var provider = providers[0];
            if (_ctx.Installed.ContainsKey(provider) || _selected.ContainsKey(provider)) return provider;
            var chosen = Preferred(provider, Universe.Candidates(provider))
                         ?? throw new HardenException($"{_ctx.Subject}: no version of {provider} (providing requested '{root.Name}') meets {ConstraintText(provider)}.");
            Select(chosen, null);
            return chosen.Name;
        }

        private void Select(BinaryPackage p, string? pulledInBy)
        {
            _selected[p.Name] = p;
            if (pulledInBy != null) _pulledInBy[p.Name] = pulledInBy;
            foreach (var r in _ctx.Universe.ProvidesOf(p))
                AddProvided(r.Name, (p.Name, r.Version, p));
            foreach (var g in _ctx.Universe.DependsOf(p))
                _mandatory.Enqueue((p, g));
        }

        private void AddProvided(string name, (string By, DebianVersion? Version, BinaryPackage? Package) entry)
        {
            if (!_provided.TryGetValue(name, out var list)) _provided[name] = list = new();
            list.Add(entry);
        }

        private void AddEdge(string from, string to)
        {
            if (from == to || !_selected.ContainsKey(to)) return; // parent-image packages are not edges of this image
            if (!_edges.TryGetValue(from, out var set)) _edges[from] = set = new HashSet<string>(StringComparer.Ordinal);
            set.Add(to);
        }

        public ResolveResult Result()
        {
            // requiredBy: every requested root whose closure reaches the package. Roots are visited in name
            // order, so each package's list comes out sorted.
            var requiredBy = new Dictionary<string, List<string>>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var queue = new Queue<string>();
            foreach (var (root, selected) in _rootSelections)
            {
                seen.Clear();
                seen.Add(selected);
                queue.Enqueue(selected);
                while (queue.Count > 0)
                {
                    var n = queue.Dequeue();
                    if (!requiredBy.TryGetValue(n, out var list)) requiredBy[n] = list = new List<string>();
                    list.Add(root.Name);
                    if (_edges.TryGetValue(n, out var next))
                        foreach (var m in next)
                            if (seen.Add(m)) queue.Enqueue(m);
                }
            }
            var packages = _selected.Values
                .OrderBy(p => p.Name, StringComparer.Ordinal)
                .Select(p => new ResolvedPackage(p, requiredBy.TryGetValue(p.Name, out var s) ? s : new List<string>()))
                .ToList();

            var present = new HashSet<string>(_selected.Keys, StringComparer.Ordinal);
            present.UnionWith(_ctx.Installed.Keys);
            present.UnionWith(_provided.Keys);
            var assumedEssential = Universe.EssentialNames.Where(n => !present.Contains(n)).ToList();

            var droppedPins = new List<DroppedPin>();
            foreach (var p in packages)
            {
                if (!_ctx.Request.Pins.TryGetValue(p.Name, out var pinText)) continue;
                if (DebianVersion.TryParse(pinText, out var pin) && pin!.Equals(p.Package.ParsedVersion)) continue;
                var reason = _droppedPinReasons.TryGetValue(p.Name, out var r) ? r
                    : DebianVersion.TryParse(pinText, out _) ? "a requested version overrides it" : "not a valid Debian version";
                droppedPins.Add(new DroppedPin(p.Name, pinText, p.Version, reason));
            }

            return new ResolveResult
            {
                Architecture = _ctx.Architecture,
                Packages = packages,
                DroppedDependencies = _dropped
                    .OrderBy(d => d.Package, StringComparer.Ordinal).ThenBy(d => d.Dependency, StringComparer.Ordinal).ToList(),
                AssumedEssential = assumedEssential,
                DroppedPins = droppedPins,
            };
        }

        private string ConstraintText(string name) =>
            _constraints.TryGetValue(name, out var cons)
                ? string.Join(" and ", cons.Select(c => $"'{c.Relation}' (needed by {c.NeededBy})"))
                : "the requirements";

        private string VersionsText(string name)
        {
            var c = Universe.Candidates(name);
            return c.Count == 0 ? "none" : string.Join(", ", c.Select(p => $"{p.Version} ({(p.Origin.Length > 0 ? p.Origin : "unnamed source")})"));
        }

        private string Chain(string name)
        {
            var chain = new List<string> { name };
            var seen = new HashSet<string>(StringComparer.Ordinal) { name };
            while (_pulledInBy.TryGetValue(chain[^1], out var parent) && seen.Add(parent)) chain.Add(parent);
            chain.Reverse();
            return string.Join(" → ", chain);
        }

        private HardenException Unsatisfiable(BinaryPackage from, RelationGroup group, List<Relation> alternatives)
        {
            var facts = new List<string>();
            foreach (var alt in alternatives.DistinctBy(a => a.Name))
            {
                var parts = new List<string>();
                if (_ctx.Installed.TryGetValue(alt.Name, out var inst)) parts.Add($"the parent image has {alt.Name} {inst.Version}");
                if (_selected.TryGetValue(alt.Name, out var sel)) parts.Add($"{alt.Name} {sel.Version} is already selected");
                parts.Add($"available {alt.Name} versions: {VersionsText(alt.Name)}");
                if (alt.ArchQualifier == "any" && Universe.Candidates(alt.Name).Count > 0 &&
                    Universe.Candidates(alt.Name).All(p => !string.Equals(p.MultiArch, "allowed", StringComparison.OrdinalIgnoreCase)))
                    parts.Add($"'{alt.Name}:any' needs Multi-Arch: allowed, which no candidate declares");
                var provs = Universe.Providers(alt.Name);
                if (provs.Count > 0)
                    parts.Add("provided by " + string.Join(", ", provs.Take(8).Select(p =>
                        $"{p.Package.Name} {p.Package.Version}" + (p.ProvidedVersion is null ? " (unversioned)" : $" (= {p.ProvidedVersion})"))));
                if (_constraints.TryGetValue(alt.Name, out _)) parts.Add("other packages need " + ConstraintText(alt.Name));
                facts.Add(string.Join("; ", parts));
            }
            return new HardenException(
                $"{_ctx.Subject}: {from.Name} {from.Version} (from {(from.Origin.Length > 0 ? from.Origin : "an unnamed source")}) depends on '{group.Text}', " +
                $"which nothing in {_ctx.SourcesText} satisfies for {_ctx.Architecture}. {string.Join(". ", facts)}. " +
                $"Pulled in by: {Chain(from.Name)}. Fix: add a source or suite that has a matching version, request a different version of " +
                $"the package that needs it, or exclude {from.Name}.");
        }

        private HardenException Missing(RootRequest root)
        {
            var suggestions = Closest(root.Name, 3);
            var hint = suggestions.Count > 0 ? $" Did you mean: {string.Join(", ", suggestions)}?" : "";
            return new HardenException(
                $"{_ctx.Subject}: package '{root.Name}' was not found for {_ctx.Architecture} in {_ctx.SourcesText}.{hint} " +
                "Fix the name in the image's package list, or add the source (sources.yaml) that publishes it.");
        }

        private List<string> Closest(string name, int count)
        {
            var best = new List<(int Distance, string Name)>();
            int worst = Math.Max(3, name.Length / 2); // beyond this a "suggestion" is noise
            foreach (var candidate in Universe.Names)
            {
                if (Math.Abs(candidate.Length - name.Length) > worst) continue;
                var d = NameSuggestions.EditDistance(name, candidate, worst);
                if (d > worst) continue;
                best.Add((d, candidate));
                best.Sort((a, b) => a.Distance != b.Distance ? a.Distance.CompareTo(b.Distance) : string.CompareOrdinal(a.Name, b.Name));
                if (best.Count > count) { best.RemoveAt(best.Count - 1); worst = best[^1].Distance; }
            }
            return best.Select(b => b.Name).ToList();
        }
    }
}
