using System.Text.Json.Nodes;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Signing;

namespace HardenImage.Model;

/// <summary>Reads a model's ML-BOM back for attesting: it must be ours and describe exactly the digest being signed.</summary>
public static class ModelMlBom
{
    public const string ManifestDigestProperty = "hardenimage:model:manifestDigest";

    /// <summary>
    /// The ML-BOM at <paramref name="path"/> as an attestation predicate; refused when it is not a CycloneDX
    /// machine-learning-model BOM or names another manifest digest (a stale BOM attested onto a re-packed model
    /// would vouch for files it never listed: threat R).
    /// </summary>
    public static JsonNode ReadFor(string path, Digest manifest)
    {
        if (!File.Exists(path)) throw new HardenException($"{path}: the model's ML-BOM is missing. Run 'harden model pack' again.");
        var bom = Predicates.CycloneDx(BoundedFile.ReadAllBytes(path, InputLimits.MaxReportBytes, "ML-BOM"));
        var component = bom["metadata"]?["component"];
        if (component?["type"] is not JsonValue type || !type.TryGetValue<string>(out var t) || t != "machine-learning-model")
            throw new HardenException($"{path}: metadata.component is not a machine-learning-model; not a model ML-BOM");
        var described = (component!["properties"] as JsonArray)?.OfType<JsonObject>()
            .FirstOrDefault(p => p["name"] is JsonValue n && n.TryGetValue<string>(out var s) && s == ManifestDigestProperty)?["value"] is JsonValue v
            && v.TryGetValue<string>(out var value) ? value : null;
        if (described != manifest.ToString())
            throw new HardenException($"{path}: the ML-BOM describes model {described ?? "(no digest)"}, but the pushed model is {manifest}. Pack and push again so they match.");
        return bom;
    }
}
