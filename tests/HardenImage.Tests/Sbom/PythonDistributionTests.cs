using System.Text.Json;
using HardenImage.Oci;
using HardenImage.Sbom;
using HardenImage.Scan;
using HardenImage.Tests.Infrastructure;
using static HardenImage.Tests.Scan.ScanFixtures;

namespace HardenImage.Tests.Sbom;

/// <summary>
/// The SBOM lists every Python distribution Python sees (issue 10 §7): dist-info, egg-info as a directory and as a
/// single PKG-INFO-format file (Debian ships torch, sympy, certifi, MarkupSafe, uvloop, h11, setuptools that way),
/// directories added by .pth files, and vendored copies — each with a pkg:pypi purl the scanner matches.
/// </summary>
public class PythonDistributionTests
{
    private const string Site = "usr/lib/python3/dist-packages";

    // As python3-torch 2.6.0+dfsg-7 ships it (setup.py egg_info); the scanner must see it as pkg:pypi/torch.
    private static string PkgInfo(string name, string version) =>
        $"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: test distribution\nHome-page: https://example.invalid\nLicense: BSD-3-Clause\n\nLong description.\nVersion: 0.0.0-not-a-header\n";

    private static (ImageInventory Inventory, TempDir Dir) Read(Func<TestImage, TestImage> content)
    {
        var dir = new TempDir("hi-python");
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        var digest = content(new TestImage().OsRelease()).WriteTo(layout);
        return (ImageInventoryReader.Read(layout, digest, [], "inference-cpu"), dir);
    }

    private static PythonDistribution Dist(ImageInventory inv, string normalizedName) =>
        Assert.Single(inv.PythonDistributions, d => d.NormalizedName == normalizedName);

    [Fact]
    public void EggInfoDirectory_IsListed_WithPypiPurl_AndItsDebianPackage()
    {
        var (inv, dir) = Read(i => i
            .File($"{Site}/torch-2.6.0+debian.egg-info/PKG-INFO", PkgInfo("torch", "2.6.0+debian"))
            .File($"{Site}/torch-2.6.0+debian.egg-info/top_level.txt", "torch\n")
            .File($"{Site}/MarkupSafe-2.1.5.egg-info/PKG-INFO", PkgInfo("MarkupSafe", "2.1.5"))
            .File("var/lib/dpkg/status.d/python3-torch", "Package: python3-torch\nSource: pytorch\nVersion: 2.6.0+dfsg-7\nArchitecture: amd64\n")
            .File("var/lib/dpkg/status.d/python3-torch.md5sums",
                $"0123456789abcdef0123456789abcdef  {Site}/torch-2.6.0+debian.egg-info/PKG-INFO\n0123456789abcdef0123456789abcdef  {Site}/torch/__init__.py\n"));
        using var _ = dir;
        var torch = Dist(inv, "torch");
        Assert.Equal(("2.6.0+debian", PythonLocations.SysPath, "python3-torch"), (torch.Version, torch.Location, torch.DebianPackage));
        Assert.Equal($"{Site}/torch-2.6.0+debian.egg-info/PKG-INFO", torch.MetadataPath);
        Assert.Equal("2.1.5", Dist(inv, "markupsafe").Version);

        var sbom = CycloneDxWriter.Write(inv);
        SchemaValidation.AssertCycloneDx(sbom);
        using var doc = JsonDocument.Parse(sbom);
        var component = doc.RootElement.GetProperty("components").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "torch");
        Assert.Equal("pkg:pypi/torch@2.6.0%2Bdebian", component.GetProperty("purl").GetString());
        var props = component.GetProperty("properties").EnumerateArray().ToDictionary(p => p.GetProperty("name").GetString()!, p => p.GetProperty("value").GetString());
        Assert.Equal("pkg:deb/debian/python3-torch@2.6.0%2Bdfsg-7?arch=amd64", props["hardenimage:python:debianPackage"]);
        Assert.Equal("sys.path", props["hardenimage:python:location"]);
        Assert.Contains("pkg:pypi/markupsafe@2.1.5", doc.RootElement.GetProperty("components").EnumerateArray().Select(c => c.GetProperty("purl").GetString()));
    }

    [Fact]
    public void EggInfoSingleFile_IsListed()
    {
        // distutils-built Debian packages (python3-apt, …) install the egg-info as one PKG-INFO-format file.
        var (inv, dir) = Read(i => i.File($"{Site}/python_apt-3.0.0.egg-info", PkgInfo("python-apt", "3.0.0")));
        using var _ = dir;
        var apt = Dist(inv, "python-apt");
        Assert.Equal(("3.0.0", PythonLocations.SysPath, $"{Site}/python_apt-3.0.0.egg-info"), (apt.Version, apt.Location, apt.MetadataPath));
        Assert.Equal("pkg:pypi/python-apt@3.0.0", CycloneDxWriter.PyRef(apt));
    }

    [Theory]
    [InlineData("usr/lib/python3/dist-packages")]
    [InlineData("usr/lib/python3.13")]
    [InlineData("usr/local/lib/python3.13/dist-packages")]
    [InlineData("usr/local/lib/python3.12/site-packages")]
    [InlineData("opt/venv/lib/python3.13/site-packages")]
    public void DistInfo_InEverySysPathDirectory_IsListed(string sitePackages)
    {
        var (inv, dir) = Read(i => i.PythonDist(sitePackages, "PyYAML", "6.0.2"));
        using var _ = dir;
        var yaml = Dist(inv, "pyyaml");
        Assert.Equal(("6.0.2", PythonLocations.SysPath), (yaml.Version, yaml.Location));
    }

    [Fact]
    public void VendoredDistributions_AreListedAsVendored_FromDistInfoAndVendorTxt()
    {
        var (inv, dir) = Read(i => i
            .PythonDist($"{Site}/setuptools/_vendor", "packaging", "24.2")
            .File($"{Site}/setuptools-78.1.1.egg-info/PKG-INFO", PkgInfo("setuptools", "78.1.1"))
            .File($"{Site}/pip/_vendor/vendor.txt", "CacheControl==0.14.1  # Make sure to update the license in pyproject.toml for this.\nurllib3==1.26.20\ntomli==2.2.1 ; python_version < '3.11'\n\n# comment\n-e not-a-requirement\n")
            .File($"{Site}/setuptools/_vendor/wheel/vendored/vendor.txt", "packaging==24.0\n"));
        using var _ = dir;
        var vendored = inv.PythonDistributions.Where(d => d.Location == PythonLocations.Vendored)
            .Select(d => (d.NormalizedName, d.Version, d.VendoredIn)).OrderBy(x => x.NormalizedName).ThenBy(x => x.Version).ToList();
        Assert.Equal([
            ("cachecontrol", "0.14.1", (string?)$"{Site}/pip"),
            ("packaging", "24.0", $"{Site}/setuptools/_vendor/wheel"),
            ("packaging", "24.2", $"{Site}/setuptools"),
            ("tomli", "2.2.1", $"{Site}/pip"),
            ("urllib3", "1.26.20", $"{Site}/pip"),
        ], vendored);
        Assert.Equal(PythonLocations.SysPath, Dist(inv, "setuptools").Location);
        SchemaValidation.AssertCycloneDx(CycloneDxWriter.Write(inv));
    }

    [Fact]
    public void PthAddedDirectoriesAndEggs_AreOnSysPath_TestDataEggsAreNot()
    {
        var (inv, dir) = Read(i => i
            .File($"{Site}/extra.pth", "# comment\nimport os\n../../../../opt/plugins\n/opt/eggs/tool-1.0-py3.13.egg\n")
            .PythonDist("opt/plugins", "plugin", "1.0")
            .File("opt/eggs/tool-1.0-py3.13.egg/EGG-INFO/PKG-INFO", PkgInfo("tool", "1.0"))
            .File($"{Site}/pkg_resources/tests/data/my_test_package-1.0-py3.7.egg/EGG-INFO/PKG-INFO", PkgInfo("my-test-package", "1.0")));
        using var _ = dir;
        Assert.Equal(PythonLocations.SysPath, Dist(inv, "plugin").Location);
        Assert.Equal(PythonLocations.SysPath, Dist(inv, "tool").Location);
        Assert.DoesNotContain(inv.PythonDistributions, d => d.NormalizedName == "my-test-package");
    }

    [Fact]
    public void DamagedMetadataHeaders_FallBackToTheDirectoryName_SoNoDistributionDisappears()
    {
        var (inv, dir) = Read(i => i
            .File($"{Site}/torch-2.5.1.egg-info/PKG-INFO", "Metadata-Version: 2.1\nName: torch\nSummary: no version header\n")
            .File($"{Site}/Foo_Bar-1.0-py3.13.egg-info", "garbage without headers\n")
            .File($"{Site}/baz-2.0.dist-info/METADATA", ""));
        using var _ = dir;
        Assert.Equal("2.5.1", Dist(inv, "torch").Version);
        Assert.Equal("1.0", Dist(inv, "foo-bar").Version);
        Assert.Equal("2.0", Dist(inv, "baz").Version);
    }

    [Fact]
    public void SymlinkedEggInfoAndDistInfo_AreFollowed_AsPythonFollowsThem()
    {
        var (inv, dir) = Read(i => i
            .File("usr/share/pyshared/certifi-2025.1.31.egg-info/PKG-INFO", PkgInfo("certifi", "2025.1.31"))
            .Symlink($"{Site}/certifi-2025.1.31.egg-info", "../../../share/pyshared/certifi-2025.1.31.egg-info")
            .File("usr/share/pyshared/sympy-1.13.3.egg-info", PkgInfo("sympy", "1.13.3"))
            .Symlink($"{Site}/sympy-1.13.3.egg-info", "/usr/share/pyshared/sympy-1.13.3.egg-info")
            .File("opt/real/idna-3.10.dist-info/METADATA", PkgInfo("idna", "3.10"))
            .Symlink($"{Site}/idna-3.10.dist-info", "/opt/real/idna-3.10.dist-info"));
        using var _ = dir;
        // Listed at the link (on sys.path) and, as before, where the metadata really is (off sys.path).
        var onSysPath = inv.PythonDistributions.Where(d => d.Location == PythonLocations.SysPath).Select(d => (d.NormalizedName, d.MetadataPath)).Order().ToList();
        Assert.Equal([
            ("certifi", $"{Site}/certifi-2025.1.31.egg-info/PKG-INFO"),
            ("idna", $"{Site}/idna-3.10.dist-info/METADATA"),
            ("sympy", $"{Site}/sympy-1.13.3.egg-info"),
        ], onSysPath);
        Assert.Equal(3, inv.PythonDistributions.Count(d => d.Location == PythonLocations.Other));
    }

    [Fact]
    public void WhiteoutOfAnEggInfo_RemovesTheDistribution()
    {
        var (inv, dir) = Read(i => i
            .File($"{Site}/h11-0.14.0.egg-info/PKG-INFO", PkgInfo("h11", "0.14.0"))
            .File($"{Site}/uvloop-0.21.0.egg-info", PkgInfo("uvloop", "0.21.0"))
            .NextLayer().File($"{Site}/.wh.h11-0.14.0.egg-info", "").File($"{Site}/.wh.uvloop-0.21.0.egg-info", ""));
        using var _ = dir;
        Assert.Empty(inv.PythonDistributions);
    }

    [Fact]
    public async Task EggInfoDistribution_IsMatchedAgainstPyPiAdvisories()
    {
        // torch < 2.6.0 is affected by CVE-2025-32434 (PyPI advisories in the real excerpts); shipped as egg-info.
        var (inv, dir) = Read(i => i.File($"{Site}/torch-2.5.1.egg-info/PKG-INFO", PkgInfo("torch", "2.5.1")));
        using var _ = dir;
        var r = await new VulnerabilityScanner(RealIndex, new PolicyGate(VulnerabilityPolicy.Default, Nov2026), Nov2026)
            .ScanAsync(inv, allowUnscanned: false);
        var f = Assert.Single(r.Findings, f => f.Id == "CVE-2025-32434");
        Assert.Equal(("torch", "pypi", "pkg:pypi/torch@2.5.1"), (f.Package, f.PackageType, f.Purl));
    }
}
