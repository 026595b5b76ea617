using HardenImage.Common;
using HardenImage.Common.Storage;

namespace HardenImage.Oci;

/// <summary>
/// An OCI image layout directory (image-spec image-layout.md): <c>oci-layout</c>, <c>index.json</c>,
/// <c>blobs/sha256/&lt;hex&gt;</c>. Blobs are written to a temp file, hashed while written and renamed only when the
/// digest is right; every read is verified (threat: Tampering). <c>index.json</c> is replaced atomically, so a
/// reader sees the old or the new layout, never half of one.
/// </summary>
public sealed class OciLayout
{
    private static readonly byte[] LayoutMarker = "{\"imageLayoutVersion\":\"1.0.0\"}"u8.ToArray();
    private readonly object _indexLock = new();

    private readonly ContentAddressedDirectory _blobs;

    private OciLayout(string root)
    {
        Root = Path.GetFullPath(root);
        _blobs = new ContentAddressedDirectory(Path.Combine(Root, "blobs", "sha256"));
    }

    public string Root { get; }
    public string BlobsDir => _blobs.Directory;
    public string IndexPath => Path.Combine(Root, "index.json");

    /// <summary>Opens a layout, creating an empty one when the directory has none; removes stale temp files.</summary>
    public static OciLayout OpenOrCreate(string root)
    {
        var layout = new OciLayout(root);
        Directory.CreateDirectory(layout.BlobsDir);
        layout.RemoveStaleTempFiles();
        var marker = Path.Combine(layout.Root, "oci-layout");
        if (!File.Exists(marker)) AtomicFile.WriteAllBytes(marker, LayoutMarker);
        if (!File.Exists(layout.IndexPath)) layout.WriteIndex(new ImageIndex { Manifests = new() });
        return layout;
    }

    /// <summary>Opens an existing layout; fails with a clear message when the directory is not one.</summary>
    public static OciLayout Open(string root)
    {
        var layout = new OciLayout(root);
        if (!File.Exists(Path.Combine(layout.Root, "oci-layout")) || !File.Exists(layout.IndexPath))
            throw new HardenException($"{layout.Root}: not an OCI image layout (no oci-layout or index.json). Run 'harden build' first.");
        layout.RemoveStaleTempFiles();
        return layout;
    }

    /// <summary>
    /// Removes what interrupted writers left (<c>.tmp-incoming-*</c> of a killed push, <c>.tmp-layer-*</c> of a killed
    /// build, <c>.tmp-index.json-*</c>): our temp names only, only when no live process holds them and they are
    /// older than a minute (<see cref="StaleTempFiles"/>). Returns how many were removed.
    /// </summary>
    public int RemoveStaleTempFiles(TimeProvider? time = null) =>
        StaleTempFiles.Clean(Root, time) + _blobs.CleanStaleTemps(time);

    public string BlobPath(string digest) => _blobs.PathOf(Digest.Parse(digest).Hex);

    public bool HasBlob(string digest) => File.Exists(BlobPath(digest));

    /// <summary>Stores bytes; a blob already present is rewritten only when its bytes differ (corrupt or tampered).</summary>
    public Descriptor WriteBlob(ReadOnlySpan<byte> bytes, string mediaType, SortedDictionary<string, string>? annotations = null)
    {
        var digest = Digest.Of(bytes).ToString();
        var path = BlobPath(digest);
        if (!File.Exists(path) || !bytes.SequenceEqual(File.ReadAllBytes(path))) AtomicFile.WriteAllBytes(path, bytes);
        return new Descriptor { MediaType = mediaType, Digest = digest, Size = bytes.Length, Annotations = annotations };
    }

    /// <summary>Serialises an OCI document with <see cref="OciJson"/> and stores it.</summary>
    public Descriptor WriteJson<T>(T document, string mediaType) => WriteBlob(OciJson.Serialize(document), mediaType);

    /// <summary>
    /// Streams a blob in; when <paramref name="expectedDigest"/> is given a mismatch throws and nothing is kept.
    /// </summary>
    public async Task<Descriptor> WriteBlobAsync(Stream content, string mediaType, string? expectedDigest = null, CancellationToken ct = default)
    {
        if (expectedDigest != null && HasBlob(expectedDigest))
        {
            return new Descriptor { MediaType = mediaType, Digest = expectedDigest, Size = new FileInfo(BlobPath(expectedDigest)).Length };
        }
        var (tmp, hex, size) = await _blobs.WriteTempAsync("incoming", content, ct: ct);
        try
        {
            var digest = Digest.Prefix + hex;
            if (expectedDigest != null && digest != expectedDigest)
                throw new HardenException($"blob content does not match its digest: expected {expectedDigest}, got {digest}");
            _blobs.Commit(tmp, hex);
            return new Descriptor { MediaType = mediaType, Digest = digest, Size = size };
        }
        finally
        {
            AtomicFile.TryDelete(tmp);
        }
    }

    /// <summary>Reads a whole (small) blob and checks its digest.</summary>
    public byte[] ReadBlob(string digest) => ReadBlob(digest, long.MaxValue);

    /// <summary>Reads a whole blob of at most <paramref name="maxBytes"/> and checks its digest.</summary>
    public byte[] ReadBlob(string digest, long maxBytes)
    {
        var path = BlobPath(digest);
        if (!File.Exists(path)) throw new HardenException($"{Root}: blob {digest} is missing from the layout");
        var bytes = maxBytes == long.MaxValue ? File.ReadAllBytes(path) : BoundedFile.ReadAllBytes(path, maxBytes, "OCI document");
        if (Digest.Of(bytes).ToString() != digest)
            throw new HardenException($"{Root}: blob {digest} does not match its digest (tampered or corrupt). Rebuild with 'harden build'.");
        return bytes;
    }

    /// <summary>Opens a blob for streaming. Callers that need the guarantee verify with <see cref="VerifyBlob"/>.</summary>
    public Stream OpenBlob(string digest)
    {
        var path = BlobPath(digest);
        if (!File.Exists(path)) throw new HardenException($"{Root}: blob {digest} is missing from the layout");
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
    }

    public bool VerifyBlob(string digest)
    {
        var path = BlobPath(digest);
        return File.Exists(path) && Digest.Prefix + Sha256Hex.OfFile(path) == digest;
    }

    public T ReadJson<T>(string digest) =>
        OciJson.Deserialize<T>(ReadBlob(digest, InputLimits.MaxOciDocumentBytes), $"{Root}: blob {digest}");

    public ImageIndex ReadIndex() =>
        OciJson.Deserialize<ImageIndex>(BoundedFile.ReadAllBytes(IndexPath, InputLimits.MaxOciDocumentBytes, "OCI index"), IndexPath);

    public void WriteIndex(ImageIndex index) => AtomicFile.WriteAllBytes(IndexPath, OciJson.Serialize(index));

    /// <summary>Finds the descriptor tagged <paramref name="tag"/> (annotation org.opencontainers.image.ref.name).</summary>
    public Descriptor? Resolve(string tag) =>
        ReadIndex().Manifests.FirstOrDefault(d => d.Annotations != null
            && d.Annotations.TryGetValue(Annotations.RefName, out var n) && n == tag);

    /// <summary>
    /// Points several tags at their descriptors in ONE atomic rewrite of index.json, so a multi-image build is
    /// published all at once or not at all (threat: Tampering — no reader sees a half-updated set).
    /// </summary>
    public void TagAll(IEnumerable<(string Tag, Descriptor Descriptor)> tags)
    {
        lock (_indexLock)
        {
            var wanted = new Dictionary<string, Descriptor>(StringComparer.Ordinal);
            foreach (var (tag, d) in tags) wanted[tag] = d;
            // Under the index.json.lock file lock too: two processes building into one layout both keep their tags.
            RecordFile.Update(IndexPath, text => System.Text.Encoding.UTF8.GetString(OciJson.Serialize(Retag(
                text == null ? new ImageIndex { Manifests = [] } : OciJson.Deserialize<ImageIndex>(System.Text.Encoding.UTF8.GetBytes(text)), wanted))));
        }
    }

    private static ImageIndex Retag(ImageIndex index, Dictionary<string, Descriptor> wanted)
    {
        {
            var manifests = index.Manifests.Where(d => d.Annotations == null
                || !d.Annotations.TryGetValue(Annotations.RefName, out var n) || !wanted.ContainsKey(n)).ToList();
            foreach (var (tag, descriptor) in wanted)
            {
                var annotations = new SortedDictionary<string, string>(descriptor.Annotations ?? new(), StringComparer.Ordinal)
                {
                    [Annotations.RefName] = tag,
                };
                manifests.Add(descriptor with { Annotations = annotations });
            }
            // Untagged entries (e.g. left by another tool) sort first, by digest: a stable, total order.
            manifests = manifests.OrderBy(RefNameOf, StringComparer.Ordinal).ThenBy(d => d.Digest, StringComparer.Ordinal).ToList();
            return index with { Manifests = manifests };
        }
    }

    private static string RefNameOf(Descriptor d) =>
        d.Annotations != null && d.Annotations.TryGetValue(Annotations.RefName, out var n) ? n : "";

    /// <summary>Points <paramref name="tag"/> at <paramref name="descriptor"/>, replacing an earlier entry with that tag.</summary>
    public void Tag(string tag, Descriptor descriptor) => TagAll([(tag, descriptor)]);
}
