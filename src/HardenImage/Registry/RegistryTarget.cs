using System.Text.RegularExpressions;
using HardenImage.Common;

namespace HardenImage.Registry;

public enum RegistryKind { OciLayout, Distribution, Ecr }

/// <summary>
/// Where <c>harden push</c> sends images: <c>oci:DIR</c> (a layout per repository under DIR),
/// <c>HOST[:port][/NS]</c> (a distribution registry) or <c>ACCOUNT.dkr.ecr.REGION.amazonaws.com[/NS]</c> (ECR).
/// Repositories are <c>NS/&lt;image&gt;</c> (just <c>&lt;image&gt;</c> without a namespace).
/// <see cref="Location"/> is the registry host (with port) or, for a layout, the root directory.
/// </summary>
public sealed partial record RegistryTarget(RegistryKind Kind, string Location, string Namespace)
{
    public const string DefaultLayoutRoot = "artifacts/registry";

    public string? EcrAccount => Kind == RegistryKind.Ecr ? EcrHost().Match(Location).Groups["account"].Value : null;
    public string? EcrRegion => Kind == RegistryKind.Ecr ? EcrHost().Match(Location).Groups["region"].Value : null;

    public string RepositoryFor(string image) => Namespace.Length == 0 ? image : Namespace + "/" + image;

    /// <summary>"http"/"https" when the --registry text said so; null lets the host decide (see <see cref="ImageReference.UsePlainHttp"/>).</summary>
    public string? Scheme { get; init; }

    /// <summary>Parses --registry (or pushed.json's "registry") with <see cref="ImageReference"/>'s grammar.</summary>
    public static RegistryTarget Parse(string text, string context = "--registry")
    {
        if (string.IsNullOrWhiteSpace(text)) return new RegistryTarget(RegistryKind.OciLayout, DefaultLayoutRoot, "");
        text = text.Trim();
        if (OciLayoutReference.IsOciLayout(text))
        {
            var dir = text[OciLayoutReference.Scheme.Length..];
            if (dir.Length == 0) throw new HardenException($"{context} '{text}': name a directory, e.g. oci:{DefaultLayoutRoot}");
            return new RegistryTarget(RegistryKind.OciLayout, dir, "");
        }
        var (host, ns, scheme) = ImageReference.ParseRegistry(text, context);
        var kind = EcrHost().IsMatch(host) ? RegistryKind.Ecr : RegistryKind.Distribution;
        return new RegistryTarget(kind, host, ns) { Scheme = scheme };
    }

    /// <summary>The registry an image reference lives in (namespace empty: the reference names the whole repository).</summary>
    public static RegistryTarget For(ImageReference reference) =>
        reference.IsLayout
            ? new RegistryTarget(RegistryKind.OciLayout, reference.LayoutDirectory!, "")
            : new RegistryTarget(EcrHost().IsMatch(reference.Host) ? RegistryKind.Ecr : RegistryKind.Distribution, reference.Host, "") { Scheme = reference.Scheme };

    /// <summary>The canonical reference of <paramref name="repository"/>@<paramref name="digest"/> here (pushed.json, verify, deploy).</summary>
    public ImageReference Reference(string repository, string? digest, string? tag = null) =>
        Kind == RegistryKind.OciLayout
            ? new ImageReference("", repository, tag, digest) { LayoutDirectory = Location }
            : new ImageReference(Location, repository, tag, digest);

    public override string ToString() => Kind == RegistryKind.OciLayout
        ? OciLayoutReference.Scheme + Location
        : Namespace.Length == 0 ? Location : Location + "/" + Namespace;

    public static bool IsEcrHost(string host) => EcrHost().IsMatch(host);

    [GeneratedRegex(@"^(?<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?(?::\d+)?$", RegexOptions.IgnoreCase)]
    private static partial Regex EcrHost();
}
