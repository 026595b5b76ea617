using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using HardenImage.Common;

namespace HardenImage.Signing;

/// <summary>An in-toto subject: an artifact name and its sha256.</summary>
public sealed record InTotoSubject(string Name, string Sha256);

/// <summary>A decoded in-toto Statement.</summary>
public sealed record InTotoStatementData(string Type, IReadOnlyList<InTotoSubject> Subjects, string PredicateType, JsonNode? Predicate);

/// <summary>Predicate type URIs we write and understand.</summary>
public static class PredicateTypes
{
    public const string CycloneDx = "https://cyclonedx.org/bom";
    public const string SlsaProvenanceV1 = "https://slsa.dev/provenance/v1";
    public const string CosignVuln = "https://cosign.sigstore.dev/attestation/vuln/v1";
    public const string OpenVex = "https://openvex.dev/ns";

    /// <summary>Maps policy words (sbom, provenance, vuln, vex) to predicate types; a URI passes through.</summary>
    public static string FromPolicyName(string name) => name.ToLowerInvariant() switch
    {
        "sbom" or "cyclonedx" => CycloneDx,
        "provenance" or "slsaprovenance" or "slsa" => SlsaProvenanceV1,
        "vuln" => CosignVuln,
        "vex" or "openvex" => OpenVex,
        _ when name.Contains("://", StringComparison.Ordinal) => name,
        _ => throw new HardenException($"unknown attestation kind '{name}': use sbom, provenance, vuln, vex or a predicate type URI."),
    };
}

/// <summary>
/// in-toto Statement v1 (<c>{"_type","subject":[{"name","digest":{"sha256"}}],"predicateType","predicate"}</c>).
/// The subject digest ties the claim to one image (threat: Tampering / Spoofing).
/// </summary>
public static class InTotoStatement
{
    public const string StatementType = "https://in-toto.io/Statement/v1";

    private static readonly JsonSerializerOptions WriteOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static byte[] Create(IEnumerable<InTotoSubject> subjects, string predicateType, JsonNode predicate)
    {
        var subjectArray = new JsonArray();
        foreach (var s in subjects)
            subjectArray.Add(new JsonObject { ["name"] = s.Name, ["digest"] = new JsonObject { ["sha256"] = s.Sha256 } });
        var statement = new JsonObject
        {
            ["_type"] = StatementType,
            ["subject"] = subjectArray,
            ["predicateType"] = predicateType,
            ["predicate"] = predicate.DeepClone(),
        };
        return JsonSerializer.SerializeToUtf8Bytes(statement, WriteOptions);
    }

    public static InTotoStatementData Parse(ReadOnlySpan<byte> json)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(json.ToArray()); }
        catch (JsonException e) { throw new HardenException($"the attestation payload is not JSON: {e.Message}", inner: e); }
        if (root is not JsonObject obj) throw new HardenException("the attestation payload is not a JSON object");
        var type = (string?)obj["_type"] ?? throw new HardenException("in-toto statement without _type");
        var predicateType = (string?)obj["predicateType"] ?? throw new HardenException("in-toto statement without predicateType");
        var subjects = new List<InTotoSubject>();
        if (obj["subject"] is JsonArray arr)
            foreach (var s in arr)
                subjects.Add(new InTotoSubject((string?)s?["name"] ?? "", (string?)s?["digest"]?["sha256"] ?? ""));
        return new InTotoStatementData(type, subjects, predicateType, obj["predicate"]);
    }
}
