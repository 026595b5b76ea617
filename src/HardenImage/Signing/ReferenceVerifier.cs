using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Registry;

namespace HardenImage.Signing;

/// <summary>What <see cref="ReferenceVerifier"/> found for one reference: the digest it resolves to and the checks on it.</summary>
public sealed record ReferenceVerification(Descriptor Root, ImageVerificationReport Report)
{
    /// <summary>"index" or "manifest", as the verify table and JSON name the subject.</summary>
    public string Label => Root.MediaType == MediaTypes.ImageIndex ? "index" : "manifest";

    /// <summary>The --require names of the valid attestations found (a predicate type URI when it has none).</summary>
    public IEnumerable<string> AttestationNames =>
        Report.Attestations.Checks.Where(c => c.Valid && c.PredicateType != null).Select(c => ReferenceVerifier.PolicyName(c.PredicateType!));
}

/// <summary>
/// <c>harden verify</c>'s work: checks the signature, digest binding and required attestations of exactly the digest
/// the reference resolves to, as cosign, Kyverno and policy-controller do for a pod's image.
/// </summary>
public sealed class ReferenceVerifier(RegistryClients clients)
{
    /// <param name="reference">HOST/REPO:TAG, HOST/REPO@sha256:… or oci:DIR/REPO:TAG.</param>
    /// <param name="require">Comma-separated attestation names (sbom, provenance, vuln, vex) or predicate type URIs.</param>
    /// <param name="keyReference">Public key file, private key file or awskms:// reference.</param>
    public async Task<ReferenceVerification> VerifyAsync(string reference, string require, bool forbidCritical, string keyReference, bool insecure, CancellationToken ct)
    {
        var (target, repository, tagOrDigest) = ParseReference(reference);
        // Names stay names (the verifier maps them, and its messages then say 'sbom', not a URI); unknown ones fail
        // here, before any network call.
        var required = require.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        foreach (var name in required) PredicateTypes.FromPolicyName(name);
        var registry = clients.Create(target, insecure);
        var root = await registry.ResolveManifestAsync(repository, tagOrDigest, ct)
                   ?? throw new HardenException($"{reference}: not found in {target}.");
        using var key = await new SignerFactory(KeyPasswordSource.FromEnvironmentOrTerminal(), AwsKmsOptions.For(clients.Aws)).PublicKeyFromReferenceAsync(keyReference, ct);
        var verifier = new ImageVerifier(new RegistrySignatureStore(registry, repository), key);
        // Exactly what cosign, Kyverno and policy-controller check for this reference: the .sig and .att of the digest
        // it resolves to, nothing else. An index is not descended into: its platforms' attestations do not count for it.
        var report = await verifier.VerifyAsync(Digest.Parse(root.Digest), new VerificationPolicy
        {
            RequiredAttestations = required,
            ForbidCriticalVulnerabilities = forbidCritical,
        }, ct);
        return new ReferenceVerification(root, report);
    }

    /// <summary>The --require name for a predicate type (the URI itself when it has none).</summary>
    public static string PolicyName(string predicateType) => predicateType switch
    {
        PredicateTypes.CycloneDx => "sbom",
        PredicateTypes.SlsaProvenanceV1 => "provenance",
        PredicateTypes.CosignVuln => "vuln",
        _ when predicateType.StartsWith("https://openvex.dev/", StringComparison.Ordinal) => "vex",
        _ => predicateType,
    };

    /// <summary>The registry, repository and tag-or-digest of a verify reference, in <see cref="ImageReference"/>'s grammar.</summary>
    public static (RegistryTarget Target, string Repository, string Reference) ParseReference(string text)
    {
        var reference = ImageReference.Parse(text);
        return (RegistryTarget.For(reference), reference.Repository, reference.ApiReference);
    }
}
