using HardenImage.Common;
using HardenImage.Model;

namespace HardenImage.Tests.Model;

/// <summary>artifacts/models.json and what push reads from the model layout.</summary>
public class ModelRecordTests
{
    [Fact]
    public async Task Push_RecordsRepositoryVersionDigestReferenceAndMlBom_AndMergesModels()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var a = kit.Pack("alpha");
        var b = kit.Pack("beta", "2");
        var pushed = await new ModelPusher(kit.Layout, kit.Registry, kit.Target).PushAsync(ModelPusher.ModelsIn(kit.Layout));
        var path = kit.Combine("artifacts", "models.json");
        ModelRecordFile.Save(path, kit.Target.ToString(), pushed.Where(p => p.Name == "alpha"));
        ModelRecordFile.Save(path, kit.Target.ToString(), pushed.Where(p => p.Name == "beta"));
        var record = ModelRecordFile.Load(path)!;
        Assert.Equal(["alpha", "beta"], record.Models.Keys);
        var beta = record.Models["beta"];
        Assert.Equal(("models/beta", "2", b.Manifest.Digest, "models/beta.cdx.json"), (beta.Repository, beta.Version, beta.Digest, beta.MlBom));
        Assert.Equal($"{kit.Target}/models/beta@{b.Manifest.Digest}", beta.Reference);
        Assert.Equal(a.Manifest.Digest, record.Models["alpha"].Digest);
    }

    [Fact]
    public void CorruptRecord_IsOneLineNamingTheFileAndTheFix()
    {
        using var kit = new ModelTestKit();
        var path = kit.Combine("models.json");
        File.WriteAllText(path, "{\"registry\":\"oci:x\",\"models\":{\"m\":{\"repository\":\"models/m\",\"version\":\"1\",\"digest\":\"sha256:zz\",\"reference\":\"r\",\"mlbom\":\"b\"}}}");
        var ex = Assert.Throws<HardenException>(() => ModelRecordFile.Load(path));
        Assert.Contains(path, ex.Message);
        Assert.Contains("Re-run 'harden model push'", ex.Message);
    }

    [Fact]
    public void Push_TwoVersionsOfOneModel_NeedsTheVersionNamed()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        kit.Pack("alpha", "1");
        kit.Pack("alpha", "2");
        var ex = Assert.Throws<HardenException>(() => ModelPusher.ModelsIn(kit.Layout));
        Assert.Contains("packed in several versions (1, 2); push one with --name alpha --version V", ex.Message);
        Assert.Equal("2", ModelPusher.ModelsIn(kit.Layout, "alpha", "2").Single().Version);
        var none = Assert.Throws<HardenException>(() => ModelPusher.ModelsIn(kit.Layout, "alpha", "3"));
        Assert.StartsWith("--name alpha --version 3: no such packed model", none.Message);
    }

    [Fact]
    public void ModelDirectory_FileSwappedForASymlinkBetweenListAndOpen_IsRefused()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        File.WriteAllText(kit.Combine("secret"), "host secret");
        var reader = new ModelDirectoryReader(kit.ModelDir)
        {
            BetweenCheckAndOpen = path =>
            {
                if (path.EndsWith("config.json", StringComparison.Ordinal))
                {
                    File.Delete(path);
                    File.CreateSymbolicLink(path, kit.Combine("secret"));
                }
            },
        };
        var files = reader.List();
        var ex = Assert.Throws<HardenException>(() => reader.Open(files.Single(f => f.Path == "config.json")).Dispose());
        Assert.Contains("config.json: was replaced by a symlink while packing", ex.Message);
    }

    [Fact]
    public void ModelDirectory_FileThatChangedSizeAfterListing_IsRefused()
    {
        using var kit = new ModelTestKit();
        kit.WriteModel();
        var reader = new ModelDirectoryReader(kit.ModelDir);
        var files = reader.List();
        File.AppendAllText(Path.Combine(kit.ModelDir, "config.json"), " ");
        var ex = Assert.Throws<HardenException>(() => reader.Open(files.Single(f => f.Path == "config.json")).Dispose());
        Assert.Contains("config.json: changed size while packing", ex.Message);
    }
}
