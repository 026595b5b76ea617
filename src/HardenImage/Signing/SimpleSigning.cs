using System.Text.Encodings.Web;
using System.Text.Json;
using HardenImage.Common;
using HardenImage.Oci;

namespace HardenImage.Signing;

/// <summary>What a simple-signing payload claims: this reference's manifest has this digest.</summary>
public sealed record SimpleSigningClaim(string DockerReference, string ManifestDigest, string Type, IReadOnlyDictionary<string, string>? Optional);

/// <summary>
/// The cosign "simple signing" payload, byte for byte as cosign writes it (compact JSON, no trailing newline):
/// <c>{"critical":{"identity":{"docker-reference":..},"image":{"docker-manifest-digest":..},"type":"cosign container image signature"},"optional":null}</c>.
/// Signing the manifest digest binds the signature to exactly one image (threat: Tampering / Spoofing).
/// </summary>
public static class SimpleSigning
{
    public const string SignatureType = "cosign container image signature";

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static byte[] CreatePayload(string dockerReference, Digest imageDigest, IReadOnlyDictionary<string, string>? annotations = null)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteStartObject("critical");
            w.WriteStartObject("identity");
            w.WriteString("docker-reference", dockerReference);
            w.WriteEndObject();
            w.WriteStartObject("image");
            w.WriteString("docker-manifest-digest", imageDigest.ToString());
            w.WriteEndObject();
            w.WriteString("type", SignatureType);
            w.WriteEndObject();
            if (annotations is { Count: > 0 })
            {
                // Go marshals maps with sorted keys; match it.
                w.WriteStartObject("optional");
                foreach (var (k, v) in annotations.OrderBy(a => a.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            else
            {
                w.WriteNull("optional");
            }
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>Parses a payload; throws <see cref="HardenException"/> when it is not a cosign simple-signing payload.</summary>
    public static SimpleSigningClaim Parse(ReadOnlySpan<byte> payload)
    {
        try
        {
            using var doc = JsonDocument.Parse(payload.ToArray());
            var critical = doc.RootElement.GetProperty("critical");
            var reference = critical.GetProperty("identity").GetProperty("docker-reference").GetString() ?? "";
            var digest = critical.GetProperty("image").GetProperty("docker-manifest-digest").GetString() ?? "";
            var type = critical.GetProperty("type").GetString() ?? "";
            Dictionary<string, string>? optional = null;
            if (doc.RootElement.TryGetProperty("optional", out var opt) && opt.ValueKind == JsonValueKind.Object)
            {
                optional = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var p in opt.EnumerateObject()) optional[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
            }
            return new SimpleSigningClaim(reference, digest, type, optional);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new HardenException($"not a cosign simple-signing payload: {e.Message}", inner: e);
        }
    }
}
