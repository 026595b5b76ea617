using System.IO.Compression;
using System.Text.Json;
using HardenImage.Common;
using HardenImage.Common.Streams;

namespace HardenImage.Oci;

/// <summary>One platform's manifest as read back from a layout, with its parsed config.</summary>
public sealed record ResolvedManifest(Descriptor Descriptor, ImageManifest Manifest, ImageConfig Config)
{
    public Platform Platform => Descriptor.Platform ?? new Platform { Architecture = Config.Architecture, Os = Config.Os, Variant = Config.Variant };
}

/// <summary>
/// Reads images back from an <see cref="OciLayout"/>: tag → index → per-platform manifest → config and layers,
/// checking every digest on the way (threat: Tampering — later stages sign and push what this returns).
/// </summary>
public sealed class OciLayoutReader(OciLayout layout)
{
    public OciLayout Layout { get; } = layout;

    /// <summary>The descriptor index.json tags <paramref name="tag"/> with, or a clear error listing the tags there are.</summary>
    public Descriptor ResolveTag(string tag) =>
        Layout.Resolve(tag) ?? throw new HardenException(
            $"{Layout.Root}: no image tagged '{tag}' in index.json (tags: {string.Join(", ", Tags())}). Run 'harden build' or check the name.");

    public IReadOnlyList<string> Tags() =>
        Layout.ReadIndex().Manifests
            .Select(d => d.Annotations != null && d.Annotations.TryGetValue(Annotations.RefName, out var n) ? n : null)
            .OfType<string>().ToList();

    /// <summary>Every platform manifest behind <paramref name="tag"/> (one when the tag names a manifest directly).</summary>
    public IReadOnlyList<ResolvedManifest> ResolveAll(string tag)
    {
        var top = ResolveTag(tag);
        return top.MediaType switch
        {
            MediaTypes.ImageIndex or MediaTypes.DockerManifestList =>
                Layout.ReadJson<ImageIndex>(top.Digest).Manifests
                    .Where(d => d.MediaType is MediaTypes.ImageManifest or MediaTypes.DockerManifest)
                    .Select(ReadManifest).ToList(),
            MediaTypes.ImageManifest or MediaTypes.DockerManifest => [ReadManifest(top)],
            _ => throw new HardenException($"{Layout.Root}: tag '{tag}' names a {top.MediaType}, not an image index or manifest"),
        };
    }

    /// <summary>The manifest for one platform (os/architecture[/variant]) behind <paramref name="tag"/>.</summary>
    public ResolvedManifest Resolve(string tag, Platform platform)
    {
        var all = ResolveAll(tag);
        return all.FirstOrDefault(m => m.Platform.Architecture == platform.Architecture && m.Platform.Os == platform.Os
                   && (platform.Variant == null || m.Platform.Variant == platform.Variant))
               ?? throw new HardenException($"{Layout.Root}: '{tag}' has no {ImageWriter.PlatformKey(platform)} manifest "
                                            + $"(it has {string.Join(", ", all.Select(m => ImageWriter.PlatformKey(m.Platform)))})");
    }

    public ResolvedManifest ReadManifest(Descriptor descriptor)
    {
        var manifest = Layout.ReadJson<ImageManifest>(descriptor.Digest);
        var config = Layout.ReadJson<ImageConfig>(manifest.Config.Digest);
        return new ResolvedManifest(descriptor, manifest, config);
    }

    /// <summary>
    /// Checks everything reachable from <paramref name="tag"/>: blobs present, sizes and digests right, JSON parses,
    /// config diff_ids match the layer count, and with <paramref name="checkDiffIds"/> each layer decompresses to its
    /// diff_id. Returns the problems found (empty = valid).
    /// </summary>
    public IReadOnlyList<string> Verify(string tag, bool checkDiffIds = false)
    {
        var problems = new List<string>();
        var top = Layout.Resolve(tag);
        if (top == null)
        {
            problems.Add($"tag '{tag}' is not in index.json");
            return problems;
        }
        VerifyNode(top, problems, checkDiffIds, new HashSet<string>(StringComparer.Ordinal));
        return problems;
    }

    private void VerifyNode(Descriptor d, List<string> problems, bool checkDiffIds, HashSet<string> seen)
    {
        if (!seen.Add(d.Digest)) return;
        if (!CheckBlob(d, problems)) return;
        try
        {
            switch (d.MediaType)
            {
                case MediaTypes.ImageIndex or MediaTypes.DockerManifestList:
                    foreach (var m in Layout.ReadJson<ImageIndex>(d.Digest).Manifests) VerifyNode(m, problems, checkDiffIds, seen);
                    break;
                case MediaTypes.ImageManifest or MediaTypes.DockerManifest:
                    var manifest = Layout.ReadJson<ImageManifest>(d.Digest);
                    if (!CheckBlob(manifest.Config, problems)) return;
                    foreach (var l in manifest.Layers) CheckBlob(l, problems);
                    if (manifest.Config.MediaType != MediaTypes.ImageConfig) return; // artifacts (signatures) have other configs
                    var config = Layout.ReadJson<ImageConfig>(manifest.Config.Digest);
                    if (config.RootFs.DiffIds.Count != manifest.Layers.Count)
                        problems.Add($"manifest {d.Digest}: config has {config.RootFs.DiffIds.Count} diff_ids for {manifest.Layers.Count} layers");
                    else if (checkDiffIds)
                        for (var i = 0; i < manifest.Layers.Count; i++)
                        {
                            if (!Layout.HasBlob(manifest.Layers[i].Digest)) continue;
                            var (diffId, _) = MeasureUncompressed(manifest.Layers[i]);
                            if (diffId != config.RootFs.DiffIds[i])
                                problems.Add($"layer {manifest.Layers[i].Digest}: uncompressed digest {diffId} is not the config's diff_id {config.RootFs.DiffIds[i]}");
                        }
                    if (d.Platform is { } p && (p.Architecture != config.Architecture || p.Os != config.Os))
                        problems.Add($"manifest {d.Digest}: index says {ImageWriter.PlatformKey(p)}, config says {config.Os}/{config.Architecture}");
                    break;
            }
        }
        catch (Exception ex) when (ex is JsonException or FormatException or HardenException or InvalidDataException)
        {
            problems.Add($"{d.MediaType} {d.Digest}: {ex.Message}");
        }
    }

    private bool CheckBlob(Descriptor d, List<string> problems)
    {
        if (!Digest.TryParse(d.Digest, out _))
        {
            problems.Add($"descriptor digest '{d.Digest}' is not sha256:<hex>");
            return false;
        }
        var path = Layout.BlobPath(d.Digest);
        if (!File.Exists(path))
        {
            problems.Add($"blob {d.Digest} ({d.MediaType}) is missing");
            return false;
        }
        var size = new FileInfo(path).Length;
        if (size != d.Size)
        {
            problems.Add($"blob {d.Digest} is {size} bytes, descriptor says {d.Size}");
            return false;
        }
        if (!Layout.VerifyBlob(d.Digest))
        {
            problems.Add($"blob {d.Digest} does not match its digest (tampered or corrupt)");
            return false;
        }
        return true;
    }

    /// <summary>Opens a layer blob decompressed (gzip, zstd or plain tar by media type).</summary>
    public Stream OpenUncompressed(Descriptor layer)
    {
        var raw = Layout.OpenBlob(layer.Digest);
        var tar = LayerTar.OpenUncompressed(raw, layer.MediaType, leaveOpen: false);
        if (tar != null) return tar;
        raw.Dispose();
        throw new HardenException($"layer {layer.Digest}: unsupported media type {layer.MediaType}");
    }

    /// <summary>Decompresses a layer once to learn its diff_id and uncompressed size.</summary>
    public (string DiffId, long Size) MeasureUncompressed(Descriptor layer)
    {
        try
        {
            using var hashing = new HashingReadStream(OpenUncompressed(layer));
            hashing.CopyTo(Stream.Null, 1 << 16);
            return (hashing.FinishDigest(), hashing.BytesRead);
        }
        catch (Exception ex) when (ex is InvalidDataException or ZstdSharp.ZstdException)
        {
            throw new HardenException($"{Layout.Root}: layer {layer.Digest} does not decompress ({ex.Message}); the blob is corrupt. Rebuild with 'harden build'.", inner: ex);
        }
    }
}
