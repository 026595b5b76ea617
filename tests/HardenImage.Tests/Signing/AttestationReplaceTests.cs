using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using HardenImage.Oci;
using HardenImage.Signing;
using HardenImage.Tests.Sbom;

namespace HardenImage.Tests.Signing;

/// <summary>
/// Re-attesting replaces, as <c>cosign attest --replace</c> does, instead of piling statements up: Kyverno requires
/// every statement of a type to pass, policy-controller any one and <c>harden verify</c> all — with one statement per
/// type they agree. Other keys' statements and layers we cannot read stay (threat: Repudiation).
/// </summary>
public sealed class AttestationReplaceTests
{
    private static readonly Digest Image = Digest.Of("an image manifest"u8);
    private const string Reference = "registry.example/harden/base";

    private static JsonNode Vuln(string id, string severity) => Predicates.Vuln(new VulnScanInput
    {
        ScannerUri = "https://github.com/hardenimage/harden",
        ScannerVersion = "0",
        Result = new JsonObject { ["findings"] = new JsonArray(new JsonObject { ["id"] = id, ["severity"] = severity }) },
        ScanStartedOn = DateTimeOffset.UnixEpoch,
        ScanFinishedOn = DateTimeOffset.UnixEpoch,
    });

    private static JsonNode Sbom() => Predicates.CycloneDx("{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.6\",\"components\":[]}"u8);

    private static async Task<List<(string Type, JsonNode? Predicate, bool Ours)>> Statements(ISignatureStore store, ECDsa ours)
    {
        var att = (await store.GetAsync(CosignSignatureManifest.AttestationTag(Image)))!;
        return CosignSignatureManifest.ReadLayers(att).Select(l =>
        {
            var env = Dsse.Parse(l.Blob);
            var statement = InTotoStatement.Parse(env.PayloadBytes());
            return (statement.PredicateType, statement.Predicate, Dsse.Verify(env, ours));
        }).ToList();
    }

    [Fact]
    public async Task ReScan_LeavesExactlyOneVulnStatement_TheNewOne_AndAnOldCriticalNoLongerBlocks()
    {
        using var key = SigningTestData.NewKey();
        var store = new InMemorySignatureStore();
        var signer = new ImageSigner(new EcdsaFileSigner(ECDsa.Create(key.ExportParameters(true))), store);
        await signer.SignAsync(Reference, Image);
        await signer.AttestAsync(Reference, Image, PredicateTypes.CycloneDx, Sbom());
        await signer.AttestAsync(Reference, Image, PredicateTypes.CosignVuln, Vuln("CVE-2026-0001", "critical"));
        var strict = new VerificationPolicy { RequiredAttestations = ["sbom", "vuln"], ForbidCriticalVulnerabilities = true };
        Assert.False((await new ImageVerifier(store, key).VerifyAsync(Image, strict)).Passed);

        // The fix is out and the image re-scanned: the old statement with the critical finding is replaced.
        await signer.AttestAsync(Reference, Image, PredicateTypes.CosignVuln, Vuln("CVE-2026-0002", "low"));
        var statements = await Statements(store, key);
        var vuln = Assert.Single(statements, s => s.Type == PredicateTypes.CosignVuln);
        Assert.Equal("CVE-2026-0002", (string)vuln.Predicate!["scanner"]!["result"]!["findings"]![0]!["id"]!);
        Assert.Single(statements, s => s.Type == PredicateTypes.CycloneDx);
        var report = await new ImageVerifier(store, key).VerifyAsync(Image, strict);
        Assert.True(report.Passed, string.Join("\n", report.Failures));
    }

    [Fact]
    public async Task ReAttestingTheSameStatement_DoesNotMoveTheTag()
    {
        using var key = SigningTestData.NewKey();
        var store = new CountingStore();
        var signer = new ImageSigner(new EcdsaFileSigner(ECDsa.Create(key.ExportParameters(true))), store);
        await signer.AttestAsync(Reference, Image, PredicateTypes.CosignVuln, Vuln("CVE-2026-0001", "low"));
        var first = (await store.GetAsync(CosignSignatureManifest.AttestationTag(Image)))!.ManifestDigest();
        await signer.AttestAsync(Reference, Image, PredicateTypes.CosignVuln, Vuln("CVE-2026-0001", "low"));
        Assert.Equal(1, store.Puts);
        Assert.Equal(first, (await store.GetAsync(CosignSignatureManifest.AttestationTag(Image)))!.ManifestDigest());
    }

    [Fact]
    public async Task Replace_KeepsAnotherKeysStatementOfTheSameType_AndLayersItCannotRead()
    {
        using var key = SigningTestData.NewKey();
        using var otherKey = SigningTestData.NewKey();
        var store = new InMemorySignatureStore();
        var ours = new ImageSigner(new EcdsaFileSigner(ECDsa.Create(key.ExportParameters(true))), store);
        var theirs = new ImageSigner(new EcdsaFileSigner(ECDsa.Create(otherKey.ExportParameters(true))), store);
        await theirs.AttestAsync(Reference, Image, PredicateTypes.CosignVuln, Vuln("CVE-THEIRS", "low"));
        await ours.AttestAsync(Reference, Image, PredicateTypes.CosignVuln, Vuln("CVE-OURS-1", "low"));
        // Someone appends a layer that is not a DSSE envelope at all.
        var tag = CosignSignatureManifest.AttestationTag(Image);
        var odd = new CosignLayer(MediaTypes.DsseEnvelope, Encoding.UTF8.GetBytes("not json"), new SortedDictionary<string, string>
        {
            [CosignSignatureManifest.PredicateTypeAnnotation] = PredicateTypes.CosignVuln,
        });
        await store.PutAsync(tag, CosignSignatureManifest.Append(await store.GetAsync(tag), odd));

        await ours.AttestAsync(Reference, Image, PredicateTypes.CosignVuln, Vuln("CVE-OURS-2", "low"));
        var att = (await store.GetAsync(tag))!;
        var layers = CosignSignatureManifest.ReadLayers(att);
        Assert.Equal(3, layers.Count);
        Assert.Contains(layers, l => l.Blob.AsSpan().SequenceEqual(odd.Blob));
        var readable = layers.Where(l => l.Blob[0] == (byte)'{').Select(l => Dsse.Parse(l.Blob)).ToList();
        Assert.Single(readable, e => Dsse.Verify(e, otherKey));
        var mine = Assert.Single(readable, e => Dsse.Verify(e, key));
        Assert.Contains("CVE-OURS-2", Encoding.UTF8.GetString(mine.PayloadBytes()));
    }

    [Fact]
    public void IndexSbom_IsOneValidCycloneDxDocument_AboutTheIndex_WithEveryPlatformsComponentsUnderUniqueRefs()
    {
        var index = Digest.Of("index"u8);
        PlatformDocument Platform(string arch) => new(arch, Digest.Of(Encoding.UTF8.GetBytes(arch)), JsonNode.Parse($$$"""
            {"bomFormat":"CycloneDX","specVersion":"1.6","serialNumber":"urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79","version":1,
             "metadata":{"timestamp":"2026-11-24T00:34:34Z","component":{"type":"container","bom-ref":"pkg:oci/base?arch={{{arch}}}","name":"base","version":"x"}},
             "components":[{"type":"library","bom-ref":"pkg:deb/debian/tzdata@2025b?arch=all","name":"tzdata","version":"2025b"},
                           {"type":"library","bom-ref":"pkg:deb/debian/libc6@2.41?arch={{{arch}}}","name":"libc6","version":"2.41"}],
             "dependencies":[{"ref":"pkg:deb/debian/libc6@2.41?arch={{{arch}}}","dependsOn":["pkg:deb/debian/tzdata@2025b?arch=all"]}]}
            """)!);
        var sbom = Predicates.IndexCycloneDx("base", index, [Platform("arm64"), Platform("amd64")]);
        var bytes = Encoding.UTF8.GetBytes(sbom.ToJsonString());
        SchemaValidation.AssertCycloneDx(bytes);
        Assert.Equal(index.ToString(), (string)sbom["metadata"]!["component"]!["version"]!);
        var platforms = sbom["components"]!.AsArray();
        Assert.Equal(2, platforms.Count);
        Assert.All(platforms, p => Assert.Equal(2, p!["components"]!.AsArray().Count));
        var refs = new List<string>();
        void Collect(JsonNode? n)
        {
            if (n is JsonObject o) { if (o["bom-ref"] is JsonValue v) refs.Add((string)v!); foreach (var kv in o) Collect(kv.Value); }
            else if (n is JsonArray a) foreach (var x in a) Collect(x);
        }
        Collect(sbom);
        Assert.Equal(refs.Count, refs.Distinct().Count()); // tzdata (arch all) is in both platforms, under two refs
        Assert.Contains("amd64#pkg:deb/debian/tzdata@2025b?arch=all", refs);
        var dependencyRefs = sbom["dependencies"]!.AsArray().SelectMany(d => d!["dependsOn"]!.AsArray().Select(x => (string)x!).Append((string)d["ref"]!));
        Assert.All(dependencyRefs, r => Assert.Contains(r, refs));
        // Deterministic: the same inputs give the same bytes, so re-signing does not replace the statement.
        Assert.Equal(sbom.ToJsonString(), Predicates.IndexCycloneDx("base", index, [Platform("amd64"), Platform("arm64")]).ToJsonString());
    }

    [Fact]
    public void IndexScanReport_CarriesEveryPlatformsFindings_SoACriticalOnOnePlatformFailsTheIndex()
    {
        var index = Digest.Of("index"u8);
        var amd = new PlatformDocument("amd64", Digest.Of("a"u8), JsonNode.Parse("""{"scannedAt":"2026-11-26T06:00:00Z","findings":[{"id":"CVE-1","severity":"low"}]}""")!);
        var arm = new PlatformDocument("arm64/v8", Digest.Of("b"u8), JsonNode.Parse("""{"scannedAt":"2026-11-26T07:00:00Z","findings":[{"id":"CVE-2","severity":"critical","allowlisted":null}]}""")!);
        var report = Predicates.IndexScanReport("base", index, [amd, arm]);
        var findings = report["findings"]!.AsArray();
        Assert.Equal(["amd64", "arm64/v8"], findings.Select(f => (string)f!["platform"]!));
        Assert.Equal("2026-11-26T07:00:00Z", (string)report["scannedAt"]!);
        var predicate = Predicates.Vuln(new VulnScanInput
        {
            ScannerUri = "x", ScannerVersion = "0", Result = report,
            ScanStartedOn = DateTimeOffset.UnixEpoch, ScanFinishedOn = DateTimeOffset.UnixEpoch,
        });
        Assert.Equal(["CVE-2"], Predicates.CriticalFindings(predicate));
    }

    private sealed class CountingStore : ISignatureStore
    {
        private readonly InMemorySignatureStore _inner = new();
        public int Puts { get; private set; }
        public Task<OciArtifact?> GetAsync(string tag, CancellationToken ct = default) => _inner.GetAsync(tag, ct);
        public Task PutAsync(string tag, OciArtifact artifact, CancellationToken ct = default)
        {
            Puts++;
            return _inner.PutAsync(tag, artifact, ct);
        }
    }
}
