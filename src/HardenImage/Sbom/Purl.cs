using System.Text;

namespace HardenImage.Sbom;

/// <summary>Package URLs (github.com/package-url/purl-spec) for what we describe.</summary>
public static class Purl
{
    /// <summary><c>pkg:deb/debian/&lt;name&gt;@&lt;version&gt;?arch=&lt;arch&gt;&amp;distro=&lt;distro&gt;</c>; "+" → %2B, epoch ":" → %3A.</summary>
    public static string Deb(string name, string version, string arch, string? distro)
    {
        var sb = new StringBuilder("pkg:deb/debian/").Append(Encode(name)).Append('@').Append(Encode(version))
            .Append("?arch=").Append(Encode(arch));
        if (!string.IsNullOrEmpty(distro)) sb.Append("&distro=").Append(Encode(distro));
        return sb.ToString();
    }

    public static string PyPi(string normalizedName, string version) => $"pkg:pypi/{Encode(normalizedName)}@{Encode(version)}";

    /// <summary><c>pkg:oci/&lt;name&gt;@sha256%3A&lt;hex&gt;?arch=&lt;arch&gt;</c>.</summary>
    public static string Oci(string imageName, string digest, string arch)
    {
        var last = imageName.Contains('/') ? imageName[(imageName.LastIndexOf('/') + 1)..] : imageName;
        return $"pkg:oci/{Encode(last.ToLowerInvariant())}@{Encode(digest)}?arch={Encode(arch)}";
    }

    /// <summary>Percent-encodes everything outside the purl unreserved set (A-Z a-z 0-9 . - _ ~).</summary>
    public static string Encode(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var b in Encoding.UTF8.GetBytes(s))
        {
            char c = (char)b;
            if (char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '~') sb.Append(c);
            else sb.Append('%').Append(b.ToString("X2"));
        }
        return sb.ToString();
    }
}
