using System.Text.Json;
using HardenImage.Common;
using HardenImage.Deb;
using HardenImage.Oci;

namespace HardenImage.Model;

/// <summary>One file a model manifest promises: its path, size and SHA-256, and the layer that carries it.</summary>
public sealed record ManifestFile(int Layer, string Path, long Size, string Sha256, Descriptor Descriptor);

/// <summary>
/// Reads a manifest as a ModelPack artifact of ours and refuses anything else before a byte of it is trusted:
/// another artifactType or config media type (an image, a signature, some other tool's artifact), a layer media
/// type we do not extract, a layer without its file path, size and SHA-256, a path that is absolute, has '..' or
/// is listed twice (threat T, E: a hostile artifact naming where to write).
/// </summary>
public static class ModelArtifact
{
    public static IReadOnlyList<ManifestFile> Files(ImageManifest manifest, string source)
    {
        if (manifest.MediaType != MediaTypes.ImageManifest)
            throw new HardenException($"{source}: media type {manifest.MediaType} is not an OCI image manifest; not a ModelPack artifact");
        if (manifest.Config.MediaType != ModelPackFormat.ConfigMediaType)
            throw new HardenException($"{source}: config media type is {manifest.Config.MediaType}, not {ModelPackFormat.ConfigMediaType}: not a ModelPack model artifact (an image or another artifact?)");
        if (manifest.ArtifactType != null && manifest.ArtifactType != ModelPackFormat.ArtifactType)
            throw new HardenException($"{source}: artifactType is {manifest.ArtifactType}, not {ModelPackFormat.ArtifactType}: not a ModelPack model artifact");
        if (manifest.Layers.Count == 0) throw new HardenException($"{source}: the model artifact has no layers");
        var files = new List<ManifestFile>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < manifest.Layers.Count; i++)
        {
            var layer = manifest.Layers[i];
            var where = $"{source}: layer {i} ({layer.Digest})";
            if (!ModelPackFormat.LayerMediaTypes.Contains(layer.MediaType))
                throw new HardenException($"{where}: media type {layer.MediaType} is not one this verifier extracts (uncompressed ModelPack tar layers: {string.Join(", ", ModelPackFormat.LayerMediaTypes.Order(StringComparer.Ordinal))}); re-pack with 'harden model pack'");
            var a = layer.Annotations;
            var raw = a?.GetValueOrDefault(ModelPackFormat.FilePathAnnotation)
                ?? throw new HardenException($"{where}: no {ModelPackFormat.FilePathAnnotation} annotation; re-pack with 'harden model pack'");
            var path = DebPath.TryNormalise(raw, out var problem);
            if (path == null || path.Length == 0 || path != raw)
                throw new HardenException($"{where}: file path '{raw}' is refused ({problem ?? "not a normalised relative path"})");
            if (!seen.Add(path)) throw new HardenException($"{where}: file path '{path}' is listed by two layers");
            var sha = a.GetValueOrDefault(ModelPackFormat.FileSha256Annotation);
            if (!Sha256Hex.IsValid(sha))
                throw new HardenException($"{where} ({path}): no valid {ModelPackFormat.FileSha256Annotation} annotation; re-pack with 'harden model pack'");
            var size = MetadataSize(a.GetValueOrDefault(ModelPackFormat.FileMetadataAnnotation), $"{where} ({path})");
            files.Add(new ManifestFile(i, path, size, sha!, layer));
        }
        // A file under a path another layer holds as a file would be written through it.
        foreach (var f in files)
            for (var p = DebPath.Parent(f.Path); p.Length > 0; p = DebPath.Parent(p))
                if (seen.Contains(p)) throw new HardenException($"{source}: '{f.Path}' lies under '{p}', which another layer holds as a file");
        return files;
    }

    private static long MetadataSize(string? json, string where)
    {
        if (json == null) throw new HardenException($"{where}: no {ModelPackFormat.FileMetadataAnnotation} annotation; re-pack with 'harden model pack'");
        try
        {
            var m = JsonSerializer.Deserialize<ModelFileMetadata>(json)
                ?? throw new HardenException($"{where}: {ModelPackFormat.FileMetadataAnnotation} is null");
            if (m.Size < 0) throw new HardenException($"{where}: negative file size {m.Size}");
            if (m.Typeflag != (byte)'0') throw new HardenException($"{where}: file type flag {m.Typeflag} is not a regular file ('0')");
            return m.Size;
        }
        catch (JsonException e)
        {
            throw new HardenException($"{where}: {ModelPackFormat.FileMetadataAnnotation} is not the spec's FileMetadata JSON ({e.Message})");
        }
    }
}
