using System.Text.Json.Nodes;
using HardenImage.Aws;
using HardenImage.Common;

namespace HardenImage.Tests.Aws;

/// <summary>Inspector Scan and Inspector2 clients against <see cref="SigV4LoopbackServer"/>.</summary>
public class InspectorClientTests
{
    private const string ScanRoute = "POST /scan/sbom";
    private const string FindingsRoute = "POST /findings/list";

    /// <summary>A CycloneDX 1.6 SBOM shaped like ours: image as metadata.component, n debs, a dependency chain.</summary>
    internal static JsonObject Sbom(int components)
    {
        var list = new JsonArray();
        var deps = new JsonArray();
        var all = new JsonArray();
        for (var i = 0; i < components; i++)
        {
            var r = $"pkg-{i}";
            list.Add(new JsonObject
            {
                ["bom-ref"] = r, ["type"] = "library", ["name"] = $"lib{i}", ["version"] = $"1.{i}-1",
                ["purl"] = $"pkg:deb/debian/lib{i}@1.{i}-1?arch=amd64&distro=debian-13",
            });
            var entry = new JsonObject { ["ref"] = r, ["dependsOn"] = new JsonArray() };
            if (i > 0) ((JsonArray)entry["dependsOn"]!).Add($"pkg-{i - 1}");
            deps.Add(entry);
            all.Add(r);
        }
        deps.Add(new JsonObject { ["ref"] = "image", ["dependsOn"] = all });
        return new JsonObject
        {
            ["bomFormat"] = "CycloneDX", ["specVersion"] = "1.6", ["serialNumber"] = "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
            ["version"] = 1,
            ["metadata"] = new JsonObject { ["component"] = new JsonObject { ["bom-ref"] = "image", ["type"] = "container", ["name"] = "python" } },
            ["components"] = list, ["dependencies"] = deps,
        };
    }

    /// <summary>What Inspector answers in CYCLONE_DX_1_5 format: one vulnerability per 1,000th component.</summary>
    private static LoopbackResponse CycloneDxAnswer(RawHttpRequest r)
    {
        var sbom = r.Json()!["sbom"]!.AsObject();
        var vulns = new JsonArray();
        foreach (var c in sbom["components"]!.AsArray())
        {
            var reference = c!["bom-ref"]!.GetValue<string>();
            var i = int.Parse(reference[4..]);
            if (i % 1000 != 0) continue;
            vulns.Add(new JsonObject
            {
                ["bom-ref"] = $"vuln-{i}", ["id"] = $"CVE-2025-{10000 + i}",
                ["ratings"] = new JsonArray(
                    new JsonObject { ["source"] = new JsonObject { ["name"] = "NVD" }, ["score"] = 7.5, ["severity"] = "high", ["method"] = "CVSSv31" },
                    new JsonObject { ["source"] = new JsonObject { ["name"] = "EPSS" }, ["score"] = 0.97, ["severity"] = "none", ["method"] = "other" }),
                ["affects"] = new JsonArray(new JsonObject { ["ref"] = reference }),
                ["properties"] = new JsonArray(new JsonObject
                {
                    ["name"] = $"amazon:inspector:sbom_scanner:fixed_version:{reference}", ["value"] = $"1.{i}-2",
                }),
            });
        }
        var report = new JsonObject
        {
            ["bomFormat"] = "CycloneDX", ["specVersion"] = "1.5",
            ["components"] = sbom["components"]!.DeepClone(), ["vulnerabilities"] = vulns,
        };
        return LoopbackResponse.Json(new JsonObject { ["sbom"] = report }, contentType: "application/json");
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task ScanSbom_12000Components_SendsThreeConsistentRequestsAndMergesFindings()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("inspector-scan", ScanRoute, CycloneDxAnswer);
        using var inspector = new InspectorScanClient(aws.Context());
        var sbom = Sbom(12_000);
        var before = sbom.ToJsonString();

        var findings = await inspector.ScanSbomAsync(sbom);

        Assert.Equal(before, sbom.ToJsonString()); // the caller's SBOM is not modified
        var calls = aws.ExchangesFor(ScanRoute);
        Assert.Equal(3, calls.Count);
        var seen = new HashSet<string>();
        foreach (var call in calls)
        {
            Assert.Equal(200, call.Status);
            Assert.Equal("application/json", call.Request.Header("Content-Type"));
            var body = call.Request.Json()!.AsObject();
            Assert.Equal("CYCLONE_DX_1_5", body["outputFormat"]!.GetValue<string>());
            var part = body["sbom"]!.AsObject();
            Assert.Equal("1.5", part["specVersion"]!.GetValue<string>());
            Assert.Equal("image", part["metadata"]!["component"]!["bom-ref"]!.GetValue<string>());
            var refs = part["components"]!.AsArray().Select(c => c!["bom-ref"]!.GetValue<string>()).ToHashSet();
            Assert.InRange(refs.Count, 1, InspectorScanClient.MaxComponentsPerRequest);
            foreach (var r in refs)
                if (!seen.Add(r)) Assert.Fail($"{r} sent twice");
            refs.Add("image");
            foreach (var d in part["dependencies"]!.AsArray())
            {
                var from = d!["ref"]!.GetValue<string>();
                Assert.True(refs.Contains(from), $"dependency entry {from} is not in this part");
                foreach (var x in d["dependsOn"] as JsonArray ?? [])
                    if (!refs.Contains(x!.GetValue<string>())) Assert.Fail($"{from} depends on {x} from another part");
            }
        }
        Assert.Equal(12_000, seen.Count);
        // pkg-5000 depends on pkg-4999, which went in the first part: the edge is dropped, not turned into "no dependencies".
        var second = calls[1].Request.Json()!["sbom"]!["dependencies"]!.AsArray();
        Assert.Null(second.Single(d => d!["ref"]!.GetValue<string>() == "pkg-5000")!["dependsOn"]);
        Assert.Equal("pkg-5000", second.Single(d => d!["ref"]!.GetValue<string>() == "pkg-5001")!["dependsOn"]![0]!.GetValue<string>());
        Assert.Equal(5000, second.Single(d => d!["ref"]!.GetValue<string>() == "image")!["dependsOn"]!.AsArray().Count);
        Assert.Equal(new[] { 5000, 5000, 2000 }, calls.Select(c => c.Request.Json()!["sbom"]!["components"]!.AsArray().Count));

        Assert.Equal(12, findings.Count);
        var f = findings.Single(x => x.Id == "CVE-2025-15000");
        Assert.Equal(new InspectorFinding("CVE-2025-15000", "pkg:deb/debian/lib5000@1.5000-1?arch=amd64&distro=debian-13", "lib5000",
            "1.5000-1", "1.5000-2", "high", 7.5, "amazon-inspector"), f);
    }

    [Fact]
    public void SplitSbom_SmallSbom_IsOnePartWithAllDependencies()
    {
        var parts = InspectorScanClient.SplitSbom(Sbom(10));
        var part = Assert.Single(parts);
        Assert.Equal(10, part["components"]!.AsArray().Count);
        Assert.Equal(11, part["dependencies"]!.AsArray().Count);
        Assert.Throws<HardenException>(() => InspectorScanClient.SplitSbom(new JsonObject { ["spdxVersion"] = "SPDX-2.3" }));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task ScanSbom_InspectorFormat_IsParsed()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("inspector-scan", ScanRoute, r =>
        {
            Assert.Equal("INSPECTOR", r.Json()!["outputFormat"]!.GetValue<string>());
            return LoopbackResponse.Json(JsonNode.Parse("""
                {"sbom":{"status":"SBOM parsed successfully, 1 vulnerability found","inspector":{
                  "vulnerability_count":{"critical":1,"high":0,"medium":0,"low":0},
                  "vulnerabilities":[{"id":"CVE-2024-6387","severity":"critical","source":"https://nvd.nist.gov/vuln/detail/CVE-2024-6387",
                    "properties":{"cvss":[{"source":"NVD","severity":"critical","cvss3_base_score":8.1},{"source":"DEBIAN","cvss3_base_score":9.8}]},
                    "affects":[{"installed_version":"pkg:deb/debian/openssh-server@1%3A9.2p1-2%2Bdeb12u2?arch=amd64","fixed_version":"1:9.2p1-2+deb12u3"},
                               {"installed_version":"pkg:deb/debian/openssh-client@1%3A9.2p1-2%2Bdeb12u2?arch=amd64","fixed_version":""}]}]}}}
                """)!, contentType: "application/json");
        });
        using var inspector = new InspectorScanClient(aws.Context());

        var findings = await inspector.ScanSbomAsync(Sbom(3), InspectorOutputFormat.Inspector);

        Assert.Equal(2, findings.Count);
        Assert.Equal(new InspectorFinding("CVE-2024-6387", "pkg:deb/debian/openssh-server@1%3A9.2p1-2%2Bdeb12u2?arch=amd64",
            "openssh-server", "1:9.2p1-2+deb12u2", "1:9.2p1-2+deb12u3", "critical", 9.8), findings[0]);
        Assert.Null(findings[1].FixedVersion);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task ScanSbom_Throttled429_IsRetried()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("inspector-scan", ScanRoute, CycloneDxAnswer);
        aws.InjectThrottling(ScanRoute, 2, LoopbackThrottle.TooManyRequests429);
        using var inspector = new InspectorScanClient(aws.Context());
        var findings = await inspector.ScanSbomAsync(Sbom(1001));
        Assert.Equal(2, findings.Count);
        Assert.Equal(new[] { 429, 429, 200 }, aws.ExchangesFor(ScanRoute).Select(e => e.Status));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task ScanSbom_ValidationError_IsNotRetriedAndNamesTheService()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("inspector-scan", ScanRoute, _ => LoopbackResponse.AwsError(400, "ValidationException", "Invalid SBOM: specVersion"));
        using var inspector = new InspectorScanClient(aws.Context());
        var e = await Assert.ThrowsAsync<AwsServiceException>(() => inspector.ScanSbomAsync(Sbom(2)));
        Assert.Equal("ValidationException", e.ErrorCode);
        Assert.Contains("inspector-scan ScanSbom", e.Message);
        Assert.Single(aws.Exchanges);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task ListFindings_FollowsNextTokenAcrossThreePages()
    {
        const string digest = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("inspector2", FindingsRoute, r =>
        {
            var body = r.Json()!;
            var token = body["nextToken"]?.GetValue<string>();
            var page = token switch { null => 1, "page-2" => 2, "page-3" => 3, _ => throw new InvalidOperationException(token) };
            var findings = new JsonArray();
            for (var i = 0; i < 2; i++)
            {
                var n = page * 10 + i;
                findings.Add(new JsonObject
                {
                    ["findingArn"] = $"arn:aws:inspector2:us-east-1:123456789012:finding/{n}",
                    ["type"] = "PACKAGE_VULNERABILITY", ["severity"] = "HIGH", ["inspectorScore"] = 7.0 + i,
                    ["packageVulnerabilityDetails"] = new JsonObject
                    {
                        ["vulnerabilityId"] = $"CVE-2025-{n:D4}", ["source"] = "DEBIAN_CVE",
                        ["vulnerablePackages"] = new JsonArray(new JsonObject
                        {
                            ["name"] = $"lib{n}", ["version"] = "1.0-1", ["packageManager"] = "OS",
                            ["fixedInVersion"] = i == 0 ? "1.0-2" : "NotAvailable",
                        }),
                    },
                });
            }
            var answer = new JsonObject { ["findings"] = findings };
            if (page < 3) answer["nextToken"] = $"page-{page + 1}";
            return LoopbackResponse.Json(answer, contentType: "application/json");
        });
        using var inspector2 = new Inspector2FindingsClient(aws.Context());

        var all = await inspector2.ListImageFindingsAsync(digest, pageSize: 2);

        var calls = aws.ExchangesFor(FindingsRoute);
        Assert.Equal(3, calls.Count);
        Assert.Equal(new string?[] { null, "page-2", "page-3" }, calls.Select(c => c.Request.Json()!["nextToken"]?.GetValue<string>()));
        Assert.All(calls, c =>
        {
            var body = c.Request.Json()!;
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse($$"""
                {"ecrImageHash":[{"comparison":"EQUALS","value":"{{digest}}"}],
                 "findingStatus":[{"comparison":"EQUALS","value":"ACTIVE"},{"comparison":"EQUALS","value":"SUPPRESSED"}]}
                """),
                body["filterCriteria"]), body.ToJsonString());
            Assert.Equal(2, body["maxResults"]!.GetValue<int>());
        });
        Assert.Equal(6, all.Count);
        Assert.Equal(new InspectorFinding("CVE-2025-0020", null, "lib20", "1.0-1", "1.0-2", "high", 7.0, FindingStatus: "ACTIVE"), all[2]);
        Assert.Null(all[3].FixedVersion);
        await Assert.ThrowsAsync<HardenException>(() => inspector2.ListImageFindingsAsync("latest"));
    }
}
