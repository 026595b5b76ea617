using System.Globalization;
using System.Text;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Lock;
using Tomlyn;
using Tomlyn.Model;

namespace HardenImage.Python;

/// <summary>One wheel of a locked package (PEP 751 [[packages.wheels]]).</summary>
public sealed record LockedWheel
{
    public required string Name { get; init; }
    public required string Url { get; init; }
    public required string Sha256 { get; init; }
    public long? Size { get; init; }
}

/// <summary>One locked distribution (PEP 751 [[packages]]): wheels only, from one index.</summary>
public sealed record LockedPythonPackage
{
    public required string Name { get; init; }
    public required string Version { get; init; }
    /// <summary>The simple index URL the wheels were found on (packages.index); null when the lock does not say (pip lock writes none).</summary>
    public string? Index { get; init; }
    public string? Marker { get; init; }
    public List<LockedWheel> Wheels { get; init; } = new();

    public string NormalizedName => Pep440Version.NormalizeName(Name);
}

/// <summary>
/// A PEP 751 lock file (pylock.toml), the Python ecosystem's own lock: uv and pip write and read it, and so do we.
/// Read with Tomlyn; written by hand in a fixed order so the same resolution gives the same bytes. We accept only
/// what installs without running code: every package has wheels with SHA-256 hashes from an index (sdists, VCS,
/// directories and archives are refused with the package's name).
/// </summary>
public sealed record PyLock
{
    public const string LockVersion = "1.0";
    public string? RequiresPython { get; init; }
    public List<LockedPythonPackage> Packages { get; init; } = new();
    /// <summary>[tool.hardenimage] requirements-sha256: the requirements file this lock was resolved from (lock --check).</summary>
    public string? RequirementsSha256 { get; init; }

    public static PyLock Load(string path)
    {
        if (!File.Exists(path))
            throw new HardenException($"{path}: no such pylock.toml. Run 'harden lock' (with python: requirements:) or write it with 'uv export --format pylock.toml' / 'pip lock'.");
        if (new FileInfo(path).LinkTarget != null)
            throw new HardenException($"{path}: is a symlink; python: lock: must be a regular file inside the image set.");
        var text = Encoding.UTF8.GetString(BoundedFile.ReadAllBytes(path, InputLimits.MaxLockBytes, "pylock.toml"));
        return Parse(text, path);
    }

    public static PyLock Parse(string text, string path)
    {
        TomlTable root;
        // Duplicate keys are invalid TOML and tomllib (pip's reader) refuses them; Tomlyn's model reader keeps the last
        // one (its DuplicateKeyHandling does not reach TomlTable), so two readers of one lock could see two hashes.
        // The strict syntax parser refuses them first.
        try
        {
            Tomlyn.Parsing.SyntaxParser.ParseStrict(text, path);
            root = TomlSerializer.Deserialize<TomlTable>(text)!;
        }
        catch (TomlException e) { throw new HardenException($"{path}: not valid TOML ({e.Message.Split('\n')[0]}). Restore it or run 'harden lock' again.", 2, e); }
        HardenException Bad(string where, string what) => new($"{path}: {where}: {what}.");
        var version = root.TryGetValue("lock-version", out var v) ? v as string : null;
        if (version == null || !version.StartsWith("1.", StringComparison.Ordinal))
            throw Bad("lock-version", $"'{version ?? "(missing)"}' is not a PEP 751 lock version 1.x this tool reads");
        var packages = new List<LockedPythonPackage>();
        // [[packages]] tables, or an inline array (packages = [] is how an empty lock says it has none).
        var array = !root.TryGetValue("packages", out var pk) ? [] : Tables(pk) ?? throw Bad("packages", "must be an array of tables ([[packages]])");
        for (var i = 0; i < array.Count; i++)
        {
            var p = array[i];
            var at = $"packages[{i}]";
            var name = p.TryGetValue("name", out var n) ? n as string : null;
            if (name == null) throw Bad(at, "has no name");
            at = $"packages[{i}] ({name})";
            foreach (var source in new[] { "vcs", "directory", "archive" })
                if (p.ContainsKey(source)) throw Bad(at, $"comes from a {source} source; only wheels from a named index are installed (no code runs at build time)");
            // [[packages.wheels]] tables and an inline array of inline tables (what uv writes) are both arrays of tables.
            var wheelTables = p.TryGetValue("wheels", out var w) ? Tables(w) : null;
            if (wheelTables == null && w != null) throw Bad(at, "wheels must be an array of tables");
            var hasWheels = wheelTables is { Count: > 0 };
            if (!hasWheels && p.ContainsKey("sdist"))
                throw Bad(at, "has only an sdist (source distribution); building it would run its setup code, so it is refused. Lock a version that publishes wheels");
            if (!hasWheels) throw Bad(at, "has no wheels");
            var ver = p.TryGetValue("version", out var pv) ? pv as string : null;
            if (ver == null || !Pep440Version.TryParse(ver, out _)) throw Bad(at, "needs a PEP 440 version");
            // PEP 751 makes packages.index optional and pip lock omits it; CheckIndexes then judges the wheel URLs instead.
            var index = !p.TryGetValue("index", out var ix) ? null : ix as string ?? throw Bad(at, "index must be the simple index URL (a string)");
            var wheels = new List<LockedWheel>();
            foreach (var wt in wheelTables!)
            {
                var url = wt.TryGetValue("url", out var u) ? u as string : null;
                var wname = wt.TryGetValue("name", out var wn) ? wn as string : url != null ? Uri.UnescapeDataString(url.Split('#')[0].Split('?')[0].Split('/')[^1]) : null;
                if (url == null || wname == null) throw Bad(at, "a wheel has no url");
                var hashes = wt.TryGetValue("hashes", out var h) ? h as TomlTable : null;
                var sha = hashes != null && hashes.TryGetValue("sha256", out var s) ? (s as string)?.ToLowerInvariant() : null;
                if (sha == null || !Sha256Hex.IsValid(sha)) throw Bad(at, $"wheel {wname} has no sha256 hash; every wheel is pinned by SHA-256");
                var parsed = WheelFileName.TryParse(wname) ?? throw Bad(at, $"'{wname}' is not a wheel file name");
                if (parsed.NormalizedName != Pep440Version.NormalizeName(name) || Pep440Version.Parse(parsed.Version).CompareTo(Pep440Version.Parse(ver)) != 0)
                    throw Bad(at, $"wheel {wname} is not {name} {ver}");
                long? size = !wt.TryGetValue("size", out var sz) ? null
                    : sz is long bytes && bytes >= 0 ? bytes : throw Bad(at, $"wheel {wname}: size '{sz}' is not a non-negative integer (bytes)");
                wheels.Add(new LockedWheel { Name = wname, Url = url, Sha256 = sha, Size = size });
            }
            // A marker that is not a string would otherwise read as "no marker": installed on every architecture.
            var marker = !p.TryGetValue("marker", out var mk) ? null : mk as string ?? throw Bad(at, "marker must be a PEP 508 marker string");
            packages.Add(new LockedPythonPackage
            {
                Name = name, Version = ver, Index = index, Marker = marker, Wheels = wheels,
            });
        }
        var twice = packages.GroupBy(p => p.NormalizedName).FirstOrDefault(g => g.Count() > 1 && g.Any(x => x.Marker == null));
        if (twice != null) throw Bad("packages", $"'{twice.Key}' is locked more than once without markers that tell the entries apart");
        string? reqSha = null;
        if (root.TryGetValue("tool", out var tool) && tool is TomlTable tt && tt.TryGetValue("hardenimage", out var hi) && hi is TomlTable ht
            && ht.TryGetValue("requirements-sha256", out var rs)) reqSha = rs as string;
        return new PyLock
        {
            RequiresPython = root.TryGetValue("requires-python", out var rp) ? rp as string : null,
            Packages = packages, RequirementsSha256 = reqSha,
        };
    }

    private static List<TomlTable>? Tables(object? value) => value switch
    {
        TomlTableArray a => a.ToList(),
        TomlArray a when a.All(x => x is TomlTable) => a.Cast<TomlTable>().ToList(),
        _ => null,
    };

    /// <summary>Stable TOML: packages by name, wheels by file name, keys in the order PEP 751 lists them.</summary>
    public string ToToml()
    {
        var sb = new StringBuilder();
        sb.Append("# Written by 'harden lock' from the image's hash-pinned requirements (PEP 751). Do not edit; re-run 'harden lock'.\n");
        sb.Append("lock-version = ").Append(Quote(LockVersion)).Append('\n');
        if (RequiresPython != null) sb.Append("requires-python = ").Append(Quote(RequiresPython)).Append('\n');
        sb.Append("created-by = \"hardenimage\"\n");
        // PEP 751 requires the key even when nothing is locked (pip's reader refuses a lock without it).
        if (Packages.Count == 0) sb.Append("packages = []\n");
        foreach (var p in Packages.OrderBy(p => p.NormalizedName, StringComparer.Ordinal).ThenBy(p => p.Marker, StringComparer.Ordinal))
        {
            sb.Append("\n[[packages]]\n");
            sb.Append("name = ").Append(Quote(p.NormalizedName)).Append('\n');
            sb.Append("version = ").Append(Quote(p.Version)).Append('\n');
            if (p.Marker != null) sb.Append("marker = ").Append(Quote(p.Marker)).Append('\n');
            if (p.Index != null) sb.Append("index = ").Append(Quote(p.Index)).Append('\n');
            sb.Append("wheels = [\n");
            foreach (var w in p.Wheels.OrderBy(w => w.Name, StringComparer.Ordinal))
            {
                sb.Append("  { name = ").Append(Quote(w.Name)).Append(", url = ").Append(Quote(w.Url));
                if (w.Size is { } size) sb.Append(", size = ").Append(size.ToString(CultureInfo.InvariantCulture));
                sb.Append(", hashes = { sha256 = ").Append(Quote(w.Sha256)).Append(" } },\n");
            }
            sb.Append("]\n");
        }
        if (RequirementsSha256 != null)
            sb.Append("\n[tool.hardenimage]\nrequirements-sha256 = ").Append(Quote(RequirementsSha256)).Append('\n');
        return sb.ToString();
    }

    public void Save(string path) => AtomicFile.WriteAllText(path, ToToml());

    /// <summary>A TOML basic string.</summary>
    private static string Quote(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\t': sb.Append("\\t"); break;
                case '\r': sb.Append("\\r"); break;
                default:
                    if (c < 0x20 || c == 0x7f) sb.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append('"').ToString();
    }

    /// <summary>
    /// Checks the lock against the image's python: block before anything is fetched or installed: every package
    /// came from the one index allowed to serve it (dependency confusion: a private name served by a public index
    /// is refused), with the index's URL as the image names it.
    /// </summary>
    public void CheckIndexes(PythonDefinition python, string path)
    {
        if (python.Indexes.Count == 0) return; // a lock from uv/pip with no indexes declared: nothing to cross-check against
        foreach (var p in Packages)
        {
            var allowed = PythonIndexes.AllowedFor(python, p.NormalizedName, path);
            if (p.Index == null)
            {
                // No packages.index (pip lock): a package an index names explicitly (a private name) must have every
                // wheel on that index's host; a name public by default ("*") may come from any host (PyPI serves files
                // from files.pythonhosted.org). The hashes are pinned either way.
                if (allowed.Packages.Contains(p.NormalizedName))
                    foreach (var w in p.Wheels)
                        if (!Uri.TryCreate(w.Url, UriKind.Absolute, out var u) || !string.Equals(u.Authority, new Uri(allowed.Url).Authority, StringComparison.OrdinalIgnoreCase))
                            throw new HardenException($"{path}: {p.NormalizedName} {p.Version}: wheel {w.Name} is at {WheelCache.Redact(w.Url)}, but only index '{allowed.Name}' ({allowed.Url}) may serve it " +
                                                      "and the lock names no index (dependency confusion). Lock it from that index, or fix python: indexes: packages:.");
                continue;
            }
            if (!SameIndex(allowed.Url, p.Index))
                throw new HardenException($"{path}: {p.NormalizedName} {p.Version} was locked from {p.Index}, but only index '{allowed.Name}' ({allowed.Url}) may serve it " +
                                          "(dependency confusion). Re-run 'harden lock', or fix python: indexes: packages:.");
        }
    }

    private static bool SameIndex(string a, string b) =>
        string.Equals(a.TrimEnd('/'), b.TrimEnd('/'), StringComparison.Ordinal);
}

/// <summary>Which index may serve which package: the one that names it, else the one with "*", else none.</summary>
public static class PythonIndexes
{
    public static PythonIndexDefinition AllowedFor(PythonDefinition python, string normalizedName, string where)
    {
        var named = python.Indexes.FirstOrDefault(i => i.Packages.Contains(normalizedName));
        if (named != null) return named;
        return python.Indexes.FirstOrDefault(i => i.Packages.Contains("*"))
               ?? throw new HardenException($"{where}: no index may serve '{normalizedName}': name it in one index's packages: (or give one index [\"*\"]).");
    }
}
