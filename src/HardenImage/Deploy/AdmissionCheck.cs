using System.Security.Cryptography;
using System.Text.Json.Nodes;
using HardenImage.Oci;
using HardenImage.Signing;

namespace HardenImage.Deploy;

/// <summary>Checks one image reference of a rendered pod the way the cluster's admission controllers will.</summary>
public interface IAdmissionCheck
{
    /// <summary>
    /// Why <paramref name="reference"/> (<c>repository@sha256:…</c>, as the pod spec names it; <paramref name="image"/>
    /// is the pinned image it came from) would be refused at admission; empty when it would be admitted.
    /// </summary>
    Task<IReadOnlyList<string>> FailuresAsync(PinnedImage image, string reference, CancellationToken ct = default);

    /// <summary>Why the pinned model would be refused at admission (signature, ML-BOM attestation); empty when admitted.</summary>
    Task<IReadOnlyList<string>> ModelFailuresAsync(PinnedModel model, CancellationToken ct = default) =>
        Task.FromResult<IReadOnlyList<string>>(["this admission check cannot verify models"]);
}

/// <summary>
/// The admission check against the registry (or OCI layout) the images were pushed to: the signature and every
/// attestation the rendered policies require, read from the <c>.sig</c>/<c>.att</c> of exactly the digest the pod
/// pins — what cosign, Kyverno and policy-controller read — with the key the policies pin. Threat: Spoofing /
/// Repudiation — manifests whose pods the controllers would refuse (attestations only on platform manifests, an
/// unsigned index) are never written, so that class of bug fails at deploy time instead of in the cluster.
/// </summary>
public sealed class SignatureStoreAdmissionCheck(Func<PinnedImage, ISignatureStore?> storeFor, ECDsa publicKey, string whereSigned,
    Func<PinnedModel, ISignatureStore?>? modelStoreFor = null)
    : IAdmissionCheck
{
    /// <summary>What the model policy requires: our signature on the manifest digest and a signed CycloneDX ML-BOM.</summary>
    public static VerificationPolicy ModelRequirements { get; } = new() { RequiredAttestations = ["sbom"] };

    public async Task<IReadOnlyList<string>> ModelFailuresAsync(PinnedModel model, CancellationToken ct = default)
    {
        var store = modelStoreFor?.Invoke(model);
        if (store == null)
            return [$"{whereSigned} has no push of model '{model.Name}' at {model.Digest}: nothing to verify. Run 'harden push' and 'harden sign'."];
        var report = await new ImageVerifier(store, publicKey).VerifyAsync(Digest.Parse(model.Digest), ModelRequirements, ct);
        return report.Failures;
    }

    public async Task<IReadOnlyList<string>> FailuresAsync(PinnedImage image, string reference, CancellationToken ct = default)
    {
        var at = reference.LastIndexOf('@');
        if (at < 0 || !Digest.TryParse(reference[(at + 1)..], out var digest))
            return [$"not pinned by digest (repository@sha256:…)"];
        var store = storeFor(image);
        if (store == null)
            return [$"{whereSigned} has no push of image '{image.Name}' at {digest}: nothing to verify. Run 'harden push' and 'harden sign'."];
        var report = await new ImageVerifier(store, publicKey).VerifyAsync(digest, AdmissionPolicyRenderer.Requirements, ct);
        return report.Failures;
    }
}

/// <summary>Every image reference of a rendered pod template: containers, initContainers and ephemeralContainers.</summary>
public static class PodImages
{
    /// <summary>Every image volume reference of a rendered pod template (<c>spec.volumes[].image.reference</c>).</summary>
    public static IReadOnlyList<string> ModelVolumes(JsonObject workload)
    {
        var spec = workload["spec"]?["template"]?["spec"] ?? workload["spec"];
        return (spec?["volumes"] as JsonArray ?? [])
            .Where(v => v?["image"] != null)
            .Select(v => v!["image"]?["reference"] is JsonValue r && r.TryGetValue<string>(out var s) ? s : "")
            .Distinct(StringComparer.Ordinal).ToList();
    }

    public static IReadOnlyList<string> Of(JsonObject workload)
    {
        var spec = workload["spec"]?["template"]?["spec"] ?? workload["spec"];
        return new[] { "containers", "initContainers", "ephemeralContainers" }
            .SelectMany(list => spec?[list] as JsonArray ?? [])
            .Select(c => c?["image"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : "")
            .Distinct(StringComparer.Ordinal).ToList();
    }
}
