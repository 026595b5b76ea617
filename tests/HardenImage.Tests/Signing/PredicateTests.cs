using System.Text.Json.Nodes;
using HardenImage.Common;
using HardenImage.Signing;

namespace HardenImage.Tests.Signing;

public class PredicateTests
{
    [Fact]
    public void SlsaProvenance_HasV1Shape_WithLockDependencies()
    {
        var p = Predicates.SlsaProvenance(new SlsaProvenanceInput
        {
            BuildType = "https://hardenimage.dev/build/v1",
            BuilderId = "https://github.com/example/harden/.github/workflows/release.yml",
            ExternalParameters = new JsonObject { ["image"] = "base", ["lock"] = "images/images.lock.json" },
            InternalParameters = new JsonObject { ["sourceDateEpoch"] = 1700000000 },
            ResolvedDependencies =
            [
                new ResolvedDependency("http://deb.debian.org/debian/pool/main/z/zlib/zlib1g_1.3.dfsg-3.1_amd64.deb", new string('b', 64), "zlib1g"),
                new ResolvedDependency("http://deb.debian.org/debian/pool/main/b/base-files/base-files_13.8_amd64.deb", new string('a', 64)),
            ],
            InvocationId = "run-42",
            StartedOn = DateTimeOffset.Parse("2026-01-02T03:04:05Z"),
            FinishedOn = DateTimeOffset.Parse("2026-01-02T03:14:05+00:00"),
        });
        var bd = p["buildDefinition"]!;
        Assert.Equal("https://hardenimage.dev/build/v1", (string?)bd["buildType"]);
        Assert.Equal("base", (string?)bd["externalParameters"]!["image"]);
        Assert.Equal(1700000000, (int)bd["internalParameters"]!["sourceDateEpoch"]!);
        var deps = bd["resolvedDependencies"]!.AsArray();
        Assert.Equal(2, deps.Count);
        Assert.Contains("base-files", (string?)deps[0]!["uri"]); // sorted by uri: stable bytes
        Assert.Equal(new string('a', 64), (string?)deps[0]!["digest"]!["sha256"]);
        Assert.Equal("zlib1g", (string?)deps[1]!["name"]);
        var rd = p["runDetails"]!;
        Assert.Equal("https://github.com/example/harden/.github/workflows/release.yml", (string?)rd["builder"]!["id"]);
        Assert.Equal("run-42", (string?)rd["metadata"]!["invocationId"]);
        Assert.Equal("2026-01-02T03:04:05Z", (string?)rd["metadata"]!["startedOn"]);
        Assert.Equal("2026-01-02T03:14:05Z", (string?)rd["metadata"]!["finishedOn"]);
    }

    [Fact]
    public void Vuln_HasCosignSpecShape()
    {
        var p = Predicates.Vuln(new VulnScanInput
        {
            ScannerUri = "pkg:github/example/harden@1.0.0",
            ScannerVersion = "1.0.0",
            DbUri = "pkg:generic/osv-debian",
            DbVersion = "2026-01-01",
            Result = new JsonObject { ["findings"] = new JsonArray() },
            ScanStartedOn = DateTimeOffset.Parse("2026-01-02T03:04:05Z"),
            ScanFinishedOn = DateTimeOffset.Parse("2026-01-02T03:04:06Z"),
        });
        Assert.Equal("{\"invocation\":{\"parameters\":null,\"uri\":\"\",\"event_id\":\"\",\"builder.id\":\"\"},"
            + "\"scanner\":{\"uri\":\"pkg:github/example/harden@1.0.0\",\"version\":\"1.0.0\",\"db\":{\"uri\":\"pkg:generic/osv-debian\",\"version\":\"2026-01-01\"},"
            + "\"result\":{\"findings\":[]}},\"metadata\":{\"scanStartedOn\":\"2026-01-02T03:04:05Z\",\"scanFinishedOn\":\"2026-01-02T03:04:06Z\"}}",
            p.ToJsonString());
    }

    [Fact]
    public void CriticalFindings_FindsCycloneDxAndTrivyShapes_AndHonoursVex()
    {
        var predicate = JsonNode.Parse("""
            {"scanner":{"result":{
              "vulnerabilities":[
                {"id":"CVE-1","ratings":[{"severity":"critical"}]},
                {"id":"CVE-2","ratings":[{"severity":"critical"}],"analysis":{"state":"not_affected"}},
                {"id":"CVE-3","ratings":[{"severity":"high"}]}],
              "Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-4","Severity":"CRITICAL"}]}]
            }}}
            """);
        Assert.Equal(["CVE-1", "CVE-4"], Predicates.CriticalFindings(predicate));
        Assert.Empty(Predicates.CriticalFindings(JsonNode.Parse("{\"scanner\":{\"result\":{\"vulnerabilities\":[]}}}")));
    }

    [Fact]
    public void CycloneDxPredicate_RejectsNonSbom() =>
        Assert.Throws<HardenException>(() => Predicates.CycloneDx("{\"spdxVersion\":\"SPDX-2.3\"}"u8));

    [Theory]
    [InlineData("sbom", PredicateTypes.CycloneDx)]
    [InlineData("provenance", PredicateTypes.SlsaProvenanceV1)]
    [InlineData("vuln", PredicateTypes.CosignVuln)]
    [InlineData("https://example.com/custom/v1", "https://example.com/custom/v1")]
    public void PolicyNames_MapToPredicateTypes(string name, string type) => Assert.Equal(type, PredicateTypes.FromPolicyName(name));
}
