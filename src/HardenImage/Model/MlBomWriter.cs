using System.Text.Json;
using HardenImage.Sbom;

namespace HardenImage.Model;

/// <summary>
/// The model's CycloneDX 1.6 ML-BOM: a <c>machine-learning-model</c> component (metadata.component) with a
/// <c>modelCard</c> from the user's card (architecture, datasets, intended use, limitations), its licenses, and one
/// <c>file</c> component per packed file with its SHA-256, size and the layer that carries it. Byte-reproducible:
/// the serial number derives from the model's manifest digest and there is no timestamp, so re-packing the same
/// files gives the same BOM and the attestation does not churn (threat R: which model, made of which bytes).
/// </summary>
public static class MlBomWriter
{
    public static string ModelRef(string name, string version) => $"model:{name}@{version}";

    public static string FileRef(string path) => "file:" + path;

    public static byte[] Write(PackedModel model, ModelCard card)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("$schema", "http://cyclonedx.org/schema/bom-1.6.schema.json");
            w.WriteString("bomFormat", "CycloneDX");
            w.WriteString("specVersion", "1.6");
            w.WriteString("serialNumber", CycloneDxWriter.SerialNumberFor(model.Manifest.Digest, "hardenimage:mlbom:"));
            w.WriteNumber("version", 1);
            w.WriteStartObject("metadata");
            w.WriteStartObject("tools");
            w.WriteStartArray("components");
            w.WriteStartObject();
            w.WriteString("type", "application");
            w.WriteString("name", CycloneDxWriter.ToolName);
            w.WriteString("version", CycloneDxWriter.ToolVersion);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
            WriteModel(w, model, card);
            w.WriteEndObject();

            w.WriteStartArray("components");
            foreach (var f in model.Files.OrderBy(f => f.Path, StringComparer.Ordinal))
            {
                w.WriteStartObject();
                w.WriteString("type", "file");
                w.WriteString("bom-ref", FileRef(f.Path));
                w.WriteString("name", f.Path);
                w.WriteStartArray("hashes");
                w.WriteStartObject();
                w.WriteString("alg", "SHA-256");
                w.WriteString("content", f.Sha256);
                w.WriteEndObject();
                w.WriteEndArray();
                CycloneDxWriter.WriteProperties(w, [
                    ("hardenimage:file:size", f.Size.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                    ("hardenimage:model:layerDigest", f.LayerDigest),
                    ("hardenimage:model:layerMediaType", f.MediaType),
                ]);
                w.WriteEndObject();
            }
            w.WriteEndArray();

            w.WriteStartArray("dependencies");
            w.WriteStartObject();
            w.WriteString("ref", ModelRef(model.Name, model.Version));
            w.WriteStartArray("dependsOn");
            foreach (var f in model.Files.OrderBy(f => f.Path, StringComparer.Ordinal)) w.WriteStringValue(FileRef(f.Path));
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }
        ms.WriteByte((byte)'\n');
        return ms.ToArray();
    }

    private static void WriteModel(Utf8JsonWriter w, PackedModel model, ModelCard card)
    {
        w.WriteStartObject("component");
        w.WriteString("type", "machine-learning-model");
        w.WriteString("bom-ref", ModelRef(model.Name, model.Version));
        if (card.Vendor != null) w.WriteString("publisher", card.Vendor);
        w.WriteString("name", model.Name);
        w.WriteString("version", model.Version);
        if (card.Description != null) w.WriteString("description", card.Description);
        if (card.Licenses.Count > 0)
        {
            // One SPDX expression: always valid in the schema (a bare id may be outside its enum of known ids).
            w.WriteStartArray("licenses");
            w.WriteStartObject();
            w.WriteString("expression", card.Licenses.Count == 1 ? card.Licenses[0] : string.Join(" AND ", card.Licenses.Select(l => $"({l})")));
            w.WriteEndObject();
            w.WriteEndArray();
        }
        var refs = new List<(string Type, string Url)>();
        if (card.SourceUrl != null) refs.Add(("vcs", card.SourceUrl));
        if (card.DocUrl != null) refs.Add(("documentation", card.DocUrl));
        if (refs.Count > 0)
        {
            w.WriteStartArray("externalReferences");
            foreach (var (type, url) in refs)
            {
                w.WriteStartObject();
                w.WriteString("type", type);
                w.WriteString("url", url);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }

        w.WriteStartObject("modelCard");
        w.WriteStartObject("modelParameters");
        if (card.Family != null) w.WriteString("architectureFamily", card.Family);
        if (card.Architecture != null) w.WriteString("modelArchitecture", card.Architecture);
        w.WriteStartArray("datasets");
        foreach (var d in card.Datasets)
        {
            w.WriteStartObject();
            w.WriteString("type", "dataset");
            w.WriteString("name", d.Name);
            if (d.Url != null)
            {
                w.WriteStartObject("contents");
                w.WriteString("url", d.Url);
                w.WriteEndObject();
            }
            if (d.Description != null) w.WriteString("description", d.Description);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteStartObject("considerations");
        w.WriteStartArray("useCases");
        if (card.IntendedUse != null) w.WriteStringValue(card.IntendedUse);
        w.WriteEndArray();
        w.WriteStartArray("technicalLimitations");
        foreach (var l in card.Limitations) w.WriteStringValue(l);
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();

        var props = new List<(string, string)>
        {
            (ModelMlBom.ManifestDigestProperty, model.Manifest.Digest),
            ("hardenimage:model:artifactType", ModelPackFormat.ArtifactType),
        };
        if (card.Format != null) props.Add(("hardenimage:model:format", card.Format));
        if (card.ParamSize != null) props.Add(("hardenimage:model:paramSize", card.ParamSize));
        if (card.Precision != null) props.Add(("hardenimage:model:precision", card.Precision));
        if (card.Quantization != null) props.Add(("hardenimage:model:quantization", card.Quantization));
        if (card.Revision != null) props.Add(("hardenimage:model:revision", card.Revision));
        foreach (var a in card.Authors) props.Add(("hardenimage:model:author", a));
        CycloneDxWriter.WriteProperties(w, props);
        w.WriteEndObject();
    }
}
