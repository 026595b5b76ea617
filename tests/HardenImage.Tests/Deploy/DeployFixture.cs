using System.Text.Json.Nodes;
using HardenImage.Build;
using HardenImage.Deploy;
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
