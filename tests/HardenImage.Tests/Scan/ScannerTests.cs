using System.Text.Json;
using HardenImage.Common;
using HardenImage.Sbom;
using HardenImage.Scan;
using HardenImage.Tests.Sbom;
using static HardenImage.Tests.Scan.ScanFixtures;

namespace HardenImage.Tests.Scan;

public class ScannerTests
{
    private static ImageInventory TrixieImage() => Inventory("debian-13",
    [
        DebPackage("libc6", "2.41-10", "glibc"),
        DebPackage("libc-bin", "2.41-10", "glibc"),
        DebPackage("libpython3.13-stdlib", "3.13.5-2", "python3.13"),
        DebPackage("libsystemd0", "257.7-1", "systemd"),
        DebPackage("libssl3t64", "3.5.1-1", "openssl"),
        DebPackage("zlib1g", "1:1.3.dfsg+really1.3.1-1+b1", "zlib", "1:1.3.dfsg+really1.3.1-1"),
    ],
    [Py("torch", "2.5.1"), Py("Jinja2", "3.1.4"), Py("fastapi", "0.65.1"), Py("requests", "2.32.4")]);

    private static async Task<ScanResult> ScanAsync(ImageInventory inv, VulnerabilityPolicy? policy = null, IEnumerable<IExternalFindingSource>? external = null) =>
        await new VulnerabilityScanner(RealIndex, new PolicyGate(policy ?? VulnerabilityPolicy.Default, Nov2026), Nov2026, external, "vulndb")
            .ScanAsync(inv, allowUnscanned: false);

    [Fact]
    public async Task Scan_RealExcerpts_MatchesDebianBySourcePackageAndRelease()
    {
        var r = await ScanAsync(TrixieImage());
        // glibc 2.41-10 < 2.41-11 (CVE-2025-8058, sid fix inherited by trixie): one finding per binary package.
        var glibc = r.Findings.Where(f => f.Id == "CVE-2025-8058").ToList();
        Assert.Equal(["libc-bin", "libc6"], glibc.Select(f => f.Package).Order(StringComparer.Ordinal));
        Assert.All(glibc, f => Assert.Equal((FindingStatus.Fixed, "2.41-11", "glibc"), (f.Status, f.FixedVersion, f.SourcePackage)));
        // Fixed long before trixie's glibc: nothing.
        Assert.DoesNotContain(r.Findings, f => f.Id == "CVE-2023-4911");
        // [trixie] - python3.13 <no-dsa> (Minor issue): negligible, with Debian's note.
        var py = r.Findings.Single(f => f.Id == "CVE-2025-8194");
        Assert.Equal((FindingStatus.Negligible, "Minor issue"), (py.Status, py.Note));
        // sid "unfixed" systemd, trixie inherits it: unfixed.
        Assert.Equal(FindingStatus.Unfixed, r.Findings.Single(f => f.Id == "CVE-2023-7008").Status);
        // unimportant glibc issue: negligible, severity from Debian urgency.
        var unimportant = r.Findings.First(f => f.Id == "CVE-2019-1010022");
        Assert.Equal((FindingStatus.Negligible, Severity.Negligible, SeveritySources.DebianUrgency), (unimportant.Status, unimportant.Severity, unimportant.SeveritySource));
        // Known only through DSA-6015-1 ([trixie] - openssl 3.5.1-1+deb13u1): fixed, and not merged with each other.
        foreach (var cve in new[] { "CVE-2025-9230", "CVE-2025-9232" })
            Assert.Equal((FindingStatus.Fixed, "3.5.1-1+deb13u1"), r.Findings.Where(f => f.Id == cve).Select(f => (f.Status, f.FixedVersion)).Single());
    }

    [Fact]
    public async Task Scan_SameImageOnBookworm_UsesBookwormLines()
    {
        var r = await ScanAsync(Inventory("debian-12", [DebPackage("libc6", "2.36-9+deb12u1", "glibc")]));
        Assert.Equal((FindingStatus.Fixed, "2.36-9+deb12u3"), r.Findings.Where(f => f.Id == "CVE-2023-4911").Select(f => (f.Status, f.FixedVersion)).Single());
        Assert.Equal(FindingStatus.Negligible, r.Findings.Single(f => f.Id == "CVE-2025-4802").Status);
    }

    [Fact]
    public async Task Scan_RealExcerpts_MatchesPyPiByNormalisedNameAndPep440()
    {
        var r = await ScanAsync(TrixieImage());
        var torch = r.Findings.Single(f => f.Package == "torch" && f.Id == "CVE-2025-32434");
        Assert.Equal(("2.6.0", FindingStatus.Fixed), (torch.FixedVersion, torch.Status));
        Assert.Contains("GHSA-53q9-r3pm-6pq6", torch.Aliases);
        Assert.DoesNotContain(r.Findings, f => f.Package == "requests" && f.Id == "CVE-2024-47081"); // fixed in 2.32.4
        Assert.Contains(r.Findings, f => f.Package == "jinja2" && f.Id == "CVE-2025-27516");
    }

    [Fact]
    public async Task Scan_DeduplicatesTheSameVulnerabilityAcrossStores()
    {
        // fastapi CVE-2021-32677 is both GHSA-8h2j-cgx8-6xv7 (vuln-list JSON) and PYSEC-2021-100 (pypa YAML + JSONL).
        var r = await ScanAsync(TrixieImage());
        var f = r.Findings.Single(x => x.Package == "fastapi" && x.Id == "CVE-2021-32677");
        Assert.Contains("GHSA-8h2j-cgx8-6xv7", f.Aliases);
        Assert.Contains("PYSEC-2021-100", f.Aliases);
        Assert.Equal("0.65.2", f.FixedVersion);
        Assert.Single(r.Findings, x => x.Package == "fastapi" && (x.Id == "CVE-2021-32677" || x.Aliases.Contains("CVE-2021-32677")));
    }

    [Fact]
    public async Task Scan_DeduplicatesTrackerAndOsvDebianRecordsAndPrefersCvss()
    {
        var tracker = new AdvisoryRecord { Ecosystem = "Debian:13", Package = "openssl", Id = "CVE-2025-9230", Origin = AdvisoryOrigins.DebianTracker, Tracker = new("resolved", "3.5.1-1+deb13u1", "medium", null, null) };
        var osv = new AdvisoryRecord
        {
            Ecosystem = "Debian:13", Package = "openssl", Id = "DEBIAN-CVE-2025-9230", Aliases = ["CVE-2025-9230"], Origin = AdvisoryOrigins.Osv,
            Ranges = [new OsvRange("ECOSYSTEM", [new(OsvEventKind.Introduced, "0"), new(OsvEventKind.Fixed, "3.5.1-1+deb13u1")])],
            CvssVector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        };
        var idx = AdvisoryIndex.Create([tracker, osv], "sha256:" + new string('1', 64), ["test"]);
        var r = await new VulnerabilityScanner(idx, new PolicyGate(VulnerabilityPolicy.Default, Nov2026), Nov2026)
            .ScanAsync(Inventory("debian-13", [DebPackage("libssl3t64", "3.5.1-1", "openssl")]), false);
        var f = Assert.Single(r.Findings);
        Assert.Equal(("CVE-2025-9230", Severity.Critical, SeveritySources.CvssV3, 9.8), (f.Id, f.Severity, f.SeveritySource, f.CvssScore));
        Assert.Equal(["debian-tracker:Debian:13", "osv:Debian:13"], f.Sources);
        Assert.False(r.Policy!.Passed); // critical with a fix
    }

    private sealed class StubInspector(IReadOnlyList<ExternalFinding> findings) : IExternalFindingSource
    {
        public string Name => "amazon-inspector";
        public Task<IReadOnlyList<ExternalFinding>> GetFindingsAsync(ImageInventory inventory, CancellationToken cancellationToken) => Task.FromResult(findings);
    }

    [Fact]
    public async Task Scan_MergesExternalFindingsNamingTheirSource()
    {
        var inv = TrixieImage();
        var libc = inv.Packages.Single(p => p.Name == "libc6");
        var external = new StubInspector(
        [
            new ExternalFinding { Id = "CVE-2025-8058", Purl = CycloneDxWriter.DebRef(inv, libc), Source = "amazon-inspector", Severity = Severity.Medium },
            new ExternalFinding { Id = "CVE-2099-0001", PackageName = "zlib1g", FixedVersion = "1:1.3.1-2", CvssVector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", Source = "amazon-inspector" },
        ]);
        var r = await ScanAsync(inv, external: [external]);
        Assert.Contains("amazon-inspector", r.Findings.Single(f => f.Id == "CVE-2025-8058" && f.Package == "libc6").Sources);
        var added = r.Findings.Single(f => f.Id == "CVE-2099-0001");
        Assert.Equal(("zlib1g", Severity.High, FindingStatus.Fixed), (added.Package, added.Severity, added.Status));
        Assert.Equal(["amazon-inspector"], added.Sources);
        Assert.Contains(r.Data.Sources, s => s == "external: amazon-inspector");
    }

    [Fact]
    public async Task Scan_WithoutAdvisoryData_FailsUnlessAllowedAndThenSaysUnscanned()
    {
        var scanner = new VulnerabilityScanner(null, new PolicyGate(VulnerabilityPolicy.Default, Nov2026), Nov2026);
        var e = await Assert.ThrowsAsync<HardenException>(() => scanner.ScanAsync(TrixieImage(), allowUnscanned: false));
        Assert.Contains("--db", e.Message);
        Assert.Contains("harden db update", e.Message);
        var r = await scanner.ScanAsync(TrixieImage(), allowUnscanned: true);
        Assert.False(r.Data.Scanned);
        using var doc = JsonDocument.Parse(ScanReportWriter.Write(r, false));
        Assert.False(doc.RootElement.GetProperty("advisoryData").GetProperty("scanned").GetBoolean());
        Assert.Contains("--allow-unscanned", doc.RootElement.GetProperty("advisoryData").GetProperty("unscannedReason").GetString());
    }

    [Fact]
    public async Task Vex_CycloneDxAndOpenVexValidateAndCarryAllowlistJustifications()
    {
        var policy = VulnerabilityPolicy.Parse("""
            allowlist:
              - id: CVE-2025-32434
                package: torch
                justification: Models are loaded only from our signed bucket, never from users.
                expires: 2027-01-31
                vexJustification: vulnerable_code_cannot_be_controlled_by_adversary
              - id: CVE-2023-7008
                package: systemd
                justification: systemd-resolved is not running in the container.
                expires: 2027-01-31
            """, "policy.yaml");
        var r = await ScanAsync(TrixieImage(), policy);
        foreach (var negligible in new[] { false, true })
        {
            var cdx = CycloneDxVexWriter.Write(r, negligible);
            SchemaValidation.AssertCycloneDx(cdx);
            var openVex = OpenVexWriter.Write(r, negligible);
            SchemaValidation.AssertOpenVex(openVex);
        }
        using var cdxDoc = JsonDocument.Parse(CycloneDxVexWriter.Write(r, false));
        var torch = cdxDoc.RootElement.GetProperty("vulnerabilities").EnumerateArray().Single(v => v.GetProperty("id").GetString() == "CVE-2025-32434");
        Assert.Equal("not_affected", torch.GetProperty("analysis").GetProperty("state").GetString());
        Assert.Equal("requires_environment", torch.GetProperty("analysis").GetProperty("justification").GetString());
        Assert.Contains("signed bucket", torch.GetProperty("analysis").GetProperty("detail").GetString());
        var systemd = cdxDoc.RootElement.GetProperty("vulnerabilities").EnumerateArray().Single(v => v.GetProperty("id").GetString() == "CVE-2023-7008");
        Assert.Equal("exploitable", systemd.GetProperty("analysis").GetProperty("state").GetString());
        Assert.Contains("systemd-resolved", systemd.GetProperty("analysis").GetProperty("detail").GetString());

        using var ovDoc = JsonDocument.Parse(OpenVexWriter.Write(r, false));
        var stmt = ovDoc.RootElement.GetProperty("statements").EnumerateArray().Single(s => s.GetProperty("vulnerability").GetProperty("name").GetString() == "CVE-2025-32434");
        Assert.Equal(("not_affected", "vulnerable_code_cannot_be_controlled_by_adversary"), (stmt.GetProperty("status").GetString(), stmt.GetProperty("justification").GetString()));
        Assert.Contains("signed bucket", stmt.GetProperty("impact_statement").GetString());
    }

    [Fact]
    public async Task Vex_EmptyScanIsStillValid()
    {
        var r = await ScanAsync(Inventory("debian-13", [DebPackage("base-files", "13.8", "base-files")]));
        Assert.Empty(r.Findings);
        SchemaValidation.AssertCycloneDx(CycloneDxVexWriter.Write(r, false));
        SchemaValidation.AssertOpenVex(OpenVexWriter.Write(r, false));
    }

    [Fact]
    public async Task Report_HidesNegligibleUnlessRequested()
    {
        var r = await ScanAsync(TrixieImage());
        using var hidden = JsonDocument.Parse(ScanReportWriter.Write(r, false));
        using var shown = JsonDocument.Parse(ScanReportWriter.Write(r, true));
        var negligible = r.Findings.Count(f => f.Status == FindingStatus.Negligible);
        Assert.True(negligible > 0);
        Assert.Equal(negligible, hidden.RootElement.GetProperty("summary").GetProperty("negligibleHidden").GetInt32());
        Assert.DoesNotContain(hidden.RootElement.GetProperty("findings").EnumerateArray(), f => f.GetProperty("status").GetString() == "negligible");
        Assert.Contains(shown.RootElement.GetProperty("findings").EnumerateArray(), f => f.GetProperty("status").GetString() == "negligible");
        Assert.Equal("hardenimage.scan/v1", hidden.RootElement.GetProperty("schema").GetString());
    }
}
