using System.Collections.Concurrent;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Oci;

namespace HardenImage.Registry;

/// <summary>
/// Pushes images from an OCI layout (artifacts/oci: one tag per image, tag → index → per-arch manifests → config and
/// layers) into a registry, repository <c>NS/&lt;image&gt;</c>. Blobs first (HEAD and skip what is there, mount what
/// this run already pushed to a sibling repository, upload the rest, a few at a time), then each manifest once all
/// its blobs are in, the index last by digest and by tag. Nothing is tagged before everything it names exists, so a
/// push killed half-way leaves no tag pointing at a partial image, and a rerun uploads only what is missing.
/// </summary>
public sealed class ImagePusher
{
    private readonly OciLayout _source;
    private readonly IRegistry _target;
    private readonly string _namespace;
    private readonly int _parallelism;
    private readonly IRepositoryCreator? _repositoryCreator;

    /// <param name="namespace">Repository prefix ("" for none).</param>
    /// <param name="parallelism">Blobs in flight at once.</param>
    /// <param name="repositoryCreator">Creates repositories first (ECR --create-repositories); null = the registry creates on push.</param>
    public ImagePusher(OciLayout source, IRegistry target, string @namespace = "", int parallelism = 4, IRepositoryCreator? repositoryCreator = null)
    {
        _source = source;
        _target = target;
        _namespace = @namespace.Trim('/');
        _parallelism = Math.Max(1, parallelism);
        _repositoryCreator = repositoryCreator;
    }

    public string RepositoryFor(string image) => _namespace.Length == 0 ? image : _namespace + "/" + image;

    /// <summary>
    /// The images in a layout: each tag is <c>NAME</c> or <c>NAME:TAG</c> (default tag "latest"). With a build manifest,
    /// its images are checked against the layout (a stale layout fails loudly). <paramref name="only"/> picks one image.
    /// </summary>
    public static IReadOnlyList<ImageToPush> ImagesInLayout(OciLayout layout, BuildManifest? build = null, string? only = null)
    {
        var byName = new Dictionary<string, List<(string Tag, Descriptor Root)>>(StringComparer.Ordinal);
        foreach (var d in layout.ReadIndex().Manifests)
        {
            if (d.Annotations?.GetValueOrDefault(Annotations.RefName) is not { } refName) continue;
            var colon = refName.LastIndexOf(':');
            var (name, tag) = colon > 0 ? (refName[..colon], refName[(colon + 1)..]) : (refName, "latest");
            if (!byName.TryGetValue(name, out var list)) byName[name] = list = [];
            list.Add((tag, d with { Annotations = null }));
        }
        var images = new List<ImageToPush>();
        if (build != null)
        {
            foreach (var b in build.Images)
            {
                if (!byName.TryGetValue(b.Name, out var entries))
                    throw new HardenException($"build.json names image '{b.Name}' but {layout.Root} has no tag for it. Run 'harden build' again.");
                var match = entries.Where(e => e.Root.Digest == b.Index).ToList();
                if (match.Count == 0)
                    throw new HardenException($"build.json says image '{b.Name}' is {b.Index}, but {layout.Root} tags it {entries[0].Root.Digest}. The layout and build.json disagree: run 'harden build' again.");
                var tags = b.Tags is { Count: > 0 } ? b.Tags : match.Select(m => m.Tag).ToList();
                images.Add(new ImageToPush(b.Name, tags, match[0].Root));
            }
        }
        else
        {
            foreach (var (name, entries) in byName.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                foreach (var group in entries.GroupBy(e => e.Root.Digest))
                    images.Add(new ImageToPush(name, group.Select(g => g.Tag).ToList(), group.First().Root));
        }
        foreach (var i in images)
        {
            ImageReference.ValidateRepository(i.Name, "image name");
            foreach (var t in i.Tags)
                if (!ImageReference.IsValidTag(t)) throw new HardenException($"image '{i.Name}': tag '{t}' is not a valid registry tag");
        }
        if (only != null)
        {
            images = images.Where(i => i.Name == only).ToList();
            if (images.Count == 0)
                throw new HardenException($"--image {only}: no such image in {layout.Root} (it has: {string.Join(", ", byName.Keys.Order())})");
        }
        if (images.Count == 0) throw new HardenException($"{layout.Root} has no tagged images to push. Run 'harden build' first.");
        return images;
    }

    /// <summary>Pushes the images one after another (so later ones mount what earlier ones uploaded).</summary>
    public async Task<IReadOnlyList<ImagePushResult>> PushAsync(IEnumerable<ImageToPush> images, IProgress<BlobProgress>? progress = null, CancellationToken ct = default)
    {
        var pushedTo = new ConcurrentDictionary<string, string>(StringComparer.Ordinal);
        var results = new List<ImagePushResult>();
        foreach (var image in images)
            results.Add(await PushImageAsync(image, pushedTo, progress, ct).ConfigureAwait(false));
        return results;
    }

    private async Task<ImagePushResult> PushImageAsync(ImageToPush image, ConcurrentDictionary<string, string> pushedTo,
        IProgress<BlobProgress>? progress, CancellationToken ct)
    {
        var repository = RepositoryFor(image.Name);
        ImageReference.ValidateRepository(repository, image.Name);
        if (_repositoryCreator != null) await _repositoryCreator.EnsureAsync(repository).ConfigureAwait(false);

        var plan = Plan(image.Root);
        long uploaded = 0, skipped = 0, mounted = 0;
        int uploadedBlobs = 0, skippedBlobs = 0, mountedBlobs = 0;

        await Parallel.ForEachAsync(plan.Blobs, new ParallelOptions { MaxDegreeOfParallelism = _parallelism, CancellationToken = ct },
            async (blob, token) =>
            {
                var outcome = await PushBlobAsync(image.Name, repository, blob, pushedTo, progress, token).ConfigureAwait(false);
                switch (outcome)
                {
                    case BlobTransfer.Skipped: Interlocked.Add(ref skipped, blob.Size); Interlocked.Increment(ref skippedBlobs); break;
                    case BlobTransfer.Mounted: Interlocked.Add(ref mounted, blob.Size); Interlocked.Increment(ref mountedBlobs); break;
                    default: Interlocked.Add(ref uploaded, blob.Size); Interlocked.Increment(ref uploadedBlobs); break;
                }
            }).ConfigureAwait(false);

        // Every blob is in: manifests may now name them.
        foreach (var m in plan.Manifests)
            await PutIfMissingAsync(repository, m.Digest, m, ct).ConfigureAwait(false);
        if (plan.Root.Digest != plan.Manifests.LastOrDefault()?.Digest)
            await PutIfMissingAsync(repository, plan.Root.Digest, plan.Root, ct).ConfigureAwait(false);
        foreach (var tag in image.Tags)
            await PutIfMissingAsync(repository, tag, plan.Root, ct).ConfigureAwait(false);

        return new ImagePushResult(image.Name, repository, plan.Root.Digest, image.Tags, plan.ArchDigests,
            uploaded, skipped, mounted, uploadedBlobs, skippedBlobs, mountedBlobs);
    }

    private async Task<BlobTransfer> PushBlobAsync(string image, string repository, Descriptor blob,
        ConcurrentDictionary<string, string> pushedTo, IProgress<BlobProgress>? progress, CancellationToken ct)
    {
        progress?.Report(new BlobProgress(image, repository, blob.Digest, blob.Size, 0, BlobTransfer.Checking));
        if (await _target.BlobExistsAsync(repository, blob.Digest, ct).ConfigureAwait(false))
        {
            pushedTo.TryAdd(blob.Digest, repository);
            progress?.Report(new BlobProgress(image, repository, blob.Digest, blob.Size, blob.Size, BlobTransfer.Skipped));
            return BlobTransfer.Skipped;
        }
        if (pushedTo.TryGetValue(blob.Digest, out var from) && from != repository
            && await _target.MountBlobAsync(repository, blob.Digest, from, ct).ConfigureAwait(false))
        {
            progress?.Report(new BlobProgress(image, repository, blob.Digest, blob.Size, blob.Size, BlobTransfer.Mounted));
            return BlobTransfer.Mounted;
        }
        var perBlob = progress == null ? null
            : new InlineProgress<long>(n => progress.Report(new BlobProgress(image, repository, blob.Digest, blob.Size, n, BlobTransfer.Uploading)));
        await using (var content = _source.OpenBlob(blob.Digest))
            await _target.PushBlobAsync(repository, blob, content, perBlob, ct).ConfigureAwait(false);
        pushedTo[blob.Digest] = repository;
        progress?.Report(new BlobProgress(image, repository, blob.Digest, blob.Size, blob.Size, BlobTransfer.Uploaded));
        return BlobTransfer.Uploaded;
    }

    private async Task PutIfMissingAsync(string repository, string reference, Descriptor manifest, CancellationToken ct)
    {
        var existing = await _target.ResolveManifestAsync(repository, reference, ct).ConfigureAwait(false);
        if (existing?.Digest == manifest.Digest) return;
        var bytes = _source.ReadBlob(manifest.Digest);
        await _target.PutManifestAsync(repository, reference, bytes, manifest.MediaType, ct).ConfigureAwait(false);
    }

    private sealed record PushPlan(Descriptor Root, List<Descriptor> Manifests, List<Descriptor> Blobs, IReadOnlyDictionary<string, string> ArchDigests);

    /// <summary>Walks root → manifests → blobs in the source layout (each document verified as it is read).</summary>
    private PushPlan Plan(Descriptor root)
    {
        var manifests = new List<Descriptor>();
        var blobs = new Dictionary<string, Descriptor>(StringComparer.Ordinal);
        var arch = new SortedDictionary<string, string>(StringComparer.Ordinal);

        void AddManifest(Descriptor d)
        {
            var m = _source.ReadJson<ImageManifest>(d.Digest);
            foreach (var b in m.Layers.Prepend(m.Config))
            {
                if (!_source.HasBlob(b.Digest))
                    throw new HardenException($"{_source.Root}: blob {b.Digest} named by manifest {d.Digest} is missing. Run 'harden build' again.");
                blobs.TryAdd(b.Digest, b);
            }
            if (manifests.All(x => x.Digest != d.Digest)) manifests.Add(d);
            // pushed.json spells platforms as build.json does: linux/amd64, linux/arm64/v8 (Oci/PlatformName).
            var key = d.Platform is { } p ? PlatformName.Format(p.Os, p.Architecture, p.Variant) : null;
            if (key == null && m.Config.MediaType == MediaTypes.ImageConfig)
                key = PlatformName.Format("linux", _source.ReadJson<ImageConfig>(m.Config.Digest).Architecture, null);
            if (key != null) arch.TryAdd(key, d.Digest);
        }

        void Walk(Descriptor d, int depth)
        {
            if (depth > 4) throw new HardenException($"{_source.Root}: index {d.Digest} nests too deeply");
            if (d.MediaType is MediaTypes.ImageIndex or MediaTypes.DockerManifestList)
            {
                var index = _source.ReadJson<ImageIndex>(d.Digest);
                foreach (var child in index.Manifests) Walk(child, depth + 1);
                if (depth > 0) manifests.Add(d);
            }
            else
            {
                AddManifest(d);
            }
        }

        Walk(root, 0);
        // Big blobs first: the long uploads start early and the small ones fill in around them.
        var ordered = blobs.Values.OrderByDescending(b => b.Size).ToList();
        return new PushPlan(root, manifests, ordered, arch);
    }

    /// <summary>IProgress that calls back on the reporting thread (Progress&lt;T&gt; would post to a context).</summary>
    private sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
