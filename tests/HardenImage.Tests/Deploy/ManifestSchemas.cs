using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;
using HardenImage.Deploy;
using Json.Schema;

namespace HardenImage.Tests.Deploy;

/// <summary>
/// Validates manifests against the Kubernetes OpenAPI v2 definitions (swagger 2.0, release-1.36) and the CRD
/// openAPIV3Schemas (Kyverno, policy-controller, Karpenter) with JsonSchema.Net. The schemas are made STRICT the way
/// the API server's structural pruning behaves for CRs and kubeconform's -strict does for built-ins: an object schema
/// with properties and no additionalProperties gets additionalProperties: false, so an unknown or misspelt field
/// fails here instead of being dropped silently by the cluster. Kubernetes' extensions are mapped to JSON Schema:
/// <c>format: int-or-string</c> / <c>x-kubernetes-int-or-string</c> → integer|string, <c>nullable</c> → adds null.
/// </summary>
public sealed class ManifestSchemas
{
    private static string Data(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "TestData", "Deploy", .. parts]);

    private readonly JsonObject _k8sDefs;
    private readonly Dictionary<(string Group, string Version, string Kind), string> _k8sByGvk = new();
    private readonly Dictionary<(string Group, string Version, string Kind), JsonObject> _crds = new();
    private readonly Dictionary<(string, string, string), JsonSchema> _built = new();
    private readonly object _lock = new();

    public ManifestSchemas()
    {
        using (var gz = new GZipStream(File.OpenRead(Data("kubernetes-swagger-1.36.json.gz")), CompressionMode.Decompress))
        {
            var swagger = JsonNode.Parse(gz)!.AsObject();
            _k8sDefs = new JsonObject();
            foreach (var (name, def) in swagger["definitions"]!.AsObject())
            {
                _k8sDefs[name] = Strict(def!.DeepClone(), refPrefix: true);
                foreach (var gvk in def["x-kubernetes-group-version-kind"] as JsonArray ?? [])
                    _k8sByGvk[((string)gvk!["group"]!, (string)gvk["version"]!, (string)gvk["kind"]!)] = name;
            }
        }
        string ReadText(string file) =>
            file.EndsWith(".gz", StringComparison.Ordinal)
                ? new StreamReader(new GZipStream(File.OpenRead(Data(file)), CompressionMode.Decompress)).ReadToEnd()
                : File.ReadAllText(Data(file));
        foreach (var file in new[] { "kyverno.io_clusterpolicies.yaml.gz", "policies.kyverno.io_imagevalidatingpolicies.yaml.gz", "300-clusterimagepolicy.yaml", "karpenter.sh_nodepools.yaml", "karpenter.k8s.aws_ec2nodeclasses.yaml" })
            foreach (var doc in ManifestYaml.ReadAll(ReadText(file), file))
            {
                if ((string?)doc?["kind"] != "CustomResourceDefinition") continue;
                var group = (string)doc!["spec"]!["group"]!;
                var kind = (string)doc["spec"]!["names"]!["kind"]!;
                foreach (var v in doc["spec"]!["versions"]!.AsArray())
                    if (v!["served"]?.GetValue<bool>() == true)
                    {
                        var crdRoot = Strict(v["schema"]!["openAPIV3Schema"]!.DeepClone(), refPrefix: false).AsObject();
                        // The API server always accepts the object's own header, whether or not the CRD lists it.
                        var props = crdRoot["properties"]!.AsObject();
                        props["apiVersion"] ??= new JsonObject { ["type"] = "string" };
                        props["kind"] ??= new JsonObject { ["type"] = "string" };
                        props["metadata"] ??= new JsonObject { ["type"] = "object" };
                        _crds[(group, (string)v["name"]!, kind)] = crdRoot;
                    }
            }
    }

    /// <summary>Problems found in <paramref name="document"/> (empty = valid). Unknown apiVersion/kind is a problem too.</summary>
    public IReadOnlyList<string> Validate(JsonNode document)
    {
        var apiVersion = (string?)document["apiVersion"] ?? "";
        var kind = (string?)document["kind"] ?? "";
        var slash = apiVersion.IndexOf('/');
        var key = slash < 0 ? ("", apiVersion, kind) : (apiVersion[..slash], apiVersion[(slash + 1)..], kind);
        var schema = SchemaFor(key);
        if (schema == null) return [$"no schema for {apiVersion} {kind}"];
        var result = schema.Evaluate(JsonSerializer.SerializeToElement(document), new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (result.IsValid) return [];
        var problems = (result.Details ?? [])
            .Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key}: {e.Value}"))
            .Distinct().ToList();
        return problems.Count > 0 ? problems : ["invalid (no details)"];
    }

    private JsonSchema? SchemaFor((string, string, string) key)
    {
        lock (_lock)
        {
            if (_built.TryGetValue(key, out var cached)) return cached;
            JsonObject root;
            if (_k8sByGvk.TryGetValue(key, out var defName))
                root = new JsonObject
                {
                    ["$schema"] = "https://json-schema.org/draft/2020-12/schema",
                    ["$defs"] = _k8sDefs.DeepClone(),
                    ["$ref"] = "#/$defs/" + defName,
                };
            else if (_crds.TryGetValue(key, out var crd))
            {
                root = crd.DeepClone().AsObject();
                root["$schema"] = "https://json-schema.org/draft/2020-12/schema";
            }
            else return null;
            var schema = JsonSchema.Build(JsonSerializer.SerializeToElement(root), new BuildOptions { SchemaRegistry = new SchemaRegistry() },
                new Uri($"https://schemas.test/{key.Item1}/{key.Item2}/{key.Item3}"));
            _built[key] = schema;
            return schema;
        }
    }

    /// <summary>Maps Kubernetes schema dialect to JSON Schema 2020-12, strict about unknown fields.</summary>
    private static JsonNode Strict(JsonNode node, bool refPrefix)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var name in o.Select(kv => kv.Key).ToList())
                {
                    var child = o[name];
                    if (child == null) continue;
                    if (name is "properties" or "$defs" or "definitions" or "patternProperties" && child is JsonObject props)
                    {
                        foreach (var p in props.Select(kv => kv.Key).ToList())
                            if (props[p] != null) props[p] = Strict(props[p]!.DeepClone(), refPrefix);
                    }
                    else if (name is "default" or "example" or "enum" or "x-kubernetes-validations" or "x-kubernetes-group-version-kind")
                    {
                        // data, not schemas
                    }
                    else if (child is JsonObject or JsonArray)
                        o[name] = Strict(child.DeepClone(), refPrefix);
                }
                if (refPrefix && o["$ref"] is JsonValue r && ((string)r!).StartsWith("#/definitions/", StringComparison.Ordinal))
                    o["$ref"] = "#/$defs/" + ((string)r!)["#/definitions/".Length..];
                var intOrString = (string?)o["format"] == "int-or-string" || o["x-kubernetes-int-or-string"]?.GetValue<bool>() == true;
                if (intOrString)
                {
                    o.Remove("format");
                    o.Remove("anyOf");
                    o["type"] = new JsonArray("integer", "string");
                }
                if (o["nullable"]?.GetValue<bool>() == true && o["type"] is JsonValue t)
                    o["type"] = new JsonArray((string)t!, "null");
                var preserve = o["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() == true;
                if (o["properties"] is JsonObject && o["additionalProperties"] == null && !preserve)
                    o["additionalProperties"] = false;
                // JsonSchema.Net refuses keywords its dialect does not know: drop the OpenAPI-only ones (handled above).
                foreach (var k in o.Select(kv => kv.Key).Where(k => k.StartsWith("x-", StringComparison.Ordinal)
                             || k is "nullable" or "example" or "discriminator" or "externalDocs" or "xml").ToList())
                    o.Remove(k);
                return o;
            case JsonArray a:
                for (var i = 0; i < a.Count; i++)
                    if (a[i] != null) a[i] = Strict(a[i]!.DeepClone(), refPrefix);
                return a;
            default:
                return node;
        }
    }
}
