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
        var text = File.ReadAllText(path);
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

    public IReadOnlyList<RenderedObject> Render(IReadOnlyCollection<PinnedImage> images, IReadOnlyCollection<string> namespaces, SigningPublicKey key)
    {
        if (images.Count == 0) throw new HardenException("no images to write admission policies for");
        var repositories = images.Select(i => i.Repository).Distinct().Order(StringComparer.Ordinal).ToList();
        var ns = namespaces.Distinct().Order(StringComparer.Ordinal).ToList();
        return
        [
            Wrap("kyverno-verify-images.yaml", KyvernoVerifyImages(repositories, key)),
            Wrap("kyverno-pod-hardening.yaml", KyvernoPodHardening(ns)),
            Wrap("policy-controller-clusterimagepolicy.yaml", PolicyControllerImagePolicy(repositories, key)),
        ];
    }

    /// <summary>
    /// Kyverno verifyImages: signature by our key required, tag rewritten to the verified digest, digest required,
    /// and signed CycloneDX SBOM + vuln attestations with no critical finding (threats: Spoofing, Tampering, Repudiation).
    /// </summary>
    private static JsonObject KyvernoVerifyImages(List<string> repositories, SigningPublicKey key) => new()
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
                    ["match"] = MatchPods(null),
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
            },
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
        JsonObject Containers(JsonObject securityContext) => new()
        {
            ["spec"] = new JsonObject { ["containers"] = new JsonArray { new JsonObject { ["securityContext"] = securityContext } } },
        };
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
                        "Non-root, no privilege escalation, all capabilities dropped, read-only root filesystem, seccomp RuntimeDefault, images by digest.",
                },
            },
            ["spec"] = new JsonObject
            {
                ["background"] = true,
                ["failurePolicy"] = "Fail",
                ["rules"] = new JsonArray
                {
                    Rule("require-run-as-non-root", "Pods must set runAsNonRoot: true and must not run as uid 0.", new JsonObject
                    {
                        ["pattern"] = new JsonObject
                        {
                            ["spec"] = new JsonObject
                            {
                                ["securityContext"] = new JsonObject { ["runAsNonRoot"] = true, ["=(runAsUser)"] = ">0" },
                                ["containers"] = new JsonArray
                                {
                                    new JsonObject
                                    {
                                        ["=(securityContext)"] = new JsonObject { ["=(runAsNonRoot)"] = true, ["=(runAsUser)"] = ">0" },
                                    },
                                },
                            },
                        },
                    }),
                    Rule("disallow-privilege-escalation", "Containers must set allowPrivilegeEscalation: false.",
                        new JsonObject { ["pattern"] = Containers(new JsonObject { ["allowPrivilegeEscalation"] = false }) }),
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
                        new JsonObject { ["pattern"] = Containers(new JsonObject { ["readOnlyRootFilesystem"] = true }) }),
                    Rule("require-seccomp-runtime-default", "Pods must use the RuntimeDefault seccomp profile.", new JsonObject
                    {
                        ["pattern"] = new JsonObject
                        {
                            ["spec"] = new JsonObject
                            {
                                ["securityContext"] = new JsonObject { ["seccompProfile"] = new JsonObject { ["type"] = "RuntimeDefault" } },
                                ["containers"] = new JsonArray
                                {
                                    new JsonObject
                                    {
                                        ["=(securityContext)"] = new JsonObject
                                        {
                                            ["=(seccompProfile)"] = new JsonObject { ["=(type)"] = "RuntimeDefault" },
                                        },
                                    },
                                },
                            },
                        },
                    }),
                    Rule("require-image-digest", "Images must be pinned by digest (repository@sha256:...).", new JsonObject
                    {
                        ["pattern"] = new JsonObject
                        {
                            ["spec"] = new JsonObject
                            {
                                ["containers"] = new JsonArray { new JsonObject { ["image"] = "*@sha256:*" } },
                                ["=(initContainers)"] = new JsonArray { new JsonObject { ["image"] = "*@sha256:*" } },
                            },
                        },
                    }),
                },
            },
        };
    }

    /// <summary>
    /// sigstore policy-controller ClusterImagePolicy: the same key, SBOM and no-critical conditions (CUE and Rego).
    /// No ctlog is named, so signatures are checked against the key only (our signatures are not in Rekor).
    /// </summary>
    private static JsonObject PolicyControllerImagePolicy(List<string> repositories, SigningPublicKey key) => new()
    {
        ["apiVersion"] = "policy.sigstore.dev/v1beta1",
        ["kind"] = "ClusterImagePolicy",
        ["metadata"] = new JsonObject { ["name"] = "hardenimage-signed-images" },
        ["spec"] = new JsonObject
        {
            ["mode"] = "enforce",
            ["images"] = new JsonArray(repositories.Select(r => (JsonNode?)new JsonObject { ["glob"] = r + "*" }).ToArray()),
            ["authorities"] = new JsonArray
            {
                new JsonObject
                {
                    ["name"] = "hardenimage-key",
                    ["key"] = new JsonObject { ["data"] = key.Pem + "\n", ["hashAlgorithm"] = "sha256" },
                    ["attestations"] = new JsonArray
                    {
                        new JsonObject
                        {
                            ["name"] = "cyclonedx-sbom",
                            ["predicateType"] = "cyclonedx",
                            ["policy"] = new JsonObject
                            {
                                ["type"] = "cue",
                                ["data"] = $"predicateType: \"{SbomPredicate}\"\npredicate: bomFormat: \"CycloneDX\"\n",
                            },
                        },
                        new JsonObject
                        {
                            ["name"] = "no-critical-vulnerabilities",
                            ["predicateType"] = "vuln",
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
