using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Contracts;
using HardenImage.Lock;

namespace HardenImage.FanOut;

/// <summary>The one image × platform a fan-out job builds, with its inputs digest and where that choice came from.</summary>
/// <param name="Where">"PLAN: entry N" or "--image", for messages.</param>
public sealed record FanOutJobTarget(ImageDefinition Image, string Architecture, string Inputs, string Where, PlanEntry? Entry);

/// <summary>
/// <c>harden job</c>'s work around the build: which image × platform (a plan entry, checked against this checkout's
/// inputs, or --image/--platform), the cache lookup, the record of a verified hit, and after a build the push of the
/// manifest under <c>inputs-&lt;hex&gt;</c> with the comparison against an untrusted cache entry.
/// </summary>
public static class FanOutJob
{
    public static FanOutJobTarget Resolve(ImageSet set, LockFile lockFile, long? sourceDateEpoch, string? planPath, int? entryIndex, string? image, string? platform)
    {
        string name, arch, where;
        PlanEntry? entry = null;
        if (planPath != null)
        {
            var index = entryIndex ?? (int.TryParse(Environment.GetEnvironmentVariable("JOB_COMPLETION_INDEX"), out var n) ? n
                : throw new HardenException("--plan: give --entry N or set JOB_COMPLETION_INDEX (a Kubernetes Indexed Job does)."));
            entry = BuildPlan.Load(planPath).Entry(index, planPath);
            (name, arch, where) = (entry.Image, entry.Architecture, $"{planPath}: entry {index}");
        }
        else (name, arch, where) = (image!, PlatformName.ParseArchitecture(platform!), "--image");
        var definition = set.Images.TryGetValue(name, out var d) ? d
            : throw new HardenException($"{where}: image '{name}' is not in {set.Directory} (it has: {string.Join(", ", set.Images.Keys.Order(StringComparer.Ordinal))}); run 'harden plan' again on this checkout.");
        if (!ImageSet.Effective(set, definition).Architectures.Contains(arch))
            throw new HardenException($"{where}: '{name}' is built for {string.Join(", ", ImageSet.Effective(set, definition).Architectures.Select(PlatformName.ForArchitecture))}, not {PlatformName.ForArchitecture(arch)}.");
        var inputs = new InputsDigest(set, lockFile, sourceDateEpoch).Of(definition, arch);
        if (entry != null && entry.Inputs != inputs)
            throw new HardenException($"{where}: the plan says inputs {entry.Inputs[..12]}… for '{name}' ({entry.Platform}), this checkout computes {inputs[..12]}…: the plan is from another commit or lock; run 'harden plan' again.");
        return new FanOutJobTarget(definition, arch, inputs, where, entry);
    }

    public static async Task<CacheLookupResult> LookupAsync(FanOutRegistry registry, FanOutJobTarget job, CancellationToken ct) =>
        registry.Cache == null
            ? new CacheLookupResult(CacheState.NotConsulted, "cache not consulted (no --key): building")
            : await registry.Cache.LookupAsync(registry.Target.RepositoryFor(job.Image.Name), job.Inputs, job.Architecture, ct).ConfigureAwait(false);

    /// <summary>The record of a verified cache hit, saved into <paramref name="outDir"/>/fanout/.</summary>
    public static PlatformRecord SaveHit(FanOutRegistry registry, FanOutJobTarget job, CacheLookupResult hit, string outDir)
    {
        var record = new PlatformRecord
        {
            Image = job.Image.Name, Platform = PlatformName.ForArchitecture(job.Architecture), Inputs = job.Inputs, Registry = registry.Target.ToString(),
            Repository = registry.Target.RepositoryFor(job.Image.Name), Manifest = FromRegistry(job.Architecture, hit), Cache = hit.State, CacheReason = hit.Reason,
        };
        record.Save(outDir);
        return record;
    }

    /// <summary>
    /// Pushes the manifest this job built (its blobs from <paramref name="outDir"/>/oci) under <c>inputs-&lt;hex&gt;</c>
    /// and saves its record. Returns the record and, when an untrusted cache entry named another manifest for the same
    /// inputs, the line that fails the job (not deterministic, or forged).
    /// </summary>
    public static async Task<(PlatformRecord Record, string? Mismatch)> PushBuiltAsync(FanOutRegistry registry, FanOutJobTarget job, CacheLookupResult lookup,
        BuiltArchitecture built, string outDir, CancellationToken ct)
    {
        var name = job.Image.Name;
        var repository = registry.Target.RepositoryFor(name);
        var layout = OciLayout.Open(ArtifactPaths.Layout(outDir));
        var pusher = new ImagePusher(layout, registry.Registry, registry.Target.Namespace, 4);
        var pushed = (await pusher.PushAsync([new ImageToPush(name, [InputsDigest.CacheTag(job.Inputs)],
            new Descriptor { MediaType = MediaTypes.ImageManifest, Digest = built.Manifest, Size = built.ManifestSize })], null, ct).ConfigureAwait(false))[0];
        var mismatch = lookup.Manifest != null && lookup.Manifest.Digest != built.Manifest;
        var reason = lookup.Manifest == null ? lookup.Reason
            : mismatch ? $"{lookup.Reason}; the rebuild is {built.Manifest}, NOT the cached {lookup.Manifest.Digest}: the tag now names the rebuild"
            : $"{lookup.Reason}; the rebuild is the same manifest";
        var record = new PlatformRecord
        {
            Image = name, Platform = PlatformName.ForArchitecture(job.Architecture), Inputs = job.Inputs, Registry = registry.Target.ToString(), Repository = repository,
            Manifest = built, Cache = lookup.State, CacheReason = reason, UploadedBlobs = pushed.UploadedBlobs, UploadedBytes = pushed.UploadedBytes,
        };
        record.Save(outDir);
        return (record, mismatch
            ? $"same inputs, different manifests: {registry.Registry.Name}/{repository}:{InputsDigest.CacheTag(job.Inputs)} was {lookup.Manifest!.Digest} ({lookup.State}), " +
              $"this build of '{name}' ({PlatformName.ForArchitecture(job.Architecture)}) is {built.Manifest}. Either the build is not deterministic or the cache entry was forged: compare them (harden export) before signing."
            : null);
    }

    /// <summary>build.json's description of a verified cached manifest (layers with their diff ids from its config).</summary>
    private static BuiltArchitecture FromRegistry(string arch, CacheLookupResult hit) => new()
    {
        Architecture = arch,
        Platform = PlatformName.ForArchitecture(arch),
        Manifest = hit.Manifest!.Digest,
        ManifestSize = hit.Manifest.Size,
        Config = hit.Document!.Config.Digest,
        Layers = hit.Document.Layers.Select((l, i) => new BuiltLayer(l.Digest, l.Size, hit.Config!.RootFs.DiffIds[i], l.MediaType)).ToList(),
        CompressedSize = hit.Document.Layers.Sum(l => l.Size) + hit.Document.Config.Size + hit.Manifest.Size,
    };
}
