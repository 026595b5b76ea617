using System.Text.Json;
using HardenImage.Model;
using HardenImage.Tests.Registry;
using HardenImage.Tests.SignFlow;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Model;

/// <summary>
/// The real `harden` CLI end to end, as the pipeline and a user run it: model pack → push → sign → `harden verify`
/// (signature + ML-BOM attestation) → model fetch, into the OCI layout registry and into a real distribution
/// registry (docker-registry 2.8), with the same registry and signing code as images.
/// </summary>
[Trait("Category", "Integration")]
public class ModelCliFlowTests
{
    private static string WriteModel(SignFlowWorkspace ws)
    {
        var dir = ws.Combine("models", "tiny-lm");
        Directory.CreateDirectory(Path.Combine(dir, "sub"));
        File.WriteAllBytes(Path.Combine(dir, "model.pt"), ModelTestKit.Random(7, 50_000));
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), "{\"vocab\":[\"a\"]}");
        File.WriteAllText(Path.Combine(dir, "sub", "notes.md"), "# notes");
        File.WriteAllText(ws.Combine("models", "tiny-lm.card.yaml"), "license: Apache-2.0\nintendedUse: tests\nlimitations: [toy]\ndatasets: [alphabet]\n");
        return dir;
    }

    private static PushedModel Recorded(SignFlowWorkspace ws)
    {
        var record = ModelRecordFile.Load(Path.Combine(ws.Artifacts, "models.json"))!;
        return record.Models["tiny-lm"];
    }

    [Fact]
    public void Cli_PackPushSignVerifyFetch_InTheLayoutRegistry()
    {
        using var ws = new SignFlowWorkspace();
        WriteModel(ws);
        var pack = ws.HardenOk("model", "pack", "models/tiny-lm", "--name", "tiny-lm", "--version", "1", "--card", "models/tiny-lm.card.yaml");
        Assert.Contains("packed tiny-lm:1 sha256:", pack);
        ws.HardenOk("model", "push");
        var model = Recorded(ws);
        Assert.Equal("models/tiny-lm", model.Repository);
        Assert.Equal($"oci:{Path.Combine(ws.Artifacts, "registry")}/models/tiny-lm@{model.Digest}".Replace(ws.Root + "/", ""), model.Reference.Replace(ws.Root + "/", ""));
        Assert.Equal("models/tiny-lm.cdx.json", model.MlBom);
        ws.HardenOk("model", "sign");

        var verify = ws.HardenOk("verify", model.Reference, "--key", ws.DevPublicKey, "--require", "sbom");
        Assert.Contains("verified", verify);
        ws.HardenOk("model", "fetch", model.Reference, "--key", ws.DevPublicKey, "--into", "fetched", "--require", "sbom");
        Assert.Equal(File.ReadAllBytes(ws.Combine("models", "tiny-lm", "model.pt")), File.ReadAllBytes(ws.Combine("fetched", "model.pt")));
        Assert.True(File.Exists(ws.Combine("fetched", "sub", "notes.md")));

        // A tag is not a pin: fetch refuses it.
        var (code, output) = ws.Harden("model", "fetch", model.Reference.Split('@')[0] + ":1", "--key", ws.DevPublicKey, "--into", "other");
        Assert.Equal(2, code);
        Assert.Contains("pin the model by digest", output);
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public void Cli_RepackingChangedFilesUnderTheSameVersion_IsSaid()
    {
        using var ws = new SignFlowWorkspace();
        WriteModel(ws);
        var first = ws.HardenOk("model", "pack", "models/tiny-lm", "--name", "tiny-lm", "--version", "1");
        Assert.DoesNotContain("warning:", ws.HardenOk("model", "pack", "models/tiny-lm", "--name", "tiny-lm", "--version", "1"));
        File.WriteAllText(ws.Combine("models", "tiny-lm", "tokenizer.json"), "{\"vocab\":[\"b\"]}");
        var second = ws.HardenOk("model", "pack", "models/tiny-lm", "--name", "tiny-lm", "--version", "1");
        Assert.Contains("warning: tiny-lm:1 was sha256:", second);
        Assert.Contains("Give a new --version", second);
    }

    [Fact]
    public void Cli_FetchWithAnotherKey_ExitsOne_WithTheReason()
    {
        using var ws = new SignFlowWorkspace();
        WriteModel(ws);
        ws.HardenOk("model", "pack", "models/tiny-lm", "--name", "tiny-lm", "--version", "1");
        ws.HardenOk("model", "push");
        ws.HardenOk("model", "sign");
        ws.HardenOk(new Dictionary<string, string> { ["HARDEN_KEY_PASSWORD"] = "" }, "keygen", "--output-dir", "other-key");
        var model = Recorded(ws);
        var (code, output) = ws.Harden("model", "fetch", model.Reference, "--key", "other-key/cosign.pub", "--into", "fetched");
        Assert.Equal(1, code);
        Assert.Contains("not signed by this key", output);
        Assert.False(Directory.Exists(ws.Combine("fetched")));
    }

    [Fact]
    public void Cli_PackPushSignVerifyFetch_InADistributionRegistry()
    {
        using var server = RegistryFixture.Start();
        using var ws = new SignFlowWorkspace();
        WriteModel(ws);
        ws.HardenOk("model", "pack", "models/tiny-lm", "--name", "tiny-lm", "--version", "1", "--card", "models/tiny-lm.card.yaml");
        ws.HardenOk("model", "push", "--registry", $"{server.Host}/ml");
        var model = Recorded(ws);
        Assert.Equal("ml/models/tiny-lm", model.Repository);
        Assert.Equal($"{server.Host}/ml/models/tiny-lm@{model.Digest}", model.Reference);
        ws.HardenOk("model", "sign");
        ws.HardenOk("verify", model.Reference, "--key", ws.DevPublicKey, "--require", "sbom");
        ws.HardenOk("model", "fetch", model.Reference, "--key", ws.DevPublicKey, "--into", "fetched", "--require", "sbom");
        Assert.Equal(File.ReadAllBytes(ws.Combine("models", "tiny-lm", "model.pt")), File.ReadAllBytes(ws.Combine("fetched", "model.pt")));
        // The registry kept the spec's artifactType (what an image-volume runtime and Kyverno see).
        using var http = new HttpClient();
        var req = new HttpRequestMessage(HttpMethod.Get, $"http://{server.Host}/v2/ml/models/tiny-lm/manifests/{model.Digest}");
        req.Headers.Accept.ParseAdd("application/vnd.oci.image.manifest.v1+json");
        using var doc = JsonDocument.Parse(http.Send(req).Content.ReadAsStream());
        Assert.Equal("application/vnd.cncf.model.manifest.v1+json", doc.RootElement.GetProperty("artifactType").GetString());
    }
}
