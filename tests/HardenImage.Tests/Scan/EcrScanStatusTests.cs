using System.Diagnostics;
using System.Text.Json;
using HardenImage.Aws;
using HardenImage.Common;
using HardenImage.Registry;
using HardenImage.Scan;
using HardenImage.Tests.Aws;
using static HardenImage.Tests.Scan.InspectorFindingSourceTests;
using static HardenImage.Tests.Scan.ScanFixtures;

namespace HardenImage.Tests.Scan;

/// <summary>
/// <c>scan --ecr</c> must not pass an image nobody scanned (Spoofing of a clean result): the loopback ECR answers
/// DescribeImageScanFindings as the API model says (PENDING/IN_PROGRESS/COMPLETE/ACTIVE/FAILED, ScanNotFoundException),
/// and Inspector2 reports findings ACTIVE, SUPPRESSED or CLOSED.
/// </summary>
public sealed class EcrScanStatusTests
{
    private const string Host = "210987654321.dkr.ecr.us-east-1.amazonaws.com";

    private static InspectorEcrTarget Target() =>
        InspectorEcrTarget.Resolve($"{Host}/ml/python@{Digest('a')}", null, "artifacts/pushed.json");

    private static (InspectorEcrScanner Scanner, List<string> Progress, IDisposable Clients) Scanner(SigV4LoopbackServer aws, EcrScanWait wait)
    {
        var inspector = new Inspector2FindingsClient(aws.Context());
        var ecr = new EcrApiClient(aws.Context());
        var progress = new List<string>();
        var scanner = new InspectorEcrScanner(inspector, ecr, new PolicyGate(HardenImage.Scan.VulnerabilityPolicy.Default, Nov2026), TimeProvider.System, wait)
        {
            OnProgress = progress.Add,
        };
        return (scanner, progress, new Both(inspector, ecr));
    }

    private sealed class Both(IDisposable a, IDisposable b) : IDisposable
    {
        public void Dispose() { a.Dispose(); b.Dispose(); }
    }

    private static readonly EcrScanWait Quick = new() { MaxWait = TimeSpan.FromMinutes(1), PollInterval = TimeSpan.FromMilliseconds(20) };

    [Trait("Category", "Integration")]
    [Fact]
    public async Task EcrScan_PendingThenInProgressThenComplete_WaitsWithProgress_ThenGatesOnlyActiveFindings()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("ecr", ScanStatusTarget, ScanStatusAnswer("PENDING", "IN_PROGRESS", "COMPLETE"));
        aws.Handle("inspector2", FindingsRoute, ListFindingsAnswer(new Dictionary<string, (string, string, string, double, string?)[][]>
        {
            [Digest('a')] = [[("CVE-2099-0001", "libopen", "critical", 9.8, "1.0-2"), ("CVE-2099-0002", "libsuppressed", "critical", 9.8, "1.0-2"),
                              ("CVE-2099-0003", "libclosed", "critical", 9.8, "1.0-2")]],
        }, id => id switch { "CVE-2099-0002" => "SUPPRESSED", "CVE-2099-0003" => "CLOSED", _ => "ACTIVE" }));
        var (scanner, progress, clients) = Scanner(aws, Quick);
        using var _ = clients;

        var report = await scanner.ScanAsync(Target(), "us-east-1");

        var calls = aws.ExchangesFor(ScanStatusTarget);
        Assert.Equal(3, calls.Count);
        // The registry is another account's: ECR is asked about that registry, not the caller's own.
        Assert.All(calls, c => Assert.Equal("210987654321", c.Request.Json()!["registryId"]!.GetValue<string>()));
        Assert.Equal(2, progress.Count);
        Assert.Contains("PENDING", progress[0]);
        Assert.Contains("IN_PROGRESS", progress[1]);
        var image = Assert.Single(report.Images);
        Assert.Equal("COMPLETE", image.ScanStatus);
        // CLOSED is not open risk; SUPPRESSED stays visible, marked as allowlisted by Inspector; ACTIVE gates.
        Assert.Equal(["CVE-2099-0001", "CVE-2099-0002"], image.Findings.Select(f => f.Id).Order());
        Assert.Equal(InspectorEcrScanner.SuppressedJustification, image.Findings.Single(f => f.Id == "CVE-2099-0002").Allowlisted?.Justification);
        Assert.False(image.Policy.Passed);
        Assert.Contains(image.Policy.Violations, v => v.Contains("CVE-2099-0001"));
        Assert.DoesNotContain(image.Policy.Violations, v => v.Contains("CVE-2099-0002") || v.Contains("CVE-2099-0003"));
        using var json = JsonDocument.Parse(InspectorEcrReportWriter.Write(report));
        var written = json.RootElement.GetProperty("images")[0];
        Assert.Equal("COMPLETE", written.GetProperty("scanStatus").GetString());
        Assert.Equal(1, written.GetProperty("summary").GetProperty("suppressedInInspector").GetInt32());
        // One spelling of a finding for every report: the ECR report's findings have the scan report's fields.
        var finding = written.GetProperty("findings")[0];
        foreach (var field in new[] { "id", "aliases", "package", "packageType", "purl", "installedVersion", "fixedVersion", "status", "severity", "severitySource", "sources" })
            Assert.True(finding.TryGetProperty(field, out var _unused), $"the ECR report's finding has no '{field}'");
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task EcrScan_WithNoScanAtAll_FailsInsteadOfPassingAnEmptyFindingList()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("ecr", ScanStatusTarget, ScanStatusAnswer("none"));
        aws.Handle("inspector2", FindingsRoute, ListFindingsAnswer(new Dictionary<string, (string, string, string, double, string?)[][]>()));
        var (scanner, _, clients) = Scanner(aws, Quick);
        using var _c = clients;

        var e = await Assert.ThrowsAsync<HardenException>(() => scanner.ScanAsync(Target(), "us-east-1"));

        Assert.Contains("ECR has no scan of ml/python@" + Digest('a'), e.Message);
        Assert.Contains("enhanced scanning", e.Message);
        Assert.Empty(aws.ExchangesFor(FindingsRoute)); // the empty list was never taken for a clean bill
    }

    [Trait("Category", "Integration")]
    [Theory]
    [InlineData("FAILED")]
    [InlineData("UNSUPPORTED_IMAGE")]
    [InlineData("SCAN_ELIGIBILITY_EXPIRED")]
    [InlineData("FINDINGS_UNAVAILABLE")]
    public async Task EcrScan_ThatEndedWithoutFindings_FailsWithEcrsReason(string status)
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("ecr", ScanStatusTarget, ScanStatusAnswer(status));
        var (scanner, _, clients) = Scanner(aws, Quick);
        using var _c = clients;

        var e = await Assert.ThrowsAsync<HardenException>(() => scanner.ScanAsync(Target(), "us-east-1"));

        Assert.Contains($"is {status}: The scan is {status.ToLowerInvariant()}.", e.Message);
        Assert.Contains("does not pass", e.Message);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task EcrScan_StillInProgressAfterTheWait_FailsWithinTheBound_NamingTheKnob()
    {
        await using var aws = new SigV4LoopbackServer();
        aws.Handle("ecr", ScanStatusTarget, ScanStatusAnswer("IN_PROGRESS"));
        var (scanner, progress, clients) = Scanner(aws, new EcrScanWait { MaxWait = TimeSpan.FromMilliseconds(300), PollInterval = TimeSpan.FromMilliseconds(50) });
        using var _c = clients;
        var sw = Stopwatch.StartNew();

        var e = await Assert.ThrowsAsync<HardenException>(() => scanner.ScanAsync(Target(), "us-east-1"));

        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
        Assert.Contains("still IN_PROGRESS", e.Message);
        Assert.Contains(EcrScanWait.EnvironmentVariable, e.Message);
        Assert.NotEmpty(progress);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task EcrScan_OfABareDigest_AsksForTheRepository()
    {
        await using var aws = new SigV4LoopbackServer();
        var (scanner, _, clients) = Scanner(aws, Quick);
        using var _c = clients;

        var e = await Assert.ThrowsAsync<HardenException>(() => scanner.ScanAsync(
            InspectorEcrTarget.Resolve(Digest('a'), null, "artifacts/pushed.json"), "us-east-1"));

        Assert.Contains("REPOSITORY@sha256:<digest>", e.Message);
        Assert.Empty(aws.Exchanges);
    }

    [Fact]
    public void EcrScanWait_FromTheEnvironment_IsValidated()
    {
        Assert.Equal(TimeSpan.FromSeconds(90), EcrScanWait.FromEnvironment(_ => "90").MaxWait);
        Assert.Equal(TimeSpan.Zero, EcrScanWait.FromEnvironment(_ => "0").MaxWait);
        Assert.Contains("HARDEN_ECR_SCAN_WAIT='soon'", Assert.Throws<HardenException>(() => EcrScanWait.FromEnvironment(_ => "soon")).Message);
    }
}
