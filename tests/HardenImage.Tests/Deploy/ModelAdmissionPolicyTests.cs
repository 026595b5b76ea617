using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using HardenImage.Deploy;
using HardenImage.Signing;

namespace HardenImage.Tests.Deploy;

/// <summary>
/// Issue 16 item 5: admission of the model an image volume carries. Kyverno's ClusterPolicy verifyImages and
/// policy-controller read containers only; Kyverno 1.19's ImageValidatingPolicy takes CEL image extractors
/// (pkg/cel/compiler/images.go: each extractor's list is filtered by matchImageReferences — a reference outside them is
/// silently dropped — then verifyDigest and the validations run). So the rendered policies (a) extract
/// spec.volumes[].image.reference, (b) verify signature and ML-BOM of what matches our model repositories and
/// (c) refuse, with a validation that does not depend on the filter, any image volume that is not one of our models by
/// digest. Matching is re-implemented here from the controllers' rules (RE2 'matches', Kyverno patterns, globs).
/// </summary>
public sealed class ModelAdmissionPolicyTests(SchemaFixture fixture) : IClassFixture<SchemaFixture>
{
    private static JsonObject Policy(DeployResult r, string file) => r.AdmissionPolicies.Single(o => o.FileName == file).Document;

    private static string Hex(char c) => new(c, 64);

    /// <summary>References a pod could put in an image volume, and whether our policies must admit them.</summary>
    private static IEnumerable<(string Reference, bool Ours)> Candidates(string repository, string digest) =>
    [
        ($"{repository}@{digest}", true),
        ($"{repository}@sha256:{Hex('b')}", true),                 // another digest of our model repository: signature decides
        ($"{repository}:1", false),                                // by tag: movable
        ($"{repository}-evil@{digest}", false),                    // a repository sharing our prefix
        ($"{repository}/sub@{digest}", false),                     // a repository below ours
        ($"evil.example/{repository}@{digest}", false),
        ($"docker.io/library/busybox@sha256:{Hex('a')}", false),
        ($"{repository}@sha256:{Hex('A')}", false),                // not a canonical digest
        ($"{repository}@sha256:{Hex('a')}0", false),
        ("", false),                                               // an image volume without reference
    ];

    [Fact]
    public void ModelsPolicy_ExtractsImageVolumes_VerifiesSignatureAndMlBom_AndIsSchemaValid()
    {
        using var m = new ModelDeployWorkspace();
        var result = new DeployRenderer().Render(m.Ws.Options());
        var policy = Policy(result, "kyverno-imagevalidatingpolicy-models.yaml");
        Assert.Empty(fixture.Schemas.Validate(policy));
        var spec = policy["spec"]!;
        Assert.Equal("Fail", (string)spec["failurePolicy"]!);
        Assert.Equal(["Deny"], spec["validationActions"]!.AsArray().Select(a => (string)a!));
        Assert.Equal(["inference"], spec["matchConstraints"]!["namespaceSelector"]!["matchExpressions"]![0]!["values"]!.AsArray().Select(v => (string)v!));
        Assert.Equal(["pods", "pods/ephemeralcontainers"], spec["matchConstraints"]!["resourceRules"]![0]!["resources"]!.AsArray().Select(v => (string)v!));

        // The extractor reads every image volume's reference (object, or oldObject on DELETE, as Kyverno's defaults do).
        var extractor = Assert.Single(spec["images"]!.AsArray())!;
        Assert.Equal("models", (string)extractor["name"]!);
        Assert.Equal("(object != null ? object : oldObject).spec.?volumes.orValue([]).filter(v, has(v.image)).map(v, v.image.?reference.orValue(''))",
            (string)extractor["expression"]!);

        // matchImageReferences selects our model repositories (tags too, so verifyDigest refuses them rather than skipping).
        var globs = spec["matchImageReferences"]!.AsArray().Select(g => (string)g!["glob"]!).ToList();
        foreach (var (reference, ours) in Candidates(m.ModelRepository, m.Packed.Manifest.Digest).Where(c => c.Reference.Length > 0))
        {
            var matched = globs.Any(g => AdmissionPolicySemanticsTests.PolicyControllerGlobMatches(g, reference));
            if (ours) Assert.True(matched, reference);
            if (reference.StartsWith(m.ModelRepository + ":", StringComparison.Ordinal)) Assert.True(matched, "a tag must be matched so verifyDigest refuses it");
        }
        Assert.True((bool)spec["validationConfigurations"]!["verifyDigest"]!);
        Assert.True((bool)spec["validationConfigurations"]!["required"]!);
        Assert.False((bool)spec["validationConfigurations"]!["mutateDigest"]!); // Kyverno pins container fields only

        var pem = File.ReadAllText(Path.Combine(m.Ws.Artifacts, "keys", "cosign.pub")).Trim();
        var attestor = Assert.Single(spec["attestors"]!.AsArray())!;
        Assert.Equal(pem, ((string)attestor["cosign"]!["key"]!["data"]!).Trim());
        var attestation = Assert.Single(spec["attestations"]!.AsArray())!;
        Assert.Equal(PredicateTypes.CycloneDx, (string)attestation["intoto"]!["type"]!);
        var a = (string)attestor["name"]!;
        var att = (string)attestation["name"]!;
        var expressions = spec["validations"]!.AsArray().Select(v => (string)v!["expression"]!).ToList();
        Assert.Contains($"images.models.all(image, verifyImageSignatures(image, [attestors.{a}]) > 0)", expressions);
        Assert.Contains($"images.models.all(image, verifyAttestationSignatures(image, attestations.{att}, [attestors.{a}]) > 0)", expressions);
        Assert.Contains(expressions, e => e.Contains($"extractPayload(image, attestations.{att}).predicate.bomFormat == 'CycloneDX'", StringComparison.Ordinal)
                                          && e.Contains("'machine-learning-model'", StringComparison.Ordinal));

        var broken = policy.DeepClone();
        broken["spec"]!["images"]![0]!.AsObject().Remove("expression");
        Assert.NotEmpty(fixture.Schemas.Validate(broken));
    }

    /// <summary>
    /// Audit: the ML-BOM validation evaluated against the ML-BOM we really attest (it read predicate.components, where
    /// our BOM lists the files; the model is metadata.component, so Kyverno denied every model of ours). The clauses are
    /// "predicate path == 'literal'" conjunctions; each path is walked in the in-toto statement extractPayload returns
    /// (the predicate is the BOM), '.?' and orValue('') as CEL's optional fields do.
    /// </summary>
    [Fact]
    public void ModelsPolicy_MlBomCheck_AdmitsTheMlBomWeAttest_AndRefusesOneWithoutTheModel()
    {
        using var m = new ModelDeployWorkspace();
        var policy = Policy(new DeployRenderer().Render(m.Ws.Options()), "kyverno-imagevalidatingpolicy-models.yaml");
        var att = (string)policy["spec"]!["attestations"]![0]!["name"]!;
        var prefix = $"images.models.all(image, ";
        var expression = policy["spec"]!["validations"]!.AsArray().Select(v => (string)v!["expression"]!)
            .Single(e => e.Contains($"extractPayload(image, attestations.{att})", StringComparison.Ordinal));
        Assert.StartsWith(prefix, expression);
        var clauses = expression[prefix.Length..^1].Split(" && ");
        var parsed = clauses.Select(c => Regex.Match(c, $@"^extractPayload\(image, attestations\.{att}\)\.predicate((?:\.\??[A-Za-z]+)+)(\.orValue\(''\))? == '([^']*)'$")).ToList();
        Assert.All(parsed, (p, i) => Assert.True(p.Success, $"clause '{clauses[i]}' is not a path comparison this test evaluates"));

        bool Admits(JsonNode statement) => parsed.All(p =>
        {
            JsonNode? node = statement["predicate"];
            foreach (var step in p.Groups[1].Value.Split('.', StringSplitOptions.RemoveEmptyEntries))
            {
                var optional = step.StartsWith('?');
                var field = step.TrimStart('?');
                var next = node is JsonObject o && o.TryGetPropertyValue(field, out var v) ? v : null;
                if (next == null && !optional) throw new InvalidOperationException($"no such key '{field}' (CEL error: the validation fails)");
                node = next;
            }
            var value = node == null ? (p.Groups[2].Success ? "" : throw new InvalidOperationException("optional none without orValue")) : (string?)node;
            return value == p.Groups[3].Value;
        });

        var bom = JsonNode.Parse(HardenImage.Model.MlBomWriter.Write(m.Packed, HardenImage.Model.ModelCard.Empty))!;
        Assert.True(Admits(new JsonObject { ["predicateType"] = PredicateTypes.CycloneDx, ["predicate"] = bom.DeepClone() }));
        var imageSbom = bom.DeepClone();
        imageSbom["metadata"]!["component"]!["type"] = "container";
        Assert.False(Admits(new JsonObject { ["predicateType"] = PredicateTypes.CycloneDx, ["predicate"] = imageSbom }));
    }

    [Fact]
    public void ImageVolumeRestriction_AdmitsOnlyOurModelsByDigest_InBothCelPolicies_AndTheClusterPolicy()
    {
        using var m = new ModelDeployWorkspace();
        var result = new DeployRenderer().Render(m.Ws.Options());
        var candidates = Candidates(m.ModelRepository, m.Packed.Manifest.Digest).ToList();
        foreach (var file in new[] { "kyverno-imagevalidatingpolicy.yaml", "kyverno-imagevalidatingpolicy-models.yaml" })
        {
            var pattern = RestrictionPattern(Policy(result, file));
            Assert.All(candidates, c => Assert.True(Regex.IsMatch(c.Reference, pattern) == c.Ours, $"{file}: '{c.Reference}' by {pattern}"));
        }
        var rule = Policy(result, "kyverno-verify-images.yaml")["spec"]!["rules"]!.AsArray().Single(r => (string)r!["name"]! == "restrict-model-volumes")!;
        Assert.Equal("Enforce", (string)rule["validate"]!["failureAction"]!);
        Assert.Equal(["inference"], rule["match"]!["any"]![0]!["resources"]!["namespaces"]!.AsArray().Select(n => (string)n!));
        var kyvernoPattern = (string)rule["validate"]!["pattern"]!["spec"]!["=(volumes)"]![0]!["=(image)"]!["reference"]!;
        // Kyverno's wildcard cannot say "64 hex": the digest itself is left to the CEL policies and the signature.
        Assert.All(candidates.Where(c => !c.Reference.Contains("sha256:" + Hex('A'), StringComparison.Ordinal) && !c.Reference.EndsWith("0", StringComparison.Ordinal)),
            c => Assert.True(AdmissionPolicySemanticsTests.KyvernoPatternMatches(kyvernoPattern, c.Reference) == c.Ours, $"ClusterPolicy: '{c.Reference}'"));
    }

    [Fact]
    public void WithoutModels_EveryImageVolumeIsRefused_AndNoModelsPolicyMatchesEveryImage()
    {
        using var ws = new DeployWorkspace();
        foreach (var file in Directory.EnumerateFiles(ws.DeployDir, "*.yaml"))
            File.WriteAllText(file, Regex.Replace(File.ReadAllText(file), "(?m)^model:\n(  .*\n)+", ""));
        var result = new DeployRenderer().Render(ws.Options());
        Assert.All(result.Deployments, d => Assert.Null(d.Model));
        // An ImageValidatingPolicy without matchImageReferences matches every image (matching.MatchImage): not rendered.
        Assert.DoesNotContain(result.AdmissionPolicies, o => o.FileName == "kyverno-imagevalidatingpolicy-models.yaml");
        var pattern = RestrictionPattern(Policy(result, "kyverno-imagevalidatingpolicy.yaml"));
        foreach (var reference in new[] { "", $"registry.example/models/x@sha256:{Hex('a')}", "busybox" })
            Assert.DoesNotMatch(pattern, reference);
        var rule = Policy(result, "kyverno-verify-images.yaml")["spec"]!["rules"]!.AsArray().Single(r => (string)r!["name"]! == "restrict-model-volumes")!;
        Assert.Equal("null", (string)rule["validate"]!["pattern"]!["spec"]!["=(volumes)"]![0]!["X(image)"]!);
        Assert.Empty(fixture.Schemas.Validate(Policy(result, "kyverno-verify-images.yaml")));
    }

    /// <summary>The RE2 pattern of the validation <c>&lt;extractor&gt;.all(ref, ref.matches(r'…'))</c>, checked to apply to the extractor.</summary>
    private static string RestrictionPattern(JsonObject policy)
    {
        var expression = policy["spec"]!["validations"]!.AsArray().Select(v => (string)v!["expression"]!)
            .Single(e => e.StartsWith(AdmissionPolicyRenderer.ModelVolumesExpression, StringComparison.Ordinal));
        var match = Regex.Match(expression, @"^(?<source>.*)\.all\(ref, ref\.matches\(r'(?<re>[^']*)'\)\)$");
        Assert.True(match.Success, expression);
        Assert.Equal(AdmissionPolicyRenderer.ModelVolumesExpression, match.Groups["source"].Value);
        // What this pattern uses (anchors, groups, alternation, escapes, [0-9a-f]{64}) means the same in RE2 and .NET.
        Assert.DoesNotMatch(@"\(\?|\\[pPdDwWsSbB]", match.Groups["re"].Value);
        return match.Groups["re"].Value;
    }
}
