using System.Text.RegularExpressions;
using HardenImage.Common;
using HardenImage.Oci;

namespace HardenImage.Registry;

/// <summary>
/// A reference to an image in a distribution registry: <c>host[:port]/ns/repo[:tag][@sha256:...]</c>.
/// A first component without '.', ':' or "localhost" is not a host, so it means Docker Hub (docker.io).
/// </summary>
public sealed partial record ImageReference(string Host, string Repository, string? Tag, string? Digest)
{
    public const string DockerHub = "docker.io";

    /// <summary>What the registry API takes after <c>/manifests/</c>: the digest when pinned, else the tag (default "latest").</summary>
    public string ApiReference => Digest ?? Tag ?? "latest";

    public static ImageReference Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new HardenException("empty image reference (expected host[:port]/repository[:tag][@sha256:...])");
        var rest = text.Trim();
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
        if (slash > 0)
        {
            var first = rest[..slash];
            if (first.Contains('.') || first.Contains(':') || first == "localhost")
            {
                host = first;
                rest = rest[(slash + 1)..];
            }
        }
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
        return new ImageReference(host, rest, tag, digest);
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

    public override string ToString() =>
        $"{Host}/{Repository}{(Tag != null ? ":" + Tag : "")}{(Digest != null ? "@" + Digest : "")}";

    [GeneratedRegex("^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")]
    private static partial Regex RepositoryPattern();

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex TagPattern();
}

/// <summary>An image in an OCI layout directory, skopeo's spelling: <c>oci:DIR[:tag]</c>.</summary>
public sealed record OciLayoutReference(string Directory, string? Tag)
{
    public const string Scheme = "oci:";

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
