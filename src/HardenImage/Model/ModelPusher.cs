using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Registry;

namespace HardenImage.Model;

/// <summary>A model packed in a layout: NAME:VERSION tag → manifest.</summary>
public sealed record PackedModelTag(string Name, string Version, Descriptor Manifest);

/// <summary>Which packed models <see cref="ModelPusher.PushArtifactsAsync"/> pushes, and how.</summary>
/// <param name="Name">Only this model; null = every packed model.</param>
/// <param name="Version">Only this version (when the layout holds several of one model).</param>
public sealed record ModelPushRequest(string? Name = null, string? Version = null, bool CreateRepositories = false, bool Insecure = false);

/// <summary>
/// Pushes packed models with the images' <see cref="ImagePusher"/> (same blob upload, resume, mount, ECR quirks and
/// "tag last" order) to repository <c>NS/models/NAME</c>, tagged with the version, and says what went where as
/// <see cref="PushedModel"/> records for artifacts/models.json.
/// </summary>
public sealed class ModelPusher
{
    public const string RepositoryPrefix = "models/";

    private readonly OciLayout _layout;
    private readonly RegistryTarget _target;
    private readonly ImagePusher _pusher;

    public ModelPusher(OciLayout layout, IRegistry registry, RegistryTarget target, int parallelism = 4, IRepositoryCreator? creator = null)
    {
        _layout = layout;
        _target = target;
        _pusher = new ImagePusher(layout, registry, target.Namespace, parallelism, creator);
    }

    /// <summary>The models tagged NAME:VERSION in a model layout (only ModelPack manifests; anything else is refused).</summary>
    public static IReadOnlyList<PackedModelTag> ModelsIn(OciLayout layout, string? only = null, string? version = null)
    {
        var models = new List<PackedModelTag>();
        foreach (var d in layout.ReadIndex().Manifests)
        {
            if (d.Annotations?.GetValueOrDefault(Annotations.RefName) is not { } refName) continue;
            var colon = refName.LastIndexOf(':');
            if (colon <= 0) throw new HardenException($"{layout.Root}: tag '{refName}' is not NAME:VERSION; is this a model layout (harden model pack writes one)?");
            var name = refName[..colon];
            if ((only != null && name != only) || (version != null && version != VersionOf(refName))) continue;
            ModelPacker.ValidateNameAndVersion(name, VersionOf(refName));
            var manifest = layout.ReadJson<ImageManifest>(d.Digest);
            ModelArtifact.Files(manifest, $"{layout.Root}: {refName}");
            models.Add(new PackedModelTag(name, VersionOf(refName), d with { Annotations = null }));
        }
        if ((only != null || version != null) && models.Count == 0)
            throw new HardenException($"{string.Join(" ", new[] { only == null ? null : "--name " + only, version == null ? null : "--version " + version }.OfType<string>())}: no such packed model in {layout.Root}. Run 'harden model pack' first.");
        if (models.Count == 0) throw new HardenException($"{layout.Root} holds no packed models. Run 'harden model pack' first.");
        var twice = models.GroupBy(m => m.Name).FirstOrDefault(g => g.Count() > 1);
        if (twice != null)
            throw new HardenException($"{layout.Root}: model '{twice.Key}' is packed in several versions ({string.Join(", ", twice.Select(m => m.Version))}); push one with --name {twice.Key} --version V (artifacts/models.json records one version per model)");
        return models.OrderBy(m => m.Name, StringComparer.Ordinal).ToList();
    }

    private static string VersionOf(string refName) => refName[(refName.LastIndexOf(':') + 1)..];

    public async Task<IReadOnlyList<PushedModel>> PushAsync(IReadOnlyList<PackedModelTag> models, IProgress<BlobProgress>? progress = null, CancellationToken ct = default)
    {
        var results = await _pusher.PushAsync(
            models.Select(m => new ImageToPush(RepositoryPrefix + m.Name, [m.Version], m.Manifest)), progress, ct).ConfigureAwait(false);
        return models.Zip(results, (m, r) => new PushedModel
        {
            Name = m.Name,
            Repository = r.Repository,
            Version = m.Version,
            Digest = r.IndexDigest,
            Reference = _target.Reference(r.Repository, r.IndexDigest).ToString(),
            MlBom = MlBomPath(m.Name),
        }).ToList();
    }

    /// <summary>
    /// <c>harden model push</c>'s work: the models packed in ARTIFACTS/models/oci (or the one named) to
    /// <c>NS/models/NAME</c>, with the run's one credential chain, recorded in ARTIFACTS/models.json.
    /// </summary>
    public static async Task<(string RecordPath, IReadOnlyList<PushedModel> Pushed)> PushArtifactsAsync(string artifactsDir, RegistryTarget target,
        RegistryClients clients, ModelPushRequest request, IProgress<BlobProgress>? progress, CancellationToken ct)
    {
        var layout = OpenPackedModels(artifactsDir);
        var models = ModelsIn(layout, request.Name, request.Version);
        var creator = request.CreateRepositories ? clients.RepositoryCreatorFor(target) : null;
        var registry = clients.Create(target, request.Insecure);
        var pushed = await new ModelPusher(layout, registry, target, 4, creator).PushAsync(models, progress, ct).ConfigureAwait(false);
        var recordPath = ModelRecordFile.PathIn(artifactsDir);
        ModelRecordFile.Save(recordPath, target.ToString(), pushed);
        return (recordPath, pushed);
    }

    /// <summary>The packed models' layout, or the one-line refusal; what a command checks before it sets up registry
    /// clients (their AWS options are judged after this).</summary>
    public static OciLayout OpenPackedModels(string artifactsDir)
    {
        var layoutPath = LayoutPath(artifactsDir);
        if (!File.Exists(Path.Combine(layoutPath, "index.json")))
            throw new HardenException($"{layoutPath}: no packed models. Run 'harden model pack DIR --name N --version V' first.");
        return OciLayout.Open(layoutPath);
    }

    /// <summary>The ML-BOM of a model, relative to the artifacts directory.</summary>
    public static string MlBomPath(string name) => $"models/{name}.cdx.json";

    /// <summary>The model layout inside an artifacts directory.</summary>
    public static string LayoutPath(string artifacts) => Path.Combine(artifacts, "models", "oci");
}
