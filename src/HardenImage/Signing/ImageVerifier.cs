using System.Security.Cryptography;
using HardenImage.Oci;

namespace HardenImage.Signing;

/// <summary>What an image must carry to pass verification.</summary>
public sealed record VerificationPolicy
{
    /// <summary>Attestation kinds that must be present and valid: sbom, provenance, vuln, vex, or predicate URIs.</summary>
    public IReadOnlyList<string> RequiredAttestations { get; init; } = [];

    /// <summary>
    /// Fail when any valid vuln attestation reports a critical finding: Kyverno requires every statement of a type to
    /// pass, so one stale statement with a critical finding blocks admission there too.
    /// </summary>
    public bool ForbidCriticalVulnerabilities { get; init; }
}

/// <summary>The result of verifying one image; <see cref="Failures"/> says why it did not pass.</summary>
public sealed record ImageVerificationReport(
    Digest Image,
    SignatureVerification Signatures,
    AttestationVerification Attestations,
    IReadOnlyList<string> CriticalFindings,
    IReadOnlyList<string> Failures)
{
    public bool Passed => Failures.Count == 0;
}

/// <summary>
/// Reads an image's .sig and .att back from a store and checks them against a public key and a policy: the
/// deploy-time gate that an unsigned, re-tagged or unscanned image cannot pass (threat: Spoofing / Tampering /
/// Elevation of privilege through an unreviewed image).
/// </summary>
public sealed class ImageVerifier
{
    private readonly ISignatureStore _store;
    private readonly CosignVerifier _verifier;

    /// <summary>Does not take ownership of <paramref name="publicKey"/>.</summary>
    public ImageVerifier(ISignatureStore store, ECDsa publicKey)
    {
        _store = store;
        _verifier = new CosignVerifier(publicKey);
    }

    public async Task<ImageVerificationReport> VerifyAsync(Digest image, VerificationPolicy policy, CancellationToken ct = default)
    {
        var failures = new List<string>();
        var sig = await _store.GetAsync(CosignSignatureManifest.SignatureTag(image), ct);
        var signatures = sig == null ? new SignatureVerification([]) : _verifier.VerifySignatures(sig, image);
        if (sig == null) failures.Add($"no signature: tag {CosignSignatureManifest.SignatureTag(image)} is absent. Run 'harden sign'.");
        else if (!signatures.Verified)
            failures.Add("no valid signature for this key and image: " + string.Join("; ", signatures.Checks.Select(c => $"layer {c.Layer}: {c.Reason}")));

        var needAtt = policy.RequiredAttestations.Count > 0 || policy.ForbidCriticalVulnerabilities;
        var att = needAtt ? await _store.GetAsync(CosignSignatureManifest.AttestationTag(image), ct) : null;
        var attestations = att == null ? new AttestationVerification([]) : _verifier.VerifyAttestations(att, image);
        foreach (var required in policy.RequiredAttestations)
        {
            var type = PredicateTypes.FromPolicyName(required);
            if (!attestations.PredicateTypes.Contains(type))
                failures.Add($"required attestation '{required}' ({type}) is missing or invalid"
                    + (att == null ? $" (tag {CosignSignatureManifest.AttestationTag(image)} is absent)" : ""));
        }

        // What the rendered admission policies check on every SBOM statement (Kyverno: each one must pass).
        if (policy.RequiredAttestations.Any(r => PredicateTypes.FromPolicyName(r) == PredicateTypes.CycloneDx))
            foreach (var sbom in attestations.Predicates(PredicateTypes.CycloneDx))
                if ((string?)(sbom as System.Text.Json.Nodes.JsonObject)?["bomFormat"] != "CycloneDX")
                    failures.Add("an SBOM attestation's predicate is not a CycloneDX document (bomFormat != CycloneDX)");

        IReadOnlyList<string> critical = [];
        if (policy.ForbidCriticalVulnerabilities)
        {
            var vulns = attestations.Predicates(PredicateTypes.CosignVuln);
            if (vulns.Count == 0)
                failures.Add("no valid vuln attestation to check for critical vulnerabilities. Run 'harden scan' and 'harden sign'.");
            else
            {
                critical = vulns.SelectMany(Predicates.CriticalFindings).Distinct().Order(StringComparer.Ordinal).ToList();
                if (critical.Count > 0)
                    failures.Add($"the vuln attestation{(vulns.Count == 1 ? "" : $"s ({vulns.Count} statements)")} report{(vulns.Count == 1 ? "s" : "")} {critical.Count} critical vulnerabilit{(critical.Count == 1 ? "y" : "ies")}: {string.Join(", ", critical)}");
            }
        }
        return new ImageVerificationReport(image, signatures, attestations, critical, failures);
    }
}
