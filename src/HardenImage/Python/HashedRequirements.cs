using System.Text.RegularExpressions;
using HardenImage.Common;

namespace HardenImage.Python;

/// <summary>One pinned requirement: name==version, its allowed SHA-256 digests, and an optional PEP 508 marker.</summary>
public sealed record PinnedRequirement(string Name, string Version, IReadOnlyList<string> Sha256, string? Marker, int Line)
{
    public string NormalizedName => Pep440Version.NormalizeName(Name);
}

/// <summary>
/// pip's hash-checking mode requirements (<c>pip install --require-hashes -r</c>, what <c>pip-compile
/// --generate-hashes</c> and <c>uv export</c> write): every line is <c>name==version</c> with at least one
/// <c>--hash=sha256:…</c>, as pip demands in that mode, so nothing is resolved at build time. Ranges, URLs, editable
/// installs, includes and index options are refused with the line: indexes come from the image's YAML only.
/// </summary>
public static partial class HashedRequirements
{
    public static IReadOnlyList<PinnedRequirement> Read(string path)
    {
        if (!File.Exists(path)) throw new HardenException($"{path}: no such requirements file. Create it (pip-compile --generate-hashes) or fix python: requirements:.");
        // Like payload (threat I): an input under images/ that is a symlink could pull a host file in, and its lines into errors.
        if (new FileInfo(path).LinkTarget != null)
            throw new HardenException($"{path}: is a symlink; python: requirements: must be a regular file inside the image set.");
        var text = System.Text.Encoding.UTF8.GetString(BoundedFile.ReadAllBytes(path, InputLimits.MaxRecordBytes, "requirements file"));
        return Parse(text, path);
    }

    public static IReadOnlyList<PinnedRequirement> Parse(string text, string path)
    {
        var result = new List<PinnedRequirement>();
        var lines = text.Replace("\r\n", "\n").Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var start = i + 1;
            var line = lines[i];
            while (line.TrimEnd().EndsWith('\\') && i + 1 < lines.Length) line = line.TrimEnd()[..^1] + " " + lines[++i];
            var hash = line.IndexOf(" #", StringComparison.Ordinal);
            if (line.TrimStart().StartsWith('#')) continue;
            if (hash >= 0) line = line[..hash];
            line = line.Trim();
            if (line.Length == 0) continue;
            var where = $"{path}:{start}";
            if (line.StartsWith('-'))
                throw new HardenException($"{where}: '{line.Split(' ')[0]}' is not accepted here: a requirement line is name==version --hash=sha256:…; indexes come from the image's python: indexes: (dependency confusion), includes and editable installs are not locked.");
            var hashes = new List<string>();
            foreach (Match h in HashOption().Matches(line))
            {
                if (h.Groups["alg"].Value != "sha256") continue;
                var hex = h.Groups["hex"].Value.ToLowerInvariant();
                if (!Sha256Hex.IsValid(hex)) throw new HardenException($"{where}: --hash=sha256:{hex} is not 64 hex digits.");
                hashes.Add(hex);
            }
            var spec = HashOption().Replace(line, "").Trim();
            string? marker = null;
            var semi = spec.IndexOf(';');
            if (semi >= 0) { marker = spec[(semi + 1)..].Trim(); spec = spec[..semi].Trim(); }
            var m = Pin().Match(spec);
            if (!m.Success)
                throw new HardenException($"{where}: '{spec}' is not pinned as name==version. Hash-checked requirements pin exactly one version (pip --require-hashes does the same); no ranges, URLs or paths.");
            if (hashes.Count == 0)
                throw new HardenException($"{where}: {m.Groups["name"].Value} has no --hash=sha256:… . Every requirement is pinned by SHA-256 (pip-compile --generate-hashes writes them).");
            var version = m.Groups["version"].Value;
            if (!Pep440Version.TryParse(version, out _)) throw new HardenException($"{where}: version '{version}' is not a PEP 440 version.");
            result.Add(new PinnedRequirement(m.Groups["name"].Value, version, hashes.Distinct().ToList(), marker, start));
        }
        var twice = result.GroupBy(r => r.NormalizedName).FirstOrDefault(g => g.Count() > 1 && g.Select(r => r.Marker).Distinct().Count() < g.Count());
        if (twice != null) throw new HardenException($"{path}:{twice.Last().Line}: {twice.Key} is listed twice; list each distribution once.");
        return result;
    }

    [GeneratedRegex(@"--hash[= ](?<alg>[a-z0-9]+):(?<hex>[A-Za-z0-9]+)")]
    private static partial Regex HashOption();

    [GeneratedRegex(@"^(?<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[A-Za-z0-9._,\s-]*\])?\s*===?\s*(?<version>[A-Za-z0-9.!+_-]+)$")]
    private static partial Regex Pin();
}
