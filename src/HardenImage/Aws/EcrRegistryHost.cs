using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;
using HardenImage.Common;

namespace HardenImage.Aws;

/// <summary>
/// A private ECR registry address, <c>&lt;account&gt;.dkr.ecr[-fips].&lt;region&gt;.amazonaws.com[.cn][/repo]</c>.
/// Only this exact shape counts as ECR, so a look-alike host never receives ECR credentials (Spoofing).
/// </summary>
public sealed partial record EcrRegistryHost(string AccountId, string Region, string Host, string? Repository)
{
    public static bool TryParse(string reference, [NotNullWhen(true)] out EcrRegistryHost? host)
    {
        host = null;
        var text = reference.Trim();
        if (text.StartsWith("https://", StringComparison.OrdinalIgnoreCase)) text = text[8..];
        var m = Pattern().Match(text);
        if (!m.Success) return false;
        var repo = m.Groups["repo"].Success ? m.Groups["repo"].Value.TrimStart('/') : null;
        host = new EcrRegistryHost(m.Groups["account"].Value, m.Groups["region"].Value.ToLowerInvariant(), m.Groups["host"].Value.ToLowerInvariant(),
            string.IsNullOrEmpty(repo) ? null : repo);
        return true;
    }

    public static EcrRegistryHost Parse(string reference) =>
        TryParse(reference, out var host) ? host
            : throw new HardenException($"'{reference}' is not an ECR registry (expected <account>.dkr.ecr.<region>.amazonaws.com[/repository]).");

    public static bool IsEcr(string reference) => TryParse(reference, out _);

    [GeneratedRegex(@"^(?<host>(?<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?<region>[a-z]{2}(?:-[a-z]+)+-[0-9]+)\.amazonaws\.com(?:\.cn)?)(?::443)?(?<repo>/[^\s:@]*)?(?:[:@].*)?$", RegexOptions.IgnoreCase)]
    private static partial Regex Pattern();
}
