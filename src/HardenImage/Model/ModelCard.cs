using HardenImage.Common;
using YamlDotNet.RepresentationModel;

namespace HardenImage.Model;

/// <summary>A dataset the model was trained or evaluated on, as the card names it.</summary>
public sealed record ModelDataset(string Name, string? Url, string? Description);

/// <summary>
/// The small file a model's owner writes (docs/model.md#the-model-card): what the ModelPack config's descriptor and
/// the ML-BOM's <c>modelCard</c> say about the model beyond its files. Every field is optional; an unknown field is
/// an error with a "did you mean", like images/*.yaml.
/// </summary>
public sealed record ModelCard
{
    public string? Description { get; init; }
    /// <summary>SPDX license expressions.</summary>
    public IReadOnlyList<string> Licenses { get; init; } = [];
    public IReadOnlyList<string> Authors { get; init; } = [];
    public string? Vendor { get; init; }
    public string? Family { get; init; }
    public string? Architecture { get; init; }
    /// <summary>"safetensors", "gguf", "onnx", "torchscript", "neff"...</summary>
    public string? Format { get; init; }
    public string? ParamSize { get; init; }
    public string? Precision { get; init; }
    public string? Quantization { get; init; }
    public string? SourceUrl { get; init; }
    public string? DocUrl { get; init; }
    public string? Revision { get; init; }
    public IReadOnlyList<ModelDataset> Datasets { get; init; } = [];
    public string? IntendedUse { get; init; }
    public IReadOnlyList<string> Limitations { get; init; } = [];

    public static readonly ModelCard Empty = new();

    private static readonly string[] Fields =
    [
        "description", "license", "licenses", "authors", "vendor", "family", "architecture", "format", "paramSize",
        "precision", "quantization", "sourceURL", "docURL", "revision", "datasets", "intendedUse", "limitations",
    ];

    public static ModelCard Load(string path)
    {
        var root = YamlFieldReader.ReadRoot(path, "docs/model.md#the-model-card");
        var r = new YamlFieldReader(path);
        r.Fields(root, Fields);
        var licenses = new List<string>();
        if (r.String(root, "license") is { } one) licenses.Add(one);
        licenses.AddRange(r.StringList(root, "licenses") ?? []);
        foreach (var l in licenses)
            if (string.IsNullOrWhiteSpace(l) || l.Any(char.IsControl))
                throw r.Error(root, $"license '{l}' is not an SPDX license expression (e.g. Apache-2.0)");
        var datasets = new List<ModelDataset>();
        foreach (var node in r.Sequence(root, "datasets") ?? [])
        {
            if (node is YamlScalarNode s) { datasets.Add(new ModelDataset(s.Value ?? "", null, null)); continue; }
            if (node is not YamlMappingNode m) throw r.Error(node, "a dataset is a name or a mapping with name, url, description");
            r.Fields(m, "name", "url", "description");
            datasets.Add(new ModelDataset(r.String(m, "name", required: true)!, r.String(m, "url"), r.String(m, "description")));
        }
        var limitations = r.Node(root, "limitations") is YamlScalarNode single ? [single.Value ?? ""] : r.StringList(root, "limitations") ?? [];
        return new ModelCard
        {
            Description = r.String(root, "description"),
            Licenses = licenses,
            Authors = r.StringList(root, "authors") ?? [],
            Vendor = r.String(root, "vendor"),
            Family = r.String(root, "family"),
            Architecture = r.String(root, "architecture"),
            Format = r.String(root, "format"),
            ParamSize = r.String(root, "paramSize"),
            Precision = r.String(root, "precision"),
            Quantization = r.String(root, "quantization"),
            SourceUrl = r.String(root, "sourceURL"),
            DocUrl = r.String(root, "docURL"),
            Revision = r.String(root, "revision"),
            Datasets = datasets,
            IntendedUse = r.String(root, "intendedUse"),
            Limitations = limitations,
        };
    }
}
