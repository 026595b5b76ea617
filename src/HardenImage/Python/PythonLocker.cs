using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Lock;

namespace HardenImage.Python;

/// <summary>What locking one image's Python requirements did (changes as "+ name v", "~ name a → b", "↓ …", "- name v").</summary>
public sealed record PythonLockReport(string Image, string LockPath, bool Written, IReadOnlyList<string> Changes);

/// <summary>Why an image's Python lock no longer matches its inputs (for lock --check).</summary>
public sealed record PythonLockStaleness(string Image, string Reason);

/// <summary>
/// Our resolver, deliberately simple (docs/images.md, "python:"): no dependency solving. The requirements pin every
/// distribution, transitive ones included, with ==version and SHA-256 (pip's --require-hashes rules); for each one we
/// ask the one index allowed to serve it, keep the wheels whose index hash is among the pinned ones, pick per
/// architecture the best wheel for the image's CPython and glibc (markers evaluated per architecture), download and
/// verify each, and write pylock.toml. A pylock.toml written by uv or pip is used as it is (resolution delegated).
/// </summary>
public sealed class PythonLocker(SimpleIndexClient index, HttpClient http, WheelCache cache)
{
    public async Task<PythonLockReport> LockAsync(ImageSet set, ImageDefinition image, IReadOnlyDictionary<string, (int, int)?> glibcByArch, CancellationToken ct)
    {
        var python = image.Python!;
        var lockPath = Path.Combine(set.Directory, python.Lock);
        if (python.Requirements == null) return new PythonLockReport(image.Name, lockPath, false, []);
        var reqPath = Path.Combine(set.Directory, python.Requirements);
        var requirements = HashedRequirements.Read(reqPath);
        var reqSha = Sha256Hex.OfFile(reqPath);
        var archs = ImageSet.Effective(set, image).Architectures.Order(StringComparer.Ordinal).ToList();
        var packages = new List<LockedPythonPackage>();
        foreach (var req in requirements.OrderBy(r => r.NormalizedName, StringComparer.Ordinal))
        {
            var where = $"{reqPath}:{req.Line}";
            var applies = archs.Where(a => req.Marker == null
                || EnvironmentMarker.Evaluate(req.Marker, EnvironmentMarker.EnvironmentFor(python.Version, a), where)).ToList();
            if (applies.Count == 0) continue;
            var allowed = PythonIndexes.AllowedFor(python, req.NormalizedName, where);
            var files = await index.ProjectFilesAsync(allowed, req.NormalizedName, ct);
            var pinned = Pep440Version.Parse(req.Version);
            var ofVersion = files.Where(f => VersionOf(f.FileName, req.NormalizedName) is { } v && v.CompareTo(pinned) == 0).ToList();
            var wheels = ofVersion.Select(f => (File: f, Wheel: WheelFileName.TryParse(f.FileName))).Where(x => x.Wheel != null).ToList();
            if (wheels.Count == 0)
                throw new HardenException(ofVersion.Any(f => WheelFileName.IsSdist(f.FileName))
                    ? $"{where}: {req.Name}=={req.Version} is published on '{allowed.Name}' only as an sdist ({string.Join(", ", ofVersion.Select(f => f.FileName))}); building it would run its setup code, so it is refused. Pin a version with wheels, or publish a wheel to your index."
                    : $"{where}: {req.Name}=={req.Version} is not on index '{allowed.Name}' ({allowed.Url}). Check the version, or which index serves it.");
            var selected = new Dictionary<string, (IndexFile File, WheelFileName Wheel)>(StringComparer.Ordinal);
            foreach (var arch in applies)
            {
                var compat = new WheelCompatibility(python.CpythonTag, arch, glibcByArch.GetValueOrDefault(arch));
                var why = new List<string>();
                (IndexFile File, WheelFileName Wheel, int Rank)? best = null;
                foreach (var (f, w) in wheels)
                {
                    if (f.Sha256 == null) { why.Add($"{f.FileName}: the index gives no sha256 for it"); continue; }
                    if (!req.Sha256.Contains(f.Sha256)) { why.Add($"{f.FileName}: its sha256 {f.Sha256} is not among the requirement's hashes"); continue; }
                    if (f.Yanked) { why.Add($"{f.FileName}: yanked"); continue; }
                    if (f.RequiresPython is { } rp && !RequiresPython.Admits(rp, python.Version))
                    { why.Add($"{f.FileName}: the index says it requires Python {rp}, the image has CPython {python.Version}"); continue; }
                    if (compat.Rank(w!) is not { } rank) { why.Add($"{f.FileName}: {compat.WhyNot(w!)}"); continue; }
                    if (best == null || rank < best.Value.Rank || (rank == best.Value.Rank && string.CompareOrdinal(f.FileName, best.Value.File.FileName) < 0))
                        best = (f, w!, rank);
                }
                if (best == null)
                    throw new HardenException($"{where}: no wheel of {req.Name}=={req.Version} fits {image.Name} ({arch}, CPython {python.Version}): {string.Join("; ", why)}.");
                selected[best.Value.File.FileName] = (best.Value.File, best.Value.Wheel);
            }
            var locked = new List<LockedWheel>();
            foreach (var (f, _) in selected.Values.OrderBy(x => x.File.FileName, StringComparer.Ordinal))
            {
                var path = await cache.FetchAsync(http, f.Url, f.Sha256!, $"{where}: {f.FileName} from '{allowed.Name}'",
                    r => index.Authorize(r, allowed), ct);
                locked.Add(new LockedWheel { Name = f.FileName, Url = f.Url, Sha256 = f.Sha256!, Size = new FileInfo(path).Length });
            }
            packages.Add(new LockedPythonPackage
            {
                Name = req.NormalizedName, Version = req.Version, Index = allowed.Url, Marker = req.Marker, Wheels = locked,
            });
        }
        var pylock = new PyLock { RequiresPython = $"=={python.Version}.*", Packages = packages, RequirementsSha256 = reqSha };
        PyLock? old = null;
        if (File.Exists(lockPath))
            try { old = PyLock.Load(lockPath); } catch (HardenException) { old = null; } // replaced below; the report says so
        var text = pylock.ToToml();
        var written = !File.Exists(lockPath) || File.ReadAllText(lockPath) != text;
        if (written) pylock.Save(lockPath);
        return new PythonLockReport(image.Name, lockPath, written, Diff(old, pylock));
    }

    private static Pep440Version? VersionOf(string fileName, string normalizedName)
    {
        if (WheelFileName.TryParse(fileName) is { } w)
            return w.NormalizedName == normalizedName && Pep440Version.TryParse(w.Version, out var v) ? v : null;
        if (!WheelFileName.IsSdist(fileName)) return null;
        var tar = fileName.IndexOf(".tar", StringComparison.Ordinal);
        var stem = fileName[..(tar >= 0 ? tar : fileName.LastIndexOf('.'))];
        var dash = stem.LastIndexOf('-');
        if (dash <= 0 || Pep440Version.NormalizeName(stem[..dash]) != normalizedName) return null;
        return Pep440Version.TryParse(stem[(dash + 1)..], out var sv) ? sv : null;
    }

    /// <summary>Lock changes, reported like Debian ones.</summary>
    public static IReadOnlyList<string> Diff(PyLock? before, PyLock after)
    {
        var old = before?.Packages.GroupBy(p => p.NormalizedName).ToDictionary(g => g.Key, g => g.First().Version, StringComparer.Ordinal) ?? new();
        var now = after.Packages.GroupBy(p => p.NormalizedName).ToDictionary(g => g.Key, g => g.First().Version, StringComparer.Ordinal);
        var changes = new List<string>();
        foreach (var (n, v) in now.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            if (!old.TryGetValue(n, out var ov)) changes.Add($"+ pypi:{n} {v}");
            else if (ov != v) changes.Add(Pep440Version.Compare(v, ov) < 0 ? $"↓ pypi:{n} {ov} → {v}" : $"~ pypi:{n} {ov} → {v}");
        }
        foreach (var n in old.Keys.Except(now.Keys).Order(StringComparer.Ordinal)) changes.Add($"- pypi:{n} {old[n]}");
        return changes;
    }

    /// <summary>Offline: the pylock exists, reads, was made from the current requirements and names only allowed indexes.</summary>
    public static IReadOnlyList<PythonLockStaleness> Check(ImageSet set, IReadOnlyCollection<string>? images = null)
    {
        var problems = new List<PythonLockStaleness>();
        foreach (var image in set.Select(images).Where(i => i.Python != null))
        {
            var python = image.Python!;
            var lockPath = Path.Combine(set.Directory, python.Lock);
            try
            {
                var pylock = PyLock.Load(lockPath);
                pylock.CheckIndexes(python, lockPath);
                if (python.Requirements != null && pylock.RequirementsSha256 != Sha256Hex.OfFile(Path.Combine(set.Directory, python.Requirements)))
                    problems.Add(new(image.Name, $"{python.Requirements} changed since {python.Lock} was written"));
            }
            catch (HardenException e) { problems.Add(new(image.Name, e.Message)); }
        }
        return problems;
    }
}
