namespace HardenImage.Apt;

/// <summary>Debian release codenames and numbers (distro-info-data). Here, beside the suites they name, because
/// the SBOM (origin distributions) and the scanner (OSV ecosystems) both read it.</summary>
public static class DebianReleases
{
    private static readonly (string Codename, string Number)[] Known =
    [
        ("wheezy", "7"), ("jessie", "8"), ("stretch", "9"), ("buster", "10"), ("bullseye", "11"),
        ("bookworm", "12"), ("trixie", "13"), ("forky", "14"), ("duke", "15"), ("sid", "sid"),
    ];

    public static string? NumberOf(string codename) =>
        Known.FirstOrDefault(k => k.Codename == codename).Number;

    public static string? CodenameOf(string number) =>
        Known.FirstOrDefault(k => k.Number == number).Codename;

    /// <summary>OSV ecosystem for a codename: "Debian:13" for trixie; "Debian:&lt;codename&gt;" when unknown.</summary>
    public static string EcosystemOf(string codename) => "Debian:" + (NumberOf(codename) ?? codename);

    /// <summary>Maps an inventory distro ("debian-13") to the OSV ecosystem ("Debian:13").</summary>
    public static string? EcosystemOfDistro(string? distro) =>
        distro != null && distro.StartsWith("debian-", StringComparison.Ordinal) ? "Debian:" + distro["debian-".Length..] : null;
}
