using System.Text.Json.Nodes;
using HardenImage.Build;
using HardenImage.Deploy;
using HardenImage.Lock;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Deploy;

/// <summary>Schemas loaded once per test class (4 MB swagger + 1.4 MB Kyverno CRD + 0.4 MB ImageValidatingPolicy CRD).</summary>
public sealed class SchemaFixture
{
    public ManifestSchemas Schemas { get; } = new();
}

/// <summary>An artifacts directory with build.json (fake but well-formed digests) and the signing public key.</summary>
internal sealed class DeployWorkspace : IDisposable
{
    public const string Registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hardened";

    private readonly TempDir _dir = new("hi-deploy");

    public DeployWorkspace(IEnumerable<string>? images = null, bool withKey = true)
    {
        Directory.CreateDirectory(Artifacts);
        Directory.CreateDirectory(DeployDir);
        var names = images?.ToList() ?? ["inference-cpu", "inference-cuda", "inference-cuda-debian", "inference-neuron"];
        WriteBuildJson(names.Select(n => (n, DigestOf(n))));
        if (withKey)
        {
            Directory.CreateDirectory(Path.Combine(Artifacts, "keys"));
            File.Copy(Path.Combine(AppContext.BaseDirectory, "TestData", "Deploy", "cosign.pub"), Path.Combine(Artifacts, "keys", "cosign.pub"));
        }
        foreach (var f in Directory.EnumerateFiles(Path.Combine(RepoRoot.Find(), "deploy"), "*.yaml"))
            File.Copy(f, Path.Combine(DeployDir, Path.GetFileName(f)));
        PackModel(ModelName);
    }

    /// <summary>The model the shipped descriptions pin (deploy/*.yaml model.name).</summary>
    public const string ModelName = "tiny-lm";

    /// <summary>The packed model: ModelPacker into artifacts/models/oci, recorded in models.json as pushed to oci:artifacts/registry.</summary>
    public HardenImage.Model.PackedModel Packed { get; private set; } = null!;

    public string ModelSourceDir => _dir.Combine("model-src");

    public string ModelRepository => $"{Registry}/models/{ModelName}";

    /// <summary>Packs <paramref name="from"/> (default: a small model with a sub-directory, written here) as <paramref name="name"/>, replacing the record.</summary>
    public void PackModel(string name, string? from = null)
    {
        if (from == null)
        {
            from = ModelSourceDir;
            Directory.CreateDirectory(Path.Combine(from, "neff"));
            File.WriteAllBytes(Path.Combine(from, "model.pt"), System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name)));
            File.WriteAllText(Path.Combine(from, "tokenizer.json"), "{\"vocab\":[\"a\",\"b\"]}");
            File.WriteAllBytes(Path.Combine(from, "neff", "graph.neff"), new byte[512]);
        }
        var layout = HardenImage.Oci.OciLayout.OpenOrCreate(Path.Combine(Artifacts, "models", "oci"));
        Packed = new HardenImage.Model.ModelPacker(layout).Pack(new HardenImage.Model.ModelPackRequest(from, name, "1", HardenImage.Model.ModelCard.Empty));
        HardenImage.Model.ModelRecordFile.Save(HardenImage.Model.ModelRecordFile.PathIn(Artifacts), "oci:artifacts/registry", [new HardenImage.Model.PushedModel
        {
            Name = name, Repository = $"models/{name}", Version = "1", Digest = Packed.Manifest.Digest,
            Reference = $"oci:artifacts/registry/models/{name}@{Packed.Manifest.Digest}", MlBom = $"models/{name}.cdx.json",
        }]);
    }

    public string Root => _dir.Path;
    public string Artifacts => _dir.Combine("artifacts");
    public string DeployDir => _dir.Combine("deploy");

    public static string DigestOf(string name) =>
        "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name)));

    public void WriteBuildJson(IEnumerable<(string Name, string Index)> images)
    {
        var arr = new JsonArray(images.Select(i => (JsonNode?)new JsonObject
        {
            ["name"] = i.Name,
            ["index"] = i.Index,
            ["architectures"] = new JsonArray(),
        }).ToArray());
        File.WriteAllText(Path.Combine(Artifacts, "build.json"), new JsonObject { ["version"] = 1, ["images"] = arr }.ToJsonString());
    }

    public DeployOptions Options(string? registry = Registry) => new()
    {
        DeployDir = DeployDir,
        ArtifactsDir = Artifacts,
        Registry = registry,
        KnownImages = ImageSet.Load(Path.Combine(RepoRoot.Find(), "images")).Images.Keys.ToList(),
    };

    public void Dispose() => _dir.Dispose();
}
