using System.Text.Json;
using HardenImage.Common;

namespace HardenImage.Contracts;

public sealed record BuiltLayer(string Digest, long Size, string DiffId, string MediaType);

// build.json is read by every later stage (sbom, scan, push, smoke, deploy) through these records. Only the names
// and digests are required, so a hand-written or older build.json with just those still reads.
public sealed record BuiltArchitecture
{
    public required string Architecture { get; init; }
    /// <summary>The OCI spelling pushed.json also uses: linux/amd64, linux/arm64/v8.</summary>
    public string? Platform { get; init; }
    public required string Manifest { get; init; }
    public long ManifestSize { get; init; }
    public string Config { get; init; } = "";
    public List<BuiltLayer> Layers { get; init; } = new();
    /// <summary>Sum of layer, config and manifest sizes: what a pull transfers.</summary>
    public long CompressedSize { get; init; }
    public int Packages { get; init; }
    /// <summary>
    /// Fan-out only: the inputs digest the job built or found this manifest for (FanOut/InputsDigest). `harden sign`
    /// binds it into the manifest's signature, so a release-signed manifest is a cache hit only for these inputs.
    /// </summary>
    public string? Inputs { get; init; }
}

public sealed record BuiltImage
{
    public required string Name { get; init; }
    public string? Version { get; init; }
    public string? From { get; init; }
    public required string Index { get; init; }
    public long IndexSize { get; init; }
    /// <summary>Registry tags for <c>harden push</c>: the image's version, else "latest".</summary>
    public List<string> Tags { get; init; } = new();
    public string BuildKey { get; init; } = "";
    /// <summary>The part of <see cref="BuildKey"/> that decides the layers (everything but the git revision).</summary>
    public string? LayerKey { get; init; }
    /// <summary>SOURCE_DATE_EPOCH this image was built with (its own inputs' newest suite Date unless overridden).</summary>
    public long Epoch { get; init; }
    public List<BuiltArchitecture> Architectures { get; init; } = new();
}

/// <summary>artifacts/build.json: image → index digest → per-architecture digests, sizes and layers.</summary>
public sealed record BuildManifest
{
    public int Version { get; init; } = 1;
    /// <summary>The newest of the images' own <see cref="BuiltImage.Epoch"/> (each image has its own; kept for readers of version 1).</summary>
    public long Epoch { get; init; }
    public List<BuiltImage> Images { get; init; } = new();

    public BuiltImage? Image(string name) => Images.FirstOrDefault(i => i.Name == name);

    /// <summary>Null when the file is absent; a present but unreadable record is an error naming it and the fix
    /// (treating it as absent made later stages say "run build first" about a file that is there).</summary>
    public static BuildManifest? TryLoad(string path)
    {
        if (!File.Exists(path)) return null;
        try { return BoundedJson.ReadFile<BuildManifest>(path, "build record", InputLimits.MaxRecordBytes, LockFile.JsonOptions); }
        catch (HardenException e) { throw new HardenException($"{e.Message.TrimEnd('.')}. Re-run 'harden build' to write it again.", e.ExitCode, e); }
    }

    /// <summary>For the build itself, which rewrites the record: an unreadable one is built over, said through <paramref name="warn"/>.</summary>
    public static BuildManifest? LoadOrRebuildOver(string path, Action<string> warn)
    {
        if (!File.Exists(path)) return null;
        try { return BoundedJson.ReadFile<BuildManifest>(path, "build record", InputLimits.MaxRecordBytes, LockFile.JsonOptions); }
        catch (HardenException e)
        {
            warn($"{e.Message.TrimEnd('.')}; not trusting it: rebuilding every selected image and rewriting it");
            return null;
        }
    }

    public static BuildManifest Load(string path)
    {
        if (!File.Exists(path)) throw new HardenException($"{path}: no build result. Run 'harden build' first.");
        try
        {
            return BoundedJson.ReadFile<BuildManifest>(path, "build record", InputLimits.MaxRecordBytes, LockFile.JsonOptions);
        }
        catch (JsonException e)
        {
            throw new HardenException($"{path}: not a valid build result ({e.Message}). Run 'harden build' again.");
        }
    }

    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());

    public string ToJson() => JsonSerializer.Serialize(this, LockFile.JsonOptions) + "\n";

    public static BuildManifest FromImages(IEnumerable<BuiltImage> images)
    {
        var list = images.OrderBy(b => b.Name, StringComparer.Ordinal).ToList();
        return new BuildManifest { Epoch = list.Count == 0 ? 0 : list.Max(b => b.Epoch), Images = list };
    }

    /// <summary>
    /// Replaces the entries of <paramref name="built"/> in the build.json at <paramref name="path"/> and keeps the
    /// others that <paramref name="keep"/> accepts, under the record lock (two per-image builds into one artifacts
    /// directory both land), written atomically.
    /// </summary>
    public static BuildManifest Update(string path, IReadOnlyList<BuiltImage> built, Func<string, bool> keep)
    {
        BuildManifest result = null!;
        RecordFile.Update(path, text =>
        {
            BuildManifest? current = null;
            if (text != null)
                try { current = JsonSerializer.Deserialize<BuildManifest>(text, LockFile.JsonOptions); }
                catch (JsonException) { current = null; } // a corrupt record is rebuilt from what this run built
            var all = new Dictionary<string, BuiltImage>(StringComparer.Ordinal);
            foreach (var b in current?.Images ?? []) if (keep(b.Name)) all[b.Name] = b;
            foreach (var b in built) all[b.Name] = b;
            result = FromImages(all.Values);
            return result.ToJson();
        });
        return result;
    }

    /// <summary>
    /// <c>harden merge</c>: the union of build.json files from several machines. One image built to two different
    /// index digests is a conflict (the builds disagree: different lock, inputs or tool), never silently resolved.
    /// </summary>
    public static BuildManifest Merge(IReadOnlyList<(string Path, BuildManifest Manifest)> parts)
    {
        var all = new Dictionary<string, (BuiltImage Image, string From)>(StringComparer.Ordinal);
        foreach (var (path, manifest) in parts)
            foreach (var b in manifest.Images)
            {
                if (all.TryGetValue(b.Name, out var seen) && seen.Image.Index != b.Index)
                    throw new HardenException($"image '{b.Name}' is {seen.Image.Index} in {seen.From} but {b.Index} in {path}: the builds disagree (lock, inputs or harden version); rebuild one of them.");
                all[b.Name] = (b, path);
            }
        return FromImages(all.Values.Select(v => v.Image));
    }
}
