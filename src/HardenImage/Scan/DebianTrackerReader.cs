using System.Text.Json;
using HardenImage.Apt;
using HardenImage.Common;

namespace HardenImage.Scan;

/// <summary>
/// Reads the Debian security tracker JSON (https://security-tracker.debian.org/tracker/data/json):
/// <c>{srcpkg: {CVE: {description?, scope?, releases: {codename: {status, fixed_version, urgency, nodsa,
/// nodsa_reason}}}}}</c>. One <see cref="AdvisoryRecord"/> per source package × CVE × release.
/// </summary>
public static class DebianTrackerReader
{
    /// <summary>True when the document has the tracker's shape (package → CVE → object with releases).</summary>
    public static bool LooksLikeTracker(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) return false;
        foreach (var pkg in root.EnumerateObject())
        {
            if (pkg.Value.ValueKind != JsonValueKind.Object) return false;
            foreach (var cve in pkg.Value.EnumerateObject())
                return cve.Value.ValueKind == JsonValueKind.Object && cve.Value.TryGetProperty("releases", out _);
        }
        return false;
    }

    public static IEnumerable<AdvisoryRecord> Read(JsonElement root, string origin)
    {
        // The tracker repeats the same few statuses, urgencies and versions hundreds of thousands of times.
        var pool = new Dictionary<string, string>(StringComparer.Ordinal);
        string? Pooled(string? s)
        {
            if (s is null) return null;
            if (!pool.TryGetValue(s, out var p)) pool[s] = p = s;
            return p;
        }
        if (root.ValueKind != JsonValueKind.Object)
            throw new HardenException($"{origin}: not Debian security tracker JSON (expected an object of source packages)");
        foreach (var pkg in root.EnumerateObject())
        {
            if (pkg.Value.ValueKind != JsonValueKind.Object) continue;
            foreach (var cve in pkg.Value.EnumerateObject())
            {
                var entry = cve.Value;
                // An empty "releases" is written as [] by the tracker, not {}.
                if (entry.ValueKind != JsonValueKind.Object || !entry.TryGetProperty("releases", out var releases)
                    || releases.ValueKind != JsonValueKind.Object) continue;
                var summary = OsvReader.Truncate(OsvReader.Str(entry, "description"));
                foreach (var rel in releases.EnumerateObject())
                {
                    var r = rel.Value;
                    if (r.ValueKind != JsonValueKind.Object) continue;
                    var status = Pooled(OsvReader.Str(r, "status")) ?? "undetermined";
                    yield return new AdvisoryRecord
                    {
                        Ecosystem = Pooled(DebianReleases.EcosystemOf(rel.Name))!,
                        Package = Pooled(pkg.Name)!,
                        Id = cve.Name,
                        Origin = AdvisoryOrigins.DebianTracker,
                        Summary = summary,
                        Tracker = new TrackerStatus(status, Pooled(OsvReader.Str(r, "fixed_version")),
                            Pooled(NormalizeUrgency(OsvReader.Str(r, "urgency")))!, Pooled(NullIfEmpty(OsvReader.Str(r, "nodsa"))),
                            Pooled(NullIfEmpty(OsvReader.Str(r, "nodsa_reason")))),
                    };
                }
            }
        }
    }

    /// <summary>"high**" (derived from NVD) → "high"; missing → "not yet assigned".</summary>
    public static string NormalizeUrgency(string? urgency) =>
        string.IsNullOrWhiteSpace(urgency) ? "not yet assigned" : urgency.Trim().TrimEnd('*').Trim();

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}

/// <summary>
/// Reads the tracker's source files as parsed by aquasecurity/vuln-list-debian (<c>tracker/CVE/&lt;year&gt;/CVE-*.json</c>
/// and <c>tracker/DSA/DSA-*.json</c>: Header + Annotations) and derives per-release status the way the tracker
/// does: a release's own line wins; else a DSA/DLA that names the release and package gives the fixed version;
/// else the release inherits the unstable (sid) line.
/// </summary>
public sealed class VulnListDebianReader
{
    private readonly List<(string Id, string? Description, JsonElement Annotations)> _cves = new();
    // (advisory id, release, package) → fixed version, from DSA/DLA files.
    private readonly Dictionary<(string, string, string), string> _advisoryFixes = new();

    /// <summary>Releases that inherit the sid line when they have no own annotation.</summary>
    public IReadOnlyList<string> InheritingReleases { get; init; } = ["bookworm", "trixie", "forky"];

    public static bool LooksLikeVulnList(JsonElement root) =>
        root.ValueKind == JsonValueKind.Object && root.TryGetProperty("Header", out _) && root.TryGetProperty("Annotations", out _);

    public void Add(JsonElement root, string origin)
    {
        if (!LooksLikeVulnList(root)) throw new HardenException($"{origin}: not a vuln-list-debian tracker file (no Header/Annotations)");
        var header = root.GetProperty("Header");
        var id = OsvReader.Str(header, "ID") ?? throw new HardenException($"{origin}: Header.ID is missing");
        var annotations = root.GetProperty("Annotations").Clone();
        if (id.StartsWith("CVE-", StringComparison.Ordinal))
        {
            _cves.Add((id, OsvReader.Str(header, "Description"), annotations));
            return;
        }
        if (annotations.ValueKind != JsonValueKind.Array) return;
        var cves = new List<string>();
        var fixes = new List<(string Release, string Package, string Version)>();
        foreach (var a in annotations.EnumerateArray())
        {
            if (OsvReader.Str(a, "Type") == "xref" && a.TryGetProperty("Bugs", out var bugs) && bugs.ValueKind == JsonValueKind.Array)
                cves.AddRange(bugs.EnumerateArray().Select(OsvReader.Text).OfType<string>().Where(b => b.StartsWith("CVE-", StringComparison.Ordinal)));
            if (OsvReader.Str(a, "Type") == "package" && OsvReader.Str(a, "Kind") == "fixed"
                && OsvReader.Str(a, "Release") is { } rel && OsvReader.Str(a, "Package") is { } p && OsvReader.Str(a, "Version") is { } v)
            {
                _advisoryFixes[(id, rel, p)] = v;
                fixes.Add((rel, p, v));
            }
        }
        _advisories.Add((id, OsvReader.Str(header, "Description"), cves, fixes));
    }

    // DSA/DLA files: id, description, the CVEs they fix, and (release, package, fixed version) lines.
    private readonly List<(string Id, string? Description, List<string> Cves, List<(string Release, string Package, string Version)> Fixes)> _advisories = new();

    public IEnumerable<AdvisoryRecord> Records()
    {
        foreach (var (id, description, annotations) in _cves)
        {
            if (annotations.ValueKind != JsonValueKind.Array) continue;
            var xrefs = new List<string>();
            var sid = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            var perRelease = new Dictionary<(string Release, string Package), JsonElement>();
            foreach (var a in annotations.EnumerateArray())
            {
                var type = OsvReader.Str(a, "Type");
                if (type == "xref" && a.TryGetProperty("Bugs", out var bugs) && bugs.ValueKind == JsonValueKind.Array)
                    xrefs.AddRange(bugs.EnumerateArray().Select(OsvReader.Text).OfType<string>());
                if (type != "package" || OsvReader.Str(a, "Package") is not { } pkg) continue;
                if (OsvReader.Str(a, "Release") is { } rel) perRelease[(rel, pkg)] = a;
                else sid[pkg] = a;
            }
            var summary = description is null || description.StartsWith("[", StringComparison.Ordinal) ? null : description.Trim('(', ')', ' ');
            var packages = sid.Keys.Concat(perRelease.Keys.Select(k => k.Package)).Distinct(StringComparer.Ordinal);
            foreach (var pkg in packages)
            {
                sid.TryGetValue(pkg, out var sidLine);
                var urgency = sidLine.ValueKind == JsonValueKind.Object ? OsvReader.Str(sidLine, "Severity") : null;
                var releases = perRelease.Keys.Where(k => k.Package == pkg).Select(k => k.Release)
                    .Concat(InheritingReleases).Append("sid").Distinct(StringComparer.Ordinal);
                foreach (var release in releases)
                {
                    TrackerStatus? status;
                    if (perRelease.TryGetValue((release, pkg), out var own)) status = FromLine(own, urgency);
                    else if (release != "sid" && xrefs.Select(x => _advisoryFixes.GetValueOrDefault((x, release, pkg))).FirstOrDefault(v => v != null) is { } dsaFix)
                        status = new TrackerStatus("resolved", dsaFix, DebianTrackerReader.NormalizeUrgency(urgency), null, null);
                    else status = sidLine.ValueKind == JsonValueKind.Object ? FromLine(sidLine, urgency) : null;
                    if (status is null) continue;
                    yield return new AdvisoryRecord
                    {
                        Ecosystem = DebianReleases.EcosystemOf(release),
                        Package = pkg,
                        Id = id,
                        Origin = AdvisoryOrigins.DebianTracker,
                        Summary = OsvReader.Truncate(summary),
                        Tracker = status,
                    };
                }
            }
        }
        foreach (var r in AdvisoryOnlyRecords()) yield return r;
    }

    /// <summary>
    /// CVEs known only through a DSA/DLA (no CVE file in the data): the advisory still says the release was
    /// affected before its fixed version.
    /// </summary>
    private IEnumerable<AdvisoryRecord> AdvisoryOnlyRecords()
    {
        var known = _cves.Select(c => c.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var (id, description, cves, fixes) in _advisories)
            foreach (var cve in cves.Where(c => !known.Contains(c)))
                foreach (var (release, package, version) in fixes)
                    yield return new AdvisoryRecord
                    {
                        Ecosystem = DebianReleases.EcosystemOf(release),
                        Package = package,
                        Id = cve,
                        Origin = AdvisoryOrigins.DebianTracker,
                        Summary = $"{id}: {description}",
                        Tracker = new TrackerStatus("resolved", version, "not yet assigned", null, null),
                    };
    }

    private static TrackerStatus? FromLine(JsonElement a, string? sidUrgency)
    {
        var kind = OsvReader.Str(a, "Kind");
        var urgency = DebianTrackerReader.NormalizeUrgency(OsvReader.Str(a, "Severity") ?? sidUrgency);
        var note = OsvReader.Str(a, "Description");
        return kind switch
        {
            "fixed" => new TrackerStatus("resolved", OsvReader.Str(a, "Version"), urgency, null, null),
            "not-affected" => new TrackerStatus("resolved", "0", urgency, null, null),
            "unfixed" => new TrackerStatus("open", null, urgency, null, null),
            "no-dsa" => new TrackerStatus("open", null, urgency, note ?? "no-dsa", null),
            "postponed" => new TrackerStatus("open", null, urgency, note ?? "postponed", "postponed"),
            "ignored" => new TrackerStatus("open", null, urgency, note ?? "ignored", "ignored"),
            "end-of-life" => new TrackerStatus("open", null, "end-of-life", null, null),
            _ => null, // removed, undetermined without data: nothing to say about the release
        };
    }
}
