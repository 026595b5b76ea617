using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Contracts;

namespace HardenImage.Deploy;

/// <summary>
/// A packed model pinned by the digest of its OCI manifest (ModelPack), with the manifest's exact bytes: the
/// server is given both and checks <c>sha256(Manifest) == Digest</c> before it trusts the per-file digests inside.
/// </summary>
public sealed record PinnedModel(string Name, string Repository, string Digest, byte[] Manifest, string Source)
{
    /// <summary><c>repository@sha256:…</c>: what an image volume, the init container and admission name.</summary>
    public string Reference => $"{Repository}@{Digest}";

    /// <summary>The manifest as the <c>MODEL_MANIFEST</c> environment value (base64: byte-exact through YAML and env).</summary>
    public string ManifestBase64 => Convert.ToBase64String(Manifest);

    /// <summary>Where <c>harden model push</c> put it (models.json <c>registry</c>): what a local verified fetch reads.</summary>
    public string? PushedRegistry { get; init; }
    /// <summary>The repository in <see cref="PushedRegistry"/> (models.json <c>repository</c>).</summary>
    public string? PushedRepository { get; init; }
}

/// <summary>The contract between <c>harden deploy</c>, <c>harden model pack</c> and the inference server.</summary>
public static class ModelPinning
{
    /// <summary>Env: the pinned manifest digest (sha256:…).</summary>
    public const string DigestEnv = "MODEL_MANIFEST_DIGEST";
    /// <summary>Env: the pinned manifest's bytes, base64.</summary>
    public const string ManifestEnv = "MODEL_MANIFEST";
    /// <summary>Layer annotation (ModelPack): the file's path in the model.</summary>
    public const string FilePathAnnotation = "org.cncf.model.filepath";
    /// <summary>
    /// Layer annotation (harden model pack, docs/model.md): lower-case hex SHA-256 of the file's bytes. The server
    /// refuses a manifest with a layer without it (its file could not be checked).
    /// </summary>
    public const string FileSha256Annotation = "dev.hardenimage.model.file.sha256";
    public const string ArtifactType = "application/vnd.cncf.model.manifest.v1+json";
    public const string ConfigMediaType = "application/vnd.cncf.model.config.v1+json";

    /// <summary>
    /// A ModelPack-shaped manifest describing a plain model directory (one raw layer per file, its per-file digest
    /// annotation): what smoke and <c>deploy --local</c> pin for a model they made themselves. Deterministic.
    /// </summary>
    public static (byte[] Bytes, string Digest) DescribeDirectory(string modelDir)
    {
        var layers = new JsonArray();
        var root = Path.GetFullPath(modelDir);
        foreach (var file in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
                     .Select(f => Path.GetRelativePath(root, f).Replace(Path.DirectorySeparatorChar, '/'))
                     .Order(StringComparer.Ordinal))
        {
            var full = Path.Combine(root, file);
            string hex;
            using (var s = File.OpenRead(full)) hex = Convert.ToHexStringLower(SHA256.HashData(s));
            // Raw layers (the file's bytes are the blob): this manifest is never pulled, only pinned.
            layers.Add(new JsonObject
            {
                ["mediaType"] = file.EndsWith(".pt", StringComparison.Ordinal) ? "application/vnd.cncf.model.weight.v1.raw" : "application/vnd.cncf.model.weight.config.v1.raw",
                ["digest"] = "sha256:" + hex,
                ["size"] = new FileInfo(full).Length,
                ["annotations"] = new JsonObject
                {
                    [FilePathAnnotation] = file,
                    [FileSha256Annotation] = hex,
                },
            });
        }
        var empty = "{}"u8.ToArray();
        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.ImageManifest,
            ["artifactType"] = ArtifactType,
            ["config"] = new JsonObject
            {
                ["mediaType"] = ConfigMediaType,
                ["digest"] = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(empty)),
                ["size"] = empty.Length,
            },
            ["layers"] = layers,
        };
        var bytes = System.Text.Encoding.UTF8.GetBytes(manifest.ToJsonString());
        return (bytes, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes)));
    }

    /// <summary>The environment that pins <paramref name="model"/> for the server.</summary>
    public static IReadOnlyDictionary<string, string> Environment(string digest, byte[] manifest) => new Dictionary<string, string>
    {
        [DigestEnv] = digest,
        [ManifestEnv] = Convert.ToBase64String(manifest),
    };
}

/// <summary>
/// Finds the digest each packed model was pushed with and its manifest bytes.
/// <para>Reads <c>artifacts/models.json</c> (written by <c>harden model push</c>, docs/model.md):
/// <c>{"registry":"HOST/NS"|"oci:DIR","models":{"&lt;name&gt;":{"repository":"…","digest":"sha256:…"}}}</c>.
/// Models pushed to an <c>oci:</c> layout get the repository <c>--registry/&lt;repository&gt;</c> (a cluster cannot pull a
/// directory). The manifest is read from the layout it was pushed to (or <c>artifacts/models/oci</c>, where pack wrote it) and must hash to the
/// digest.</para>
/// Threat: Spoofing / Tampering — the pod names one model by digest; a tag or a path could be moved to other weights.
/// </summary>
public sealed partial class PinnedModels
{
    private readonly Dictionary<string, (string Repository, string Digest, string? LayoutRoot, string Source, string PushedRegistry, string PushedRepository)> _models = new(StringComparer.Ordinal);
    private readonly string _artifacts;
    private readonly string? _registry;

    public PinnedModels(string artifactsDir, string? registry)
    {
        _artifacts = artifactsDir;
        _registry = registry?.Trim().TrimEnd('/');
        if (_registry is { Length: 0 }) _registry = null;
        Read(Model.ModelRecordFile.PathIn(artifactsDir));
    }

    /// <summary>Names of the models found.</summary>
    public IReadOnlyCollection<string> Names => _models.Keys;

    /// <summary>The pinned model named <paramref name="name"/>, or a <see cref="HardenException"/> saying what to run.</summary>
    public PinnedModel Resolve(string name, string describedIn)
    {
        if (!_models.TryGetValue(name, out var m))
            throw new HardenException($"{describedIn}: model '{name}' has no digest: it is not in {Model.ModelRecordFile.PathIn(_artifacts)}"
                                      + (_models.Count > 0 ? $" (models: {string.Join(", ", _models.Keys.Order(StringComparer.Ordinal))})" : "")
                                      + ". Run 'harden model pack' and 'harden model push'; models are pinned by digest, never by tag.");
        string repository;
        if (m.LayoutRoot != null)
        {
            if (_registry == null)
                throw new HardenException($"{m.Source}: model '{name}' was pushed to the OCI layout {m.LayoutRoot}, which a cluster cannot pull: "
                                          + "push it to a registry or pass --registry HOST/NS so the manifests name a repository the cluster can pull.");
            repository = $"{_registry}/{m.Repository}";
        }
        else repository = m.Repository;
        var manifest = ReadManifest(name, m.Digest, m.LayoutRoot, m.Repository);
        return new PinnedModel(name, repository, m.Digest, manifest, m.Source) { PushedRegistry = m.PushedRegistry, PushedRepository = m.PushedRepository };
    }

    private byte[] ReadManifest(string name, string digest, string? layoutRoot, string repository)
    {
        var candidates = new List<string>();
        if (layoutRoot != null)
        {
            var root = Path.IsPathRooted(layoutRoot) ? layoutRoot : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(_artifacts))!, layoutRoot);
            candidates.Add(Path.Combine(root, repository.Replace('/', Path.DirectorySeparatorChar)));
            // A relative layout directory in models.json is relative to where push ran; artifacts/ is usually beside it.
            candidates.Add(Path.Combine(_artifacts, Path.GetFileName(layoutRoot.TrimEnd('/')), repository.Replace('/', Path.DirectorySeparatorChar)));
        }
        candidates.Add(Model.ModelPusher.LayoutPath(_artifacts)); // harden model pack's layout
        candidates.Add(ArtifactPaths.Layout(_artifacts));
        foreach (var dir in candidates.Distinct(StringComparer.Ordinal))
        {
            if (!File.Exists(Path.Combine(dir, "oci-layout"))) continue;
            var layout = OciLayout.Open(dir);
            if (!layout.HasBlob(digest)) continue;
            // Read and checked here (not OciLayout.ReadBlob) so a mismatch names the model and the fix.
            var bytes = BoundedFile.ReadAllBytes(layout.BlobPath(digest), InputLimits.MaxOciDocumentBytes, "model manifest");
            var actual = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));
            if (actual != digest)
                throw new HardenException($"{dir}: the manifest blob of model '{name}' hashes to {actual}, not {digest}: the layout is corrupt or tampered with. Run 'harden model pack' and 'harden push' again.");
            return bytes;
        }
        throw new HardenException($"model '{name}': its manifest {digest} is in none of {string.Join(", ", candidates.Distinct(StringComparer.Ordinal))}; "
                                  + "the server needs the pinned manifest's bytes. Run 'harden deploy' where 'harden model pack' ran (or copy its OCI layout into artifacts/oci).");
    }

    private void Read(string path)
    {
        // The one models.json reader (Model/ModelRecordFile: bounded, digests checked).
        var record = Model.ModelRecordFile.Load(path);
        if (record == null) return;
        var registry = record.Registry;
        string? layoutRoot = registry.StartsWith("oci:", StringComparison.Ordinal) ? registry["oci:".Length..] : null;
        string? host = null;
        if (layoutRoot == null && registry.Length > 0)
            host = Registry.RegistryTarget.Parse(registry, $"{path}: registry").Location;
        foreach (var (name, entry) in record.Models)
        {
            if (!DigestPattern().IsMatch(entry.Digest))
                throw new HardenException($"{path}: model '{name}' has digest '{entry.Digest}', not a sha256 digest. Run 'harden model push' again.");
            var repository = entry.Repository;
            if (layoutRoot == null && !PinnedImages.HasRegistryHost(repository))
            {
                if (host == null) throw new HardenException($"{path}: model '{name}' repository '{repository}' names no registry host and the file names no registry.");
                repository = $"{host}/{repository}";
            }
            _models[name] = (repository, entry.Digest, layoutRoot, path, registry, entry.Repository);
        }
    }

    [GeneratedRegex("^sha256:[0-9a-f]{64}$")]
    private static partial Regex DigestPattern();
}
