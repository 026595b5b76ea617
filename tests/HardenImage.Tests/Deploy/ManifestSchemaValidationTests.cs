using System.Text.Json.Nodes;
using HardenImage.Deploy;

namespace HardenImage.Tests.Deploy;

/// <summary>Every rendered file validates against the Kubernetes OpenAPI and the CRD schemas; broken ones do not.</summary>
public sealed class ManifestSchemaValidationTests(SchemaFixture fixture) : IClassFixture<SchemaFixture>
{
    private readonly ManifestSchemas _schemas = fixture.Schemas;

    [Fact]
    public void ShippedDeployments_EveryWrittenManifestValidatesAgainstItsSchema()
    {
        using var ws = new DeployWorkspace();
        var result = new DeployRenderer().RenderAndWrite(ws.Options());
        Assert.Equal(4, result.Deployments.Count);
        var files = Directory.EnumerateFiles(Path.Combine(ws.Artifacts, "deploy"), "*.yaml", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(result.Files.Count(), files.Count);
        var kinds = new HashSet<string>();
        foreach (var file in files)
        {
            var doc = ManifestYaml.Read(File.ReadAllText(file), file)!;
            kinds.Add((string)doc["kind"]!);
            var problems = _schemas.Validate(doc);
            Assert.True(problems.Count == 0, $"{file}:\n{string.Join("\n", problems.Take(20))}");
        }
        Assert.Superset(new HashSet<string> { "Namespace", "ServiceAccount", "Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget",
            "HorizontalPodAutoscaler", "NodePool", "EC2NodeClass", "ClusterPolicy", "ClusterImagePolicy", "ImageValidatingPolicy" }, kinds);
    }

    [Fact]
    public void SchemaValidation_RejectsWrongTypeMissingRequiredAndUnknownFields()
    {
        using var ws = new DeployWorkspace();
        var result = new DeployRenderer().Render(ws.Options());
        var deployment = result.Deployments[0].Objects.Single(o => o.Kind == "Deployment").Document;
        Assert.Empty(_schemas.Validate(deployment));

        var wrongType = deployment.DeepClone();
        wrongType["spec"]!["replicas"] = "two";
        Assert.Contains(_schemas.Validate(wrongType), p => p.Contains("/spec/replicas", StringComparison.Ordinal));

        var missingRequired = deployment.DeepClone();
        missingRequired["spec"]!["template"]!["spec"]!["containers"]![0]!.AsObject().Remove("name");
        Assert.NotEmpty(_schemas.Validate(missingRequired));

        var unknownField = deployment.DeepClone();
        unknownField["spec"]!["template"]!["spec"]!["containers"]![0]!["securityContext"]!["readOnlyRootFileSystem"] = true;
        Assert.NotEmpty(_schemas.Validate(unknownField));

        var intOrString = deployment.DeepClone();
        intOrString["spec"]!["strategy"]!["rollingUpdate"]!["maxSurge"] = "25%";
        Assert.Empty(_schemas.Validate(intOrString));
        intOrString["spec"]!["strategy"]!["rollingUpdate"]!["maxSurge"] = true;
        Assert.NotEmpty(_schemas.Validate(intOrString));
    }

    [Fact]
    public void CrdValidation_RejectsBrokenNodePoolAndPolicies()
    {
        using var ws = new DeployWorkspace();
        var result = new DeployRenderer().Render(ws.Options());
        var nodePool = result.Deployments.Single(d => d.Description.Name == "inference-cuda").Objects.Single(o => o.Kind == "NodePool").Document;
        Assert.Empty(_schemas.Validate(nodePool));
        var badEffect = nodePool.DeepClone();
        badEffect["spec"]!["template"]!["spec"]!["taints"]![0]!["effect"] = "Sometimes";
        Assert.NotEmpty(_schemas.Validate(badEffect));

        var kyverno = result.AdmissionPolicies.Single(o => o.FileName == "kyverno-verify-images.yaml").Document;
        Assert.Empty(_schemas.Validate(kyverno));
        var misspelt = kyverno.DeepClone();
        misspelt["spec"]!["rules"]![0]!["verifyImages"]![0]!["mutateDigests"] = true;
        Assert.NotEmpty(_schemas.Validate(misspelt));

        var cip = result.AdmissionPolicies.Single(o => o.Kind == "ClusterImagePolicy").Document;
        Assert.Empty(_schemas.Validate(cip));
        var noKey = cip.DeepClone();
        noKey["spec"]!["authorities"]![0]!["key"]!["hashAlgorithm"] = 256;
        Assert.NotEmpty(_schemas.Validate(noKey));

        var ivpol = result.AdmissionPolicies.Single(o => o.FileName == "kyverno-imagevalidatingpolicy.yaml").Document;
        Assert.Equal("policies.kyverno.io/v1", (string)ivpol["apiVersion"]!);
        Assert.Empty(_schemas.Validate(ivpol));
        var badAction = ivpol.DeepClone();
        badAction["spec"]!["validationActions"] = new JsonArray("Enforce");
        Assert.NotEmpty(_schemas.Validate(badAction));
        var misspeltAttestor = ivpol.DeepClone();
        misspeltAttestor["spec"]!["attestors"]![0]!["cosign"]!["ctlog"]!["ignoreTlog"] = true;
        Assert.NotEmpty(_schemas.Validate(misspeltAttestor));
        var noValidations = ivpol.DeepClone();
        noValidations["spec"]!.AsObject().Remove("validations");
        Assert.NotEmpty(_schemas.Validate(noValidations));

        var unknownKind = new JsonObject { ["apiVersion"] = "example.com/v1", ["kind"] = "Widget" };
        Assert.NotEmpty(_schemas.Validate(unknownKind));
    }
}
