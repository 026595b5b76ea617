using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using HardenImage.Common;

namespace HardenImage.Signing;

public sealed record DsseSignature
{
    [JsonPropertyName("keyid")] public string KeyId { get; init; } = "";
    [JsonPropertyName("sig")] public required string Sig { get; init; }
}

/// <summary>A DSSE envelope (secure-systems-lab/dsse envelope.md). Payload and signatures are standard base64.</summary>
public sealed record DsseEnvelope
{
    [JsonPropertyName("payloadType")] public required string PayloadType { get; init; }
    [JsonPropertyName("payload")] public required string Payload { get; init; }
    [JsonPropertyName("signatures")] public required List<DsseSignature> Signatures { get; init; }

    public byte[] PayloadBytes() => Convert.FromBase64String(Payload);
}

/// <summary>
/// Dead Simple Signing Envelope v1: the signature covers PAE(type, body), so the payload type is signed too and
/// a statement cannot be re-labelled as another kind of document (threat: Tampering / Spoofing).
/// </summary>
public static class Dsse
{
    public const string InTotoPayloadType = "application/vnd.in-toto+json";

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>PAE = "DSSEv1" SP len(type) SP type SP len(body) SP body, lengths in decimal bytes.</summary>
    public static byte[] Pae(string payloadType, ReadOnlySpan<byte> body)
    {
        var type = Encoding.UTF8.GetBytes(payloadType);
        var head = Encoding.UTF8.GetBytes($"DSSEv1 {type.Length} ");
        var mid = Encoding.UTF8.GetBytes($" {body.Length} ");
        return [.. head, .. type, .. mid, .. body];
    }

    public static async Task<DsseEnvelope> SignAsync(ISigner signer, string payloadType, byte[] payload, CancellationToken ct = default)
    {
        var sig = await signer.SignAsync(Pae(payloadType, payload), ct);
        return new DsseEnvelope
        {
            PayloadType = payloadType,
            Payload = Convert.ToBase64String(payload),
            // keyid stays "" as cosign writes it; verifiers select keys by configuration, not by this hint.
            Signatures = [new DsseSignature { KeyId = "", Sig = Convert.ToBase64String(sig) }],
        };
    }

    /// <summary>True when at least one signature verifies over PAE with <paramref name="key"/>.</summary>
    public static bool Verify(DsseEnvelope envelope, ECDsa key, DSASignatureFormat format = DSASignatureFormat.Rfc3279DerSequence)
    {
        byte[] pae;
        try { pae = Pae(envelope.PayloadType, envelope.PayloadBytes()); }
        catch (FormatException) { return false; }
        foreach (var s in envelope.Signatures)
        {
            byte[] sig;
            try { sig = Convert.FromBase64String(s.Sig); }
            catch (FormatException) { continue; }
            if (key.VerifyData(pae, sig, HashAlgorithmName.SHA256, format)) return true;
        }
        return false;
    }

    /// <summary>Compact JSON: {"payloadType","payload","signatures":[{"keyid","sig"}]}.</summary>
    public static byte[] Serialize(DsseEnvelope envelope) => JsonSerializer.SerializeToUtf8Bytes(envelope, JsonOptions);

    public static DsseEnvelope Parse(ReadOnlySpan<byte> json)
    {
        try
        {
            var env = JsonSerializer.Deserialize<DsseEnvelope>(json, JsonOptions) ?? throw new JsonException("empty document");
            if (env.Signatures == null || env.Payload == null || env.PayloadType == null) throw new JsonException("missing fields");
            return env;
        }
        catch (JsonException e)
        {
            throw new HardenException($"not a DSSE envelope: {e.Message}", inner: e);
        }
    }
}
