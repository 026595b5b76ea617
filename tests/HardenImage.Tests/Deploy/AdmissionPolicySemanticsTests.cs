using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using HardenImage.Deploy;
using HardenImage.Signing;

namespace HardenImage.Tests.Deploy;

/// <summary>
/// What the rendered admission policies mean to the controllers that read them (Kyverno 1.19 ClusterPolicy and
/// ImageValidatingPolicy, policy-controller 0.15 ClusterImagePolicy): scope, repository restriction, combined
/// authorities, full predicate URIs, init and ephemeral containers. Matching rules are re-implemented here from the
/// controllers' source (Kyverno wildcard patterns with " | " alternatives; policy-controller's glob.go).
/// </summary>
public sealed class AdmissionPolicySemanticsTests
{
    /// <summary>Two deployments in "inference", one moved to "gpu", so scope has more than one namespace to get right.</summary>
    private static (DeployWorkspace Ws, DeployResult Result) Rendered()
    {
        var ws = new DeployWorkspace();
        var cuda = Path.Combine(ws.DeployDir, "inference-cuda.yaml");
        File.WriteAllText(cuda, Regex.Replace(File.ReadAllText(cuda), "(?m)^namespace: inference$", "namespace: gpu"));
        return (ws, new DeployRenderer().Render(ws.Options()));
    }

    private static JsonObject Policy(DeployResult r, string file) => r.AdmissionPolicies.Single(o => o.FileName == file).Document;

    [Fact]
    public void KyvernoVerifyImages_IsScopedToTheDeployedNamespaces_NeverClusterWide()
    {
        var (ws, result) = Rendered();
        using var _ = ws;
        var rules = Policy(result, "kyverno-verify-images.yaml")["spec"]!["rules"]!.AsArray();
        Assert.Equal(["verify-signature-and-attestations", "restrict-image-repositories", "restrict-model-volumes"], rules.Select(r => (string)r!["name"]!));
        foreach (var rule in rules)
        {
            var matches = rule!["match"]!["any"]!.AsArray();
            Assert.All(matches, m => Assert.Equal(["gpu", "inference"], m!["resources"]!["namespaces"]!.AsArray().Select(n => (string)n!)));
        }
        Assert.Equal("Fail", (string)Policy(result, "kyverno-verify-images.yaml")["spec"]!["failurePolicy"]!);
    }

    [Fact]
    public void KyvernoRepositoryRule_AdmitsOnlyOurDigests_InContainersInitAndEphemeralContainers()
    {
        var (ws, result) = Rendered();
        using var _ = ws;
        var rule = Policy(result, "kyverno-verify-images.yaml")["spec"]!["rules"]!.AsArray().Single(r => (string)r!["name"]! == "restrict-image-repositories")!;
        Assert.Equal("Enforce", (string)rule["validate"]!["failureAction"]!);
        var spec = rule["validate"]!["pattern"]!["spec"]!;
        var ours = result.Deployments.Select(d => d.Image.Reference).ToList();
        var cpu = result.Deployments.Single(d => d.Description.Name == "inference-cpu").Image;
        string[] foreign =
        [
            "docker.io/library/busybox@sha256:" + new string('a', 64),
            cpu.Repository + "-evil@" + cpu.Digest,      // a repository sharing our prefix
            cpu.Repository + "/sub@" + cpu.Digest,       // a repository below ours
            cpu.Repository + ":latest",                  // ours, but by tag
            "evil.example/" + cpu.Repository + "@" + cpu.Digest,
        ];
        foreach (var list in new[] { "containers", "=(initContainers)", "=(ephemeralContainers)" })
        {
            var pattern = (string)spec[list]![0]!["image"]!;
            Assert.All(ours, image => Assert.True(KyvernoPatternMatches(pattern, image), $"{list}: {image} refused by '{pattern}'"));
            Assert.All(foreign, image => Assert.False(KyvernoPatternMatches(pattern, image), $"{list}: {image} admitted by '{pattern}'"));
        }
    }

    [Fact]
    public void KyvernoPodHardening_AppliesEveryContainerRuleToInitAndEphemeralContainers()
    {
        using var ws = new DeployWorkspace();
        var result = new DeployRenderer().Render(ws.Options());
        var rules = Policy(result, "kyverno-pod-hardening.yaml")["spec"]!["rules"]!.AsArray();
        var patternRules = rules.Where(r => r!["validate"]!["pattern"] != null).ToList();
        Assert.Equal(5, patternRules.Count);
        foreach (var rule in patternRules)
        {
            var spec = rule!["validate"]!["pattern"]!["spec"]!.AsObject();
            var containers = spec["containers"]!.ToJsonString();
            Assert.Equal(containers, spec["=(initContainers)"]?.ToJsonString());
            Assert.Equal(containers, spec["=(ephemeralContainers)"]?.ToJsonString());
            Assert.All(rule["match"]!["any"]!.AsArray(), m => Assert.Equal(["inference"], m!["resources"]!["namespaces"]!.AsArray().Select(n => (string)n!)));
        }
        var dropAll = rules.Single(r => (string)r!["name"]! == "require-drop-all-capabilities")!;
        var list = (string)dropAll["validate"]!["foreach"]![0]!["list"]!;
        Assert.Contains("initContainers", list);
        Assert.Contains("ephemeralContainers", list);
    }

    [Fact]
    public void PolicyController_RequiresTheSignatureAuthorityAndTheAttestationAuthority_ThroughTheCipLevelPolicy()
    {
        using var ws = new DeployWorkspace();
        var result = new DeployRenderer().Render(ws.Options());
        var spec = result.AdmissionPolicies.Single(o => o.Kind == "ClusterImagePolicy").Document["spec"]!;
        var authorities = spec["authorities"]!.AsArray().ToDictionary(a => (string)a!["name"]!, a => a!.AsObject());
        Assert.Equal([AdmissionPolicyRenderer.SignatureAuthority, AdmissionPolicyRenderer.AttestationAuthority], authorities.Keys);

        // validator.go: an authority with attestations takes the .att path only; without, the .sig path.
        var signature = authorities[AdmissionPolicyRenderer.SignatureAuthority];
        Assert.Null(signature["attestations"]);
        Assert.Contains("BEGIN PUBLIC KEY", (string)signature["key"]!["data"]!);
        var attestations = authorities[AdmissionPolicyRenderer.AttestationAuthority];
        Assert.Equal((string)signature["key"]!["data"]!, (string)attestations["key"]!["data"]!);
        var wanted = attestations["attestations"]!.AsArray().ToDictionary(a => (string)a!["name"]!, a => (string)a!["predicateType"]!);
        Assert.Equal(new Dictionary<string, string>
        {
            [AdmissionPolicyRenderer.SbomAttestationName] = PredicateTypes.CycloneDx,
            [AdmissionPolicyRenderer.VulnAttestationName] = PredicateTypes.CosignVuln,
        }, wanted);

        // Authorities are ORed; the CIP-level policy sees only those that passed (authorityMatches) and must need both.
        var policy = spec["policy"]!;
        Assert.Equal("rego", (string)policy["type"]!);
        var rego = (string)policy["data"]!;
        Assert.StartsWith("package sigstore\n", rego);
        Assert.Contains("default isCompliant = false", rego);
        Assert.Contains($"input.authorityMatches[\"{AdmissionPolicyRenderer.SignatureAuthority}\"].signatures", rego);
        foreach (var name in wanted.Keys)
            Assert.Contains($"input.authorityMatches[\"{AdmissionPolicyRenderer.AttestationAuthority}\"].attestations[\"{name}\"]", rego);
        foreach (Match m in Regex.Matches(rego, "authorityMatches\\[\"([^\"]+)\"\\]"))
            Assert.Contains(m.Groups[1].Value, authorities.Keys);

        // The globs match our pinned references and nothing beside or below them (glob.go: '*' stops at '/').
        var globs = spec["images"]!.AsArray().Select(g => (string)g!["glob"]!).ToList();
        var cpu = result.Deployments.Single(d => d.Description.Name == "inference-cpu").Image;
        Assert.All(result.Deployments, d => Assert.Contains(globs, g => PolicyControllerGlobMatches(g, d.Image.Reference)));
        Assert.DoesNotContain(globs, g => PolicyControllerGlobMatches(g, cpu.Repository + "-evil@" + cpu.Digest));
        Assert.DoesNotContain(globs, g => PolicyControllerGlobMatches(g, cpu.Repository + "/sub@" + cpu.Digest));
    }

    [Fact]
    public void EveryPolicy_NamesFullPredicateTypeUris_ThatSignWrites()
    {
        using var ws = new DeployWorkspace();
        var result = new DeployRenderer().Render(ws.Options());
        string[] expected = [PredicateTypes.CycloneDx, PredicateTypes.CosignVuln];
        var kyverno = Policy(result, "kyverno-verify-images.yaml")["spec"]!["rules"]![0]!["verifyImages"]![0]!["attestations"]!.AsArray()
            .Select(a => (string)a!["type"]!);
        var cip = result.AdmissionPolicies.Single(o => o.Kind == "ClusterImagePolicy").Document["spec"]!["authorities"]!.AsArray()
            .SelectMany(a => a!["attestations"]?.AsArray() ?? []).Select(a => (string)a!["predicateType"]!);
        var ivpol = Policy(result, "kyverno-imagevalidatingpolicy.yaml")["spec"]!["attestations"]!.AsArray().Select(a => (string)a!["intoto"]!["type"]!);
        Assert.Equal(expected, kyverno);
        Assert.Equal(expected, cip);
        Assert.Equal(expected, ivpol);
        Assert.Equal("https://cyclonedx.org/bom", PredicateTypes.CycloneDx);
        Assert.Equal("https://cosign.sigstore.dev/attestation/vuln/v1", PredicateTypes.CosignVuln);
        foreach (var o in result.AdmissionPolicies)
            Assert.DoesNotMatch("(?m)predicateType: (cyclonedx|vuln|slsaprovenance)\\s*$", o.Yaml);
    }

    [Fact]
    public void ImageValidatingPolicy_HasTheClusterPolicysChecks_ScopeRepositoriesSignatureSbomAndNoCritical()
    {
        var (ws, result) = Rendered();
        using var _ = ws;
        var spec = Policy(result, "kyverno-imagevalidatingpolicy.yaml")["spec"]!;
        Assert.Equal("Fail", (string)spec["failurePolicy"]!);
        Assert.Equal(["Deny"], spec["validationActions"]!.AsArray().Select(a => (string)a!));
        var selector = spec["matchConstraints"]!["namespaceSelector"]!["matchExpressions"]![0]!;
        Assert.Equal("kubernetes.io/metadata.name", (string)selector["key"]!);
        Assert.Equal("In", (string)selector["operator"]!);
        Assert.Equal(["gpu", "inference"], selector["values"]!.AsArray().Select(v => (string)v!));
        // CEL policies' webhooks are built verbatim from resourceRules: the debug-container subresource must be named.
        Assert.Equal(["pods", "pods/ephemeralcontainers"], spec["matchConstraints"]!["resourceRules"]![0]!["resources"]!.AsArray().Select(v => (string)v!));
        var globs = spec["matchImageReferences"]!.AsArray().Select(g => (string)g!["glob"]!).ToList();
        Assert.All(result.Deployments, d => Assert.Contains(globs, g => PolicyControllerGlobMatches(g, d.Image.Reference)));
        Assert.True((bool)spec["validationConfigurations"]!["required"]!);

        var pem = File.ReadAllText(Path.Combine(ws.Artifacts, "keys", "cosign.pub")).Trim();
        var attestor = spec["attestors"]![0]!;
        Assert.Equal(pem, ((string)attestor["cosign"]!["key"]!["data"]!).Trim());
        // The image-volume restriction (ModelAdmissionPolicyTests) is about volumes; every other validation is about containers.
        var expressions = spec["validations"]!.AsArray().Select(v => (string)v!["expression"]!)
            .Where(e => !e.StartsWith(AdmissionPolicyRenderer.ModelVolumesExpression, StringComparison.Ordinal)).ToList();
        Assert.Equal(spec["validations"]!.AsArray().Count - 1, expressions.Count);
        var name = (string)attestor["name"]!;
        Assert.Contains(expressions, e => e.Contains($"verifyImageSignatures(image, [attestors.{name}]) > 0"));
        Assert.Contains(expressions, e => e.Contains($"verifyAttestationSignatures(image, attestations.sbom, [attestors.{name}]) > 0"));
        Assert.Contains(expressions, e => e.Contains($"verifyAttestationSignatures(image, attestations.vuln, [attestors.{name}]) > 0"));
        Assert.Contains(expressions, e => e.Contains("extractPayload(image, attestations.sbom).predicate.bomFormat == 'CycloneDX'"));
        Assert.Contains(expressions, e => e.Contains("severity == 'critical'") && e.Contains("size() == 0"));
        Assert.All(expressions, e => Assert.Contains("ephemeralContainers", e));
        Assert.All(expressions, e => Assert.Contains("initContainers", e));
        var repositoryCheck = expressions[0];
        Assert.All(result.Deployments, d => Assert.Contains($"'{d.Image.Repository}@sha256:'", repositoryCheck));
    }

    /// <summary>Kyverno string patterns: " | " separates alternatives; '*' any run of characters, '?' one character.</summary>
    internal static bool KyvernoPatternMatches(string pattern, string value) =>
        pattern.Split(" | ").Any(alt => Regex.IsMatch(value, "^" + Regex.Escape(alt.Trim()).Replace("\\*", ".*").Replace("\\?", ".") + "$"));

    /// <summary>sigstore/policy-controller pkg/apis/glob: '**' any characters, '*' any characters but '/', whole string.</summary>
    internal static bool PolicyControllerGlobMatches(string glob, string image) =>
        Regex.IsMatch(image, "^" + Regex.Escape(glob).Replace("\\*\\*", "\u0001").Replace("\\*", "[^/]*").Replace("\u0001", ".*") + "$");
}
