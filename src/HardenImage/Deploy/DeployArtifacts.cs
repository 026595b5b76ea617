using HardenImage.Aws;
using HardenImage.Build;
using HardenImage.Model;
using HardenImage.Registry;
using HardenImage.Signing;
using HardenImage.Contracts;
using HardenImage.Lock;

namespace HardenImage.Deploy;

/// <summary><c>harden deploy</c>'s work over the artifacts: what the image set knows, and the checked render.</summary>
public static class DeployArtifacts
{
    /// <summary>
    /// The image set's names (null without an image set at <paramref name="imagesDir"/>) and, with
    /// <paramref name="skipUnbuildable"/> (no --name), the images that need unreachable repositories with why: their
    /// deployments are skipped and said so, as <c>harden build</c> skips those images.
    /// </summary>
    public static (IReadOnlyCollection<string>? Known, Dictionary<string, string> Unbuildable) ImageSetFacts(string imagesDir, bool skipUnbuildable)
    {
        IReadOnlyCollection<string>? known = null;
        var unbuildable = new Dictionary<string, string>(StringComparer.Ordinal);
        if (Directory.Exists(imagesDir) && File.Exists(Path.Combine(imagesDir, "sources.yaml")))
        {
            var set = ImageSet.Load(imagesDir);
            known = set.Images.Keys.ToList();
            // Naming one with --name still refuses it without a digest.
            if (skipUnbuildable)
                foreach (var image in set.Images.Values)
                    if (set.Ancestors(image).Prepend(image).FirstOrDefault(i => i.RequiresNetwork != null) is { } blocked)
                        unbuildable[image.Name] = "needs " + blocked.RequiresNetwork;
        }
        return (known, unbuildable);
    }

    /// <summary>
    /// Renders and writes; when pushed.json names where the images were pushed (a registry, or the OCI layout that
    /// holds the same digests), every pinned reference is first checked there as the admission controllers will.
    /// Returns where the check ran, or null when there was nothing pushed to check against (said as a warning).
    /// </summary>
    public static async Task<(DeployResult Result, string? CheckedIn)> RenderAsync(DeployOptions options, bool insecure, CancellationToken ct)
    {
        var pushed = PushedFile.TryLoad(ArtifactPaths.PushRecord(options.ArtifactsDir));
        if (pushed == null)
        {
            var rendered = new DeployRenderer().RenderAndWrite(options);
            return (rendered with { Warnings = [.. rendered.Warnings, $"{ArtifactPaths.PushRecord(options.ArtifactsDir)} is missing: signatures and attestations of the pinned digests were not checked (run 'harden push' and 'harden sign' first)"] }, null);
        }
        using var services = new RegistryClients(new AwsAccess());
        var registry = services.Create(RegistryTarget.Parse(pushed.Registry), insecure);
        using var key = PemKeys.ReadPublicKey(SigningPublicKey.Load(options.PublicKeyPath).Pem, options.PublicKeyPath);
        // Models are read from where 'harden model push' recorded them (artifacts/models.json), with the same key.
        var models = ModelRecordFile.Load(ModelRecordFile.PathIn(options.ArtifactsDir));
        var modelRegistry = models == null ? null
            : models.Registry == pushed.Registry ? registry : services.Create(RegistryTarget.Parse(models.Registry), insecure);
        var check = new SignatureStoreAdmissionCheck(image =>
                pushed.Images.TryGetValue(image.Name, out var p) && p.Index == image.Digest
                    ? new RegistrySignatureStore(registry, p.Repository) : null,
            key, pushed.Registry,
            model => modelRegistry != null && model.PushedRepository != null && models!.Models.TryGetValue(model.Name, out var m) && m.Digest == model.Digest
                ? new RegistrySignatureStore(modelRegistry, model.PushedRepository) : null);
        return (await new DeployRenderer().RenderCheckAndWriteAsync(options, check, ct), pushed.Registry);
    }
}
