using System.Text;
using HardenImage.Common;

namespace HardenImage.Oci;

/// <summary>What a layer entry is on disk once unpacked.</summary>
public enum LayerEntryType
{
    File,
    Directory,
    Symlink,
    /// <summary>A second name for a regular file elsewhere in the same layer (<see cref="LayerEntry.LinkTarget"/>).</summary>
    Hardlink,
}

/// <summary>
/// Where a regular file's bytes come from. The length is declared up front because a tar header carries it
/// before the data; a source that yields a different number of bytes fails the layer (threat: Tampering, a file
/// that changed while the layer was written).
/// </summary>
public abstract record LayerContent
{
    private LayerContent(long length) => Length = length;

    public long Length { get; }

    public abstract Stream Open();

    public static LayerContent FromBytes(byte[] bytes) => new BytesContent(bytes);

    public static LayerContent FromFile(string path) => new FileContent(path, new FileInfo(path).Length);

    /// <summary>Bytes from a stream opened on demand (e.g. an entry inside a .deb's data.tar).</summary>
    public static LayerContent FromStream(Func<Stream> open, long length) => new StreamContent(open, length);

    private sealed record BytesContent(byte[] Bytes) : LayerContent(Bytes.LongLength)
    {
        public override Stream Open() => new MemoryStream(Bytes, writable: false);
    }

    private sealed record FileContent(string Path, long FileLength) : LayerContent(FileLength)
    {
        public override Stream Open() => new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
    }

    private sealed record StreamContent(Func<Stream> OpenStream, long StreamLength) : LayerContent(StreamLength)
    {
        public override Stream Open() => OpenStream();
    }
}

/// <summary>
/// One file-system object of a layer. <see cref="Path"/> is relative to the image root, '/'-separated, without a
/// leading "/" or trailing "/" ("usr/bin/python3"). <see cref="Mode"/> holds the permission bits including setuid
/// (04000), setgid (02000) and sticky (01000); the file type comes from <see cref="Type"/>. There is no mtime: every
/// entry gets the layer's epoch so the bytes do not depend on when or where the build ran.
/// </summary>
public sealed record LayerEntry
{
    public required string Path { get; init; }
    public required LayerEntryType Type { get; init; }
    public int Mode { get; init; }
    public long Uid { get; init; }
    public long Gid { get; init; }
    /// <summary>Symlink target (any text) or, for a hard link, the layer path of the file it names.</summary>
    public string? LinkTarget { get; init; }
    public LayerContent? Content { get; init; }

    /// <summary>Data bytes in the tar: the content length for files, 0 otherwise.</summary>
    public long Size => Type == LayerEntryType.File ? Content?.Length ?? 0 : 0;

    public static LayerEntry File(string path, LayerContent content, int mode = 0b110_100_100, long uid = 0, long gid = 0) =>
        new() { Path = path, Type = LayerEntryType.File, Mode = mode, Uid = uid, Gid = gid, Content = content };

    public static LayerEntry File(string path, byte[] bytes, int mode = 0b110_100_100, long uid = 0, long gid = 0) =>
        File(path, LayerContent.FromBytes(bytes), mode, uid, gid);

    public static LayerEntry Directory(string path, int mode = 0b111_101_101, long uid = 0, long gid = 0) =>
        new() { Path = path, Type = LayerEntryType.Directory, Mode = mode, Uid = uid, Gid = gid };

    public static LayerEntry Symlink(string path, string target, long uid = 0, long gid = 0) =>
        new() { Path = path, Type = LayerEntryType.Symlink, Mode = 0b111_111_111, Uid = uid, Gid = gid, LinkTarget = target };

    public static LayerEntry Hardlink(string path, string targetPath) =>
        new() { Path = path, Type = LayerEntryType.Hardlink, LinkTarget = targetPath };

    /// <summary>
    /// An OCI whiteout (image-spec layer.md): in a layer above a parent's, hides <paramref name="path"/> and all
    /// under it. Written as the empty file "&lt;dir&gt;/.wh.&lt;name&gt;".
    /// </summary>
    public static LayerEntry Whiteout(string path)
    {
        ValidatePath(path);
        var slash = path.LastIndexOf('/');
        var whPath = slash < 0 ? ".wh." + path : path[..(slash + 1)] + ".wh." + path[(slash + 1)..];
        return File(whPath, LayerContent.FromBytes([]), 0);
    }

    /// <summary>An opaque whiteout: the directory <paramref name="directory"/> shows only this layer's children.</summary>
    public static LayerEntry OpaqueWhiteout(string directory) =>
        File(ValidatePath(directory) + "/.wh..wh..opq", LayerContent.FromBytes([]), 0);

    /// <summary>
    /// Rejects paths that would escape or confuse the unpack root: absolute, "..", ".", empty components, NUL
    /// (threat: Elevation of privilege / Tampering — a layer that writes outside its root on a node).
    /// </summary>
    public static string ValidatePath(string path, string what = "layer entry path")
    {
        if (string.IsNullOrEmpty(path)) throw new HardenException($"{what} is empty");
        if (path[0] == '/') throw new HardenException($"{what} '{path}' must be relative (no leading '/')");
        if (path.Contains('\0')) throw new HardenException($"{what} '{path}' contains a NUL character");
        foreach (var part in path.Split('/'))
        {
            if (part.Length == 0 || part == "." || part == "..")
                throw new HardenException($"{what} '{path}' has an empty, '.' or '..' component; give a normalised relative path");
        }
        if (!IsValidUtf8(path)) throw new HardenException($"{what} '{path}' is not valid Unicode");
        return path;
    }

    private static bool IsValidUtf8(string s)
    {
        try
        {
            _ = new UTF8Encoding(false, throwOnInvalidBytes: true).GetByteCount(s);
            return true;
        }
        catch (EncoderFallbackException)
        {
            return false;
        }
    }
}
