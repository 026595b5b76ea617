using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Lock;
using HardenImage.Oci;
using HardenImage.Registry;

namespace HardenImage.FanOut;

/// <summary>What the fan-in assembled: build.json's entries and how many blobs came from where.</summary>
public sealed record FanInOutcome(BuildManifest Manifest, int BlobsFromJobs, int BlobsFromRegistry, long BytesFromRegistry);

/// <summary>
/// The fan-in: checks that every plan entry left exactly one agreeing record, gathers each manifest's blobs into
/// one layout (from the jobs' layouts when they built, else read back from the registry, every blob verified
/// against its digest), writes each image's multi-arch index with <see cref="ImageWriter.WriteIndex"/> — the code
/// a one-machine build uses, so the index is the same bytes — and records the images in build.json. Push, sign,
/// verify and deploy then run over it as after one build.
/// </summary>
public sealed class FanInAssembler
{
    private readonly ImageSet _set;
    private readonly ImageBuilder _builder;
    private readonly IRegistry? _registry;

    /// <param name="builder">Gives each image's epoch and index annotations exactly as a build would.</param>
    /// <param name="registry">Where blobs no job directory holds are read from (null: every blob must be in a job's layout).</param>
    public FanInAssembler(ImageSet set, ImageBuilder builder, IRegistry? registry)
    {
        _set = set; _builder = builder; _registry = registry;
    }

    /// <summary>
    /// Matches the records of <paramref name="jobDirs"/> to <paramref name="plan"/>: a missing entry, a record from
    /// another plan, an image the plan does not have, or two records with different manifests for the same inputs
    /// (a non-deterministic build — or a forged record) is an error naming both, never resolved silently.
    /// </summary>
    public static IReadOnlyDictionary<int, (string Dir, PlatformRecord Record)> Match(BuildPlan plan, IReadOnlyList<string> jobDirs)
    {
        var byKey = new Dictionary<(string, string), (string Dir, string Path, PlatformRecord Record)>();
        foreach (var dir in jobDirs)
            foreach (var (path, r) in PlatformRecord.LoadAll(dir))
            {
                var entry = plan.Jobs.FirstOrDefault(e => e.Image == r.Image && e.Architecture == r.Manifest.Architecture)
                    ?? throw new HardenException($"{path}: image '{r.Image}' ({r.Platform}) is not in the plan (it has: {string.Join(", ", plan.Jobs.Select(e => $"{e.Image} {e.Platform}").Distinct())}); pass only the artifacts of this plan's jobs.");
                if (r.Inputs != entry.Inputs)
                    throw new HardenException($"{path}: '{r.Image}' ({r.Platform}) was built from inputs {r.Inputs[..12]}…, the plan entry {entry.Index} expects {entry.Inputs[..12]}…: a record of another plan or commit; re-run that job.");
                if (byKey.TryGetValue((r.Image, r.Manifest.Architecture), out var seen))
                {
                    if (seen.Record.Manifest.Manifest != r.Manifest.Manifest)
                        throw new HardenException($"non-deterministic build: '{r.Image}' ({r.Platform}) with inputs {r.Inputs} is {seen.Record.Manifest.Manifest} in {seen.Path} " +
                            $"but {r.Manifest.Manifest} in {path}. Same inputs must give the same manifest: compare the two jobs' layers (harden export) and report it.");
                    continue;
                }
                byKey[(r.Image, r.Manifest.Architecture)] = (dir, path, r);
            }
        var result = new Dictionary<int, (string, PlatformRecord)>();
        var missing = plan.Jobs.Where(e => !byKey.ContainsKey((e.Image, e.Architecture))).ToList();
        if (missing.Count > 0)
            throw new HardenException($"fan-in: no record for {string.Join(", ", missing.Select(e => $"plan entry {e.Index} ({e.Image} {e.Platform})"))} in {string.Join(", ", jobDirs)}: " +
                "that job failed or its artifacts were not passed to the fan-in; re-run it (its index would lack the platform).");
        foreach (var e in plan.Jobs)
        {
            var (dir, _, record) = byKey[(e.Image, e.Architecture)];
            result[e.Index] = (dir, record);
        }
        return result;
    }

    /// <param name="withLayers">
    /// False: gather manifests and configs only (what indexes, push of the indexes, sign, verify and deploy need).
    /// The layers stay in the registry instead of every one being read back — the fan-in's registry traffic is then
    /// kilobytes per image, not the whole set; <c>sbom</c>, <c>scan</c>, <c>smoke</c> and <c>export</c> need them.
    /// </param>
    public async Task<FanInOutcome> AssembleAsync(BuildPlan plan, IReadOnlyList<string> jobDirs, string artifactsDir, bool withLayers = true, CancellationToken ct = default)
    {
        var records = Match(plan, jobDirs);
        var unknown = plan.FanIn.Images.Keys.Concat(plan.Jobs.Select(e => e.Image)).FirstOrDefault(n => !_set.Images.ContainsKey(n));
        if (unknown != null)
            throw new HardenException($"plan: image '{unknown}' is not in {_set.Directory} (it has: {string.Join(", ", _set.Images.Keys.Order(StringComparer.Ordinal))}); the plan is from another image set.");
        var layout = OciLayout.OpenOrCreate(ArtifactPaths.Layout(artifactsDir));
        var jobLayouts = jobDirs.Where(d => File.Exists(Path.Combine(ArtifactPaths.Layout(d), "index.json")))
            .Select(d => OciLayout.Open(ArtifactPaths.Layout(d))).ToList();
        int fromJobs = 0, fromRegistry = 0;
        long registryBytes = 0;

        async Task Gather(PlatformRecord r, string digest, bool isManifest)
        {
            if (layout.HasBlob(digest))
            {
                if (layout.VerifyBlob(digest)) return;
                File.Delete(layout.BlobPath(digest)); // damaged: fetched again below
            }
            foreach (var from in jobLayouts.Where(l => l.HasBlob(digest)))
            {
                await using var s = from.OpenBlob(digest);
                await layout.WriteBlobAsync(s, "application/octet-stream", digest, ct); // refuses bytes that do not hash to digest
                fromJobs++;
                return;
            }
            if (_registry == null)
                throw new HardenException($"fan-in: blob {digest} of '{r.Image}' ({r.Platform}) is in no job directory; pass --registry to read it back from {r.Registry}.");
            if (isManifest)
            {
                var m = await _registry.GetManifestAsync(r.Repository, digest, ct) // verified against the digest by the client
                    ?? throw new HardenException($"{r.Registry}/{r.Repository}@{digest}: the manifest of '{r.Image}' ({r.Platform}) is gone from the registry; re-run its job.");
                layout.WriteBlob(m.Bytes, m.MediaType);
                registryBytes += m.Bytes.Length;
            }
            else
            {
                await using var s = await _registry.GetBlobAsync(r.Repository, digest, ct);
                registryBytes += (await layout.WriteBlobAsync(s, "application/octet-stream", digest, ct)).Size;
            }
            fromRegistry++;
        }

        foreach (var (_, (_, r)) in records.OrderBy(kv => kv.Key))
        {
            await Gather(r, r.Manifest.Manifest, isManifest: true);
            CheckAgainstManifest(layout, r);
            await Gather(r, r.Manifest.Config, isManifest: false);
            if (withLayers)
                foreach (var l in r.Manifest.Layers) await Gather(r, l.Digest, isManifest: false);
        }

        var built = new List<BuiltImage>();
        var written = new List<(string Tag, Descriptor Descriptor)>();
        foreach (var (name, _) in plan.FanIn.Images)
        {
            var image = _set.Images.TryGetValue(name, out var d) ? d
                : throw new HardenException($"plan: image '{name}' is not in {_set.Directory} (it has: {string.Join(", ", _set.Images.Keys.Order(StringComparer.Ordinal))}); the plan is from another image set.");
            var archs = records.Values.Select(v => v.Record).Where(r => r.Image == name).OrderBy(r => r.Manifest.Architecture, StringComparer.Ordinal).ToList();
            var epoch = _builder.EpochOf(image);
            var descriptors = archs.Select(r => new Descriptor
            {
                MediaType = MediaTypes.ImageManifest, Digest = r.Manifest.Manifest, Size = r.Manifest.ManifestSize,
                Platform = new Platform { Architecture = r.Manifest.Architecture, Variant = r.Manifest.Architecture == "arm64" ? "v8" : null },
            });
            var index = new ImageWriter(layout, epoch).WriteIndex(image.Name, image.Version, _builder.IndexAnnotations(image), descriptors);
            written.AddRange((string.IsNullOrEmpty(image.Version) ? [image.Name] : new[] { image.Name, $"{image.Name}:{image.Version}" }).Select(t => (t, index)));
            built.Add(new BuiltImage
            {
                Name = image.Name, Version = image.Version, From = image.From, Index = index.Digest, IndexSize = index.Size,
                Tags = image.Version != null ? [image.Version] : ["latest"], Epoch = epoch,
                Architectures = archs.Select(r => r.Manifest with { Inputs = r.Inputs }).ToList(),
            });
        }
        layout.TagAll(written);
        Written = built;
        var manifest = BuildManifest.Update(ArtifactPaths.BuildRecord(artifactsDir), built, n => _set.Images.ContainsKey(n));
        return new FanInOutcome(manifest, fromJobs, fromRegistry, registryBytes);
    }

    /// <summary>
    /// A record is a job's word; the manifest (fetched by digest, so verified) is the fact. Its size, config and
    /// layers go into the index and build.json, so a record that disagrees — edited, or from a confused job — is
    /// refused instead of producing an index that names a wrong size or a build.json describing other layers.
    /// </summary>
    private static void CheckAgainstManifest(OciLayout layout, PlatformRecord r)
    {
        var bytes = layout.ReadBlob(r.Manifest.Manifest);
        var m = OciJson.Deserialize<ImageManifest>(bytes, r.Manifest.Manifest);
        var problem =
            bytes.Length != r.Manifest.ManifestSize ? $"its size is {bytes.Length}, the record says {r.Manifest.ManifestSize}"
            : m.MediaType != MediaTypes.ImageManifest ? $"it is a {m.MediaType}, not an image manifest"
            : m.Config.Digest != r.Manifest.Config ? $"its config is {m.Config.Digest}, the record says {r.Manifest.Config}"
            : !m.Layers.Select(l => (l.Digest, l.Size)).SequenceEqual(r.Manifest.Layers.Select(l => (l.Digest, l.Size)))
                ? $"its layers are {string.Join(", ", m.Layers.Select(l => l.Digest[..19]))}, the record lists {string.Join(", ", r.Manifest.Layers.Select(l => l.Digest[..19]))}"
            : null;
        if (problem != null)
            throw new HardenException($"fan-in: the record of '{r.Image}' ({r.Platform}) disagrees with its manifest {r.Manifest.Manifest}: {problem}. The record was edited or the job is confused; re-run that job.");
    }

    /// <summary>The images the last <see cref="AssembleAsync"/> wrote.</summary>
    public IReadOnlyList<BuiltImage> Written { get; private set; } = [];

    /// <summary>
    /// <c>harden fanin --push</c>: puts each assembled index (and its tags) into the registry next to the platform
    /// manifests the jobs pushed — after checking each of them is there — and returns what pushed.json records.
    /// No blob moves: the jobs uploaded them all.
    /// </summary>
    public async Task<IReadOnlyList<ImagePushResult>> PushIndexesAsync(string artifactsDir, RegistryTarget target, CancellationToken ct = default)
    {
        if (_registry == null) throw new HardenException("fanin --push: give --registry.");
        var layout = OciLayout.Open(ArtifactPaths.Layout(artifactsDir));
        var results = new List<ImagePushResult>();
        foreach (var b in Written)
        {
            var repository = target.RepositoryFor(b.Name);
            foreach (var a in b.Architectures)
                if (await _registry.ResolveManifestAsync(repository, a.Manifest, ct) is not { } found || found.Digest != a.Manifest)
                    throw new HardenException($"{target}/{repository}@{a.Manifest}: the {a.Platform} manifest of '{b.Name}' is not in the registry; re-run its job before releasing the index.");
            var bytes = layout.ReadBlob(b.Index);
            await _registry.PutManifestAsync(repository, b.Index, bytes, MediaTypes.ImageIndex, ct);
            foreach (var tag in b.Tags) await _registry.PutManifestAsync(repository, tag, bytes, MediaTypes.ImageIndex, ct);
            results.Add(new ImagePushResult(b.Name, repository, b.Index, b.Tags,
                b.Architectures.ToDictionary(a => a.Platform ?? PlatformName.ForArchitecture(a.Architecture), a => a.Manifest), 0, 0, 0, 0, 0, 0));
        }
        return results;
    }
}
