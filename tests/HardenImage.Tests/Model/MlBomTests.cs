using System.Text.Json;
using HardenImage.Common;
using HardenImage.Model;
using HardenImage.Oci;
using HardenImage.Tests.Sbom;

namespace HardenImage.Tests.Model;

/// <summary>The model's ML-BOM: schema-valid CycloneDX 1.6, the card in modelCard, every file hashed, bound to the digest.</summary>
public class MlBomTests
{
    [Fact]
    public void MlBom_IsValidCycloneDx16_WithModelCardAndEveryFileHashed()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var packed = kit.Pack();
        var bytes = MlBomWriter.Write(packed, ModelTestKit.Card);
        SchemaValidation.AssertCycloneDx(bytes);

        using var doc = JsonDocument.Parse(bytes);
        var model = doc.RootElement.GetProperty("metadata").GetProperty("component");
        Assert.Equal("machine-learning-model", model.GetProperty("type").GetString());
        Assert.Equal("tiny-lm", model.GetProperty("name").GetString());
        Assert.Equal("1", model.GetProperty("version").GetString());
        Assert.Equal("Apache-2.0", model.GetProperty("licenses")[0].GetProperty("expression").GetString());
        var card = model.GetProperty("modelCard");
        Assert.Equal(new[] { "alphabet", "punctuation" }, card.GetProperty("modelParameters").GetProperty("datasets").EnumerateArray().Select(d => d.GetProperty("name").GetString()!).ToArray());
        Assert.Equal("https://example.org/alphabet", card.GetProperty("modelParameters").GetProperty("datasets")[0].GetProperty("contents").GetProperty("url").GetString());
        Assert.Equal("smoke tests of the inference server", card.GetProperty("considerations").GetProperty("useCases")[0].GetString());
        Assert.Equal(new[] { "knows only the alphabet", "not for clinical use" }, card.GetProperty("considerations").GetProperty("technicalLimitations").EnumerateArray().Select(l => l.GetString()!).ToArray());

        var files = doc.RootElement.GetProperty("components").EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!, c => c.GetProperty("hashes")[0].GetProperty("content").GetString());
        foreach (var f in Directory.EnumerateFiles(kit.ModelDir, "*", SearchOption.AllDirectories))
            Assert.Equal(Sha256Hex.OfFile(f), files[Path.GetRelativePath(kit.ModelDir, f)]);
        Assert.Equal(7, files.Count);
    }

    [Fact]
    public void MlBom_EmptyCardStillValidates()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var packed = new ModelPacker(kit.Layout).Pack(new ModelPackRequest(kit.ModelDir, "bare", "0.1", ModelCard.Empty));
        SchemaValidation.AssertCycloneDx(MlBomWriter.Write(packed, ModelCard.Empty));
    }

    [Fact]
    public void MlBom_ForAnotherDigest_IsNotAttested()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var packed = kit.Pack();
        var path = kit.Combine("tiny.cdx.json");
        File.WriteAllBytes(path, MlBomWriter.Write(packed, ModelTestKit.Card));
        Assert.NotNull(ModelMlBom.ReadFor(path, Digest.Parse(packed.Manifest.Digest)));
        var other = Digest.Of("another model"u8);
        var ex = Assert.Throws<HardenException>(() => ModelMlBom.ReadFor(path, other));
        Assert.Contains($"describes model {packed.Manifest.Digest}, but the pushed model is {other}", ex.Message);
    }

    [Fact]
    public void Card_UnknownField_IsAnErrorNamingFileAndLine()
    {
        using var kit = new ModelTestKit();
        var path = kit.Combine("card.yaml");
        File.WriteAllText(path, "license: MIT\nintendedUse: tests\nlimitation: typo\n");
        var ex = Assert.Throws<HardenException>(() => ModelCard.Load(path));
        Assert.Contains($"{path}:3: unknown field 'limitation' (did you mean limitations?)", ex.Message);
    }

    [Fact]
    public void Card_ReadsEveryField()
    {
        using var kit = new ModelTestKit();
        var path = kit.Combine("card.yaml");
        File.WriteAllText(path, """
            description: tiny
            license: Apache-2.0
            authors: [a@example.org]
            format: torchscript
            datasets:
              - alphabet
              - name: digits
                url: https://example.org/digits
            intendedUse: smoke tests
            limitations: only letters
            """);
        var card = ModelCard.Load(path);
        Assert.Equal(["Apache-2.0"], card.Licenses);
        Assert.Equal(["alphabet", "digits"], card.Datasets.Select(d => d.Name));
        Assert.Equal("https://example.org/digits", card.Datasets[1].Url);
        Assert.Equal(["only letters"], card.Limitations);
        Assert.Equal("torchscript", card.Format);
    }
}
