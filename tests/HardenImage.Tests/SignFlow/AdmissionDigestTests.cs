using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using HardenImage.Deploy;
using HardenImage.Signing;
using HardenImage.Tests.Registry;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.SignFlow;

/// <summary>
/// The digest a Deployment pins is the one cosign, Kyverno and policy-controller read signatures and attestations
/// for — they never descend from an index to its platform manifests. push → sign → deploy through the real CLI, then
/// every image reference of the rendered Deployment is checked the way cosign does it, by an independent reader here
/// (registry HTTP API, ECDSA, DSSE PAE, in-toto subject), reading only <c>sha256-&lt;hex&gt;.sig/.att</c> of that digest.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AdmissionDigestTests
{
    private static void WriteSbomAndScan(SignFlowWorkspace ws, IEnumerable<string> architectures, Func<string, string> severity)
    {
        Directory.CreateDirectory(ws.Combine("artifacts", "sbom"));
        Directory.CreateDirectory(ws.Combine("artifacts", "scan"));
        foreach (var arch in architectures)
        {
            File.WriteAllText(ws.Combine("artifacts", "sbom", $"base.{arch}.cdx.json"), new JsonObject
            {
                ["bomFormat"] = "CycloneDX",
                ["specVersion"] = "1.6",
                ["serialNumber"] = "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
                ["version"] = 1,
                ["metadata"] = new JsonObject { ["component"] = new JsonObject { ["type"] = "container", ["bom-ref"] = $"pkg:oci/base?arch={arch}", ["name"] = "base" } },
                ["components"] = new JsonArray(new JsonObject
                {
                    ["type"] = "library", ["bom-ref"] = $"pkg:deb/debian/libc6@2.41-12?arch={arch}", ["name"] = "libc6", ["version"] = "2.41-12",
                }),
            }.ToJsonString());
            File.WriteAllText(ws.Combine("artifacts", "scan", $"base.{arch}.json"), new JsonObject
            {
                ["scannedAt"] = "2026-11-26T06:00:00Z",
                ["findings"] = new JsonArray(new JsonObject { ["id"] = $"CVE-2026-{arch}", ["package"] = "libc6", ["severity"] = severity(arch) }),
            }.ToJsonString());
        }
    }

    private static void WriteDeployDescription(SignFlowWorkspace ws)
    {
        Directory.CreateDirectory(ws.Combine("deploy"));
        File.WriteAllText(ws.Combine("deploy", "base.yaml"), "name: base\nimage: base\nnamespace: apps\n");
    }

    /// <summary>The CLI's error output is wrapped at the console width; join it back into lines of meaning.</summary>
    private static string Unwrapped(string output) => output.ReplaceLineEndings("");

    private static IReadOnlyList<string> RenderedImageReferences(SignFlowWorkspace ws)
    {
        var deployment = ManifestYaml.Read(File.ReadAllText(ws.Combine("artifacts", "deploy", "base", "02-deployment.yaml")))!.AsObject();
        var spec = deployment["spec"]!["template"]!["spec"]!;
        return new[] { "containers", "initContainers", "ephemeralContainers" }
            .SelectMany(l => spec[l] as JsonArray ?? []).Select(c => (string)c!["image"]!).ToList();
    }

    [Fact]
    public async Task RenderedDeployment_EveryImageReference_CarriesSignatureAndEachRequiredAttestation_OnExactlyThatDigest()
    {
        using var ws = new SignFlowWorkspace(seed: 11);
        using var server = RegistryFixture.Start();
        ws.HardenOk("push", "--registry", server.Host + "/hardened", "--insecure");
        WriteSbomAndScan(ws, ws.Manifests.Keys, _ => "low");
        ws.HardenOk("sign", "--insecure");
        WriteDeployDescription(ws);
        var deployed = ws.HardenOk("deploy", "--insecure");
        Assert.Contains("admission check passed", deployed);

        var references = RenderedImageReferences(ws);
        Assert.NotEmpty(references);
        Assert.Contains($"{server.Host}/hardened/base@{ws.Index.Digest}", references); // the Deployment pins the index
        using var publicKey = ECDsa.Create();
        publicKey.ImportFromPem(File.ReadAllText(ws.DevPublicKey));
        using var http = new HttpClient();
        foreach (var reference in references)
        {
            var reader = new CosignTagReader(http, reference);
            Assert.True(await reader.HasValidSignature(publicKey), $"{reference}: no signature by our key for exactly this digest in {reader.Tag("sig")}");
            var statements = await reader.VerifiedStatements(publicKey);
            foreach (var type in new[] { PredicateTypes.CycloneDx, PredicateTypes.CosignVuln, PredicateTypes.SlsaProvenanceV1 })
                Assert.True(statements.Count(s => (string)s["predicateType"]! == type) == 1,
                    $"{reference}: {reader.Tag("att")} has {statements.Count(s => (string)s["predicateType"]! == type)} statements of {type}, want exactly 1");
            // What the rendered policies evaluate on them (Kyverno: every statement of the type must pass).
            Assert.All(statements.Where(s => (string)s["predicateType"]! == PredicateTypes.CycloneDx),
                s => Assert.Equal("CycloneDX", (string)s["predicate"]!["bomFormat"]!));
            var vuln = statements.Single(s => (string)s["predicateType"]! == PredicateTypes.CosignVuln);
            var findings = vuln["predicate"]!["scanner"]!["result"]!["findings"]!.AsArray();
            Assert.Equal(ws.Manifests.Count, findings.Count); // the index statement covers every platform
            Assert.DoesNotContain(findings, f => (string)f!["severity"]! == "critical");
        }
    }

    [Fact]
    public void AnIndexWhoseSbomIsOnlyOnPlatformManifests_FailsVerifyAndDeploy_WhileThatPlatformPasses()
    {
        using var ws = new SignFlowWorkspace(seed: 12);
        ws.HardenOk("push");
        WriteSbomAndScan(ws, ["amd64"], _ => "low"); // arm64 has no SBOM and no scan: the index must not claim one
        ws.HardenOk("sign");

        ws.HardenOk("verify", $"oci:artifacts/registry/base@{ws.Manifests["amd64"]}", "--require", "sbom,vuln");
        var (code, output) = ws.Harden("verify", $"oci:artifacts/registry/base@{ws.Index.Digest}", "--require", "sbom,vuln");
        Assert.Equal(1, code);
        Assert.Contains("index", output);
        Assert.Contains("required attestation 'sbom'", output);

        WriteDeployDescription(ws);
        var (deployCode, deployOutput) = ws.Harden("deploy", "--registry", "registry.example.com/hardened");
        Assert.True(deployCode == 1, deployOutput);
        deployOutput = Unwrapped(deployOutput);
        Assert.Contains("refusing to write", deployOutput);
        Assert.Contains($"registry.example.com/hardened/base@{ws.Index.Digest}", deployOutput);
        Assert.Contains("required attestation 'sbom'", deployOutput);
        Assert.False(Directory.Exists(ws.Combine("artifacts", "deploy", "base")));
    }

    [Fact]
    public void ARescanWithACriticalFinding_ReplacesTheCleanStatement_AndDeployRefuses_LeavingThePreviousOutputIntact()
    {
        using var ws = new SignFlowWorkspace(seed: 13);
        ws.HardenOk("push");
        WriteSbomAndScan(ws, ws.Manifests.Keys, _ => "low");
        ws.HardenOk("sign");
        WriteDeployDescription(ws);
        ws.HardenOk("deploy", "--registry", "registry.example.com/hardened");
        var outputDir = ws.Combine("artifacts", "deploy");
        var before = Directory.EnumerateFiles(outputDir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .ToDictionary(f => f, File.ReadAllBytes);
        Assert.Contains(before.Keys, f => f.EndsWith("02-deployment.yaml", StringComparison.Ordinal));

        // arm64 re-scanned with a new critical finding and signed again: the index's one vuln statement now has it.
        WriteSbomAndScan(ws, ws.Manifests.Keys, arch => arch == "arm64" ? "critical" : "low");
        ws.HardenOk("sign");
        var (code, wrapped) = ws.Harden("deploy", "--registry", "registry.example.com/hardened");
        Assert.True(code == 1, wrapped);
        var output = Unwrapped(wrapped);
        Assert.Contains("refusing to write", output);
        Assert.Contains("CVE-2026-arm64", output);
        Assert.DoesNotContain("Unhandled", output);
        var after = Directory.EnumerateFiles(outputDir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(before.Keys, after);
        Assert.All(after, f => Assert.True(before[f].AsSpan().SequenceEqual(File.ReadAllBytes(f)), $"{f} changed"));
    }

    /// <summary>
    /// Reads cosign's tag layout for one reference as cosign does (ociremote.SignatureTag/AttestationTag of the
    /// resolved digest) — written here against the registry API, not with the code under test.
    /// </summary>
    private sealed class CosignTagReader
    {
        private readonly HttpClient _http;
        private readonly string _host;
        private readonly string _repository;
        private readonly string _digest;

        public CosignTagReader(HttpClient http, string reference)
        {
            _http = http;
            var at = reference.IndexOf('@');
            Assert.True(at > 0, $"{reference} is not pinned by digest");
            var slash = reference.IndexOf('/');
            _host = reference[..slash];
            _repository = reference[(slash + 1)..at];
            _digest = reference[(at + 1)..];
        }

        public string Tag(string suffix) => $"{_digest.Replace(':', '-')}.{suffix}";

        private async Task<List<(JsonObject Layer, byte[] Blob)>> Layers(string suffix)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"http://{_host}/v2/{_repository}/manifests/{Tag(suffix)}");
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.oci.image.manifest.v1+json"));
            using var response = await _http.SendAsync(request);
            Assert.True(response.IsSuccessStatusCode, $"{Tag(suffix)}: {(int)response.StatusCode}");
            var manifest = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            var result = new List<(JsonObject, byte[])>();
            foreach (var layer in manifest["layers"]!.AsArray())
            {
                var blob = await _http.GetByteArrayAsync($"http://{_host}/v2/{_repository}/blobs/{(string)layer!["digest"]!}");
                Assert.Equal((string)layer["digest"]!, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(blob)));
                result.Add((layer.AsObject(), blob));
            }
            return result;
        }

        public async Task<bool> HasValidSignature(ECDsa key) =>
            (await Layers("sig")).Any(l =>
                (string?)l.Layer["annotations"]?["dev.cosignproject.cosign/signature"] is { Length: > 0 } sig
                && key.VerifyData(l.Blob, Convert.FromBase64String(sig), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence)
                && (string?)JsonNode.Parse(l.Blob)!["critical"]!["image"]!["docker-manifest-digest"] == _digest);

        /// <summary>Statements whose DSSE signature verifies and whose subject names this digest (IntotoSubjectClaimVerifier).</summary>
        public async Task<List<JsonObject>> VerifiedStatements(ECDsa key)
        {
            var statements = new List<JsonObject>();
            foreach (var (_, blob) in await Layers("att"))
            {
                var envelope = JsonNode.Parse(blob)!;
                var type = (string)envelope["payloadType"]!;
                var payload = Convert.FromBase64String((string)envelope["payload"]!);
                var pae = Encoding.UTF8.GetBytes($"DSSEv1 {Encoding.UTF8.GetByteCount(type)} {type} {payload.Length} ").Concat(payload).ToArray();
                if (type != "application/vnd.in-toto+json") continue;
                if (!envelope["signatures"]!.AsArray().Any(s => key.VerifyData(pae, Convert.FromBase64String((string)s!["sig"]!), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence)))
                    continue;
                var statement = JsonNode.Parse(payload)!.AsObject();
                if (statement["subject"]!.AsArray().Any(s => "sha256:" + (string)s!["digest"]!["sha256"]! == _digest))
                    statements.Add(statement);
            }
            return statements;
        }
    }
}
