using HardenImage.Common;
using HardenImage.Scan;
using HardenImage.Tests.Infrastructure;
using static HardenImage.Tests.Scan.ScanFixtures;

namespace HardenImage.Tests.Scan;

public class PolicyGateTests
{
    private static Finding F(string id, Severity sev, FindingStatus status, string pkg = "libssl3t64", string? fixedIn = "3.5.1-1+deb13u1") => new()
    {
        Id = id, Package = pkg, PackageType = "deb", Purl = $"pkg:deb/debian/{pkg}@1?arch=amd64&distro=debian-13", InstalledVersion = "3.5.1-1",
        SourcePackage = "openssl", Status = status, FixedVersion = status == FindingStatus.Fixed ? fixedIn : null, Severity = sev, SeveritySource = SeveritySources.CvssV3,
    };

    [Fact]
    public void Gate_FailsOnHighOrCriticalWithAFix()
    {
        var gate = new PolicyGate(VulnerabilityPolicy.Default, Nov2026);
        Assert.False(gate.Evaluate([F("CVE-1", Severity.High, FindingStatus.Fixed)]).Result.Passed);
        Assert.True(gate.Evaluate([F("CVE-1", Severity.Medium, FindingStatus.Fixed)]).Result.Passed);
        Assert.True(gate.Evaluate([F("CVE-1", Severity.High, FindingStatus.Unfixed)]).Result.Passed);
        Assert.True(gate.Evaluate([F("CVE-1", Severity.Critical, FindingStatus.Negligible)]).Result.Passed);
        // Default: no unfixed critical tolerated.
        var r = gate.Evaluate([F("CVE-2", Severity.Critical, FindingStatus.Unfixed)]).Result;
        Assert.False(r.Passed);
        Assert.Contains("unfixed critical", r.Violations.Single());
    }

    [Fact]
    public void Gate_AllowlistAcceptsMatchingFindingsBySourceOrBinaryName()
    {
        var policy = VulnerabilityPolicy.Parse("""
            allowlist:
              - {id: CVE-1, package: openssl, justification: not reachable, expires: 2027-01-01}
            """, "p.yaml");
        var (findings, result) = new PolicyGate(policy, Nov2026).Evaluate([F("CVE-1", Severity.Critical, FindingStatus.Fixed), F("CVE-3", Severity.Low, FindingStatus.Fixed)]);
        Assert.True(result.Passed);
        Assert.Equal("not reachable", findings.Single(f => f.Id == "CVE-1").Allowlisted!.Justification);
        Assert.Null(findings.Single(f => f.Id == "CVE-3").Allowlisted);
    }

    [Fact]
    public void Gate_ExpiredAllowlistEntryFailsAndSaysSo()
    {
        var policy = VulnerabilityPolicy.Parse("""
            allowlist:
              - id: CVE-1
                package: libssl3t64
                justification: waiting for the point release
                expires: 2026-11-25
            """, "policies/vulnerabilities.yaml");
        var (findings, result) = new PolicyGate(policy, Nov2026).Evaluate([F("CVE-1", Severity.Low, FindingStatus.Fixed)]);
        Assert.False(result.Passed);
        Assert.Contains(result.Violations, v => v.Contains("expired on 2026-11-25") && v.Contains("policies/vulnerabilities.yaml") && v.Contains("CVE-1"));
        Assert.Null(findings.Single().Allowlisted);
    }

    [Theory]
    [InlineData("failOnFixable: [high]\nmaxUnfixd: {critical: 0}\n", "maxUnfixd")]
    [InlineData("allowlist:\n  - {id: CVE-1, package: x, justification: y, expires: 2027-01-01, expiry: 2027-01-01}\n", "allowlist[0].expiry")]
    public void Policy_UnknownFieldNamesFileAndField(string yaml, string field)
    {
        var e = Assert.Throws<HardenException>(() => VulnerabilityPolicy.Parse(yaml, "policies/vulnerabilities.yaml"));
        Assert.Contains("policies/vulnerabilities.yaml", e.Message);
        Assert.Contains($"'{field}'", e.Message);
    }

    [Theory]
    [InlineData("allowlist:\n  - {id: CVE-1, package: x, expires: 2027-01-01}\n", "justification is required")]
    [InlineData("allowlist:\n  - {id: CVE-1, package: x, justification: y, expires: soon}\n", "not a date")]
    [InlineData("failOnFixable: [severe]\n", "not a severity")]
    [InlineData("allowlist:\n  - {id: CVE-1, package: x, justification: y, expires: 2027-01-01, vexJustification: trust_me}\n", "vexJustification")]
    public void Policy_RejectsIncompleteEntries(string yaml, string message) =>
        Assert.Contains(message, Assert.Throws<HardenException>(() => VulnerabilityPolicy.Parse(yaml, "p.yaml")).Message);

    [Fact]
    public void Policy_ShippedFileParses()
    {
        var root = AppContext.BaseDirectory;
        while (root != null && !File.Exists(Path.Combine(root, "HardenImage.sln"))) root = Path.GetDirectoryName(root);
        Assert.NotNull(root);
        var policy = VulnerabilityPolicy.Load(Path.Combine(root!, "policies", "vulnerabilities.yaml"));
        Assert.Equal([Severity.Critical, Severity.High], policy.FailOnFixable);
        Assert.Equal(0, policy.MaxUnfixed[Severity.Critical]);
    }
}
