using System.IO.Pipelines;
using System.Text.Json;
using System.Text.Json.Serialization;
using HardenImage.Common;

namespace HardenImage.Oci;

/// <summary>One entry of a docker-archive manifest.json (the `docker save` format).</summary>
public sealed record DockerArchiveManifestEntry
{
    [JsonPropertyName("Config")] public required string Config { get; init; }
    [JsonPropertyName("RepoTags")] public required List<string> RepoTags { get; init; }
    [JsonPropertyName("Layers")] public required List<string> Layers { get; init; }
}

/// <summary>
/// Writes one platform's image from an <see cref="OciLayout"/> as a docker-archive tar: <c>&lt;diff-id hex&gt;/layer.tar</c>
/// (uncompressed), <c>&lt;config hex&gt;.json</c>, <c>manifest.json</c>. Docker 20.10 (engine API 1.41) loads this
/// through <c>POST /images/load</c> but not an OCI layout tar. The archive streams: each layer is decompressed once
/// to learn its size and check it against the config's diff_id (threat: Tampering — a blob altered in the layout is
/// refused, not loaded), then again to copy it; nothing is held in memory or on disk.
/// </summary>
public sealed class DockerArchiveWriter(OciLayout layout)
{
    private const long ArchiveMTime = 0;

    /// <summary>Writes the archive of <paramref name="image"/> tagged <paramref name="repoTags"/> ("name:tag") to <paramref name="output"/>.</summary>
    public void Write(ResolvedManifest image, IReadOnlyList<string> repoTags, Stream output, CancellationToken ct = default)
    {
        var reader = new OciLayoutReader(layout);
        var diffIds = image.Config.RootFs.DiffIds;
        if (diffIds.Count != image.Manifest.Layers.Count)
            throw new HardenException($"{layout.Root}: manifest {image.Descriptor.Digest} has {image.Manifest.Layers.Count} layers but its config lists {diffIds.Count} diff_ids");
        foreach (var tag in repoTags)
            if (!tag.Contains(':') || tag.EndsWith(':'))
                throw new HardenException($"docker-archive RepoTags entry '{tag}' must be 'name:tag'");

        var layerNames = new List<string>();
        var written = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < image.Manifest.Layers.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            var layer = image.Manifest.Layers[i];
            var diffHex = Digest.Parse(diffIds[i]).Hex;
            var name = $"{diffHex}/layer.tar";
            layerNames.Add(name);
            if (!written.Add(diffHex)) continue; // the same layer twice in one image is stored once

            var (measured, size) = reader.MeasureUncompressed(layer);
            if (measured != diffIds[i])
                throw new HardenException($"{layout.Root}: layer {layer.Digest} decompresses to {measured}, not to the config's diff_id {diffIds[i]} (tampered or corrupt). Rebuild with 'harden build'.");
            WriteHeader(output, $"{diffHex}/", TarTypeFlag.Directory, 0b111_101_101, 0);
            WriteHeader(output, name, TarTypeFlag.Regular, 0b110_100_100, size);
            using (var data = reader.OpenUncompressed(layer))
            {
                var copied = CopyExactly(data, output, size, ct);
                if (copied != size) throw new HardenException($"{layout.Root}: layer {layer.Digest} changed while being written to the archive");
            }
            TarHeaderWriter.WritePadding(output, size);
        }

        var configBytes = layout.ReadBlob(image.Manifest.Config.Digest);
        var configName = Digest.Parse(image.Manifest.Config.Digest).Hex + ".json";
        WriteFile(output, configName, configBytes);

        var manifest = new List<DockerArchiveManifestEntry>
        {
            new() { Config = configName, RepoTags = repoTags.ToList(), Layers = layerNames },
        };
        WriteFile(output, "manifest.json", JsonSerializer.SerializeToUtf8Bytes(manifest, OciJson.Options));
        TarHeaderWriter.WriteEnd(output);
        output.Flush();
    }

    /// <summary>
    /// The archive as a readable stream produced on the fly (for Docker.DotNet's <c>Images.LoadImageAsync</c>);
    /// a failure while writing surfaces as an exception on read.
    /// </summary>
    public Stream OpenRead(ResolvedManifest image, IReadOnlyList<string> repoTags, CancellationToken ct = default)
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 4 << 20, resumeWriterThreshold: 2 << 20));
        _ = Task.Run(async () =>
        {
            try
            {
                await using (var s = pipe.Writer.AsStream(leaveOpen: true))
                {
                    Write(image, repoTags, s, ct);
                }
                await pipe.Writer.CompleteAsync();
            }
            catch (Exception ex)
            {
                await pipe.Writer.CompleteAsync(ex);
            }
        }, ct);
        return pipe.Reader.AsStream();
    }

    private static long CopyExactly(Stream src, Stream dst, long size, CancellationToken ct)
    {
        var buffer = new byte[1 << 16];
        long total = 0;
        int n;
        while ((n = src.Read(buffer, 0, buffer.Length)) > 0)
        {
            ct.ThrowIfCancellationRequested();
            if (total + n > size) return total + n;
            dst.Write(buffer, 0, n);
            total += n;
        }
        return total;
    }

    private static void WriteFile(Stream output, string name, byte[] bytes)
    {
        WriteHeader(output, name, TarTypeFlag.Regular, 0b110_100_100, bytes.Length);
        output.Write(bytes);
        TarHeaderWriter.WritePadding(output, bytes.Length);
    }

    private static void WriteHeader(Stream output, string name, TarTypeFlag type, int mode, long size) =>
        TarHeaderWriter.Write(output, new TarHeader(name, type, mode, 0, 0, size, ArchiveMTime, ""));
}
