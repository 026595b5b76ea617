using System.IO.Compression;
using HardenImage.Common.Streams;

namespace HardenImage.Oci;

/// <summary>Opening a layer blob as its tar, by media type: the one place that knows which compressions a layer may use.</summary>
public static class LayerTar
{
    /// <summary>Docker's media type for a gzip'd layer (docker-archive, Docker Hub images): read like the OCI one.</summary>
    public const string DockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    /// <summary>The uncompressed tar of <paramref name="blob"/> (gzip, zstd or plain tar), or null for a media type that is
    /// no layer we read (each caller says so in its own words).</summary>
    public static Stream? OpenUncompressed(Stream blob, string mediaType, bool leaveOpen) => mediaType switch
    {
        MediaTypes.LayerGzip or DockerLayerGzip => new GZipStream(blob, CompressionMode.Decompress, leaveOpen),
        MediaTypes.LayerZstd => new ZstdSharp.DecompressionStream(blob, leaveOpen: leaveOpen),
        MediaTypes.LayerTar => leaveOpen ? new NonClosingStream(blob) : blob,
        _ => null,
    };
}
