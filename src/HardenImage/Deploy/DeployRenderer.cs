using HardenImage.Common;
using HardenImage.Contracts;

namespace HardenImage.Deploy;

/// <summary>Inputs of <c>harden deploy</c>.</summary>
public sealed record DeployOptions
{
    /// <summary>Directory of deploy/*.yaml.</summary>
    public string DeployDir { get; init; } = "deploy";
    /// <summary>artifacts/: build.json, pushed.json and oci/ are read from it, deploy/ is written into it.</summary>
    public string ArtifactsDir { get; init; } = "artifacts";
    /// <summary>Registry HOST/NS for images found only in build.json.</summary>
    public string? Registry { get; init; }
    /// <summary>Signing public key (cosign.pub); default &lt;artifacts&gt;/keys/cosign.pub.</summary>
    public string? PublicKey { get; init; }
    /// <summary>Render only this deployment (the admission policies still cover every pinned image rendered).</summary>
    public string? Name { get; init; }
    /// <summary>Image names of the set (images/*.yaml); null skips that check.</summary>
    public IReadOnlyCollection<string>? KnownImages { get; init; }
    /// <summary>
    /// Images that could not be built here (their repositories are unreachable): deployments of them are skipped
    /// with a warning instead of refused, as `harden build` skips the images themselves.
    /// </summary>
    public IReadOnlyDictionary<string, string> UnbuildableImages { get; init; } = new Dictionary<string, string>();

    /// <summary>Overrides every described model's mount (e.g. init-container for clusters without image volumes); null keeps each description's.</summary>
    public ModelMount? ModelMount { get; init; }

    /// <summary>Name of the harden CLI image (images/harden.yaml) the model-fetch init container runs.</summary>
    public string FetcherImage { get; init; } = "harden";

    public string OutputDir => ArtifactPaths.Deploy(ArtifactsDir);
    public string PublicKeyPath => PublicKey ?? Path.Combine(ArtifactsDir, "keys", "cosign.pub");
}

/// <summary>What <c>harden deploy</c> wrote: per deployment its objects and files, then the admission policies.</summary>
public sealed record DeployResult(IReadOnlyList<RenderedDeployment> Deployments, IReadOnlyList<RenderedObject> AdmissionPolicies,
    IReadOnlyList<string> Warnings)
{
    /// <summary>(directory name, object, path) for every file written, in order.</summary>
    public IEnumerable<(string Directory, RenderedObject Object)> Files =>
        Deployments.SelectMany(d => d.Objects.Select(o => (d.Description.Name, o)))
            .Concat(AdmissionPolicies.Select(o => (AdmissionPolicyRenderer.OutputDirectoryName, o)));
}

/// <summary>
/// <c>harden deploy</c>: loads the descriptions, pins each image by digest, refuses unsafe inputs (no digest, root,
/// no signing key), renders the manifests and admission policies and writes them, one object per file.
/// </summary>
public sealed class DeployRenderer(ManifestRenderer manifests, AdmissionPolicyRenderer policies)
{
    public DeployRenderer() : this(new ManifestRenderer(), new AdmissionPolicyRenderer()) { }

    /// <summary>Renders without writing (the checks run; nothing touches the disk).</summary>
    public DeployResult Render(DeployOptions options)
    {
        // The key first: without it no policy can be written, so nothing is rendered at all.
        var key = SigningPublicKey.Load(options.PublicKeyPath);
        var descriptions = DeploymentDescriptions.LoadDirectory(options.DeployDir, options.KnownImages);
        if (options.Name != null)
        {
            descriptions = descriptions.Where(d => d.Name == options.Name).ToList();
            if (descriptions.Count == 0)
                throw new HardenException($"--name {options.Name}: no deployment of that name in {options.DeployDir}");
        }
        var pins = new PinnedImages(options.ArtifactsDir, options.Registry);
        var models = new PinnedModels(options.ArtifactsDir, options.Registry);
        var users = new ImageUserCheck(ArtifactPaths.Layout(options.ArtifactsDir));
        var warnings = new List<string>();
        var rendered = new List<RenderedDeployment>();
        foreach (var d in descriptions)
        {
            if (options.UnbuildableImages.TryGetValue(d.Image, out var why) && !pins.Has(d.Image))
            {
                warnings.Add($"skipped deployment {d.Name}: image {d.Image} is not built here ({why})");
                continue;
            }
            var image = pins.Resolve(d.Image);
            CheckImageUser(d, image, users, warnings);
            var described = d.Model != null && options.ModelMount is { } mount && d.Model.Mount != Deploy.ModelMount.Claim
                ? d with { Model = d.Model with { Mount = mount } }
                : d;
            rendered.Add(manifests.Render(described, image, ModelInputsFor(described, options, pins, models, key, warnings)));
        }
        var admission = policies.Render(
            rendered.Select(r => r.Image).Concat(rendered.Select(r => r.Fetcher).OfType<PinnedImage>()).DistinctBy(i => i.Reference).ToList(),
            rendered.Select(r => r.Description.Namespace).ToList(), key,
            rendered.Select(r => r.Model).OfType<PinnedModel>().DistinctBy(m => m.Reference).ToList());
        return new DeployResult(rendered, admission, warnings);
    }

    private static ModelInputs ModelInputsFor(DeploymentDescription d, DeployOptions options, PinnedImages pins, PinnedModels models,
        SigningPublicKey key, List<string> warnings)
    {
        if (d.Model == null) return new ModelInputs(null, null, null, null);
        if (d.Model.Name == null)
        {
            warnings.Add($"{d.Name}: model.claimName '{d.Model.ClaimName}' without model.name: nothing pins the model, and the server refuses to start "
                         + $"without {ModelPinning.DigestEnv}. Name a packed model (model.name, 'harden model pack').");
            return new ModelInputs(null, null, null, null);
        }
        var model = models.Resolve(d.Model.Name, d.File);
        if (d.Model.Mount != ModelMount.InitContainer) return new ModelInputs(model, null, null, null);
        if (pins.Has(options.FetcherImage)) return new ModelInputs(model, pins.Resolve(options.FetcherImage), null, key.Pem);
        var missing = $"the harden CLI image '{options.FetcherImage}' (images/{options.FetcherImage}.yaml) is not built or pushed: build and push it, then run 'harden deploy' again";
        warnings.Add($"{d.Name}: model-fetch init container: {missing}");
        return new ModelInputs(model, null, missing, key.Pem);
    }

    /// <summary>Renders and writes <c>&lt;artifacts&gt;/deploy/&lt;name&gt;/*.yaml</c>; stale YAML files there are removed.</summary>
    public DeployResult RenderAndWrite(DeployOptions options) => Write(options, Render(options));

    /// <summary>
    /// Renders, then runs <paramref name="admission"/> on every image reference of every rendered pod, and writes
    /// only when each would be admitted: a refusal names each reference and why, and leaves the previous output as it was.
    /// </summary>
    public async Task<DeployResult> RenderCheckAndWriteAsync(DeployOptions options, IAdmissionCheck admission, CancellationToken ct = default)
    {
        var result = Render(options);
        var refusals = new List<string>();
        foreach (var d in result.Deployments)
        {
            var deployment = d.Objects.Single(o => o.Kind == "Deployment");
            foreach (var reference in PodImages.Of(deployment.Document))
            {
                // Every reference the pod names is checked, not only the one we meant to pin there.
                var failures = reference == d.Image.Reference ? await admission.FailuresAsync(d.Image, reference, ct)
                    : d.Fetcher != null && reference == d.Fetcher.Reference ? await admission.FailuresAsync(d.Fetcher, reference, ct)
                    : [$"not the pinned image {d.Image.Reference}"];
                refusals.AddRange(failures.Select(f => $"{d.Description.Name}/{deployment.FileName}: {reference}: {f}"));
            }
            foreach (var reference in PodImages.ModelVolumes(deployment.Document))
            {
                var failures = d.Model != null && reference == d.Model.Reference
                    ? await admission.ModelFailuresAsync(d.Model, ct)
                    : [$"not the pinned model {d.Model?.Reference ?? "(none)"}"];
                refusals.AddRange(failures.Select(f => $"{d.Description.Name}/{deployment.FileName}: model {reference}: {f}"));
            }
        }
        if (refusals.Count > 0)
            throw new HardenException($"refusing to write {options.OutputDir}: the admission policies would refuse {refusals.Count} image check(s) "
                                      + "(signature and attestations are read for exactly the digest each pod pins, as cosign, Kyverno and policy-controller do):\n  "
                                      + string.Join("\n  ", refusals) + "\nRun 'harden sign' after 'harden sbom' and 'harden scan', then 'harden deploy' again.", exitCode: 1);
        return Write(options, result);
    }

    private static DeployResult Write(DeployOptions options, DeployResult result)
    {
        foreach (var group in result.Files.GroupBy(f => f.Directory))
        {
            var dir = Path.Combine(options.OutputDir, group.Key);
            Directory.CreateDirectory(dir);
            var written = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (_, obj) in group)
            {
                AtomicFile.WriteAllText(Path.Combine(dir, obj.FileName), obj.Yaml);
                written.Add(obj.FileName);
            }
            foreach (var stale in Directory.EnumerateFiles(dir, "*.yaml"))
                if (!written.Contains(Path.GetFileName(stale))) File.Delete(stale);
        }
        return result;
    }

    /// <summary>Threat: Elevation of privilege — an image configured to run as root is refused.</summary>
    private static void CheckImageUser(DeploymentDescription d, PinnedImage image, ImageUserCheck users, List<string> warnings)
    {
        var configUsers = users.Users(image.Digest);
        if (configUsers == null)
        {
            warnings.Add($"{d.Name}: image {image.Digest} is not in the local OCI layout; its configured user was not checked");
            return;
        }
        var root = configUsers.FirstOrDefault(ImageUserCheck.IsRoot);
        if (root != null)
            throw new HardenException($"{d.File}: image '{d.Image}' ({image.Digest}) runs as root (config User '{root}'). "
                                      + "Refusing to render a pod running as root: set user: 65532:65532 in images/" + d.Image + ".yaml (the default) and rebuild.");
    }
}
