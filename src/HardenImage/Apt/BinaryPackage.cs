using HardenImage.Common;
using HardenImage.Deb;
namespace HardenImage.Apt;

/// <summary>
/// One binary package as a Packages index describes it. <see cref="Paragraph"/> keeps every field, so the
/// control record can be written into the image's status.d unchanged.
/// </summary>
public sealed record BinaryPackage
{
    public required string Name { get; init; }
    public required string Version { get; init; }
    /// <summary>amd64, arm64, or all.</summary>
    public required string Architecture { get; init; }
    /// <summary>Source package name; the binary name when the stanza has no Source field.</summary>
    public required string SourceName { get; init; }
    /// <summary>Source version; the binary version when Source carries none.</summary>
    public required string SourceVersion { get; init; }
    /// <summary>Path relative to the repository root, e.g. pool/main/b/base-files/base-files_13.8_amd64.deb.</summary>
    public required string Filename { get; init; }
    public required string Sha256 { get; init; }
    public required long Size { get; init; }
    public string Depends { get; init; } = "";
    public string PreDepends { get; init; } = "";
    public string Provides { get; init; } = "";
    public string MultiArch { get; init; } = "";
    public bool Essential { get; init; }
    /// <summary>The Priority field (required, important, standard, optional, extra), trimmed; empty when absent.</summary>
    public string Priority { get; init; } = "";
    /// <summary>Name of the source (sources.yaml) this package came from.</summary>
    public string Origin { get; init; } = "";
    /// <summary>Base URL of the repository, so that <c>BaseUrl + "/" + Filename</c> downloads it.</summary>
    public string BaseUrl { get; init; } = "";
    public Deb822Paragraph? Paragraph { get; init; }

    public DebianVersion ParsedVersion => _parsed ??= DebianVersion.Parse(Version);
    private DebianVersion? _parsed;

    /// <summary>
    /// Builds a package from a Packages stanza. <c>Source: name (version)</c> is split; a missing Source means
    /// the binary name and version (FORMATS.md, Debian archive).
    /// </summary>
    public static BinaryPackage FromParagraph(Deb822Paragraph p, string origin = "", string baseUrl = "")
    {
        string Req(string f) => p[f] ?? throw new FormatException($"stanza at line {p.Line} has no '{f}' field");
        var name = Req("Package");
        var version = Req("Version");
        var source = p["Source"]?.Trim();
        string srcName = name, srcVersion = version;
        if (!string.IsNullOrEmpty(source))
        {
            var paren = source.IndexOf('(');
            if (paren > 0)
            {
                srcName = source[..paren].Trim();
                srcVersion = source[(paren + 1)..].TrimEnd(')', ' ').Trim();
            }
            else srcName = source;
        }
        return new BinaryPackage
        {
            Name = name,
            Version = version,
            Architecture = Req("Architecture"),
            SourceName = srcName,
            SourceVersion = srcVersion,
            Filename = Req("Filename"),
            Sha256 = Req("SHA256").ToLowerInvariant(),
            Size = long.TryParse(Req("Size"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var size)
                ? size : throw new FormatException($"stanza at line {p.Line} ({name}): Size '{UntrustedText.Escape(Req("Size"))}' is not a byte count of at most {long.MaxValue}"),
            Depends = p["Depends"] ?? "",
            PreDepends = p["Pre-Depends"] ?? "",
            Provides = p["Provides"] ?? "",
            MultiArch = p["Multi-Arch"] ?? "",
            Essential = string.Equals(p["Essential"], "yes", StringComparison.OrdinalIgnoreCase),
            Priority = p["Priority"]?.Trim() ?? "",
            Origin = origin,
            BaseUrl = baseUrl,
            Paragraph = p,
        };
    }
}
