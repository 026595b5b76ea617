using HardenImage.Deb;

namespace HardenImage.Sbom;

/// <summary>
/// Licence ids from a machine-readable Debian copyright file (DEP-5, copyright-format 1.0). Files that are not
/// machine-readable claim nothing: a guessed licence in an SBOM is worse than none.
/// </summary>
public static class CopyrightLicenses
{
    // DEP-5 short names → SPDX ids, for the common ones; others are kept as names.
    private static readonly Dictionary<string, string> ToSpdx = new(StringComparer.OrdinalIgnoreCase)
    {
        ["GPL-1"] = "GPL-1.0-only", ["GPL-1+"] = "GPL-1.0-or-later",
        ["GPL-2"] = "GPL-2.0-only", ["GPL-2+"] = "GPL-2.0-or-later",
        ["GPL-3"] = "GPL-3.0-only", ["GPL-3+"] = "GPL-3.0-or-later",
        ["LGPL-2"] = "LGPL-2.0-only", ["LGPL-2+"] = "LGPL-2.0-or-later",
        ["LGPL-2.1"] = "LGPL-2.1-only", ["LGPL-2.1+"] = "LGPL-2.1-or-later",
        ["LGPL-3"] = "LGPL-3.0-only", ["LGPL-3+"] = "LGPL-3.0-or-later",
        ["AGPL-3"] = "AGPL-3.0-only", ["AGPL-3+"] = "AGPL-3.0-or-later",
        ["GFDL-1.2"] = "GFDL-1.2-only", ["GFDL-1.2+"] = "GFDL-1.2-or-later",
        ["GFDL-1.3"] = "GFDL-1.3-only", ["GFDL-1.3+"] = "GFDL-1.3-or-later",
        ["Apache-2.0"] = "Apache-2.0", ["Apache-2"] = "Apache-2.0",
        ["MIT"] = "MIT", ["Expat"] = "MIT", ["ISC"] = "ISC", ["Zlib"] = "Zlib",
        ["BSD-2-clause"] = "BSD-2-Clause", ["BSD-3-clause"] = "BSD-3-Clause", ["BSD-4-clause"] = "BSD-4-Clause",
        ["MPL-1.1"] = "MPL-1.1", ["MPL-2.0"] = "MPL-2.0", ["PSF-2"] = "PSF-2.0", ["Python-2.0"] = "Python-2.0",
        ["Artistic"] = "Artistic-1.0-Perl", ["Artistic-2.0"] = "Artistic-2.0", ["CC0-1.0"] = "CC0-1.0", ["CC0"] = "CC0-1.0",
        ["public-domain"] = "LicenseRef-public-domain", ["OpenSSL"] = "OpenSSL", ["curl"] = "curl", ["BSL-1.0"] = "BSL-1.0",
        ["X11"] = "X11", ["Unicode-DFS-2016"] = "Unicode-DFS-2016", ["bzip2-1.0.6"] = "bzip2-1.0.6", ["Libpng"] = "Libpng",
        ["Unlicense"] = "Unlicense", ["WTFPL"] = "WTFPL", ["0BSD"] = "0BSD", ["OFL-1.1"] = "OFL-1.1",
        ["EPL-1.0"] = "EPL-1.0", ["EPL-2.0"] = "EPL-2.0", ["CC-BY-4.0"] = "CC-BY-4.0", ["CC-BY-SA-4.0"] = "CC-BY-SA-4.0",
    };

    /// <summary>Distinct licence ids in first-seen order; empty when the file is not DEP-5.</summary>
    public static IReadOnlyList<string> Parse(string text)
    {
        var firstLine = text.Split('\n', 2)[0].Trim();
        if (!firstLine.StartsWith("Format:", StringComparison.OrdinalIgnoreCase)
            || !firstLine.Contains("copyright-format/1.0", StringComparison.Ordinal)) return [];
        var result = new List<string>();
        try
        {
            foreach (var p in Deb822.Parse(text))
            {
                var license = p["License"];
                if (license is null) continue;
                var shortName = license.Split('\n', 2)[0].Trim();
                if (shortName.Length == 0) continue;
                // "GPL-2+ or Artistic", "MIT and BSD-3-clause", "GPL-2+ with OpenSSL exception": ids only.
                foreach (var part in shortName.Replace(',', ' ').Split([" or ", " and ", " | ", " & "], StringSplitOptions.RemoveEmptyEntries))
                {
                    var id = part.Trim();
                    var with = id.IndexOf(" with ", StringComparison.OrdinalIgnoreCase);
                    if (with > 0) id = id[..with].Trim();
                    if (id.Length == 0 || id.Contains(' ')) continue;
                    id = Normalize(id);
                    if (!result.Contains(id)) result.Add(id);
                }
            }
        }
        catch (FormatException)
        {
            return []; // Declares DEP-5 but does not parse as deb822: claim nothing.
        }
        return result;
    }

    public static string Normalize(string id) => ToSpdx.TryGetValue(id, out var spdx) ? spdx : id;

    /// <summary>True when the id is one we map to SPDX (so it can be written as a licence id, not a name).</summary>
    public static bool IsSpdx(string id) => ToSpdx.ContainsValue(id) && !id.StartsWith("LicenseRef-", StringComparison.Ordinal);
}
