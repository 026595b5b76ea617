using System.Formats.Tar;
using System.Text.Json;
using HardenImage.Common;
using HardenImage.Model;
using HardenImage.Oci;
using HardenImage.Tests.Sbom;

namespace HardenImage.Tests.Model;

/// <summary>What `harden model pack` writes is a ModelPack v0.0.7 artifact, byte for byte what docs/model.md says.</summary>
public class ModelPackFormatTests
{
    [Fact]
    public void Pack_WritesModelPackManifest_WithOneTarLayerPerFile_InPathOrder()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var packed = kit.Pack();

        var manifest = kit.Layout.ReadJson<ImageManifest>(packed.Manifest.Digest);
        Assert.Equal(MediaTypes.ImageManifest, manifest.MediaType);
        Assert.Equal("application/vnd.cncf.model.manifest.v1+json", manifest.ArtifactType);
        Assert.Equal("application/vnd.cncf.model.config.v1+json", manifest.Config.MediaType);
        Assert.Equal(["README.md", "config.json", "empty.txt", "model.safetensors", "neuron/deep/er/x.bin", "neuron/graph.neff", "tokenizer.json"],
            manifest.Layers.Select(l => l.Annotations![ModelPackFormat.FilePathAnnotation]).ToArray());
        var kinds = manifest.Layers.ToDictionary(l => l.Annotations![ModelPackFormat.FilePathAnnotation], l => l.MediaType);
        Assert.Equal("application/vnd.cncf.model.weight.v1.tar", kinds["model.safetensors"]);
        Assert.Equal("application/vnd.cncf.model.weight.v1.tar", kinds["neuron/graph.neff"]);
        Assert.Equal("application/vnd.cncf.model.weight.config.v1.tar", kinds["tokenizer.json"]);
        Assert.Equal("application/vnd.cncf.model.doc.v1.tar", kinds["README.md"]);
        // A name we do not know is packed as a weight and the layer says the type is a guess.
        Assert.Equal("true", manifest.Layers.Single(l => l.Annotations![ModelPackFormat.FilePathAnnotation] == "empty.txt").Annotations![ModelPackFormat.MediaTypeUntestedAnnotation]);
        Assert.False(manifest.Layers.Single(l => l.Annotations![ModelPackFormat.FilePathAnnotation] == "model.safetensors").Annotations!.ContainsKey(ModelPackFormat.MediaTypeUntestedAnnotation));
        Assert.Equal(packed.Manifest.Digest, kit.Layout.Resolve("tiny-lm:1")!.Digest);
    }

    [Fact]
    public void Pack_LayerAnnotations_CarryPathSpecFileMetadataAndTheFilesOwnSha256()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var packed = kit.Pack();
        var manifest = kit.Layout.ReadJson<ImageManifest>(packed.Manifest.Digest);
        var layer = manifest.Layers.Single(l => l.Annotations![ModelPackFormat.FilePathAnnotation] == "neuron/graph.neff");
        var bytes = File.ReadAllBytes(Path.Combine(kit.ModelDir, "neuron", "graph.neff"));
        Assert.Equal(Sha256Hex.Of(bytes), layer.Annotations![ModelPackFormat.FileSha256Annotation]);
        // The spec's FileMetadata, as Go's encoding/json writes it (field order of the struct).
        Assert.Equal("{\"name\":\"graph.neff\",\"mode\":420,\"uid\":0,\"gid\":0,\"size\":70000,\"mtime\":\"1970-01-01T00:00:00Z\",\"typeflag\":48}",
            layer.Annotations[ModelPackFormat.FileMetadataAnnotation]);
    }

    [Fact]
    public void Pack_Layer_IsAnUncompressedTar_HoldingTheFileAtItsPath_ReadableByTheServerUser()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var packed = kit.Pack();
        var manifest = kit.Layout.ReadJson<ImageManifest>(packed.Manifest.Digest);
        var layer = manifest.Layers.Single(l => l.Annotations![ModelPackFormat.FilePathAnnotation] == "neuron/deep/er/x.bin");
        using var blob = kit.Layout.OpenBlob(layer.Digest);
        using var tar = new TarReader(blob);
        var entries = new List<(string, TarEntryType, UnixFileMode, int, int, DateTimeOffset, long)>();
        while (tar.GetNextEntry() is { } e) entries.Add((e.Name, e.EntryType, e.Mode, e.Uid, e.Gid, e.ModificationTime, e.Length));
        var dir = (UnixFileMode)Convert.ToInt32("755", 8);
        Assert.Equal([
            ("neuron/", TarEntryType.Directory, dir, 0, 0, DateTimeOffset.UnixEpoch, 0L),
            ("neuron/deep/", TarEntryType.Directory, dir, 0, 0, DateTimeOffset.UnixEpoch, 0L),
            ("neuron/deep/er/", TarEntryType.Directory, dir, 0, 0, DateTimeOffset.UnixEpoch, 0L),
            ("neuron/deep/er/x.bin", TarEntryType.RegularFile, (UnixFileMode)Convert.ToInt32("644", 8), 0, 0, DateTimeOffset.UnixEpoch, 10L),
        ], entries);
        // Uncompressed: the blob digest is the diffId the config lists.
        var config = JsonSerializer.Deserialize<ModelConfigDocument>(kit.Layout.ReadBlob(manifest.Config.Digest))!;
        Assert.Equal(manifest.Layers.Select(l => l.Digest), config.ModelFs.DiffIds);
    }

    [Fact]
    public void Pack_Config_IsValidAgainstTheSpecSchema_AndCarriesTheCard()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var packed = kit.Pack();
        var manifest = kit.Layout.ReadJson<ImageManifest>(packed.Manifest.Digest);
        var bytes = kit.Layout.ReadBlob(manifest.Config.Digest);
        ModelPackSchema.AssertValid(bytes);
        using var doc = JsonDocument.Parse(bytes);
        var d = doc.RootElement.GetProperty("descriptor");
        Assert.Equal("tiny-lm", d.GetProperty("name").GetString());
        Assert.Equal("1", d.GetProperty("version").GetString());
        Assert.Equal("Apache-2.0", d.GetProperty("licenses")[0].GetString());
        Assert.False(d.TryGetProperty("createdAt", out _)); // no clock in the digest
        Assert.Equal("torchscript", doc.RootElement.GetProperty("config").GetProperty("format").GetString());
    }

    [Fact]
    public void SpecSchema_RejectsAConfigWithoutModelfs_SoTheValidationCanFail()
    {
        var ex = Assert.ThrowsAny<Exception>(() => ModelPackSchema.AssertValid("{\"descriptor\":{\"name\":\"x\"},\"config\":{}}"u8.ToArray()));
        Assert.Contains("modelfs", ex.Message);
    }

    [Theory]
    [InlineData("Tiny", "1", "--name 'Tiny'")]
    [InlineData("a/b", "1", "--name 'a/b'")]
    [InlineData("tiny", "-1", "--version '-1'")]
    [InlineData("tiny", "1 2", "--version '1 2'")]
    public void Pack_RefusesNamesAndVersionsThatCannotBeARepositoryAndTag(string name, string version, string named)
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var ex = Assert.Throws<HardenException>(() => kit.Pack(name, version));
        Assert.Contains(named, ex.Message);
        Assert.Empty(kit.Layout.ReadIndex().Manifests);
    }
}

/// <summary>The ModelPack config schema from TestData/Model, evaluated as the draft its keywords ($defs) belong to.</summary>
internal static class ModelPackSchema
{
    private static readonly Lazy<Json.Schema.JsonSchema> Schema = new(() =>
    {
        var text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "TestData", "Model", "modelpack-config-schema.json"))
            .Replace("http://json-schema.org/draft-04/schema#", "https://json-schema.org/draft/2020-12/schema", StringComparison.Ordinal);
        return Json.Schema.JsonSchema.FromText(text, new Json.Schema.BuildOptions { SchemaRegistry = new Json.Schema.SchemaRegistry() });
    });

    public static void AssertValid(byte[] json)
    {
        using var doc = JsonDocument.Parse(json);
        var result = Schema.Value.Evaluate(doc.RootElement, new Json.Schema.EvaluationOptions { OutputFormat = Json.Schema.OutputFormat.List });
        if (!result.IsValid)
        {
            var errors = (result.Details ?? []).Where(d => d.Errors != null)
                .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key}: {e.Value}")).Take(20);
            Assert.Fail($"not a valid ModelPack config:\n{string.Join("\n", errors)}");
        }
    }
}
