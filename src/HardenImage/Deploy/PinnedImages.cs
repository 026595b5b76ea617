using System.Text.RegularExpressions;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Oci;

namespace HardenImage.Deploy;

/// <summary>An image reference a cluster pulls: <c>registry/repository@sha256:…</c>, never a tag.</summary>
public sealed record PinnedImage(string Name, string Repository, string Digest, string Source)
{
    public string Reference => $"{Repository}@{Digest}";
}

/// <summary>
/// Finds the digest each image of the set was built or pushed with.
/// <para>Reads <c>artifacts/pushed.json</c> first (through <see cref="PushedFile"/>; each entry's
/// <c>reference</c> parsed by <see cref="Registry.ImageReference"/>); entries pushed to an <c>oci:</c> layout are ignored
/// (a cluster cannot pull from a directory). Otherwise <c>artifacts/build.json</c> gives the digest and the
/// <c>--registry HOST/NS</c> option the repository <c>HOST/NS/&lt;name&gt;</c>.</para>
/// Threat: Tampering — a tag can be moved to other bytes; a digest cannot, so the pod runs exactly what was signed.
/// </summary>
public sealed partial class PinnedImages
{
    private readonly Dictionary<string, PinnedImage> _pushed = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _built = new(StringComparer.Ordinal);
    private readonly string? _registry;
    private readonly string _artifacts;

    public PinnedImages(string artifactsDir, string? registry)
    {
        _artifacts = artifactsDir;
        _registry = registry?.Trim().TrimEnd('/');
        if (_registry is { Length: 0 }) _registry = null;
        if (_registry != null && (_registry.StartsWith("oci:", StringComparison.Ordinal) || !HasRegistryHost(_registry + "/x")))
            throw new HardenException($"--registry '{registry}': name a registry host, optionally with a namespace (HOST[:port][/NS]), e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml");
        ReadBuild(ArtifactPaths.BuildRecord(artifactsDir));
        ReadPushed(ArtifactPaths.PushRecord(artifactsDir));
    }

    /// <summary>Index digests from build.json, by image name (used to find the image config for the root check).</summary>
    public IReadOnlyDictionary<string, string> BuiltDigests => _built;

    /// <summary>Whether build.json or pushed.json has a digest for <paramref name="image"/>.</summary>
    public bool Has(string image) => _built.ContainsKey(image) || _pushed.ContainsKey(image);

    /// <summary>The pinned reference for <paramref name="image"/>, or a <see cref="HardenException"/> saying what to run.</summary>
    public PinnedImage Resolve(string image)
    {
        _built.TryGetValue(image, out var builtDigest);
        if (_pushed.TryGetValue(image, out var pushed))
        {
            if (builtDigest != null && builtDigest != pushed.Digest)
                throw new HardenException($"{ArtifactPaths.PushRecord(_artifacts)}: image '{image}' was pushed as {pushed.Digest} but build.json now has {builtDigest}. "
                                          + "Run 'harden push' again so the cluster runs what was built (and signed).");
            return pushed;
        }
        if (builtDigest == null)
            throw new HardenException($"image '{image}' has no digest: it is in neither {ArtifactPaths.PushRecord(_artifacts)} nor {ArtifactPaths.BuildRecord(_artifacts)}. "
                                      + "Run 'harden build' (and 'harden push'); deployments are pinned by digest, never by tag.");
        if (_registry == null)
            throw new HardenException($"image '{image}' is built ({builtDigest}) but not pushed to a registry: run 'harden push --registry HOST/NS' or pass --registry HOST/NS "
                                      + "so the manifests name a repository the cluster can pull.");
        return new PinnedImage(image, $"{_registry}/{image}", builtDigest, "build.json");
    }

    private void ReadBuild(string path)
    {
        if (!File.Exists(path)) return;
        // The one build.json reader (bounded, strict); an unreadable record is an error here, not "no digests".
        var build = BuildManifest.Load(path);
        foreach (var image in build.Images)
            if (IsDigest(image.Index)) _built[image.Name] = image.Index;
    }

    private void ReadPushed(string path)
    {
        if (!File.Exists(path)) return;
        // The one pushed.json reader, and the one reference grammar (Registry.ImageReference) for what it records.
        var pushed = PushedFile.TryLoad(path)
                     ?? throw new HardenException($"{path}: not a valid push record. Run 'harden push' again.");
        if (pushed.Registry.StartsWith("oci:", StringComparison.Ordinal)) return; // a directory, not pullable
        var target = Registry.RegistryTarget.Parse(pushed.Registry, $"{path}: registry");
        foreach (var (name, entry) in pushed.Images)
        {
            if (!IsDigest(entry.Index))
                throw new HardenException($"{path}: image '{name}' has index '{entry.Index}', not a sha256 digest. Run 'harden push' again.");
            Registry.ImageReference reference;
            try { reference = entry.Reference != null ? Registry.ImageReference.Parse(entry.Reference) : target.Reference(entry.Repository, entry.Index); }
            catch (HardenException e) { throw new HardenException($"{path}: image '{name}': {e.Message}"); }
            if (reference.IsLayout) continue;
            if (reference.Digest != entry.Index)
                throw new HardenException($"{path}: image '{name}' records reference {entry.Reference} but index {entry.Index}. Run 'harden push' again.");
            _pushed[name] = new PinnedImage(name, $"{reference.Host}/{reference.Repository}", entry.Index, "pushed.json");
        }
    }

    private static bool IsDigest(string s) => DigestPattern().IsMatch(s);

    /// <summary>True when the first path segment is a registry host (has a dot or a port, or is localhost).</summary>
    internal static bool HasRegistryHost(string reference)
    {
        var slash = reference.IndexOf('/');
        if (slash <= 0) return false;
        var host = reference[..slash];
        return host.Contains('.') || host.Contains(':') || host == "localhost";
    }

    [GeneratedRegex("^sha256:[0-9a-f]{64}$")]
    private static partial Regex DigestPattern();
}

/// <summary>
/// Reads an image's configured user from the OCI layout. Threat: Elevation of privilege — an image whose config runs
/// as root (User empty, "0" or "root") is refused even though the pod sets runAsNonRoot, so a cluster without Pod
/// Security admission cannot start it as root either.
/// </summary>
public sealed class ImageUserCheck(string layoutDir)
{
    /// <summary>
    /// The config users of every platform manifest of the index <paramref name="indexDigest"/>; null when the layout
    /// or the blobs are not here (the check is then skipped and the caller says so).
    /// </summary>
    public IReadOnlyList<string>? Users(string indexDigest)
    {
        if (!File.Exists(Path.Combine(layoutDir, "oci-layout"))) return null;
        var layout = OciLayout.Open(layoutDir);
        if (!layout.HasBlob(indexDigest)) return null;
        var reader = new OciLayoutReader(layout);
        var index = layout.ReadJson<ImageIndex>(indexDigest);
        return index.Manifests.Where(d => d.MediaType is MediaTypes.ImageManifest or MediaTypes.DockerManifest)
            .Select(d => reader.ReadManifest(d).Config.Config?.User ?? "").ToList();
    }

    /// <summary>True when <paramref name="user"/> (an OCI config User, "uid[:gid]" or a name) means root.</summary>
    public static bool IsRoot(string? user)
    {
        if (string.IsNullOrWhiteSpace(user)) return true; // the engine's default is root
        var u = user.Split(':')[0].Trim();
        return u is "0" or "root" or "";
    }
}
