using System.Text.RegularExpressions;
using HardenImage.Common;

namespace HardenImage.Python;

/// <summary>One wheel compatibility tag: interpreter-abi-platform (PEP 425).</summary>
public sealed record WheelTag(string Interpreter, string Abi, string Platform)
{
    public override string ToString() => $"{Interpreter}-{Abi}-{Platform}";
}

/// <summary>
/// A wheel file name, {distribution}-{version}(-{build})?-{python}-{abi}-{platform}.whl (binary distribution
/// format spec); each tag part may be a '.'-compressed set. Anything else (an sdist, an egg) is not a wheel.
/// </summary>
public sealed partial record WheelFileName(string FileName, string Distribution, string Version, string? Build,
    IReadOnlyList<string> PythonTags, IReadOnlyList<string> AbiTags, IReadOnlyList<string> PlatformTags)
{
    /// <summary>Every tag the compressed tag set expands to.</summary>
    public IEnumerable<WheelTag> Tags =>
        from py in PythonTags from abi in AbiTags from plat in PlatformTags select new WheelTag(py, abi, plat);

    public string NormalizedName => Pep440Version.NormalizeName(Distribution);

    public static WheelFileName? TryParse(string fileName)
    {
        if (!fileName.EndsWith(".whl", StringComparison.Ordinal) || fileName.Contains('/')) return null;
        var parts = fileName[..^4].Split('-');
        if (parts.Length is not (5 or 6) || parts.Any(p => p.Length == 0)) return null;
        var build = parts.Length == 6 ? parts[2] : null;
        if (build != null && !char.IsAsciiDigit(build[0])) return null;
        if (!NamePart().IsMatch(parts[0]) || !Pep440Version.TryParse(parts[1], out _)) return null;
        return new WheelFileName(fileName, parts[0], parts[1], build,
            parts[^3].Split('.'), parts[^2].Split('.'), parts[^1].Split('.'));
    }

    /// <summary>Source distributions by their PEP 625 / legacy suffixes: refused, building one runs its code.</summary>
    public static bool IsSdist(string fileName) =>
        fileName.EndsWith(".tar.gz", StringComparison.Ordinal) || fileName.EndsWith(".zip", StringComparison.Ordinal)
        || fileName.EndsWith(".tar.bz2", StringComparison.Ordinal) || fileName.EndsWith(".tgz", StringComparison.Ordinal)
        || fileName.EndsWith(".tar.xz", StringComparison.Ordinal);

    [GeneratedRegex(@"^[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?$")]
    private static partial Regex NamePart();
}
