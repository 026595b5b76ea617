using System.Security.Cryptography;
using System.Text.Json;
using HardenImage.Model;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Signing;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Model;

/// <summary>
/// A model directory, a model layout, an OCI layout registry and a signing key in one temp directory: pack, push,
/// sign and fetch run on it with the real code (no fakes), so each danger test changes one thing.
/// </summary>
internal sealed class ModelTestKit : IDisposable
{
    private readonly TempDir _dir = new("hi-model");

    public ModelTestKit()
    {
        ModelDir = _dir.Combine("model");
        Layout = OciLayout.OpenOrCreate(_dir.Combine("artifacts", "models", "oci"));
        Registry = new OciLayoutRegistry(_dir.Combine("registry"));
        Target = RegistryTarget.Parse("oci:" + Registry.Root);
        Key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    }

    public string ModelDir { get; }
    public OciLayout Layout { get; }
    public OciLayoutRegistry Registry { get; }
    public RegistryTarget Target { get; }
    public ECDsa Key { get; }

    public string Combine(params string[] parts) => _dir.Combine(parts);

    public static readonly ModelCard Card = new()
    {
        Description = "A tiny next-character model for tests",
        Licenses = ["Apache-2.0"],
        Authors = ["platform-security@example.org"],
        Family = "tinylm",
        Architecture = "transformer",
        Format = "torchscript",
        Datasets = [new ModelDataset("alphabet", "https://example.org/alphabet", "the 26 letters"), new ModelDataset("punctuation", null, null)],
        IntendedUse = "smoke tests of the inference server",
        Limitations = ["knows only the alphabet", "not for clinical use"],
    };

    /// <summary>Writes a small model: weights, config, tokenizer, a README and a compiled artifact in a sub-directory.</summary>
    public string WriteModel(string? dir = null, int seed = 1, bool reverseOrder = false)
    {
        dir ??= ModelDir;
        var files = new List<(string Path, byte[] Bytes)>
        {
            ("model.safetensors", Random(seed, 300_000)),
            ("config.json", "{\"vocab_size\":29}"u8.ToArray()),
            ("tokenizer.json", "{\"vocab\":[\" \",\"a\",\"b\"]}"u8.ToArray()),
            ("README.md", "# tiny\n"u8.ToArray()),
            ("neuron/graph.neff", Random(seed + 1, 70_000)),
            ("neuron/deep/er/x.bin", Random(seed + 2, 10)),
            ("empty.txt", []),
        };
        if (reverseOrder) files.Reverse();
        foreach (var (path, bytes) in files)
        {
            var full = Path.Combine(dir, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllBytes(full, bytes);
        }
        return dir;
    }

    public static byte[] Random(int seed, int length)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    public PackedModel Pack(string name = "tiny-lm", string version = "1", string? dir = null) =>
        new ModelPacker(Layout).Pack(new ModelPackRequest(dir ?? ModelDir, name, version, Card));

    /// <summary>Packs, pushes and signs (signature + ML-BOM attestation) with <see cref="Key"/>; returns the pushed record.</summary>
    public async Task<PushedModel> PublishAsync(string name = "tiny-lm", ECDsa? signWith = null)
    {
        var packed = Pack(name);
        var pushed = (await new ModelPusher(Layout, Registry, Target).PushAsync(ModelPusher.ModelsIn(Layout, name))).Single();
        await SignAsync(pushed, MlBomWriter.Write(packed, Card), signWith ?? Key);
        return pushed;
    }

    public async Task SignAsync(PushedModel model, byte[] mlbom, ECDsa key)
    {
        using var signer = new EcdsaFileSigner(ECDsa.Create(key.ExportParameters(true)));
        var imageSigner = new ImageSigner(signer, new RegistrySignatureStore(Registry, model.Repository));
        var digest = Digest.Parse(model.Digest);
        await imageSigner.SignAsync(model.Repository, digest);
        await imageSigner.AttestAsync(model.Repository, digest, PredicateTypes.CycloneDx, Predicates.CycloneDx(mlbom));
    }

    public Task<FetchedModel> FetchAsync(PushedModel model, string into, ECDsa? key = null, VerificationPolicy? policy = null) =>
        new ModelFetcher(Registry, key ?? Key).FetchAsync(model.Repository, Digest.Parse(model.Digest), into, policy);

    /// <summary>The path of a blob in the registry's layout for <paramref name="repository"/>.</summary>
    public string RegistryBlob(string repository, string digest) =>
        Path.Combine(Registry.RepositoryPath(repository), "blobs", "sha256", Digest.Parse(digest).Hex);

    public ImageManifest Manifest(PushedModel model) =>
        OciJson.Deserialize<ImageManifest>(File.ReadAllBytes(RegistryBlob(model.Repository, model.Digest)));

    public static string Json(object o) => JsonSerializer.Serialize(o);

    public void Dispose()
    {
        Key.Dispose();
        // Fetched trees are read-only: give write back so the temp directory can go.
        foreach (var d in Directory.EnumerateDirectories(_dir.Path, "*", SearchOption.AllDirectories))
            File.SetUnixFileMode(d, (UnixFileMode)Convert.ToInt32("755", 8));
        _dir.Dispose();
    }
}
