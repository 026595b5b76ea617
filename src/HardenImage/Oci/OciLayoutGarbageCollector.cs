using System.Text.Json;
using HardenImage.Common;

namespace HardenImage.Oci;

/// <summary>
/// Removes blobs that nothing in index.json reaches (old builds), following indexes, manifests, configs, layers and
/// subjects. Temp files of a write in progress (".tmp-*") are left alone. Run it only when no build is writing to
/// the layout: a blob written but not yet tagged looks unreachable (threat: Denial of service — a layout that grows
/// without bound on a CI cache).
/// </summary>
public sealed class OciLayoutGarbageCollector(OciLayout layout)
{
    /// <summary>Deletes unreachable blobs; returns their digests.</summary>
    public IReadOnlyList<string> Collect(bool dryRun = false)
    {
        var reachable = Reachable();
        var removed = new List<string>();
        foreach (var path in Directory.EnumerateFiles(layout.BlobsDir))
        {
            var hex = Path.GetFileName(path);
            if (!Sha256Hex.IsValid(hex)) continue;
            var digest = Digest.Prefix + hex;
            if (reachable.Contains(digest)) continue;
            if (!dryRun) File.Delete(path);
            removed.Add(digest);
        }
        removed.Sort(StringComparer.Ordinal);
        return removed;
    }

    /// <summary>Every digest reachable from index.json.</summary>
    public HashSet<string> Reachable()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var queue = new Queue<Descriptor>(layout.ReadIndex().Manifests);
        while (queue.Count > 0)
        {
            var d = queue.Dequeue();
            if (!seen.Add(d.Digest) || !layout.HasBlob(d.Digest)) continue;
            switch (d.MediaType)
            {
                case MediaTypes.ImageIndex or MediaTypes.DockerManifestList:
                    foreach (var m in layout.ReadJson<ImageIndex>(d.Digest).Manifests) queue.Enqueue(m);
                    break;
                case MediaTypes.ImageManifest or MediaTypes.DockerManifest:
                    ImageManifest manifest;
                    // An unreadable manifest hides what it references: stop rather than delete what it may need.
                    try { manifest = layout.ReadJson<ImageManifest>(d.Digest); }
                    catch (JsonException ex) { throw new HardenException($"{layout.Root}: manifest {d.Digest} cannot be read ({ex.Message}); not collecting garbage"); }
                    queue.Enqueue(manifest.Config);
                    foreach (var l in manifest.Layers) queue.Enqueue(l);
                    if (manifest.Subject != null) queue.Enqueue(manifest.Subject);
                    break;
            }
        }
        return seen;
    }
}
