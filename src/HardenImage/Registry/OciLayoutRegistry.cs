using System.Collections.Concurrent;
using System.Text.Json;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Common.Streams;

namespace HardenImage.Registry;

/// <summary>
/// A registry on disk: one OCI image layout per repository under a root directory (default artifacts/registry),
/// tags as <c>org.opencontainers.image.ref.name</c> annotations — what <c>skopeo ... oci:ROOT/REPO:TAG</c> reads.
/// Repository names are checked against the distribution grammar before they become paths (threat: Tampering
/// through "../" names); blobs are verified on write and read (<see cref="OciLayout"/>).
/// </summary>
public sealed class OciLayoutRegistry : IRegistry
{
    private readonly ConcurrentDictionary<string, OciLayout> _layouts = new(StringComparer.Ordinal);

    public OciLayoutRegistry(string root) => Root = Path.GetFullPath(root);

    public string Root { get; }
    public string Name => OciLayoutReference.Scheme + Root;

    /// <summary>The layout directory of a repository.</summary>
    public string RepositoryPath(string repository)
    {
        ImageReference.ValidateRepository(repository);
        return Path.Combine(Root, repository.Replace('/', Path.DirectorySeparatorChar));
    }

    public Task<bool> BlobExistsAsync(string repository, string digest, CancellationToken ct = default) =>
        Task.FromResult(Existing(repository)?.HasBlob(digest) ?? false);

    public async Task PushBlobAsync(string repository, Descriptor blob, Stream content, IProgress<long>? progress = null, CancellationToken ct = default)
    {
        var written = await Layout(repository).WriteBlobAsync(content, blob.MediaType, blob.Digest, ct).ConfigureAwait(false);
        if (written.Size != blob.Size)
            throw new HardenException($"{Name}/{repository}: blob {blob.Digest} is {written.Size} bytes, its descriptor says {blob.Size}");
        progress?.Report(blob.Size);
    }

    public async Task<bool> MountBlobAsync(string repository, string digest, string fromRepository, CancellationToken ct = default)
    {
        var from = Existing(fromRepository);
        if (from == null || !from.HasBlob(digest)) return false;
        await using var source = from.OpenBlob(digest);
        await Layout(repository).WriteBlobAsync(source, "application/octet-stream", digest, ct).ConfigureAwait(false);
        return true;
    }

    public Task<Stream> GetBlobAsync(string repository, string digest, CancellationToken ct = default)
    {
        var layout = Existing(repository) ?? throw new RegistryException($"{Name}: repository {repository} does not exist");
        var path = layout.BlobPath(digest);
        Stream s = new DigestVerifyingStream(layout.OpenBlob(digest), digest, new FileInfo(path).Length);
        return Task.FromResult(s);
    }

    public Task<RegistryManifest?> GetManifestAsync(string repository, string reference, CancellationToken ct = default)
    {
        var layout = Existing(repository);
        var descriptor = layout == null ? null : Find(layout, reference);
        if (layout == null || descriptor == null) return Task.FromResult<RegistryManifest?>(null);
        var bytes = layout.ReadBlob(descriptor.Digest);
        return Task.FromResult<RegistryManifest?>(new RegistryManifest(bytes, MediaTypeOf(bytes, descriptor.MediaType), descriptor.Digest));
    }

    public Task<Descriptor?> ResolveManifestAsync(string repository, string reference, CancellationToken ct = default)
    {
        var layout = Existing(repository);
        return Task.FromResult(layout == null ? null : Find(layout, reference));
    }

    public Task<string> PutManifestAsync(string repository, string reference, byte[] bytes, string mediaType, CancellationToken ct = default)
    {
        var digest = Digest.Of(bytes).ToString();
        var isDigest = Digest.TryParse(reference, out _);
        if (isDigest && reference != digest)
            throw new ArgumentException($"manifest bytes hash to {digest}, not {reference}", nameof(reference));
        if (!isDigest && !ImageReference.IsValidTag(reference))
            throw new HardenException($"{Name}/{repository}: '{reference}' is not a valid tag");
        var layout = Layout(repository);
        var descriptor = layout.WriteBlob(bytes, mediaType);
        if (!isDigest) layout.Tag(reference, descriptor);
        return Task.FromResult(digest);
    }

    public Task<IReadOnlyList<string>> ListTagsAsync(string repository, CancellationToken ct = default)
    {
        var layout = Existing(repository);
        IReadOnlyList<string> tags = layout == null
            ? []
            : layout.ReadIndex().Manifests
                .Select(d => d.Annotations?.GetValueOrDefault(Annotations.RefName))
                .OfType<string>().Distinct().Order(StringComparer.Ordinal).ToList();
        return Task.FromResult(tags);
    }

    /// <summary>A layout keeps no referrers index; null sends callers to the sha256-&lt;hex&gt; tag, as for registry 2.8.</summary>
    public Task<ImageIndex?> GetReferrersAsync(string repository, string digest, string? artifactType = null, CancellationToken ct = default) =>
        Task.FromResult<ImageIndex?>(null);

    private static Descriptor? Find(OciLayout layout, string reference)
    {
        if (!Digest.TryParse(reference, out _)) return layout.Resolve(reference);
        if (!layout.HasBlob(reference)) return null;
        var tagged = layout.ReadIndex().Manifests.FirstOrDefault(d => d.Digest == reference);
        if (tagged != null) return tagged with { Annotations = null };
        var bytes = layout.ReadBlob(reference);
        return new Descriptor { MediaType = MediaTypeOf(bytes, MediaTypes.ImageManifest), Digest = reference, Size = bytes.Length };
    }

    private static string MediaTypeOf(byte[] bytes, string fallback)
    {
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            return doc.RootElement.TryGetProperty("mediaType", out var mt) && mt.GetString() is { } s ? s : fallback;
        }
        catch (JsonException)
        {
            return fallback;
        }
    }

    private OciLayout Layout(string repository) =>
        _layouts.GetOrAdd(repository, r => OciLayout.OpenOrCreate(RepositoryPath(r)));

    private OciLayout? Existing(string repository)
    {
        if (_layouts.TryGetValue(repository, out var l)) return l;
        var path = RepositoryPath(repository);
        return File.Exists(Path.Combine(path, "index.json")) ? Layout(repository) : null;
    }
}
