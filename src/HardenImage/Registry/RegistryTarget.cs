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

    public static RegistryTarget Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) return new RegistryTarget(RegistryKind.OciLayout, DefaultLayoutRoot, "");
        text = text.Trim();
        if (OciLayoutReference.IsOciLayout(text))
        {
            var dir = text[OciLayoutReference.Scheme.Length..];
            if (dir.Length == 0) throw new HardenException($"--registry '{text}': name a directory, e.g. oci:{DefaultLayoutRoot}");
            return new RegistryTarget(RegistryKind.OciLayout, dir, "");
        }
        foreach (var scheme in new[] { "https://", "http://", "docker://" })
            if (text.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) text = text[scheme.Length..];
        text = text.TrimEnd('/');
        var slash = text.IndexOf('/');
        var host = slash < 0 ? text : text[..slash];
        var ns = slash < 0 ? "" : text[(slash + 1)..];
        if (host.Length == 0 || !(host.Contains('.') || host.Contains(':') || host == "localhost"))
            throw new HardenException($"--registry '{text}': '{host}' is not a registry host (use HOST[:port]/NAMESPACE, or oci:DIR for a layout directory)");
        if (ns.Length > 0) ImageReference.ValidateRepository(ns, "--registry " + text);
        var kind = EcrHost().IsMatch(host) ? RegistryKind.Ecr : RegistryKind.Distribution;
        return new RegistryTarget(kind, host.ToLowerInvariant(), ns);
    }

    public override string ToString() => Kind == RegistryKind.OciLayout
        ? OciLayoutReference.Scheme + Location
        : Namespace.Length == 0 ? Location : Location + "/" + Namespace;

    public static bool IsEcrHost(string host) => EcrHost().IsMatch(host);

    [GeneratedRegex(@"^(?<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?(?::\d+)?$", RegexOptions.IgnoreCase)]
    private static partial Regex EcrHost();
}
