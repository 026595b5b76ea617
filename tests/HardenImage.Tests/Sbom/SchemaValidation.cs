namespace HardenImage.Tests.Sbom;

/// <summary>Validates JSON documents against the official schemas copied into TestData.</summary>
public static class SchemaValidation
{
    private static string Data(string stage, string file) => Path.Combine(AppContext.BaseDirectory, "TestData", stage, file);

    private static readonly Lazy<Json.Schema.JsonSchema> CycloneDx = new(() =>
    {
        var options = new Json.Schema.BuildOptions { SchemaRegistry = new Json.Schema.SchemaRegistry() };
        foreach (var (file, alias) in new[] { ("spdx.schema.json", "spdx.SNAPSHOT.schema.json"), ("jsf-0.82.schema.json", "jsf-0.82.SNAPSHOT.schema.json") })
        {
            var schema = Json.Schema.JsonSchema.FromText(System.IO.File.ReadAllText(Data("Sbom", file)), options);
            options.SchemaRegistry.Register(new Uri("http://cyclonedx.org/schema/" + alias), schema);
        }
        return Json.Schema.JsonSchema.FromText(System.IO.File.ReadAllText(Data("Sbom", "bom-1.6.schema.json")), options);
    });

    private static readonly Lazy<Json.Schema.JsonSchema> OpenVex = new(() =>
        Json.Schema.JsonSchema.FromText(System.IO.File.ReadAllText(Data("Scan", "openvex_json_schema.json")),
            new Json.Schema.BuildOptions { SchemaRegistry = new Json.Schema.SchemaRegistry() }));

    public static void AssertCycloneDx(byte[] json) => AssertValid(CycloneDx.Value, json, "CycloneDX 1.6");

    public static void AssertOpenVex(byte[] json) => AssertValid(OpenVex.Value, json, "OpenVEX 0.2.0");

    private static void AssertValid(Json.Schema.JsonSchema schema, byte[] json, string what)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        var result = schema.Evaluate(doc.RootElement, new Json.Schema.EvaluationOptions { OutputFormat = Json.Schema.OutputFormat.List });
        if (!result.IsValid)
        {
            var errors = (result.Details ?? []).Where(d => d.Errors != null)
                .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key}: {e.Value}")).Take(20);
            Assert.Fail($"not valid {what}:\n{string.Join("\n", errors)}");
        }
    }
}
