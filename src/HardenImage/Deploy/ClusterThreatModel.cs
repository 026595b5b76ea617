namespace HardenImage.Deploy;

/// <summary>STRIDE categories.</summary>
public enum Stride { Spoofing, Tampering, Repudiation, InformationDisclosure, DenialOfService, ElevationOfPrivilege }

/// <summary>
/// One cluster-side control: the threat it answers, what it is, the rendered file that carries it and a JSON path
/// (dot-separated, <c>[]</c> = any element) that must be present in that file's object for the control to exist.
/// </summary>
public sealed record ClusterControl(Stride Threat, string WhatCouldGoWrong, string Control, string File, string Kind, string EvidencePath);

/// <summary>
/// The cluster table of docs/threat-model.md, as data: a test checks each row against the rendered objects, so a
/// control removed from the renderer fails the build instead of silently leaving a threat unanswered.
/// </summary>
public static class ClusterThreatModel
{
    public static IReadOnlyList<ClusterControl> Controls { get; } =
    [
        new(Stride.Spoofing, "an unsigned or foreign image is started under our name",
            "Kyverno verifyImages: signature by our cosign key required", "admission/kyverno-verify-images.yaml", "ClusterPolicy",
            "spec.rules[].verifyImages[].attestors[].entries[].keys.publicKeys"),
        new(Stride.Spoofing, "an unsigned image is admitted where policy-controller is used",
            "ClusterImagePolicy key authority", "admission/policy-controller-clusterimagepolicy.yaml", "ClusterImagePolicy",
            "spec.authorities[].key.data"),
        new(Stride.Spoofing, "a pod borrows the node's IAM role through IMDS",
            "IRSA role per service account; EC2NodeClass IMDSv2 only, hop limit 1", "<name>/10-karpenter-ec2nodeclass.yaml", "EC2NodeClass",
            "spec.metadataOptions.httpTokens"),
        new(Stride.Tampering, "a tag is moved to other bytes after signing",
            "image pinned by digest in the Deployment; Kyverno mutateDigest + verifyDigest", "<name>/02-deployment.yaml", "Deployment",
            "spec.template.spec.containers[].image"),
        new(Stride.Tampering, "a process rewrites the image's files at run time",
            "readOnlyRootFilesystem; model volume mounted read-only", "<name>/02-deployment.yaml", "Deployment",
            "spec.template.spec.containers[].securityContext.readOnlyRootFilesystem"),
        new(Stride.Repudiation, "nobody can show what the running image contains or that it was scanned",
            "signed CycloneDX SBOM and vuln attestations required at admission", "admission/kyverno-verify-images.yaml", "ClusterPolicy",
            "spec.rules[].verifyImages[].attestations[].type"),
        new(Stride.InformationDisclosure, "a compromised pod exfiltrates data or reaches other services",
            "NetworkPolicy default deny; egress only to cluster DNS", "<name>/06-networkpolicy-allow-dns.yaml", "NetworkPolicy",
            "spec.egress[].ports[].port"),
        new(Stride.InformationDisclosure, "a compromised pod reads Kubernetes API credentials",
            "automountServiceAccountToken: false", "<name>/01-serviceaccount.yaml", "ServiceAccount",
            "automountServiceAccountToken"),
        new(Stride.DenialOfService, "one pod starves the node or its neighbours",
            "CPU/memory requests and limits; in-memory /tmp with a size limit", "<name>/02-deployment.yaml", "Deployment",
            "spec.template.spec.containers[].resources.limits.memory"),
        new(Stride.DenialOfService, "a drain or a zone outage takes the service down",
            "PodDisruptionBudget; topology spread over zones and nodes; HPA", "<name>/07-poddisruptionbudget.yaml", "PodDisruptionBudget",
            "spec.maxUnavailable"),
        new(Stride.DenialOfService, "unreachable callers flood the service",
            "NetworkPolicy ingress only from the gateway namespace to the service port", "<name>/05-networkpolicy-allow-gateway.yaml", "NetworkPolicy",
            "spec.ingress[].from[].namespaceSelector.matchLabels"),
        new(Stride.ElevationOfPrivilege, "code in the container becomes root or gains capabilities",
            "runAsNonRoot, uid/gid 65532, allowPrivilegeEscalation false, drop ALL, seccomp RuntimeDefault", "<name>/02-deployment.yaml", "Deployment",
            "spec.template.spec.securityContext.runAsNonRoot"),
        new(Stride.ElevationOfPrivilege, "a hand-written pod skips the hardening",
            "namespace Pod Security restricted (enforce); Kyverno pod-hardening rules", "<name>/00-namespace.yaml", "Namespace",
            "metadata.labels.pod-security\\.kubernetes\\.io/enforce"),
        new(Stride.ElevationOfPrivilege, "a hand-written pod skips the hardening (Kyverno)",
            "Kyverno validate: non-root, no escalation, drop ALL, read-only root, seccomp, digest", "admission/kyverno-pod-hardening.yaml", "ClusterPolicy",
            "spec.rules[].validate.failureAction"),
        // Issue 15 (admission as the real controllers behave).
        new(Stride.ElevationOfPrivilege, "an init or debug (ephemeral) container skips the hardening",
            "hardening patterns repeated for initContainers and ephemeralContainers", "admission/kyverno-pod-hardening.yaml", "ClusterPolicy",
            "spec.rules[].validate.pattern.spec.=(ephemeralContainers)[].securityContext"),
        new(Stride.Spoofing, "an image from another repository is admitted in our namespaces (verifyImages skips it)",
            "Kyverno restrict-image-repositories: only our repositories, by digest", "admission/kyverno-verify-images.yaml", "ClusterPolicy",
            "spec.rules[].validate.pattern.spec.containers[].image"),
        new(Stride.DenialOfService, "Kyverno is down and verify-images (failurePolicy Fail) blocks pods cluster-wide",
            "verify-images matched to the deployed namespaces only", "admission/kyverno-verify-images.yaml", "ClusterPolicy",
            "spec.rules[].match.any[].resources.namespaces"),
        new(Stride.Spoofing, "policy-controller admits an unsigned image whose attestations pass (authorities are ORed)",
            "ClusterImagePolicy: signature authority and attestation authority, both required by a CIP-level policy", "admission/policy-controller-clusterimagepolicy.yaml", "ClusterImagePolicy",
            "spec.policy.data"),
        new(Stride.Spoofing, "the CEL ImageValidatingPolicy is used instead of the ClusterPolicy",
            "ImageValidatingPolicy: same scope, repositories, signature, SBOM and no-critical checks", "admission/kyverno-imagevalidatingpolicy.yaml", "ImageValidatingPolicy",
            "spec.attestors[].cosign.key.data"),
        // Issue 16 (the model an image volume carries).
        new(Stride.Spoofing, "a hijacked model is mounted through an image volume (verifyImages reads containers only)",
            "ImageValidatingPolicy hardenimage-verify-models: image-volume extractor, digest, signature and ML-BOM", "admission/kyverno-imagevalidatingpolicy-models.yaml", "ImageValidatingPolicy",
            "spec.images[].expression"),
        new(Stride.Spoofing, "an image volume outside our pinned models is admitted",
            "Kyverno restrict-model-volumes: image volumes only from our model repositories, by digest", "admission/kyverno-verify-images.yaml", "ClusterPolicy",
            "spec.rules[].validate.pattern.spec.=(volumes)[]"),
        new(Stride.Tampering, "the Deployment serves other weights than the pinned model",
            "model pinned by manifest digest: image volume reference and MODEL_MANIFEST_DIGEST for the server's check", "<name>/02-deployment.yaml", "Deployment",
            "spec.template.spec.volumes[].image.reference"),
    ];
}
