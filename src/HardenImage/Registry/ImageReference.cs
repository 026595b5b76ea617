using System.Net;
using System.Text.RegularExpressions;
using HardenImage.Common;
using HardenImage.Oci;

namespace HardenImage.Registry;

/// <summary>
/// The one reference grammar of harden (push, sign, verify, deploy, pushed.json and the Cake script all use it):
/// <list type="bullet">
/// <item><c>[docker://|https://|http://]host[:port]/repository[:tag][@sha256:…]</c> — a distribution registry.
/// A first component without '.', ':' or "localhost" is not a host, so it means Docker Hub (docker.io).
/// <c>docker://</c> (skopeo's transport name) is understood and dropped; <c>http://</c> and <c>https://</c> say
/// which protocol to speak (see <see cref="UsePlainHttp"/>).</item>
/// <item><c>oci:DIR/repository[:tag][@sha256:…]</c> — a repository in harden's OCI layout registry at DIR.</item>
/// </list>
/// Hosts are validated (name, IPv4 or bracketed IPv6, optional port 1–65535) and lower-cased; repositories follow the
/// distribution grammar, which also keeps "../" out of layout paths (threat: Tampering / Elevation of privilege).
/// </summary>
public sealed partial record ImageReference(string Host, string Repository, string? Tag, string? Digest)
{
    public const string DockerHub = "docker.io";
    public const string OciScheme = "oci:";

    /// <summary>For <c>oci:DIR/…</c>: the layout registry root DIR (then <see cref="Host"/> is empty).</summary>
    public string? LayoutDirectory { get; init; }

    /// <summary>"http" or "https" when the text said so; null when it did not (the host decides).</summary>
    public string? Scheme { get; init; }

    public bool IsLayout => LayoutDirectory != null;

    /// <summary>What the registry API takes after <c>/manifests/</c>: the digest when pinned, else the tag (default "latest").</summary>
    public string ApiReference => Digest ?? Tag ?? "latest";

    public static ImageReference Parse(string text)
    {
        const string expected = "expected host[:port]/repository[:tag][@sha256:…] or oci:DIR/repository[:tag]";
        if (string.IsNullOrWhiteSpace(text)) throw new HardenException($"empty image reference ({expected})");
        var rest = text.Trim();
        if (rest.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
            throw new HardenException($"image reference '{Printable(text)}': contains a space or control character ({expected})");
        if (rest.StartsWith(OciScheme, StringComparison.Ordinal))
            return ParseLayout(text, rest[OciScheme.Length..]);
        var scheme = StripScheme(ref rest, text);
        string? digest = null;
        var at = rest.IndexOf('@');
        if (at >= 0)
        {
            digest = rest[(at + 1)..];
            if (!Oci.Digest.TryParse(digest, out _))
                throw new HardenException($"image reference '{text}': '{digest}' is not a sha256 digest (sha256:<64 lower-case hex>)");
            rest = rest[..at];
        }
        string host = DockerHub;
        var slash = rest.IndexOf('/');
        if (slash > 0 && LooksLikeHost(rest[..slash]))
        {
            host = ValidateHost(rest[..slash], text);
            rest = rest[(slash + 1)..];
        }
        else if (scheme != null)
            throw new HardenException($"image reference '{text}': '{(slash > 0 ? rest[..slash] : rest)}' is not a registry host ({expected})");
        string? tag = null;
        var colon = rest.LastIndexOf(':');
        if (colon >= 0)
        {
            tag = rest[(colon + 1)..];
            rest = rest[..colon];
            if (!TagPattern().IsMatch(tag))
                throw new HardenException($"image reference '{text}': tag '{tag}' is not valid (letters, digits, '_', '.', '-'; at most 128)");
        }
        if (host == DockerHub && !rest.Contains('/')) rest = "library/" + rest;
        ValidateRepository(rest, text);
        return new ImageReference(host, rest, tag, digest) { Scheme = scheme };
    }

    /// <summary>A registry host with an optional namespace, as <c>--registry</c> takes it: <c>[scheme]host[:port][/ns]</c>.</summary>
    public static (string Host, string Namespace, string? Scheme) ParseRegistry(string text, string context)
    {
        var rest = text.Trim();
        if (rest.Length == 0 || rest.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
            throw new HardenException($"{context} '{Printable(text)}': expected HOST[:port][/NAMESPACE] (no spaces), or oci:DIR for a layout directory");
        var scheme = StripScheme(ref rest, text);
        rest = rest.TrimEnd('/');
        var slash = rest.IndexOf('/');
        var host = slash < 0 ? rest : rest[..slash];
        var ns = slash < 0 ? "" : rest[(slash + 1)..];
        if (host.Length == 0 || !LooksLikeHost(host))
            throw new HardenException($"{context} '{text}': '{host}' is not a registry host (use HOST[:port]/NAMESPACE, e.g. registry.example.com/hardened or localhost:5000/ns, or oci:DIR for a layout directory)");
        host = ValidateHost(host, $"{context} {text}");
        if (ns.Contains('@') || ns.Contains(':'))
            throw new HardenException($"{context} '{text}': name a registry and namespace, without a tag or digest (e.g. {host}/hardened)");
        if (ns.Length > 0) ValidateRepository(ns, $"{context} {text}");
        return (host, ns, scheme);
    }

    /// <summary>
    /// Whether to speak plain HTTP to <paramref name="host"/>. Loopback registries (localhost, 127.0.0.0/8, [::1])
    /// use HTTP without --insecure, as Docker and crane do; any other host needs --insecure (or <c>http://</c> plus
    /// --insecure), because plain HTTP there lets anyone on the path read credentials and swap blobs (threat S, T, I).
    /// An explicit <c>https://</c> always means TLS.
    /// </summary>
    public static bool UsePlainHttp(string host, string? scheme, bool insecure, string context)
    {
        if (scheme == "https") return false;
        if (IsLoopback(host)) return true;
        if (insecure) return true;
        if (scheme == "http")
            throw new HardenException($"{context}: plain HTTP to '{host}' is refused without --insecure (anyone on the network path could read credentials and replace blobs); add --insecure for a lab registry, or use TLS");
        return false;
    }

    /// <summary>localhost, 127.0.0.0/8 or ::1, with or without a port.</summary>
    public static bool IsLoopback(string host)
    {
        var name = HostWithoutPort(host);
        if (name.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return true;
        return IPAddress.TryParse(name.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip);
    }

    public static string HostWithoutPort(string host)
    {
        if (host.StartsWith('[')) return host[..(host.IndexOf(']') + 1)];
        var colon = host.LastIndexOf(':');
        return colon < 0 ? host : host[..colon];
    }

    /// <summary>
    /// Checks a repository name against the distribution grammar. Names reach file paths in the layout registry,
    /// so this also stops "../" escapes (threat: Tampering / Elevation of privilege).
    /// </summary>
    public static void ValidateRepository(string repository, string? context = null)
    {
        if (repository.Length is 0 or > 255 || !RepositoryPattern().IsMatch(repository))
            throw new HardenException($"{(context != null ? $"'{context}': " : "")}repository name '{repository}' is not valid " +
                "(lower-case path components of [a-z0-9] separated by '.', '_', '__' or '-', joined by '/')");
    }

    public static bool IsValidTag(string tag) => TagPattern().IsMatch(tag);

    /// <summary>The canonical text: <c>host/repo[:tag][@digest]</c> or <c>oci:DIR/repo[:tag][@digest]</c>; no scheme.</summary>
    public override string ToString() =>
        $"{(IsLayout ? OciScheme + LayoutDirectory : Host)}/{Repository}{(Tag != null ? ":" + Tag : "")}{(Digest != null ? "@" + Digest : "")}";

    private static ImageReference ParseLayout(string text, string body)
    {
        // oci:DIR/REPO[:TAG|@DIGEST]: the last path segment is the repository in the layout root DIR.
        string? digest = null;
        var at = body.IndexOf('@');
        if (at >= 0)
        {
            digest = body[(at + 1)..];
            if (!Oci.Digest.TryParse(digest, out _))
                throw new HardenException($"image reference '{text}': '{digest}' is not a sha256 digest (sha256:<64 lower-case hex>)");
            body = body[..at];
        }
        var slash = body.LastIndexOf('/');
        if (slash <= 0) throw new HardenException($"image reference '{text}': expected oci:DIR/REPOSITORY[:TAG], e.g. oci:artifacts/registry/base:13");
        var dir = body[..slash];
        var rest = body[(slash + 1)..];
        string? tag = null;
        var colon = rest.LastIndexOf(':');
        if (colon >= 0)
        {
            tag = rest[(colon + 1)..];
            rest = rest[..colon];
            if (!TagPattern().IsMatch(tag)) throw new HardenException($"image reference '{text}': tag '{tag}' is not valid (letters, digits, '_', '.', '-'; at most 128)");
        }
        ValidateRepository(rest, text);
        return new ImageReference("", rest, tag, digest) { LayoutDirectory = dir };
    }

    private static string? StripScheme(ref string rest, string text)
    {
        var sep = rest.IndexOf("://", StringComparison.Ordinal);
        if (sep < 0) return null;
        var scheme = rest[..sep].ToLowerInvariant();
        rest = rest[(sep + 3)..];
        return scheme switch
        {
            "docker" => null,
            "http" or "https" => scheme,
            _ => throw new HardenException($"'{text}': unknown transport '{scheme}://' (use docker://, https://, http:// with --insecure, or oci:DIR/REPOSITORY)"),
        };
    }

    private static bool LooksLikeHost(string first) =>
        first.Contains('.') || first.Contains(':') || first.StartsWith('[') || first.Equals("localhost", StringComparison.OrdinalIgnoreCase);

    private static string ValidateHost(string host, string context)
    {
        var m = HostPattern().Match(host);
        if (!m.Success)
            throw new HardenException($"'{context}': '{host}' is not a valid registry host (a DNS name, IPv4 address or [IPv6] address, optionally :port)");
        if (m.Groups["port"].Success && (!int.TryParse(m.Groups["port"].Value, out var port) || port is < 1 or > 65535))
            throw new HardenException($"'{context}': port '{m.Groups["port"].Value}' of '{host}' is not between 1 and 65535");
        if (m.Groups["v6"].Success && !IPAddress.TryParse(m.Groups["v6"].Value, out _))
            throw new HardenException($"'{context}': '{host}' is not a valid [IPv6] address");
        return host.ToLowerInvariant();
    }

    private static string Printable(string s) => new(s.Select(c => char.IsControl(c) ? '?' : c).ToArray());

    [GeneratedRegex(@"^(?:(?<name>[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)|\[(?<v6>[0-9A-Fa-f:.]+)\])(?::(?<port>[0-9]{1,5}))?$")]
    private static partial Regex HostPattern();

    [GeneratedRegex("^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")]
    private static partial Regex RepositoryPattern();

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex TagPattern();
}

/// <summary>An image in an OCI layout directory, skopeo's spelling: <c>oci:DIR[:tag]</c>.</summary>
public sealed record OciLayoutReference(string Directory, string? Tag)
{
    public const string Scheme = ImageReference.OciScheme;

    public static bool IsOciLayout(string text) => text.StartsWith(Scheme, StringComparison.Ordinal);

    public static OciLayoutReference Parse(string text)
    {
        if (!IsOciLayout(text)) throw new HardenException($"'{text}' is not an OCI layout reference (oci:DIR[:tag])");
        var rest = text[Scheme.Length..];
        string? tag = null;
        var colon = rest.LastIndexOf(':');
        // A colon followed by a path separator belongs to the directory (e.g. C:\ or a:/b), not to a tag.
        if (colon >= 0 && rest.IndexOf('/', colon) < 0 && rest.IndexOf('\\', colon) < 0)
        {
            tag = rest[(colon + 1)..];
            rest = rest[..colon];
            if (tag.Length == 0) tag = null;
        }
        if (rest.Length == 0) throw new HardenException($"'{text}': the OCI layout directory is empty (oci:DIR[:tag])");
        return new OciLayoutReference(rest, tag);
    }

    public override string ToString() => Scheme + Directory + (Tag != null ? ":" + Tag : "");
}
