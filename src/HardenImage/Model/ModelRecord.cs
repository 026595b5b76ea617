using System.Text.Json;
using System.Text.Json.Serialization;
using HardenImage.Common;
using HardenImage.Registry;

namespace HardenImage.Model;

/// <summary>
/// artifacts/models.json: what <c>harden model push</c> put where, for sign, verify, deploy pinning and fetch
/// (docs/model.md#artifactsmodelsjson). One writer (<see cref="Save"/>, under the record lock, atomically) and one
/// reader (<see cref="Load"/>): later stages never re-derive a digest from a tag.
/// <code>
/// {"registry": "oci:artifacts/registry",
///  "models": {"tiny-lm": {"repository": "models/tiny-lm", "version": "1", "digest": "sha256:…",
///             "reference": "oci:artifacts/registry/models/tiny-lm@sha256:…", "mlbom": "models/tiny-lm.cdx.json"}}}
/// </code>
/// </summary>
public sealed record ModelRecordFile
{
    public const string FileName = "models.json";

    [JsonPropertyName("registry")] public required string Registry { get; init; }
    [JsonPropertyName("models")] public SortedDictionary<string, PushedModel> Models { get; init; } = new(StringComparer.Ordinal);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static string PathIn(string artifacts) => Path.Combine(artifacts, FileName);

    /// <summary>Null when absent; a present but unreadable record is an error naming it and the fix.</summary>
    public static ModelRecordFile? Load(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            var file = BoundedJson.ReadFile<ModelRecordFile>(path, "model record", InputLimits.MaxRecordBytes, Json);
            foreach (var (name, model) in file.Models)
            {
                if (!Oci.Digest.TryParse(model.Digest, out _))
                    throw new HardenException($"{path}: model '{name}' has digest '{model.Digest}', not sha256:<64 hex>");
            }
            return file;
        }
        catch (HardenException e)
        {
            throw new HardenException($"{e.Message.TrimEnd('.')}. Re-run 'harden model push' to write it again.", e.ExitCode, e);
        }
    }

    /// <summary>
    /// Merges <paramref name="models"/> into the record under its lock and writes it atomically. A different registry
    /// replaces the file: its entries would name digests that are not in the new one.
    /// </summary>
    public static ModelRecordFile Save(string path, string registry, IEnumerable<PushedModel> models)
    {
        ModelRecordFile file = null!;
        RecordFile.Update(path, text =>
        {
            ModelRecordFile? existing = null;
            if (text != null)
            {
                try { existing = JsonSerializer.Deserialize<ModelRecordFile>(text, Json); }
                catch (JsonException) { existing = null; } // rewritten whole below
            }
            file = existing != null && existing.Registry == registry ? existing : new ModelRecordFile { Registry = registry };
            foreach (var m in models) file.Models[m.Name] = m;
            return JsonSerializer.Serialize(file, Json);
        });
        return file;
    }
}

/// <summary>One pushed model: repository, version (its tag), manifest digest, the pinned reference and its ML-BOM.</summary>
public sealed record PushedModel
{
    [JsonIgnore] public string Name { get; init; } = "";
    [JsonPropertyName("repository")] public required string Repository { get; init; }
    [JsonPropertyName("version")] public required string Version { get; init; }
    /// <summary>The model's manifest digest: what is signed and what a Deployment pins.</summary>
    [JsonPropertyName("digest")] public required string Digest { get; init; }
    /// <summary><c>host/repository@sha256:…</c> or <c>oci:DIR/repository@sha256:…</c> (<see cref="ImageReference"/>'s grammar).</summary>
    [JsonPropertyName("reference")] public required string Reference { get; init; }
    /// <summary>The ML-BOM, relative to the artifacts directory.</summary>
    [JsonPropertyName("mlbom")] public required string MlBom { get; init; }
}
