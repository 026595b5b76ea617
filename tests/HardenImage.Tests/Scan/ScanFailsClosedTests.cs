using System.Text.Json;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Lock;
using HardenImage.Oci;
using HardenImage.Sbom;
using HardenImage.Scan;
using HardenImage.Tests.Infrastructure;
using HardenImage.Tests.Sbom;
using static HardenImage.Tests.Scan.ScanFixtures;

namespace HardenImage.Tests.Scan;

/// <summary>
/// The scan gate fails closed (issue 10 §5): the release is taken from the lock, not from a file in the image, and a
/// component no advisory source can judge fails the gate unless --allow-unscanned — "0 findings" must never mean
/// "not looked at". Images are real OCI layouts read by the inventory reader; the data is the real vulndb excerpts.
/// </summary>
public class ScanFailsClosedTests
{
    // glibc 2.41-10 on trixie: CVE-2025-8058 is fixed in 2.41-11 (sid line inherited by trixie in the excerpts).
    private static readonly LockedPackage LockedLibc = TestImage.Locked("libc6", "2.41-10", "glibc", "2.41-10");

    // Fails on any fixable finding, so a single known CVE decides the outcome.
    private static readonly VulnerabilityPolicy AnyFixable = VulnerabilityPolicy.Default with
    {
        FailOnFixable = [Severity.Critical, Severity.High, Severity.Medium, Severity.Low, Severity.Unknown],
    };

    private static ImageInventory ReadImage(TempDir dir, Func<TestImage, TestImage> content, IEnumerable<LockedPackage> locked,
        Func<string, OriginDistribution>? distributionOf = null)
    {
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        var digest = content(new TestImage()).WriteTo(layout);
        return ImageInventoryReader.Read(layout, digest, locked, "inference-cpu", distributionOf: distributionOf);
    }

    private static Task<ScanResult> Scan(ImageInventory inv, bool allowUnscanned = false, AdvisoryIndex? index = null) =>
        new VulnerabilityScanner(index ?? RealIndex, new PolicyGate(AnyFixable, Nov2026), Nov2026, dataLocation: "vulndb")
            .ScanAsync(inv, allowUnscanned);

    [Fact]
    public async Task ImageWithoutOsRelease_IsStillMatchedAsDebianFromTheLock_AndTheGateFailsOnAKnownCve()
    {
        using var dir = new TempDir("hi-failclosed");
        var inv = ReadImage(dir, i => i.Package("libc6", "2.41-10", source: "glibc"), [LockedLibc]);

        Assert.Null(inv.OsRelease);
        Assert.Equal("debian-13", inv.Distro);
        var r = await Scan(inv);
        var f = Assert.Single(r.Findings, f => f.Id == "CVE-2025-8058");
        Assert.Equal(("libc6", "2.41-11", "pkg:deb/debian/libc6@2.41-10?arch=amd64&distro=debian-13"), (f.Package, f.FixedVersion, f.Purl));
        Assert.False(r.Policy!.Passed);
        Assert.Contains(r.Policy.Violations, v => v.Contains("CVE-2025-8058"));
        Assert.Empty(r.Unscanned);
        Assert.Contains(r.Warnings, w => w.Contains("has no etc/os-release") && w.Contains("matched as debian-13"));
    }

    [Theory]
    [InlineData("ubuntu", "22.04", "jammy", "ubuntu-22")]
    [InlineData("debian", "12", "bookworm", "debian-12")]
    [InlineData("alpine", "3.20", "", "alpine-3")]
    public async Task SpoofedOsRelease_DoesNotChangeMatching_AndTheMismatchIsReported(string id, string version, string codename, string claimed)
    {
        using var genuineDir = new TempDir("hi-failclosed");
        using var spoofedDir = new TempDir("hi-failclosed");
        var genuine = ReadImage(genuineDir, i => i.OsRelease().Package("libc6", "2.41-10", source: "glibc"), [LockedLibc]);
        var spoofed = ReadImage(spoofedDir, i => i.OsRelease(id, version, codename).Package("libc6", "2.41-10", source: "glibc"), [LockedLibc]);

        Assert.Equal((claimed, "debian-13"), (spoofed.OsRelease, spoofed.Distro));
        var a = await Scan(genuine);
        var b = await Scan(spoofed);
        Assert.Equal(a.Findings.Select(f => (f.Id, f.Purl, f.Status, f.FixedVersion)), b.Findings.Select(f => (f.Id, f.Purl, f.Status, f.FixedVersion)));
        Assert.Contains(b.Findings, f => f.Id == "CVE-2025-8058");
        Assert.False(b.Policy!.Passed);
        Assert.Contains(b.Warnings, w => w.Contains($"claims '{claimed}'") && w.Contains("come from debian-13"));
        Assert.DoesNotContain(a.Warnings, w => w.Contains("claims"));
        // The SBOM keeps describing the packages as what they were built from.
        Assert.Contains("distro=debian-13", CycloneDxWriter.DebRef(spoofed, spoofed.Packages.Single()));
        using var report = JsonDocument.Parse(ScanReportWriter.Write(b, includeNegligible: false));
        Assert.Equal((claimed, "debian-13"), (report.RootElement.GetProperty("image").GetProperty("osRelease").GetString(),
            report.RootElement.GetProperty("image").GetProperty("distro").GetString()));
    }

    [Fact]
    public async Task UnmatchedEcosystem_FailsTheGateUnlessAllowUnscanned_AndTheReportNamesThePackages()
    {
        using var dir = new TempDir("hi-failclosed");
        // A flat third-party repository (NVIDIA's layout): no Debian advisory speaks about its packages.
        var cuda = TestImage.Locked("libcublas12", "12.8.4.1-1", "libcublas", "12.8.4.1-1") with { Origin = "nvidia-cuda/./" };
        var inv = ReadImage(dir, i => i.OsRelease().Package("base-files", "13.8+deb13u8")
            .Package("libcublas12", "12.8.4.1-1", source: "libcublas"), [TestImage.Locked("base-files", "13.8+deb13u8", "base-files", "13.8+deb13u8"), cuda]);
        Assert.Equal("debian-13", inv.Packages.Single(p => p.Name == "base-files").Distro);

        var refused = await Scan(inv);
        var u = Assert.Single(refused.Unscanned);
        Assert.Equal(("libcublas12", "deb", "12.8.4.1-1"), (u.Package, u.PackageType, u.Version));
        Assert.Contains("'nvidia-cuda/./'", u.Reason);
        Assert.Contains("not a Debian release suite", u.Reason);
        Assert.False(refused.Policy!.Passed);
        var violation = Assert.Single(refused.Policy.Violations);
        Assert.Contains("1 package(s) could not be matched against any advisory source: libcublas12 12.8.4.1-1", violation);
        Assert.Contains("--allow-unscanned", violation);
        using (var report = JsonDocument.Parse(ScanReportWriter.Write(refused, includeNegligible: false)))
        {
            var listed = Assert.Single(report.RootElement.GetProperty("unscanned").EnumerateArray());
            Assert.Equal("libcublas12", listed.GetProperty("package").GetString());
            Assert.Contains("nvidia-cuda", listed.GetProperty("reason").GetString());
            Assert.Equal(1, report.RootElement.GetProperty("summary").GetProperty("unscanned").GetInt32());
            Assert.False(report.RootElement.GetProperty("unscannedAllowed").GetBoolean());
        }

        var allowed = await Scan(inv, allowUnscanned: true);
        Assert.True(allowed.Policy!.Passed, string.Join("; ", allowed.Policy.Violations));
        Assert.Contains(allowed.Warnings, w => w.Contains("libcublas12") && w.Contains("NOT checked"));
        using (var report = JsonDocument.Parse(ScanReportWriter.Write(allowed, includeNegligible: false)))
        {
            Assert.Equal("libcublas12", Assert.Single(report.RootElement.GetProperty("unscanned").EnumerateArray()).GetProperty("package").GetString());
            Assert.True(report.RootElement.GetProperty("unscannedAllowed").GetBoolean());
        }
    }

    [Fact]
    public async Task SourceDeclaredAsAnotherDistribution_IsNotMatchedAgainstDebianData()
    {
        using var dir = new TempDir("hi-failclosed");
        var neuron = TestImage.Locked("aws-neuronx-runtime-lib", "2.24.1", "aws-neuronx-runtime-lib", "2.24.1") with { Origin = "aws-neuron/noble" };
        var definitions = new Dictionary<string, SourceDefinition>
        {
            ["aws-neuron"] = new() { Name = "aws-neuron", Url = "https://apt.repos.neuron.amazonaws.com", Keyring = "keys/x.asc", Distro = "ubuntu-24.04" },
        };
        var inv = ReadImage(dir, i => i.OsRelease().Package("aws-neuronx-runtime-lib", "2.24.1"), [neuron],
            OriginDistributions.For(null, definitions));
        var r = await Scan(inv);
        var u = Assert.Single(r.Unscanned);
        Assert.Contains("ubuntu-24.04 has no advisory source", u.Reason);
        Assert.False(r.Policy!.Passed);
    }

    [Fact]
    public async Task PackageNotInTheLock_InAnImageWithoutLock_IsUnscanned_NotMatchedByItsOsRelease()
    {
        using var dir = new TempDir("hi-failclosed");
        var inv = ReadImage(dir, i => i.OsRelease().Package("libc6", "2.41-10", source: "glibc"), []);
        Assert.Null(inv.Distro);
        var r = await Scan(inv);
        Assert.Empty(r.Findings);
        Assert.Contains("not in the lock", Assert.Single(r.Unscanned).Reason);
        Assert.False(r.Policy!.Passed);
    }

    [Fact]
    public async Task PackageRecordWithoutLockEntry_IsMatchedAsTheImagesRelease_AndReported()
    {
        using var dir = new TempDir("hi-failclosed");
        var inv = ReadImage(dir, i => i.Package("libc6", "2.41-10", source: "glibc").Package("libc-bin", "2.41-10", source: "glibc"), [LockedLibc]);
        var r = await Scan(inv);
        Assert.Contains(r.Findings, f => f.Id == "CVE-2025-8058" && f.Package == "libc-bin");
        Assert.Contains(r.Warnings, w => w.Contains("1 package record(s) have no lock entry (libc-bin)"));
        Assert.Empty(r.Unscanned);
    }

    [Theory]
    [InlineData("2.41-99", "glibc")]       // the record claims a fixed version
    [InlineData("2.41-10", "not-glibc")]   // the record claims another source package
    public async Task ForgedPackageRecord_CannotHideWhatTheLockedPackageIsAffectedBy(string claimedVersion, string claimedSource)
    {
        using var dir = new TempDir("hi-failclosed");
        var inv = ReadImage(dir, i => i.OsRelease().Package("libc6", claimedVersion, source: claimedSource), [LockedLibc]);
        var r = await Scan(inv);
        Assert.Contains(r.Findings, f => f.Id == "CVE-2025-8058" && f.Package == "libc6");
        Assert.Contains(r.Warnings, w => w.Contains($"record of libc6 says {claimedVersion} (source {claimedSource}") && w.Contains("but the lock says 2.41-10 (source glibc 2.41-10)"));
        Assert.False(r.Policy!.Passed);
        var sbom = System.Text.Encoding.UTF8.GetString(CycloneDxWriter.Write(inv));
        Assert.Contains("\"hardenimage:lock:identity\"", sbom);
        Assert.Contains("2.41-10 (source glibc 2.41-10)", sbom);
    }

    [Fact]
    public async Task AdvisoryDataWithoutTheRelease_DoesNotPassSilently()
    {
        using var dir = new TempDir("hi-failclosed");
        var inv = ReadImage(dir, i => i.OsRelease().Package("libc6", "2.41-10", source: "glibc")
            .PythonDist("usr/lib/python3/dist-packages", "requests", "2.32.4"), [LockedLibc]);

        // PyPI records only: every Debian package is unscanned, the Python one is judged.
        var pypiOnly = AdvisoryIndexStore.Build(ScanFixtures.Data("vulndb", "pypi"));
        var r = await Scan(inv, index: pypiOnly);
        Assert.Equal(["libc6"], r.Unscanned.Select(u => u.Package));
        Assert.Contains("no records at all for Debian:13", r.Unscanned[0].Reason);
        Assert.False(r.Policy!.Passed);

        // Debian records only: the Python distribution is unscanned.
        var debianOnly = AdvisoryIndexStore.Build(ScanFixtures.Data("vulndb", "debian"));
        r = await Scan(inv, index: debianOnly);
        Assert.Equal([("requests", "pypi")], r.Unscanned.Select(u => (u.Package, u.PackageType)));
        Assert.Contains("no PyPI records", r.Unscanned[0].Reason);

        // Data for bookworm only would leave a trixie image unscanned, not clean.
        var bookwormOnly = AdvisoryIndex.Create(RealIndex.All.Where(a => a.Ecosystem != "Debian:13"), "sha256:" + new string('b', 64), ["bookworm only"]);
        r = await Scan(inv, index: bookwormOnly);
        Assert.Contains(r.Unscanned, u => u.Package == "libc6");
        Assert.False(r.Policy!.Passed);
    }

    [Fact]
    public async Task HandEditedOrigin_NotAmongTheLockSources_IsUnscanned()
    {
        using var dir = new TempDir("hi-failclosed");
        var lockFile = new LockFile
        {
            Sources = [new() { Name = "debian/trixie", Url = "http://deb.debian.org/debian", Suite = "trixie", InReleaseSha256 = new string('d', 64), Date = DateTimeOffset.UnixEpoch }],
        };
        var forged = LockedLibc with { Origin = "mirror/trixie" };
        var inv = ReadImage(dir, i => i.OsRelease().Package("libc6", "2.41-10", source: "glibc"), [forged], OriginDistributions.For(lockFile, null));
        var r = await Scan(inv);
        var u = Assert.Single(r.Unscanned);
        Assert.Contains("'mirror/trixie' is not among the lock's sources (debian/trixie)", u.Reason);
        Assert.False(r.Policy!.Passed);
        // The genuine origin is matched.
        inv = ReadImage(dir, i => i.OsRelease().Package("libc6", "2.41-10", source: "glibc"), [LockedLibc], OriginDistributions.For(lockFile, null));
        Assert.Contains((await Scan(inv)).Findings, f => f.Id == "CVE-2025-8058");
    }

    [Fact]
    public async Task DebianOwnedPythonDistribution_PyPiFindingIsClosedOnlyByADebianTrackerVerdict()
    {
        // h11 0.14.0 is affected by CVE-2025-43859 per PyPI (GHSA-vqfr-h8mv-ghfj in the real excerpts).
        using var dir = new TempDir("hi-failclosed");
        var inv = ReadImage(dir, i => i.OsRelease()
                .Package("python3-h11", "0.14.0-1.1", source: "h11")
                .File("usr/lib/python3/dist-packages/h11-0.14.0.egg-info/PKG-INFO", "Metadata-Version: 2.1\nName: h11\nVersion: 0.14.0\n")
                .File("var/lib/dpkg/status.d/python3-h11.md5sums", "0123456789abcdef0123456789abcdef  usr/lib/python3/dist-packages/h11-0.14.0.egg-info/PKG-INFO\n"),
            [TestImage.Locked("python3-h11", "0.14.0-1.1", "h11", "0.14.0-1.1")]);
        Assert.Equal("python3-h11", inv.PythonDistributions.Single().DebianPackage);

        // No Debian record for it: the PyPI finding stands.
        Assert.Contains((await Scan(inv)).Findings, f => f.Id == "CVE-2025-43859" && f.PackageType == "pypi");

        AdvisoryRecord Tracker(string fixedVersion) => new()
        {
            Ecosystem = "Debian:13", Package = "h11", Id = "CVE-2025-43859", Origin = AdvisoryOrigins.DebianTracker,
            Tracker = new TrackerStatus("resolved", fixedVersion, "medium", null, null),
        };
        // The tracker says the installed Debian version carries the fix: closed, and the warning says by whom.
        var backported = AdvisoryIndex.Create(RealIndex.All.Append(Tracker("0.14.0-1.1")), "sha256:" + new string('e', 64), ["excerpts + tracker"]);
        var r = await Scan(inv, index: backported);
        Assert.DoesNotContain(r.Findings, f => f.Id == "CVE-2025-43859");
        Assert.Contains(r.Warnings, w => w.Contains("CVE-2025-43859 in h11 0.14.0 (PyPI data) is closed by the Debian tracker for python3-h11") && w.Contains("fixed in 0.14.0-1.1"));

        // The tracker says a later Debian version fixes it: both the Debian and the PyPI findings stand.
        var notYet = AdvisoryIndex.Create(RealIndex.All.Append(Tracker("0.14.0-2")), "sha256:" + new string('f', 64), ["excerpts + tracker"]);
        r = await Scan(inv, index: notYet);
        Assert.Contains(r.Findings, f => f.Id == "CVE-2025-43859" && f.PackageType == "pypi");
        Assert.Contains(r.Findings, f => f.Id == "CVE-2025-43859" && f.Package == "python3-h11" && f.FixedVersion == "0.14.0-2");
    }

    [Theory]
    [InlineData("debian/trixie", "debian-13")]
    [InlineData("debian-security/trixie-security", "debian-13")]
    [InlineData("debian/trixie-updates", "debian-13")]
    [InlineData("debian/bookworm-backports", "debian-12")]
    [InlineData("debian/stable", null)]
    [InlineData("nvidia-cuda/./", null)]
    [InlineData("aws-neuron/noble", null)]
    public void OriginRelease_ComesFromTheSuiteCodename(string origin, string? distro) =>
        Assert.Equal(distro, OriginDistributions.Resolve(origin).Distro);
}
