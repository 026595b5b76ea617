using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Contracts;

namespace HardenImage.FanOut;

/// <summary>What <see cref="ArtifactsMerger"/> merged: the records written and how much was copied.</summary>
public sealed record MergedArtifacts(string OutDir, int Sources, BuildManifest Build, PushedFile? Pushed, long CopiedBytes);

/// <summary>
/// <c>harden merge</c>'s work: combines the artifacts of per-image jobs (possibly on other machines) into one
/// directory: build.json and pushed.json are unioned (an image with two different digests is a conflict, exit 2), the
/// OCI layouts' blobs are copied digest-verified and the images tagged, and per-image SBOM and scan files copied.
/// </summary>
public static class ArtifactsMerger
{
    /// <param name="jobDirectories">The jobs' artifacts directories (each with build.json and oci/).</param>
    /// <param name="outDirectory">The directory merged into; its own records take part.</param>
    public static MergedArtifacts Merge(IEnumerable<string> jobDirectories, string outDirectory, CancellationToken ct)
    {
        var outDir = Path.GetFullPath(outDirectory);
        var sources = jobDirectories.Select(Path.GetFullPath).Where(d => d != outDir).Distinct().ToList();
        var outBuild = ArtifactPaths.BuildRecord(outDir);
        var outPushed = ArtifactPaths.PushRecord(outDir);

        var builds = new List<(string Path, BuildManifest Manifest)>();
        var pushes = new List<(string Path, PushedFile File)>();
        foreach (var dir in sources.Prepend(outDir))
        {
            var b = ArtifactPaths.BuildRecord(dir);
            if (File.Exists(b)) builds.Add((b, BuildManifest.Load(b)));
            else if (dir != outDir) throw new HardenException($"{b}: missing; every merged directory needs the build.json of 'harden build'.");
            var p = ArtifactPaths.PushRecord(dir);
            if (File.Exists(p)) pushes.Add((p, PushedFile.Parse(File.ReadAllText(p), p, strict: true)!));
        }
        var mergedBuild = BuildManifest.Merge(builds);
        var mergedPushed = pushes.Count > 0 ? PushedFile.Merge(pushes) : null;

        // Blobs first, then tags, then records: a reader of build.json always finds what it names.
        var layout = OciLayout.OpenOrCreate(ArtifactPaths.Layout(outDir));
        var tags = new List<(string Tag, Descriptor Descriptor)>();
        long copied = 0;
        foreach (var dir in sources)
        {
            var from = OciLayout.Open(ArtifactPaths.Layout(dir));
            var manifest = builds.First(b => b.Path == ArtifactPaths.BuildRecord(dir)).Manifest;
            var index = from.ReadIndex();
            foreach (var image in manifest.Images)
            {
                var digests = new List<string> { image.Index };
                foreach (var a in image.Architectures)
                {
                    digests.Add(a.Manifest);
                    if (a.Config.Length > 0) digests.Add(a.Config);
                    digests.AddRange(a.Layers.Select(l => l.Digest));
                }
                foreach (var d in digests.Distinct())
                {
                    if (layout.HasBlob(d)) continue;
                    if (!from.HasBlob(d)) throw new HardenException($"{from.Root}: blob {d} of image '{image.Name}' is missing; run 'harden build' there again.");
                    using var stream = from.OpenBlob(d);
                    copied += layout.WriteBlobAsync(stream, "application/octet-stream", d, ct).GetAwaiter().GetResult().Size;
                }
                tags.AddRange(index.Manifests.Where(m => m.Digest == image.Index && m.Annotations != null
                        && m.Annotations.TryGetValue(Annotations.RefName, out var n) && (n == image.Name || n.StartsWith(image.Name + ":", StringComparison.Ordinal)))
                    .Select(m => (m.Annotations![Annotations.RefName], m)));
            }
            foreach (var sub in new[] { "sbom", "scan" })
                if (Directory.Exists(Path.Combine(dir, sub)))
                    foreach (var f in Directory.EnumerateFiles(Path.Combine(dir, sub)))
                    {
                        var target = Path.Combine(outDir, sub, Path.GetFileName(f));
                        if (!File.Exists(target)) AtomicFile.WriteAllBytes(target, File.ReadAllBytes(f));
                    }
        }
        if (tags.Count > 0) layout.TagAll(tags);
        RecordFile.Update(outBuild, _ => mergedBuild.ToJson());
        if (mergedPushed != null) RecordFile.Update(outPushed, _ => mergedPushed.ToJson());
        return new MergedArtifacts(outDir, sources.Count, mergedBuild, mergedPushed, copied);
    }
}
