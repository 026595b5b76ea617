using System.Text.Json;
using HardenImage.Oci;

namespace HardenImage.Signing;

/// <summary>One layer of a cosign .sig/.att manifest: its blob and its annotations.</summary>
public sealed record CosignLayer(string MediaType, byte[] Blob, IReadOnlyDictionary<string, string> Annotations)
{
    public string Digest => Oci.Digest.Of(Blob).ToString();
}

/// <summary>
/// Builds the OCI manifests cosign stores beside an image: tag <c>sha256-&lt;hex&gt;.sig</c> (simple signing) and
/// <c>sha256-&lt;hex&gt;.att</c> (DSSE attestations), one layer per signature, and the config cosign writes
/// (zero timestamps, empty architecture/os, diff_ids = layer digests). Appending never drops an existing layer,
/// so adding our signature cannot erase someone else's (threat: Repudiation).
/// </summary>
public static class CosignSignatureManifest
{
    public const string SignatureAnnotation = "dev.cosignproject.cosign/signature";
    public const string PredicateTypeAnnotation = "predicateType";
    private const string ZeroTime = "0001-01-01T00:00:00Z";

    public static string SignatureTag(Digest image) => $"sha256-{image.Hex}.sig";

    public static string AttestationTag(Digest image) => $"sha256-{image.Hex}.att";

    /// <summary>A simple-signing layer: blob = payload, annotation = base64 DER signature.</summary>
    public static CosignLayer SignatureLayer(byte[] payload, byte[] signatureDer) =>
        new(MediaTypes.CosignSimpleSigning, payload, new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            [SignatureAnnotation] = Convert.ToBase64String(signatureDer),
        });

    /// <summary>An attestation layer: blob = DSSE envelope JSON, signature annotation empty, predicateType named.</summary>
    public static CosignLayer AttestationLayer(byte[] envelopeJson, string predicateType) =>
        new(MediaTypes.DsseEnvelope, envelopeJson, new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            [SignatureAnnotation] = "",
            [PredicateTypeAnnotation] = predicateType,
        });

    /// <summary>Builds the manifest and config for <paramref name="layers"/> in order, dropping exact duplicates.</summary>
    public static OciArtifact Build(IEnumerable<CosignLayer> layers)
    {
        var unique = new List<CosignLayer>();
        foreach (var layer in layers)
            if (!unique.Any(u => SameLayer(u, layer))) unique.Add(layer);

        var blobs = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var descriptors = new List<Descriptor>();
        foreach (var layer in unique)
        {
            blobs[layer.Digest] = layer.Blob;
            descriptors.Add(new Descriptor
            {
                MediaType = layer.MediaType,
                Digest = layer.Digest,
                Size = layer.Blob.Length,
                Annotations = new SortedDictionary<string, string>(layer.Annotations.ToDictionary(), StringComparer.Ordinal),
            });
        }
        var config = Config(descriptors.Select(d => d.Digest).ToList());
        var configDigest = Digest.Of(config).ToString();
        blobs[configDigest] = config;
        var manifest = new ImageManifest
        {
            Config = new Descriptor { MediaType = MediaTypes.ImageConfig, Digest = configDigest, Size = config.Length },
            Layers = descriptors,
        };
        return new OciArtifact(manifest, blobs);
    }

    /// <summary>
    /// Adds <paramref name="layer"/> to an existing .sig/.att artifact (or starts one). Existing layers are kept
    /// in order; an identical layer (same blob, same annotations) is not added twice.
    /// </summary>
    public static OciArtifact Append(OciArtifact? existing, CosignLayer layer) =>
        Build(existing == null ? [layer] : [.. ReadLayers(existing), layer]);

    /// <summary>
    /// The layers of an artifact with their blobs. A layer whose blob is missing or does not match its digest is
    /// reported through <paramref name="problems"/> (if given) and left out.
    /// </summary>
    public static IReadOnlyList<CosignLayer> ReadLayers(OciArtifact artifact, List<string>? problems = null)
    {
        var result = new List<CosignLayer>();
        for (var i = 0; i < artifact.Manifest.Layers.Count; i++)
        {
            var d = artifact.Manifest.Layers[i];
            var blob = artifact.VerifiedBlob(d.Digest);
            if (blob == null)
            {
                problems?.Add($"layer {i} ({d.Digest}): blob missing or not matching its digest");
                continue;
            }
            result.Add(new CosignLayer(d.MediaType, blob,
                new SortedDictionary<string, string>(d.Annotations?.ToDictionary() ?? [], StringComparer.Ordinal)));
        }
        return result;
    }

    /// <summary>
    /// The config cosign writes for a signature image: <c>{"architecture":"","created":"0001-01-01T00:00:00Z",
    /// "history":[{"created":"0001-01-01T00:00:00Z"},..],"os":"","rootfs":{"type":"layers","diff_ids":[..]},"config":{}}</c>
    /// (go-containerregistry field order, one history entry per layer).
    /// </summary>
    public static byte[] Config(IReadOnlyList<string> layerDigests)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("architecture", "");
            w.WriteString("created", ZeroTime);
            w.WriteStartArray("history");
            foreach (var _ in layerDigests)
            {
                w.WriteStartObject();
                w.WriteString("created", ZeroTime);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteString("os", "");
            w.WriteStartObject("rootfs");
            w.WriteString("type", "layers");
            w.WriteStartArray("diff_ids");
            foreach (var d in layerDigests) w.WriteStringValue(d);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteStartObject("config");
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static bool SameLayer(CosignLayer a, CosignLayer b) =>
        a.MediaType == b.MediaType && a.Digest == b.Digest
        && a.Annotations.Count == b.Annotations.Count
        && a.Annotations.All(kv => b.Annotations.TryGetValue(kv.Key, out var v) && v == kv.Value);
}
