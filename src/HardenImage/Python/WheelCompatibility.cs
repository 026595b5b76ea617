using System.Text.RegularExpressions;

namespace HardenImage.Python;

/// <summary>
/// Which wheels an image can run, per architecture, following pypa/packaging's tags.sys_tags() order for CPython
/// on glibc Linux (cpython_tags then compatible_tags; manylinux_2_X from the image's glibc down, PEP 600, with the
/// legacy manylinux1/2010/2014 aliases). The earliest tag in that order wins, as pip and uv pick.
/// </summary>
public sealed partial class WheelCompatibility
{
    private readonly Dictionary<WheelTag, int> _rank = new();

    /// <param name="cpythonTag">cp313.</param>
    /// <param name="architecture">Debian architecture (amd64, arm64).</param>
    /// <param name="glibc">The image's glibc (major, minor) from its locked libc6; null = no glibc in the image.</param>
    public WheelCompatibility(string cpythonTag, string architecture, (int Major, int Minor)? glibc)
    {
        CpythonTag = cpythonTag; Architecture = architecture; Glibc = glibc;
        Machine = MachineOf(architecture);
        var minor = int.Parse(cpythonTag[3..], System.Globalization.CultureInfo.InvariantCulture);
        var platforms = new List<string>();
        if (glibc is { Major: 2 } g)
        {
            var oldest = Machine == "x86_64" ? 5 : 17;
            for (var m = g.Minor; m >= oldest; m--)
            {
                platforms.Add($"manylinux_2_{m}_{Machine}");
                if (LegacyAlias(m) is { } legacy) platforms.Add($"{legacy}_{Machine}");
            }
            platforms.Add($"linux_{Machine}");
        }
        var order = new List<WheelTag>();
        foreach (var p in platforms) order.Add(new(cpythonTag, cpythonTag, p));
        foreach (var p in platforms) order.Add(new(cpythonTag, "abi3", p));
        foreach (var p in platforms) order.Add(new(cpythonTag, "none", p));
        for (var m = minor - 1; m >= 2; m--) foreach (var p in platforms) order.Add(new($"cp3{m}", "abi3", p));
        var pyRange = new List<string> { $"py3{minor}", "py3" };
        for (var m = minor - 1; m >= 0; m--) pyRange.Add($"py3{m}");
        foreach (var py in pyRange) foreach (var p in platforms) order.Add(new(py, "none", p));
        order.Add(new(cpythonTag, "none", "any"));
        foreach (var py in pyRange) order.Add(new(py, "none", "any"));
        for (var i = 0; i < order.Count; i++) _rank.TryAdd(order[i], i);
    }

    public string CpythonTag { get; }
    public string Architecture { get; }
    public string Machine { get; }
    public (int Major, int Minor)? Glibc { get; }

    public static string MachineOf(string architecture) => architecture switch
    {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        _ => throw new Common.HardenException($"architecture '{architecture}' has no Python platform tag here (amd64 → x86_64, arm64 → aarch64)"),
    };

    /// <summary>The best (lowest) rank of any of the wheel's tags, or null when none is supported.</summary>
    public int? Rank(WheelFileName wheel)
    {
        int? best = null;
        foreach (var t in wheel.Tags)
            if (_rank.TryGetValue(t, out var r) && (best == null || r < best)) best = r;
        return best;
    }

    /// <summary>Why a wheel does not fit, in words a user can act on.</summary>
    public string WhyNot(WheelFileName wheel)
    {
        var reasons = new List<string>();
        foreach (var plat in wheel.PlatformTags.Distinct())
        {
            if (plat == "any") continue;
            var many = ManylinuxTag().Match(plat);
            if (plat.StartsWith("musllinux_", StringComparison.Ordinal))
                reasons.Add($"{plat} is for musl libc; the image's libc is glibc (musllinux wheels are refused)");
            else if (many.Success && many.Groups["arch"].Value != Machine)
                reasons.Add($"{plat} is for {many.Groups["arch"].Value}, this image is {Machine} ({Architecture})");
            else if (many.Success && Glibc is { } g && int.Parse(many.Groups["minor"].Value, System.Globalization.CultureInfo.InvariantCulture) > g.Minor)
                reasons.Add($"{plat} needs glibc 2.{many.Groups["minor"].Value}, the image has glibc {g.Major}.{g.Minor} (its locked libc6)");
            else if (many.Success && Glibc == null)
                reasons.Add($"{plat} needs glibc; the image has no locked libc6");
            else if (LegacyTag().Match(plat) is { Success: true } legacy && legacy.Groups["arch"].Value != Machine)
                reasons.Add($"{plat} is for {legacy.Groups["arch"].Value}, this image is {Machine} ({Architecture})");
            else if (!plat.StartsWith("manylinux", StringComparison.Ordinal) && !plat.StartsWith("linux_", StringComparison.Ordinal))
                reasons.Add($"{plat} is not a Linux platform");
        }
        if (reasons.Count == 0)
        {
            var abis = string.Join(".", wheel.AbiTags);
            var pys = string.Join(".", wheel.PythonTags);
            reasons.Add($"python tag {pys} / ABI {abis} does not run on the image's CPython {CpythonTag} (free-threaded, other interpreters and other CPython ABIs are refused)");
        }
        return string.Join("; ", reasons.Distinct());
    }

    /// <summary>glibc (2, 41) from a Debian libc6 version such as 2.41-12 or 2.36-9+deb12u10.</summary>
    public static (int Major, int Minor)? GlibcFromLibc6(string? version)
    {
        if (version == null) return null;
        var m = GlibcVersion().Match(version);
        return m.Success ? (int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture)) : null;
    }

    private static string? LegacyAlias(int minor) => minor switch
    {
        17 => "manylinux2014",
        12 => "manylinux2010",
        5 => "manylinux1",
        _ => null,
    };

    [GeneratedRegex(@"^manylinux_(?<major>\d+)_(?<minor>\d+)_(?<arch>.+)$")]
    private static partial Regex ManylinuxTag();

    [GeneratedRegex(@"^manylinux(1|2010|2014)_(?<arch>.+)$")]
    private static partial Regex LegacyTag();

    [GeneratedRegex(@"^(?:\d+:)?(\d+)\.(\d+)")]
    private static partial Regex GlibcVersion();
}
