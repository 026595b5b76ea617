using System.Text;
using System.Text.RegularExpressions;

namespace HardenImage.Sbom;

/// <summary>
/// Finds every Python distribution in an image the way Python itself does (importlib.metadata looks for
/// <c>*.dist-info</c> and <c>*.egg-info</c> — directory or single PKG-INFO-format file — directly in each sys.path
/// directory), plus the copies other distributions vendor (<c>*/_vendor/*.dist-info</c>, <c>vendor.txt</c>).
/// Debian ships many distributions as egg-info (torch, sympy, certifi, …): an SBOM that only reads dist-info hides
/// them from every PyPI advisory (threat: Information disclosure → a vulnerable component nobody sees).
/// </summary>
internal static partial class PythonDistributionFinder
{
    /// <summary>Files whose content the inventory reader must keep for this finder.</summary>
    public static bool IsCandidate(string path) =>
        path.EndsWith(".dist-info/METADATA", StringComparison.Ordinal)
        || path.EndsWith(".dist-info/" + Python.WheelInstaller.ProvenanceFile, StringComparison.Ordinal)
        || path.EndsWith(".egg-info/PKG-INFO", StringComparison.Ordinal)
        || path.EndsWith(".egg-info", StringComparison.Ordinal)
        || path.EndsWith(".egg/EGG-INFO/PKG-INFO", StringComparison.Ordinal)
        || path.EndsWith(".pth", StringComparison.Ordinal)
        || (path.EndsWith("/vendor.txt", StringComparison.Ordinal) && VendorRoot(Parent(path)) != null);

    /// <param name="files">Candidate files (see <see cref="IsCandidate"/>) with their content.</param>
    /// <param name="pythonPath">PYTHONPATH entries from the image config.</param>
    /// <param name="ownerOf">The Debian package whose file list names a path, if any.</param>
    public static List<PythonDistribution> Find(IReadOnlyDictionary<string, byte[]> files, IEnumerable<string> pythonPath, Func<string, string?> ownerOf)
    {
        // sys.path: the interpreter's own directories, PYTHONPATH, and the directories .pth files in them add.
        var sysPath = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in pythonPath) if (Normalize(p) is { Length: > 0 } n) sysPath.Add(n);
        foreach (var dir in files.Keys.Select(DistributionParent).OfType<string>().Where(IsInterpreterSitePath)) sysPath.Add(dir);
        foreach (var (path, content) in files.Where(f => f.Key.EndsWith(".pth", StringComparison.Ordinal)))
        {
            var siteDir = Parent(path);
            if (!IsInterpreterSitePath(siteDir)) continue; // site only reads .pth files in site directories
            foreach (var raw in Encoding.UTF8.GetString(content).Split('\n'))
            {
                var line = raw.Trim();
                if (line.Length == 0 || line.StartsWith('#') || line.StartsWith("import ", StringComparison.Ordinal) || line.StartsWith("import\t", StringComparison.Ordinal)) continue;
                if (Normalize(line.StartsWith('/') ? line : siteDir + "/" + line) is { Length: > 0 } added) sysPath.Add(added);
            }
        }

        var result = new List<PythonDistribution>();
        var vendoredNames = new HashSet<(string, string)>();
        foreach (var (path, content) in files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            if (path.EndsWith(".pth", StringComparison.Ordinal) || path.EndsWith("/vendor.txt", StringComparison.Ordinal)
                || path.EndsWith("/" + Python.WheelInstaller.ProvenanceFile, StringComparison.Ordinal)) continue;
            // An egg is importable only when the egg itself is on sys.path (easy-install.pth); test-data eggs are not.
            var parent = path.EndsWith(".egg/EGG-INFO/PKG-INFO", StringComparison.Ordinal) ? path[..^"/EGG-INFO/PKG-INFO".Length] : DistributionParent(path);
            if (parent is null || ParseWithNameFallback(content, path) is not { } dist) continue;
            var vendorRoot = VendorRoot(parent);
            var location = sysPath.Contains(parent) ? PythonLocations.SysPath
                : parent.EndsWith(".egg", StringComparison.Ordinal) && path.EndsWith("/EGG-INFO/PKG-INFO", StringComparison.Ordinal) ? null
                : vendorRoot != null ? PythonLocations.Vendored : PythonLocations.Other;
            if (location is null) continue;
            if (location == PythonLocations.Vendored) vendoredNames.Add((parent, dist.NormalizedName));
            result.Add(dist with
            {
                Location = location,
                VendoredIn = location == PythonLocations.Vendored ? vendorRoot : null,
                DebianPackage = ownerOf(path),
                WheelSha256 = WheelProvenance(files, path).Sha256,
                WheelFile = WheelProvenance(files, path).File,
            });
        }
        // vendor.txt ("name==version" per line, pip's and wheel's form) names vendored modules without metadata.
        foreach (var (path, content) in files.Where(f => f.Key.EndsWith("/vendor.txt", StringComparison.Ordinal)).OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            var dir = Parent(path);
            foreach (var raw in Encoding.UTF8.GetString(content).Split('\n'))
            {
                var line = raw.Split('#')[0].Split(';')[0].Trim();
                var m = VendorLine().Match(line);
                if (!m.Success) continue;
                var dist = new PythonDistribution
                {
                    Name = m.Groups["name"].Value, Version = m.Groups["version"].Value, MetadataPath = path,
                    Location = PythonLocations.Vendored, VendoredIn = VendorRoot(dir), DebianPackage = ownerOf(path),
                };
                if (vendoredNames.Add((dir, dist.NormalizedName))) result.Add(dist);
            }
        }
        return result;
    }

    /// <summary>
    /// Core metadata; a Name or Version header that is missing falls back to the metadata directory's name
    /// (<c>&lt;name&gt;-&lt;version&gt;[-py3.X].egg-info</c>, as importlib does for the name), so a damaged header
    /// cannot make a distribution disappear from the SBOM.
    /// </summary>
    private static PythonDistribution? ParseWithNameFallback(byte[] content, string path)
    {
        var distDir = path.EndsWith(".egg-info", StringComparison.Ordinal) ? path : Parent(path);
        if (distDir.EndsWith("/EGG-INFO", StringComparison.Ordinal)) distDir = Parent(distDir);
        var m = DistDirName().Match(distDir[(distDir.LastIndexOf('/') + 1)..]);
        return ImageInventoryReader.ParseMetadata(content, path,
            m.Success ? m.Groups["name"].Value : null, m.Success ? m.Groups["version"].Value : null);
    }

    /// <summary>The wheel a harden build installed this dist-info from (issue 18): its SHA-256 becomes the SBOM hash.</summary>
    private static (string? Sha256, string? File) WheelProvenance(IReadOnlyDictionary<string, byte[]> files, string metadataPath)
    {
        if (!metadataPath.EndsWith(".dist-info/METADATA", StringComparison.Ordinal)
            || !files.TryGetValue(Parent(metadataPath) + "/" + Python.WheelInstaller.ProvenanceFile, out var content)) return (null, null);
        var fields = Encoding.UTF8.GetString(content).Split('\n').Select(l => l.Split('=', 2)).Where(kv => kv.Length == 2)
            .GroupBy(kv => kv[0]).ToDictionary(g => g.Key, g => g.First()[1].Trim(), StringComparer.Ordinal);
        var sha = fields.GetValueOrDefault("sha256");
        return sha != null && Common.Sha256Hex.IsValid(sha) ? (sha, fields.GetValueOrDefault("wheel")) : (null, null);
    }

    /// <summary>The directory holding a dist-info/egg-info (the would-be sys.path entry), or null for other files.</summary>
    private static string? DistributionParent(string path)
    {
        string distDir;
        if (path.EndsWith(".dist-info/METADATA", StringComparison.Ordinal)) distDir = path[..^"/METADATA".Length];
        else if (path.EndsWith(".egg-info/PKG-INFO", StringComparison.Ordinal)) distDir = path[..^"/PKG-INFO".Length];
        else if (path.EndsWith(".egg-info", StringComparison.Ordinal)) distDir = path; // the single-file form
        else return null;
        return Parent(distDir);
    }

    private static string Parent(string path) => path.Contains('/') ? path[..path.LastIndexOf('/')] : "";

    /// <summary>site-packages/dist-packages anywhere (system, /usr/local, venvs) and lib/python3.X itself.</summary>
    private static bool IsInterpreterSitePath(string dir) => SitePath().IsMatch(dir);

    /// <summary>"…/setuptools" for "…/setuptools/_vendor[/…]": the distribution directory that vendors; null when not vendored.</summary>
    private static string? VendorRoot(string dir)
    {
        var segments = dir.Split('/');
        for (int i = segments.Length - 1; i > 0; i--)
            if (segments[i] is "_vendor" or "vendored" or "_vendored") return string.Join('/', segments[..i]);
        return null;
    }

    /// <summary>Image-relative path without ".", ".." or empty segments ("" when it leaves the root).</summary>
    private static string? Normalize(string path)
    {
        var stack = new List<string>();
        foreach (var seg in path.Replace('\\', '/').Split('/'))
        {
            if (seg is "" or ".") continue;
            if (seg == "..") { if (stack.Count > 0) stack.RemoveAt(stack.Count - 1); continue; }
            stack.Add(seg);
        }
        return string.Join('/', stack);
    }

    [GeneratedRegex(@"(^|/)(site-packages|dist-packages)$|(^|/)lib/python3(\.\d+)?$")]
    private static partial Regex SitePath();

    [GeneratedRegex(@"^(?<name>[A-Za-z0-9][A-Za-z0-9._]*)-(?<version>[0-9][A-Za-z0-9.+!_]*?)(-py\d(\.\d+)?)?\.(dist-info|egg-info|egg)$")]
    private static partial Regex DistDirName();

    [GeneratedRegex(@"^(?<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*===?\s*(?<version>[A-Za-z0-9][A-Za-z0-9.+!_-]*)$")]
    private static partial Regex VendorLine();
}
