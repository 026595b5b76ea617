using System.Text.Json;
using System.Text.Json.Nodes;
using Amazon.Runtime;
using HardenImage.Aws;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Registry;
using HardenImage.Sbom;
using HardenImage.Scan;
using HardenImage.Tests.Aws;
using static HardenImage.Tests.Scan.ScanFixtures;

namespace HardenImage.Tests.Scan;

/// <summary>
/// Amazon Inspector wired into the scan, against <see cref="SigV4LoopbackServer"/> (every request's SigV4 signature
/// is recomputed by an independent verifier; answers use the documented ScanSbom / ListFindings shapes).
/// </summary>
public class InspectorFindingSourceTests
{
    internal const string ScanRoute = "POST /scan/sbom";
    internal const string FindingsRoute = "POST /findings/list";

    internal static ImageInventory TrixieImage() => Inventory("debian-13",
    [
        DebPackage("libc6", "2.41-10", "glibc"),
        DebPackage("zlib1g", "1:1.3.dfsg+really1.3.1-1+b1", "zlib", "1:1.3.dfsg+really1.3.1-1"),
        DebPackage("libssl3t64", "3.5.1-1", "openssl"),
    ],
    [Py("Jinja2", "3.1.4")]) with { Files = [new PayloadFile("models/secret-model.gguf", new string('c', 64), 42)] };

    /// <summary>
    /// Inspector's CYCLONE_DX_1_5 answer: the SBOM's components back plus vulnerabilities whose <c>affects</c> point
    /// at bom-refs, CVSS and EPSS ratings, and the fixed version in an <c>amazon:inspector:sbom_scanner:fixed_version:&lt;ref&gt;</c> property.
    /// </summary>
    internal static Func<RawHttpRequest, LoopbackResponse> CycloneDxAnswer(
        Func<JsonObject, (string Id, string Severity, double Score, string? Fix)?> vulnerable) => request =>
    {
        var sbom = request.Json()!["sbom"]!.AsObject();
        var vulns = new JsonArray();
        foreach (var c in sbom["components"]!.AsArray().OfType<JsonObject>())
        {
            if (vulnerable(c) is not { } v) continue;
            var reference = c["bom-ref"]!.GetValue<string>();
            var vuln = new JsonObject
            {
                ["bom-ref"] = $"vuln-{vulns.Count}", ["id"] = v.Id,
                ["ratings"] = new JsonArray(
                    new JsonObject { ["source"] = new JsonObject { ["name"] = "NVD" }, ["score"] = v.Score, ["severity"] = v.Severity, ["method"] = "CVSSv31" },
                    new JsonObject { ["source"] = new JsonObject { ["name"] = "EPSS" }, ["score"] = 0.02, ["severity"] = "none", ["method"] = "other" }),
                ["affects"] = new JsonArray(new JsonObject { ["ref"] = reference }),
            };
            if (v.Fix != null)
                vuln["properties"] = new JsonArray(new JsonObject { ["name"] = $"amazon:inspector:sbom_scanner:fixed_version:{reference}", ["value"] = v.Fix });
            vulns.Add(vuln);
        }
        var report = new JsonObject
        {
            ["bomFormat"] = "CycloneDX", ["specVersion"] = "1.5",
            ["components"] = sbom["components"]!.DeepClone(), ["vulnerabilities"] = vulns,
        };
        return LoopbackResponse.Json(new JsonObject { ["sbom"] = report }, contentType: "application/json");
    };

    /// <summary>CVE-2025-8058 on libc6 (the offline data knows it too), a new critical on zlib1g and an informational one on Jinja2.</summary>
    internal static (string, string, double, string?)? TrixieVulnerabilities(JsonObject c) => c["name"]!.GetValue<string>() switch
    {
        "libc6" => ("CVE-2025-8058", "medium", 5.9, "2.41-11"),
        "zlib1g" => ("CVE-2099-0001", "critical", 9.8, "1:1.3.dfsg+really1.3.1-2"),
        "jinja2" => ("CVE-2099-0002", "info", 0.0, null),
        _ => null,
    };

    private static VulnerabilityScanner Scanner(IExternalFindingSource source, bool local = true) =>
        new(local ? RealIndex : null, new PolicyGate(VulnerabilityPolicy.Default, Nov2026), Nov2026, [source], local ? "vulndb" : null);

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Inspector_FindingsMergedWithLocalOnesAndLabelledWithTheirSource()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("inspector-scan", ScanRoute, CycloneDxAnswer(TrixieVulnerabilities));
        using var inspector = new InspectorFindingSource(aws.Context());

        var r = await Scanner(inspector).ScanAsync(TrixieImage(), allowUnscanned: false);

        var libc = r.Findings.Single(f => f.Id == "CVE-2025-8058" && f.Package == "libc6");
        Assert.Contains("amazon-inspector", libc.Sources);
        Assert.Contains(libc.Sources, s => s.StartsWith("debian-tracker", StringComparison.Ordinal)); // merged, not duplicated
        Assert.Single(r.Findings, f => f.Id == "CVE-2025-8058" && f.Package == "libc6");
        var zlib = r.Findings.Single(f => f.Id == "CVE-2099-0001");
        Assert.Equal(("zlib1g", Severity.Critical, FindingStatus.Fixed, "1:1.3.dfsg+really1.3.1-2", 9.8),
            (zlib.Package, zlib.Severity, zlib.Status, zlib.FixedVersion, zlib.CvssScore));
        Assert.Equal(["amazon-inspector"], zlib.Sources);
        var jinja = r.Findings.Single(f => f.Id == "CVE-2099-0002");
        Assert.Equal(("jinja2", "pypi", Severity.Negligible, FindingStatus.Unfixed), (jinja.Package, jinja.PackageType, jinja.Severity, jinja.Status));
        Assert.False(r.Policy!.Passed); // a fixable critical reported only by Inspector still fails the gate
        Assert.Contains(r.Policy.Violations, v => v.Contains("CVE-2099-0001"));

        using var report = JsonDocument.Parse(ScanReportWriter.Write(r, false));
        var json = report.RootElement.GetProperty("findings").EnumerateArray().Single(f => f.GetProperty("id").GetString() == "CVE-2099-0001");
        Assert.Equal(["amazon-inspector"], json.GetProperty("sources").EnumerateArray().Select(s => s.GetString()));
        Assert.Contains("external: amazon-inspector", report.RootElement.GetProperty("advisoryData").GetProperty("sources").EnumerateArray().Select(s => s.GetString()));

        // What left the machine: one signed ScanSbom request, CycloneDX relabelled 1.5 without the 1.6 $schema, packages only.
        var call = Assert.Single(aws.ExchangesFor(ScanRoute));
        Assert.Equal(200, call.Status);
        var sent = call.Request.Json()!["sbom"]!.AsObject();
        Assert.Equal("1.5", sent["specVersion"]!.GetValue<string>());
        Assert.Null(sent["$schema"]);
        Assert.Equal(4, sent["components"]!.AsArray().Count);
        Assert.DoesNotContain("secret-model", call.Request.Json()!.ToJsonString());
        Assert.Equal(1, inspector.RequestsSent);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Inspector_WithoutLocalData_StillScansAndGates()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("inspector-scan", ScanRoute, CycloneDxAnswer(TrixieVulnerabilities));
        using var inspector = new InspectorFindingSource(aws.Context());
        var r = await Scanner(inspector, local: false).ScanAsync(TrixieImage(), allowUnscanned: false);
        Assert.True(r.Data.Scanned);
        Assert.Equal(3, r.Findings.Count);
        Assert.All(r.Findings, f => Assert.Equal(["amazon-inspector"], f.Sources));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Inspector_SbomOver5000Components_IsSplitIntoSeveralSignedRequests()
    {
        var packages = Enumerable.Range(0, 12_001).Select(i => DebPackage($"lib{i:D5}", "1.0-1", $"src{i:D5}")).ToList();
        var image = Inventory("debian-13", packages);
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("inspector-scan", ScanRoute, CycloneDxAnswer(c =>
            int.Parse(c["name"]!.GetValue<string>()[3..]) % 3000 == 0 ? ($"CVE-2099-{c["name"]!.GetValue<string>()[3..]}", "high", 7.5, "1.0-2") : null));
        using var inspector = new InspectorFindingSource(aws.Context());

        var r = await Scanner(inspector, local: false).ScanAsync(image, allowUnscanned: false);

        var calls = aws.ExchangesFor(ScanRoute);
        Assert.Equal([5000, 5000, 2001], calls.Select(c => c.Request.Json()!["sbom"]!["components"]!.AsArray().Count));
        Assert.All(calls, c =>
        {
            Assert.Equal(200, c.Status); // each part signed on its own and verified by the server
            Assert.Null(c.RejectReason);
            Assert.Equal("inspector-scan", c.Service);
        });
        Assert.Equal(12_001, calls.SelectMany(c => c.Request.Json()!["sbom"]!["components"]!.AsArray())
            .Select(x => x!["bom-ref"]!.GetValue<string>()).Distinct().Count());
        Assert.Equal(3, inspector.RequestsSent);
        Assert.Equal(["CVE-2099-00000", "CVE-2099-03000", "CVE-2099-06000", "CVE-2099-09000", "CVE-2099-12000"],
            r.Findings.Select(f => f.Id).Order(StringComparer.Ordinal));
        Assert.All(r.Findings, f => Assert.Equal(["amazon-inspector"], f.Sources));
    }

    [Trait("Category", "Integration")]
    [Theory]
    [InlineData(LoopbackThrottle.TooManyRequests429, 429)]
    [InlineData(LoopbackThrottle.ThrottlingException400, 400)]
    public async Task Inspector_Throttled_IsRetriedThenSucceeds(LoopbackThrottle kind, int status)
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("inspector-scan", ScanRoute, CycloneDxAnswer(TrixieVulnerabilities));
        aws.InjectThrottling(ScanRoute, 2, kind);
        using var inspector = new InspectorFindingSource(aws.Context());

        var r = await Scanner(inspector, local: false).ScanAsync(TrixieImage(), allowUnscanned: false);

        Assert.Equal([status, status, 200], aws.ExchangesFor(ScanRoute).Select(e => e.Status));
        Assert.Equal(3, inspector.Attempts);
        Assert.Equal(3, r.Findings.Count);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Inspector_WrongSecret_FailsWithSignatureAdviceAndIsNotRetried()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("inspector-scan", ScanRoute, CycloneDxAnswer(TrixieVulnerabilities));
        using var inspector = new InspectorFindingSource(aws.Context(credentials: new BasicAWSCredentials(SigV4LoopbackServer.DefaultAccessKeyId, "not-the-secret")));

        var e = await Assert.ThrowsAsync<AwsServiceException>(() => Scanner(inspector).ScanAsync(TrixieImage(), allowUnscanned: false));

        Assert.Equal("InvalidSignatureException", e.ErrorCode);
        Assert.Contains("AWS_SECRET_ACCESS_KEY", e.Message);
        Assert.Contains("inspector-scan ScanSbom", e.Message);
        Assert.DoesNotContain("not-the-secret", e.Message);
        var call = Assert.Single(aws.Exchanges);
        Assert.Equal(403, call.Status);
    }

    [Fact]
    public void MapSeverity_CoversInspectorVocabulary()
    {
        Assert.Equal(Severity.Critical, InspectorFindingSource.MapSeverity("CRITICAL"));
        Assert.Equal(Severity.Medium, InspectorFindingSource.MapSeverity("medium"));
        Assert.Equal(Severity.Negligible, InspectorFindingSource.MapSeverity("informational"));
        Assert.Equal(Severity.Unknown, InspectorFindingSource.MapSeverity("untriaged"));
        // Inspector rewrote the purl (no distro qualifier): the finding still lands on our component.
        var inv = TrixieImage();
        var e = InspectorFindingSource.ToExternal(new InspectorFinding("CVE-1", "pkg:deb/debian/libc6@2.41-10?arch=amd64", "libc6", "2.41-10", null, "high", 7.0), inv);
        Assert.Equal(CycloneDxWriter.DebRef(inv, inv.Packages[0]), e.Purl);
    }

    // ---- --ecr: Inspector2 findings of a pushed image ----

    internal static string Digest(char c) => "sha256:" + new string(c, 64);

    /// <summary>ListFindings pages for <paramref name="pages"/>: digest → list of pages, each a list of findings (id, package, severity, fix).</summary>
    /// <param name="statusOf">Inspector's findingStatus per vulnerability id (default ACTIVE).</param>
    internal static Func<RawHttpRequest, LoopbackResponse> ListFindingsAnswer(
        IReadOnlyDictionary<string, (string Id, string Package, string Severity, double Score, string? Fix)[][]> pages,
        Func<string, string>? statusOf = null) => request =>
    {
        var body = request.Json()!;
        var digest = body["filterCriteria"]!["ecrImageHash"]![0]!["value"]!.GetValue<string>();
        if (body["filterCriteria"]!["ecrImageHash"]![0]!["comparison"]!.GetValue<string>() != "EQUALS") throw new InvalidOperationException("comparison");
        var mine = pages.TryGetValue(digest, out var p) ? p : [[]];
        var token = body["nextToken"]?.GetValue<string>();
        var index = token == null ? 0 : int.Parse(token.Split('-')[1]);
        var findings = new JsonArray();
        foreach (var (id, package, severity, score, fix) in mine[index])
            findings.Add(new JsonObject
            {
                ["awsAccountId"] = "123456789012",
                // FindingArn's pattern: finding/<32 hex>.
                ["findingArn"] = $"arn:aws:inspector2:us-east-1:123456789012:finding/{HardenImage.Common.Sha256Hex.Of(System.Text.Encoding.UTF8.GetBytes(id + package))[..32]}",
                ["type"] = "PACKAGE_VULNERABILITY", ["status"] = statusOf?.Invoke(id) ?? "ACTIVE", ["severity"] = severity.ToUpperInvariant(),
                ["title"] = $"{id} - {package}", ["inspectorScore"] = score, ["fixAvailable"] = fix != null ? "YES" : "NO",
                ["description"] = $"{id} in {package}",
                ["remediation"] = new JsonObject { ["recommendation"] = new JsonObject { ["text"] = "Upgrade the package." } },
                ["firstObservedAt"] = 1764115200.0, ["lastObservedAt"] = 1764115200.0,
                ["resources"] = new JsonArray(new JsonObject { ["type"] = "AWS_ECR_CONTAINER_IMAGE", ["id"] = $"arn:aws:ecr:us-east-1:123456789012:repository/ml/python/{digest}" }),
                ["packageVulnerabilityDetails"] = new JsonObject
                {
                    ["vulnerabilityId"] = id, ["source"] = "DEBIAN_CVE",
                    ["cvss"] = new JsonArray(new JsonObject { ["baseScore"] = score, ["scoringVector"] = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", ["source"] = "NVD", ["version"] = "3.1" }),
                    ["vulnerablePackages"] = new JsonArray(new JsonObject
                    {
                        ["name"] = package, ["version"] = "1.0-1", ["packageManager"] = "OS", ["arch"] = "X86_64",
                        ["fixedInVersion"] = fix ?? "NotAvailable",
                    }),
                },
            });
        var answer = new JsonObject { ["findings"] = findings };
        if (index + 1 < mine.Length) answer["nextToken"] = $"page-{index + 1}";
        return LoopbackResponse.Json(answer, contentType: "application/json");
    };

    internal const string ScanStatusTarget = EcrApiClient.TargetPrefix + "DescribeImageScanFindings";

    /// <summary>
    /// ECR DescribeImageScanFindings as the API model says: <c>imageScanStatus</c> taking the given statuses call
    /// after call (the last one repeats); "none" answers ScanNotFoundException, as ECR does when nothing scans the image.
    /// </summary>
    internal static Func<RawHttpRequest, LoopbackResponse> ScanStatusAnswer(params string[] statuses)
    {
        var calls = 0;
        return request =>
        {
            var body = request.Json()!;
            var status = statuses[Math.Min(Interlocked.Increment(ref calls) - 1, statuses.Length - 1)];
            var repository = body["repositoryName"]!.GetValue<string>();
            var registryId = body["registryId"]?.GetValue<string>() ?? "123456789012";
            if (status == "none")
                return LoopbackResponse.AwsError(400, "ScanNotFoundException",
                    $"Image scan does not exist for the image with '{{imageDigest:'{body["imageId"]!["imageDigest"]}'}}' in the repository with name '{repository}' in the registry with id '{registryId}'");
            var answer = new JsonObject
            {
                ["registryId"] = registryId,
                ["repositoryName"] = repository,
                ["imageId"] = body["imageId"]!.DeepClone(),
                ["imageScanStatus"] = new JsonObject { ["status"] = status, ["description"] = $"The scan is {status.ToLowerInvariant()}." },
            };
            return LoopbackResponse.Json(answer);
        };
    }

    internal static readonly (string, string, string, double, string?)[][] ThreePages =
    [
        [("CVE-2099-1000", "libfoo", "medium", 5.0, "1.0-2"), ("CVE-2099-1001", "libbar", "low", 3.1, null)],
        [("CVE-2099-2000", "libbaz", "critical", 9.8, "1.0-3")],
        [("CVE-2099-3000", "libqux", "high", 7.5, null)],
    ];

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Ecr_FollowsThreePagesAndFailsTheGateOnAFixableCritical()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("inspector2", FindingsRoute, ListFindingsAnswer(new Dictionary<string, (string, string, string, double, string?)[][]>
        {
            [Digest('a')] = ThreePages,
            [Digest('b')] = [[("CVE-2099-1001", "libbar", "low", 3.1, null)]],
        }));
        aws.Handle("ecr", ScanStatusTarget, ScanStatusAnswer("ACTIVE"));
        var pushed = new PushedFile
        {
            Registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml",
            Images = new(StringComparer.Ordinal)
            {
                ["python"] = new PushedImage
                {
                    Repository = "ml/python", Index = Digest('0'),
                    Manifests = new(StringComparer.Ordinal) { ["amd64"] = Digest('a'), ["arm64"] = Digest('b') },
                },
            },
        };
        var target = InspectorEcrTarget.Resolve("python", pushed, "artifacts/pushed.json");
        Assert.Equal(("us-east-1", "ml/python"), (target.Region, target.Repository));
        using var client = new Inspector2FindingsClient(aws.Context());

        var report = await new InspectorEcrScanner(client, new PolicyGate(VulnerabilityPolicy.Default, Nov2026), Nov2026).ScanAsync(target, "us-east-1");

        Assert.Equal(4, aws.ExchangesFor(FindingsRoute).Count); // three pages for amd64, one for arm64
        Assert.All(aws.ExchangesFor(FindingsRoute), e => Assert.Equal(200, e.Status));
        var amd64 = report.Images.Single(i => i.Architecture == "amd64");
        Assert.Equal(4, amd64.Findings.Count);
        Assert.Equal("CVE-2099-2000", amd64.Findings[0].Id); // worst first
        Assert.All(amd64.Findings, f => Assert.Equal(["amazon-inspector"], f.Sources));
        Assert.False(amd64.Policy.Passed);
        Assert.Contains(amd64.Policy.Violations, v => v.Contains("CVE-2099-2000") && v.Contains("1.0-3"));
        Assert.True(report.Images.Single(i => i.Architecture == "arm64").Policy.Passed);
        Assert.False(report.Passed);

        using var json = JsonDocument.Parse(InspectorEcrReportWriter.Write(report));
        Assert.Equal(InspectorEcrReportWriter.Schema, json.RootElement.GetProperty("schema").GetString());
        Assert.False(json.RootElement.GetProperty("passed").GetBoolean());
        var critical = json.RootElement.GetProperty("images")[0].GetProperty("findings")[0];
        Assert.Equal(("CVE-2099-2000", "libbaz", "1.0-3", "critical", "amazon-inspector"),
            (critical.GetProperty("id").GetString(), critical.GetProperty("package").GetString(), critical.GetProperty("fixedVersion").GetString(),
             critical.GetProperty("severity").GetString(), critical.GetProperty("sources")[0].GetString()));
    }

    [Fact]
    public void EcrTarget_AcceptsDigestsAndDigestReferencesButNotTags()
    {
        var bare = InspectorEcrTarget.Resolve(Digest('a'), null, "artifacts/pushed.json");
        Assert.Equal([("image", Digest('a'))], bare.Digests);
        Assert.Null(bare.Region);
        var byRef = InspectorEcrTarget.Resolve($"123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml/python@{Digest('b')}", null, "artifacts/pushed.json");
        Assert.Equal(("eu-west-1", "ml/python", "python"), (byRef.Region, byRef.Repository, byRef.Label));
        var e = Assert.Throws<HardenException>(() => InspectorEcrTarget.Resolve("123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml/python:latest", null, "artifacts/pushed.json"));
        Assert.Contains("Tags are not accepted", e.Message);
        Assert.Contains("harden push", e.Message);
    }
}
