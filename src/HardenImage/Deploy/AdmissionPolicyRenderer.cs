using System.Security.Cryptography;
using System.Text.Json.Nodes;
using HardenImage.Common;
using HardenImage.Signing;

namespace HardenImage.Deploy;

/// <summary>The signing public key as admission controllers want it: one SPKI PEM block.</summary>
public sealed record SigningPublicKey(string Pem, string Source)
{
    /// <summary>
    /// Reads a cosign.pub (PEM "PUBLIC KEY"). A missing or unreadable key is refused: admission policies without a
    /// key would admit anything (threat: Spoofing).
    /// </summary>
    public static SigningPublicKey Load(string path)
    {
        if (!File.Exists(path))
            throw new HardenException($"signing public key {path} not found: the admission policies need it to verify signatures. "
                                      + "Run 'harden keygen' (or point --key at the cosign.pub that signed the images).");
        // Bounded: a cosign.pub is a few hundred bytes; a path to /dev/zero or a huge file is a clear error, not an OOM.
        var text = System.Text.Encoding.UTF8.GetString(BoundedFile.ReadAllBytes(path, InputLimits.MaxKeyringBytes, "signing public key"));
        using var key = PemKeys.ReadPublicKey(text, path);
        return new SigningPublicKey(PemKeys.PublicKeyPem(key.ExportSubjectPublicKeyInfo()).TrimEnd('\n'), path);
    }
}

/// <summary>
/// Renders the cluster's admission policies from the pinned images and the signing public key:
/// Kyverno ClusterPolicies (image verification; pod hardening) and, as an alternative, a sigstore policy-controller
/// ClusterImagePolicy. Pure: the same inputs give the same objects.
/// </summary>
public sealed class AdmissionPolicyRenderer
{
    /// <summary>Output directory (under artifacts/deploy) of the admission policies.</summary>
    public const string OutputDirectoryName = "admission";
    public const string SbomPredicate = PredicateTypes.CycloneDx;
    public const string VulnPredicate = PredicateTypes.CosignVuln;

    /// <summary>
    /// What the rendered policies require of each image digest a pod pins: our signature, a CycloneDX SBOM statement
    /// and a vuln statement without critical findings. <c>harden deploy</c> checks exactly this before it writes.
    /// </summary>
    public static VerificationPolicy Requirements { get; } = new()
    {
        RequiredAttestations = ["sbom", "vuln"],
        ForbidCriticalVulnerabilities = true,
    };

    /// <summary>JMESPath over the vuln predicate (our scan report as scanner.result): critical findings not allowlisted.</summary>
    public const string CriticalFindingsQuery = "{{ scanner.result.findings[?severity == 'critical' && !allowlisted] | length(@) }}";

    public IReadOnlyList<RenderedObject> Render(IReadOnlyCollection<PinnedImage> images, IReadOnlyCollection<string> namespaces, SigningPublicKey key,
        IReadOnlyCollection<PinnedModel>? models = null)
    {
        if (images.Count == 0) throw new HardenException("no images to write admission policies for");
        var repositories = images.Select(i => i.Repository).Distinct().Order(StringComparer.Ordinal).ToList();
        var modelRepositories = (models ?? []).Select(m => m.Repository).Distinct().Order(StringComparer.Ordinal).ToList();
        var ns = namespaces.Distinct().Order(StringComparer.Ordinal).ToList();
        var result = new List<RenderedObject>
        {
            Wrap("kyverno-verify-images.yaml", KyvernoVerifyImages(repositories, ns, key, modelRepositories)),
            Wrap("kyverno-pod-hardening.yaml", KyvernoPodHardening(ns)),
            Wrap("kyverno-imagevalidatingpolicy.yaml", KyvernoImageValidatingPolicy(repositories, ns, key, modelRepositories)),
        };
        // Rendered only with models: an ImageValidatingPolicy without matchImageReferences would match every image.
        if (modelRepositories.Count > 0)
            result.Add(Wrap("kyverno-imagevalidatingpolicy-models.yaml", KyvernoModelValidatingPolicy(modelRepositories, ns, key)));
        result.Add(Wrap("policy-controller-clusterimagepolicy.yaml", PolicyControllerImagePolicy(repositories, key)));
        return result;
    }

    /// <summary>Predicate type of the model's ML-BOM attestation (a CycloneDX document, like the image SBOMs).</summary>
    public const string ModelBomPredicate = PredicateTypes.CycloneDx;

    /// <summary>CEL: the pod's image volumes (<c>spec.volumes[].image</c>); a volume without reference yields ''.</summary>
    public const string ModelVolumesExpression =
        "(object != null ? object : oldObject).spec.?volumes.orValue([]).filter(v, has(v.image)).map(v, v.image.?reference.orValue(''))";

    /// <summary>
    /// RE2 pattern (CEL <c>matches</c>) admitting only <c>&lt;model repository&gt;@sha256:&lt;64 hex&gt;</c>; with no models,
    /// a pattern nothing matches, so every image volume is refused.
    /// </summary>
    internal static string ModelReferencePattern(IReadOnlyCollection<string> modelRepositories) =>
        modelRepositories.Count == 0
            ? "^$a" // matches nothing: no model is ours, so no image volume is admitted
            : "^(" + string.Join("|", modelRepositories.Select(Re2Escape)) + ")@sha256:[0-9a-f]{64}$";

    private static string Re2Escape(string s) => string.Concat(s.Select(c => char.IsLetterOrDigit(c) ? c.ToString() : "\\" + c));

    /// <summary>The CEL validation refusing image volumes outside our model repositories or not digest-pinned (Spoofing, Tampering).</summary>
    internal static JsonObject ModelVolumeRestriction(IReadOnlyCollection<string> modelRepositories) => new()
    {
        ["expression"] = $"{ModelVolumesExpression}.all(ref, ref.matches(r'{ModelReferencePattern(modelRepositories)}'))",
        ["message"] = modelRepositories.Count == 0
            ? "Image volumes are not allowed in these namespaces: no HardenImage model is deployed here."
            : "Image volumes in these namespaces must be HardenImage models pinned by digest: " + string.Join(", ", modelRepositories.Select(r => r + "@sha256:…")) + ".",
    };

    /// <summary>
    /// Kyverno's CEL ImageValidatingPolicy for the models image volumes carry (Kyverno ≥ 1.19): the <c>models</c> image
    /// extractor reads <c>spec.volumes[].image.reference</c> (the default extractors see containers only), then
    /// every model reference must be digest-pinned to our model repositories, signed by our key, and carry a signed
    /// CycloneDX ML-BOM with a <c>machine-learning-model</c> component (threats: Spoofing — hijacked model; Tampering —
    /// swapped weights; Repudiation — the ML-BOM names what was served). mutateDigest is off: Kyverno pins tags only in
    /// container fields, and a model volume must already be pinned.
    /// </summary>
    private static JsonObject KyvernoModelValidatingPolicy(List<string> modelRepositories, List<string> namespaces, SigningPublicKey key)
    {
        const string Models = "images.models";
        return CelImageValidatingPolicy("hardenimage-verify-models", "Verify HardenImage models (image volumes)",
            "Image volumes must be HardenImage models pinned by digest, signed by the HardenImage key, with a signed CycloneDX ML-BOM. Apply with either image policy.",
            namespaces, new JsonArray { new JsonObject { ["name"] = "models", ["expression"] = ModelVolumesExpression } },
            modelRepositories, mutateDigest: false, key,
            new JsonArray
            {
                new JsonObject { ["name"] = "mlbom", ["intoto"] = new JsonObject { ["type"] = ModelBomPredicate } },
            },
            new JsonArray
            {
                ModelVolumeRestriction(modelRepositories),
                Validation($"{Models}.all(image, verifyImageSignatures(image, [attestors.hardenimage]) > 0)",
                    "the model is not signed by the HardenImage key"),
                Validation($"{Models}.all(image, verifyAttestationSignatures(image, attestations.mlbom, [attestors.hardenimage]) > 0)",
                    "the model has no signed CycloneDX ML-BOM attestation"),
                // The ML-BOM's subject is metadata.component (MlBomWriter); components are the model's files. Kyverno's
                // extractPayload gives the in-toto statement (cosign's AttestationToPayloadJSON), so the BOM is .predicate.
                Validation($"{Models}.all(image, extractPayload(image, attestations.mlbom).predicate.bomFormat == 'CycloneDX'"
                           + " && extractPayload(image, attestations.mlbom).predicate.?metadata.?component.?type.orValue('') == 'machine-learning-model')",
                    "the model's signed ML-BOM is not a CycloneDX document describing a machine-learning-model"),
            });
    }

    /// <summary>
    /// One Kyverno ImageValidatingPolicy (policies.kyverno.io/v1) of ours: Deny on failure, pods and ephemeral
    /// containers in our namespaces, the images under <paramref name="repositories"/> by digest or tag, verified
    /// against our key (digest required), with these attestations and CEL validations. <paramref name="images"/>
    /// names extra image extractors (null: the default ones, which see containers only).
    /// </summary>
    private static JsonObject CelImageValidatingPolicy(string name, string title, string description, List<string> namespaces,
        JsonArray? images, List<string> repositories, bool mutateDigest, SigningPublicKey key, JsonArray attestations, JsonArray validations)
    {
        var spec = new JsonObject
        {
            ["failurePolicy"] = "Fail",
            ["validationActions"] = new JsonArray("Deny"),
            ["webhookConfiguration"] = new JsonObject { ["timeoutSeconds"] = 30 },
            ["matchConstraints"] = PodRules(namespaces),
        };
        if (images != null) spec["images"] = images;
        spec["matchImageReferences"] = new JsonArray(DigestAndTagGlobs(repositories).Select(g => (JsonNode?)new JsonObject { ["glob"] = g }).ToArray());
        spec["validationConfigurations"] = new JsonObject { ["mutateDigest"] = mutateDigest, ["verifyDigest"] = true, ["required"] = true };
        spec["attestors"] = CelAttestors(key);
        spec["attestations"] = attestations;
        spec["validations"] = validations;
        return new JsonObject
        {
            ["apiVersion"] = "policies.kyverno.io/v1",
            ["kind"] = "ImageValidatingPolicy",
            ["metadata"] = new JsonObject
            {
                ["name"] = name,
                ["annotations"] = new JsonObject
                {
                    ["policies.kyverno.io/title"] = title,
                    ["policies.kyverno.io/description"] = description,
                },
            },
            ["spec"] = spec,
        };
    }

    private static JsonObject Validation(string expression, string message) => new() { ["expression"] = expression, ["message"] = message };

    /// <summary>Image globs of these repositories, by digest and by tag ('*' stops at '/' in both Kyverno and policy-controller).</summary>
    private static IEnumerable<string> DigestAndTagGlobs(IEnumerable<string> repositories) =>
        repositories.SelectMany(r => new[] { r + "@*", r + ":*" });

    private static JsonObject PodRules(List<string> namespaces) => new()
    {
        ["namespaceSelector"] = NamespaceSelector(namespaces),
        ["resourceRules"] = new JsonArray
        {
            new JsonObject
            {
                ["apiGroups"] = new JsonArray(""),
                ["apiVersions"] = new JsonArray("v1"),
                ["operations"] = new JsonArray("CREATE", "UPDATE"),
                ["resources"] = new JsonArray("pods", "pods/ephemeralcontainers"),
            },
        },
    };

    private static JsonArray CelAttestors(SigningPublicKey key) =>
    [
        new JsonObject
        {
            ["name"] = "hardenimage",
            ["cosign"] = new JsonObject
            {
                ["key"] = new JsonObject { ["data"] = key.Pem + "\n", ["hashAlgorithm"] = "sha256" },
                // Key-signed, not in a transparency log: verify against the key alone.
                ["ctlog"] = new JsonObject { ["insecureIgnoreTlog"] = true, ["insecureIgnoreSCT"] = true },
            },
        },
    ];

    /// <summary>
    /// Kyverno verifyImages: signature by our key required, tag rewritten to the verified digest, digest required,
    /// and signed CycloneDX SBOM + vuln attestations with no critical finding (threats: Spoofing, Tampering, Repudiation).
    /// Scoped to the namespaces we deploy: with failurePolicy Fail, a cluster-wide match would stop every pod in the
    /// cluster while Kyverno is down (threat: Denial of service). verifyImages skips images that match no
    /// imageReferences, so a second rule refuses, in those namespaces, any image outside our repositories (Spoofing).
    /// </summary>
    private static JsonObject KyvernoVerifyImages(List<string> repositories, List<string> namespaces, SigningPublicKey key, List<string> modelRepositories) => new()
    {
        ["apiVersion"] = "kyverno.io/v1",
        ["kind"] = "ClusterPolicy",
        ["metadata"] = new JsonObject
        {
            ["name"] = "hardenimage-verify-images",
            ["annotations"] = new JsonObject
            {
                ["policies.kyverno.io/title"] = "Verify HardenImage signatures and attestations",
                ["policies.kyverno.io/description"] =
                    "Pods may run our images only when signed by the HardenImage key, pinned by digest, with a signed CycloneDX SBOM and a signed vulnerability scan without critical findings.",
            },
        },
        ["spec"] = new JsonObject
        {
            ["background"] = false,
            ["failurePolicy"] = "Fail",
            ["webhookTimeoutSeconds"] = 30,
            ["rules"] = new JsonArray
            {
                new JsonObject
                {
                    ["name"] = "verify-signature-and-attestations",
                    ["match"] = MatchPods(namespaces),
                    ["verifyImages"] = new JsonArray
                    {
                        new JsonObject
                        {
                            ["type"] = "Cosign",
                            // repository:tag and repository@digest, not other repositories sharing the prefix.
                            ["imageReferences"] = Strings(repositories.SelectMany(r => new[] { r + ":*", r + "@*" })),
                            ["failureAction"] = "Enforce",
                            ["mutateDigest"] = true,
                            ["verifyDigest"] = true,
                            ["required"] = true,
                            ["useCache"] = true,
                            ["attestors"] = KeyAttestors(key),
                            ["attestations"] = new JsonArray
                            {
                                new JsonObject
                                {
                                    ["type"] = SbomPredicate,
                                    ["attestors"] = KeyAttestors(key),
                                    ["conditions"] = Conditions("{{ bomFormat }}", "Equals", "CycloneDX",
                                        "the image has no signed CycloneDX SBOM attestation"),
                                },
                                new JsonObject
                                {
                                    ["type"] = VulnPredicate,
                                    ["attestors"] = KeyAttestors(key),
                                    ["conditions"] = Conditions(CriticalFindingsQuery, "Equals", 0,
                                        "the image's signed vulnerability scan lists critical findings"),
                                },
                            },
                        },
                    },
                },
                new JsonObject
                {
                    ["name"] = "restrict-image-repositories",
                    ["match"] = MatchPods(namespaces),
                    ["validate"] = new JsonObject
                    {
                        ["failureAction"] = "Enforce",
                        ["message"] = "Images in these namespaces must come from the HardenImage repositories, pinned by digest: "
                                      + string.Join(", ", repositories.Select(r => r + "@sha256:…")) + ".",
                        ["pattern"] = EveryContainer(new JsonObject { ["image"] = OurImagesPattern(repositories) }),
                    },
                },
                new JsonObject
                {
                    // verifyImages reads containers only: an image volume is at least held to our pinned models here;
                    // its signature and ML-BOM are verified by kyverno-imagevalidatingpolicy-models.yaml.
                    ["name"] = "restrict-model-volumes",
                    ["match"] = MatchPods(namespaces),
                    ["validate"] = new JsonObject
                    {
                        ["failureAction"] = "Enforce",
                        ["message"] = modelRepositories.Count == 0
                            ? "Image volumes are not allowed in these namespaces: no HardenImage model is deployed here."
                            : "Image volumes in these namespaces must be HardenImage models pinned by digest: " + string.Join(", ", modelRepositories.Select(r => r + "@sha256:…")) + ".",
                        ["pattern"] = new JsonObject
                        {
                            ["spec"] = new JsonObject
                            {
                                ["=(volumes)"] = new JsonArray
                                {
                                    modelRepositories.Count == 0
                                        ? new JsonObject { ["X(image)"] = "null" }
                                        : new JsonObject { ["=(image)"] = new JsonObject { ["reference"] = OurImagesPattern(modelRepositories) } },
                                },
                            },
                        },
                    },
                },
            },
        },
    };

    /// <summary>Kyverno pattern alternatives ("a | b") that match only <c>repository@sha256:…</c> of our repositories.</summary>
    internal static string OurImagesPattern(IEnumerable<string> repositories) =>
        string.Join(" | ", repositories.Select(r => r + "@sha256:*"));

    /// <summary>
    /// A pod pattern applying <paramref name="container"/> to containers and, when present, initContainers and
    /// ephemeralContainers, so an init or debug container cannot skip a rule.
    /// </summary>
    private static JsonObject EveryContainer(JsonObject container) => new()
    {
        ["spec"] = new JsonObject
        {
            ["containers"] = new JsonArray { container.DeepClone() },
            ["=(initContainers)"] = new JsonArray { container.DeepClone() },
            ["=(ephemeralContainers)"] = new JsonArray { container.DeepClone() },
        },
    };

    /// <summary>
    /// Kyverno validation of the pod hardening the Deployment renders, so a hand-written pod cannot drop it
    /// (threat: Elevation of privilege; image digest: Tampering).
    /// </summary>
    private static JsonObject KyvernoPodHardening(List<string> namespaces)
    {
        JsonObject Rule(string name, string message, JsonObject validate)
        {
            validate["failureAction"] = "Enforce";
            validate["message"] = message;
            return new JsonObject { ["name"] = name, ["match"] = MatchPods(namespaces), ["validate"] = validate };
        }
        JsonObject Pattern(JsonObject pattern) => new() { ["pattern"] = pattern };
        JsonObject Containers(JsonObject securityContext) => EveryContainer(new JsonObject { ["securityContext"] = securityContext });
        // Pod-level field required; container-level override, when set, must agree (containers, init and ephemeral).
        JsonObject PodAndContainers(JsonObject podSecurityContext, JsonObject containerOverride)
        {
            var pattern = EveryContainer(new JsonObject { ["=(securityContext)"] = containerOverride });
            pattern["spec"]!.AsObject().Insert(0, "securityContext", podSecurityContext);
            return pattern;
        }
        return new JsonObject
        {
            ["apiVersion"] = "kyverno.io/v1",
            ["kind"] = "ClusterPolicy",
            ["metadata"] = new JsonObject
            {
                ["name"] = "hardenimage-pod-hardening",
                ["annotations"] = new JsonObject
                {
                    ["policies.kyverno.io/title"] = "HardenImage pod hardening",
                    ["policies.kyverno.io/description"] =
                        "Non-root, no privilege escalation, all capabilities dropped, read-only root filesystem, seccomp RuntimeDefault, images by digest; for containers, initContainers and ephemeralContainers.",
                },
            },
            ["spec"] = new JsonObject
            {
                ["background"] = true,
                ["failurePolicy"] = "Fail",
                ["rules"] = new JsonArray
                {
                    Rule("require-run-as-non-root", "Pods must set runAsNonRoot: true and must not run as uid 0.", Pattern(PodAndContainers(
                        new JsonObject { ["runAsNonRoot"] = true, ["=(runAsUser)"] = ">0" },
                        new JsonObject { ["=(runAsNonRoot)"] = true, ["=(runAsUser)"] = ">0" }))),
                    Rule("disallow-privilege-escalation", "Containers must set allowPrivilegeEscalation: false.",
                        Pattern(Containers(new JsonObject { ["allowPrivilegeEscalation"] = false }))),
                    Rule("require-drop-all-capabilities", "Containers must drop ALL capabilities.", new JsonObject
                    {
                        ["foreach"] = new JsonArray
                        {
                            new JsonObject
                            {
                                ["list"] = "request.object.spec.[ephemeralContainers, initContainers, containers][]",
                                ["deny"] = new JsonObject
                                {
                                    ["conditions"] = new JsonObject
                                    {
                                        ["all"] = new JsonArray
                                        {
                                            new JsonObject
                                            {
                                                ["key"] = "ALL",
                                                ["operator"] = "AnyNotIn",
                                                ["value"] = "{{ element.securityContext.capabilities.drop[] || `[]` }}",
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    }),
                    Rule("require-read-only-root-filesystem", "Containers must set readOnlyRootFilesystem: true.",
                        Pattern(Containers(new JsonObject { ["readOnlyRootFilesystem"] = true }))),
                    Rule("require-seccomp-runtime-default", "Pods must use the RuntimeDefault seccomp profile.", Pattern(PodAndContainers(
                        new JsonObject { ["seccompProfile"] = new JsonObject { ["type"] = "RuntimeDefault" } },
                        new JsonObject { ["=(seccompProfile)"] = new JsonObject { ["=(type)"] = "RuntimeDefault" } }))),
                    Rule("require-image-digest", "Images must be pinned by digest (repository@sha256:...).",
                        Pattern(EveryContainer(new JsonObject { ["image"] = "*@sha256:*" }))),
                },
            },
        };
    }

    /// <summary>
    /// Kyverno's CEL ImageValidatingPolicy (policies.kyverno.io/v1), an alternative to the verify-images ClusterPolicy
    /// with the same checks: scope, repository restriction, signature, CycloneDX SBOM and vuln statements without
    /// critical findings. Its webhook rules are built verbatim from resourceRules, so pods/ephemeralcontainers is listed.
    /// </summary>
    private static JsonObject KyvernoImageValidatingPolicy(List<string> repositories, List<string> namespaces, SigningPublicKey key, List<string> modelRepositories)
    {
        const string Images = "(images.?containers.orValue([]) + images.?initContainers.orValue([]) + images.?ephemeralContainers.orValue([]))";
        const string PodImages = "(object.spec.?containers.orValue([]) + object.spec.?initContainers.orValue([]) + object.spec.?ephemeralContainers.orValue([]))";
        var prefixes = string.Join(", ", repositories.Select(r => $"'{r}@sha256:'"));
        return CelImageValidatingPolicy("hardenimage-verify-images", "Verify HardenImage signatures and attestations (CEL)",
            "The CEL form of hardenimage-verify-images: apply this or the ClusterPolicy, not both.",
            namespaces, images: null, repositories, mutateDigest: true, key,
            new JsonArray
            {
                new JsonObject { ["name"] = "sbom", ["intoto"] = new JsonObject { ["type"] = SbomPredicate } },
                new JsonObject { ["name"] = "vuln", ["intoto"] = new JsonObject { ["type"] = VulnPredicate } },
            },
            new JsonArray
            {
                Validation($"{PodImages}.all(c, [{prefixes}].exists(p, c.image.startsWith(p)))",
                    "Images in these namespaces must come from the HardenImage repositories, pinned by digest."),
                ModelVolumeRestriction(modelRepositories),
                Validation($"{Images}.all(image, verifyImageSignatures(image, [attestors.hardenimage]) > 0)",
                    "the image is not signed by the HardenImage key"),
                Validation($"{Images}.all(image, verifyAttestationSignatures(image, attestations.sbom, [attestors.hardenimage]) > 0)",
                    "the image has no signed CycloneDX SBOM attestation"),
                Validation($"{Images}.all(image, extractPayload(image, attestations.sbom).predicate.bomFormat == 'CycloneDX')",
                    "the image's SBOM attestation is not a CycloneDX document"),
                Validation($"{Images}.all(image, verifyAttestationSignatures(image, attestations.vuln, [attestors.hardenimage]) > 0)",
                    "the image has no signed vulnerability scan attestation"),
                Validation($"{Images}.all(image, extractPayload(image, attestations.vuln).predicate.scanner.result.findings"
                           + ".filter(f, f.severity == 'critical' && !has(f.allowlisted)).size() == 0)",
                    "the image's signed vulnerability scan lists critical findings"),
            });
    }

    /// <summary>Authority and attestation names the ClusterImagePolicy's CIP-level policy refers to.</summary>
    public const string SignatureAuthority = "hardenimage-signature";
    public const string AttestationAuthority = "hardenimage-attestations";
    public const string SbomAttestationName = "cyclonedx-sbom";
    public const string VulnAttestationName = "no-critical-vulnerabilities";

    /// <summary>
    /// sigstore policy-controller ClusterImagePolicy. An authority with <c>attestations</c> validates only the .att,
    /// never the .sig, and authorities are ORed (validator.go ValidatePolicy: one matching authority passes). So the
    /// signature and the attestations are two key authorities, and the CIP-level <c>policy</c> — evaluated on the
    /// authorities that passed, as <c>authorityMatches</c> — requires both (threat: Spoofing). No ctlog is named, so
    /// signatures are checked against the key only (our signatures are not in Rekor). Full predicate type URIs: the
    /// short names (cyclonedx, vuln) are deprecated.
    /// </summary>
    private static JsonObject PolicyControllerImagePolicy(List<string> repositories, SigningPublicKey key) => new()
    {
        ["apiVersion"] = "policy.sigstore.dev/v1beta1",
        ["kind"] = "ClusterImagePolicy",
        ["metadata"] = new JsonObject { ["name"] = "hardenimage-signed-images" },
        ["spec"] = new JsonObject
        {
            ["mode"] = "enforce",
            // policy-controller globs: '*' stops at '/', so these match our repositories' tags and digests only.
            ["images"] = new JsonArray(DigestAndTagGlobs(repositories)
                .Select(g => (JsonNode?)new JsonObject { ["glob"] = g }).ToArray()),
            ["authorities"] = new JsonArray
            {
                new JsonObject
                {
                    ["name"] = SignatureAuthority,
                    ["key"] = new JsonObject { ["data"] = key.Pem + "\n", ["hashAlgorithm"] = "sha256" },
                },
                new JsonObject
                {
                    ["name"] = AttestationAuthority,
                    ["key"] = new JsonObject { ["data"] = key.Pem + "\n", ["hashAlgorithm"] = "sha256" },
                    ["attestations"] = new JsonArray
                    {
                        new JsonObject
                        {
                            ["name"] = SbomAttestationName,
                            ["predicateType"] = SbomPredicate,
                            ["policy"] = new JsonObject
                            {
                                ["type"] = "cue",
                                ["data"] = $"predicateType: \"{SbomPredicate}\"\npredicate: bomFormat: \"CycloneDX\"\n",
                            },
                        },
                        new JsonObject
                        {
                            ["name"] = VulnAttestationName,
                            ["predicateType"] = VulnPredicate,
                            ["policy"] = new JsonObject
                            {
                                ["type"] = "rego",
                                ["data"] =
                                    "package sigstore\n\n"
                                    + "default isCompliant = false\n\n"
                                    + "critical := [f | f := input.predicate.scanner.result.findings[_]; lower(f.severity) == \"critical\"; not f.allowlisted]\n\n"
                                    + "isCompliant {\n"
                                    + $"  input.predicateType == \"{VulnPredicate}\"\n"
                                    + "  count(critical) == 0\n"
                                    + "}\n",
                            },
                        },
                    },
                },
            },
            // Rego v0, package sigstore, rule isCompliant: what policy-controller evaluates (cosign pkg/cosign/rego).
            // An authority that failed is absent from authorityMatches, so each lookup below is undefined and the
            // default (false) refuses the image.
            ["policy"] = new JsonObject
            {
                ["type"] = "rego",
                ["data"] =
                    "package sigstore\n\n"
                    + "default isCompliant = false\n\n"
                    + "isCompliant {\n"
                    + $"  count(input.authorityMatches[\"{SignatureAuthority}\"].signatures) > 0\n"
                    + $"  count(input.authorityMatches[\"{AttestationAuthority}\"].attestations[\"{SbomAttestationName}\"]) > 0\n"
                    + $"  count(input.authorityMatches[\"{AttestationAuthority}\"].attestations[\"{VulnAttestationName}\"]) > 0\n"
                    + "}\n",
            },
        },
    };

    private static JsonArray KeyAttestors(SigningPublicKey key) =>
    [
        new JsonObject
        {
            ["count"] = 1,
            ["entries"] = new JsonArray
            {
                new JsonObject
                {
                    ["keys"] = new JsonObject
                    {
                        ["publicKeys"] = key.Pem,
                        ["signatureAlgorithm"] = "sha256",
                        // Key-signed, not in a transparency log: verify against the key alone.
                        ["rekor"] = new JsonObject { ["ignoreTlog"] = true },
                        ["ctlog"] = new JsonObject { ["ignoreSCT"] = true },
                    },
                },
            },
        },
    ];

    private static JsonArray Conditions(string key, string op, JsonNode value, string message) =>
    [
        new JsonObject
        {
            ["all"] = new JsonArray { new JsonObject { ["key"] = key, ["operator"] = op, ["value"] = value, ["message"] = message } },
        },
    ];

    private static JsonObject NamespaceSelector(List<string> namespaces) => new()
    {
        ["matchExpressions"] = new JsonArray
        {
            new JsonObject { ["key"] = "kubernetes.io/metadata.name", ["operator"] = "In", ["values"] = Strings(namespaces) },
        },
    };

    private static JsonObject MatchPods(List<string>? namespaces)
    {
        var resources = new JsonObject { ["kinds"] = new JsonArray("Pod") };
        if (namespaces is { Count: > 0 }) resources["namespaces"] = Strings(namespaces);
        return new JsonObject { ["any"] = new JsonArray { new JsonObject { ["resources"] = resources } } };
    }

    private static JsonArray Strings(IEnumerable<string> values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());

    private static RenderedObject Wrap(string file, JsonObject document)
    {
        var sorted = (JsonObject)ManifestYaml.Sorted(document)!;
        return new RenderedObject(file, (string)sorted["apiVersion"]!, (string)sorted["kind"]!, (string)sorted["metadata"]!["name"]!, null, sorted);
    }
}
