using System.Security.Cryptography;
using HardenImage.Deploy;
using HardenImage.Registry;
using HardenImage.Signing;
using HardenImage.Tests.Infrastructure;
using HardenImage.Tests.SignFlow;

namespace HardenImage.Tests.Deploy;

/// <summary>
/// `harden deploy` asks, before writing, what the models policy will ask at admission: our key's signature and a
/// signed ML-BOM on exactly the pinned manifest digest, read where `harden model push` recorded the model. The model is
/// packed, pushed and signed by the real CLI into the layout registry (threats: Spoofing, Repudiation).
/// </summary>
[Trait("Category", "Integration")]
public sealed class ModelAdmissionCheckTests
{
    private static (SignFlowWorkspace Ws, RenderedDeployment Cpu) Signed(bool sign = true)
    {
        var ws = new SignFlowWorkspace();
        var dir = ws.Combine("models", "tiny-lm");
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "model.pt"), SHA256.HashData("weights"u8));
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), "{\"vocab\":[\"a\"]}");
        File.WriteAllText(ws.Combine("models", "tiny-lm.card.yaml"), "license: Apache-2.0\nintendedUse: tests\nlimitations: [toy]\ndatasets: [alphabet]\n");
        ws.HardenOk("model", "pack", "models/tiny-lm", "--name", "tiny-lm", "--version", "1", "--card", "models/tiny-lm.card.yaml");
        ws.HardenOk("model", "push");
        if (sign) ws.HardenOk("model", "sign");
        else ws.HardenOk(new Dictionary<string, string> { ["HARDEN_KEY_PASSWORD"] = "" }, "keygen", "--output-dir", "artifacts/keys"); // the release key exists; it signed nothing of the model
        File.WriteAllText(Path.Combine(ws.Artifacts, "build.json"),
            $$"""{"version":1,"images":[{"name":"inference-cpu","index":"{{DeployWorkspace.DigestOf("inference-cpu")}}","architectures":[]}]}""");
        var deployDir = ws.Combine("deploy");
        Directory.CreateDirectory(deployDir);
        File.Copy(Path.Combine(RepoRoot.Find(), "deploy", "inference-cpu.yaml"), Path.Combine(deployDir, "inference-cpu.yaml"));
        var cpu = new DeployRenderer().Render(new DeployOptions
        {
            DeployDir = deployDir, ArtifactsDir = ws.Artifacts, Registry = "registry.example.com/hardened", PublicKey = ws.DevPublicKey,
        }).Deployments.Single();
        return (ws, cpu);
    }

    private static async Task<IReadOnlyList<string>> Failures(SignFlowWorkspace ws, RenderedDeployment cpu, string publicKey)
    {
        using var key = PemKeys.ReadPublicKey(File.ReadAllText(publicKey), publicKey);
        var registry = new OciLayoutRegistry(ws.Combine("artifacts", "registry"));
        var check = new SignatureStoreAdmissionCheck(_ => null, key, "oci:artifacts/registry",
            m => new RegistrySignatureStore(registry, m.PushedRepository!));
        return await check.ModelFailuresAsync(cpu.Model!);
    }

    [Fact]
    public async Task SignedModelWithMlBom_Passes_AnotherKeyIsRefused()
    {
        var (ws, cpu) = Signed();
        using var _ = ws;
        Assert.Equal("models/tiny-lm", cpu.Model!.PushedRepository);
        Assert.Empty(await Failures(ws, cpu, ws.DevPublicKey));
        ws.HardenOk(new Dictionary<string, string> { ["HARDEN_KEY_PASSWORD"] = "" }, "keygen", "--output-dir", "other-key");
        var refused = await Failures(ws, cpu, ws.Combine("other-key", "cosign.pub"));
        Assert.NotEmpty(refused);
        Assert.Contains(refused, f => f.Contains("signature", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task UnsignedModel_IsRefused_NamingWhatIsMissing()
    {
        var (ws, cpu) = Signed(sign: false);
        using var _ = ws;
        var refused = await Failures(ws, cpu, ws.DevPublicKey);
        Assert.NotEmpty(refused);
        Assert.Contains(refused, f => f.Contains("sbom", StringComparison.OrdinalIgnoreCase) || f.Contains("signature", StringComparison.OrdinalIgnoreCase));
    }
}
