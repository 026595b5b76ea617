using HardenImage.Common;

namespace HardenImage.Oci;

/// <summary>
/// The one spelling of a platform in options and records: the OCI/containerd form <c>os/architecture[/variant]</c>,
/// e.g. <c>linux/amd64</c>, <c>linux/arm64/v8</c>. build.json (<c>platform</c>) and pushed.json (manifest keys)
/// both use it. arm64 images are built with variant v8, so <c>linux/arm64</c> and <c>linux/arm64/v8</c> name the same.
/// </summary>
public static class PlatformName
{
    private static readonly string[] KnownArchitectures = ["amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64"];

    public static string Format(string os, string architecture, string? variant) =>
        $"{os}/{architecture}{(string.IsNullOrEmpty(variant) ? "" : "/" + variant)}";

    /// <summary>The platform harden builds for a Debian architecture (arm64 carries variant v8).</summary>
    public static string ForArchitecture(string architecture) => Format("linux", architecture, architecture == "arm64" ? "v8" : null);

    /// <summary>Parses a --platform value to the Debian/OCI architecture it selects; a clear error otherwise.</summary>
    public static string ParseArchitecture(string text)
    {
        var parts = text.Trim().Split('/');
        const string expected = "expected linux/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8";
        if (parts.Length is < 2 or > 3 || parts[0] != "linux")
            throw new HardenException($"--platform '{text}': {expected}");
        var arch = parts[1];
        if (!KnownArchitectures.Contains(arch))
            throw new HardenException($"--platform '{text}': unknown architecture '{arch}'{NameSuggestions.DidYouMean(arch, KnownArchitectures)}; {expected}");
        if (parts.Length == 3)
        {
            var builtVariant = arch == "arm64" ? "v8" : null;
            if (parts[2] != builtVariant)
                throw new HardenException($"--platform '{text}': harden builds {ForArchitecture(arch)}, not variant '{parts[2]}'");
        }
        return arch;
    }

    /// <summary>The architecture of a record key: "linux/arm64/v8", or the older "arm64/v8" and "arm64".</summary>
    public static string ArchitectureOf(string key)
    {
        var parts = key.Split('/');
        return parts[0] == "linux" && parts.Length > 1 ? parts[1] : parts[0];
    }
}
