using System.Text;
using System.Text.Json;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Sbom;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Sbom;

public class CycloneDxWriterTests
{
    private static (ImageInventory Inventory, TempDir Dir) BuildSample()
    {
        var dir = new TempDir("hi-sbom");
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        var digest = new TestImage()
            .OsRelease()
            .Package("libc6", "2.41-12", source: "glibc", depends: "libgcc-s1, gcc-14-base (>= 14) | foo")
            .Package("libgcc-s1", "14.2.0-19", source: "gcc-14 (14.2.0-19)", copyright: TestImage.Dep5Copyright)
            .Package("zlib1g", "1:1.3.dfsg+really1.3.1-1+b1", source: "zlib (1:1.3.dfsg+really1.3.1-1)", depends: "libc6 (>= 2.14)",
                copyright: "This is not machine readable.\nLicense: GPL\n")
            .NextLayer()
            .PythonDist("usr/lib/python3/dist-packages", "Jinja2", "3.1.4", expression: "BSD-3-Clause")
            .PythonDist("usr/lib/python3/dist-packages", "requests", "2.31.0", license: "Apache 2.0")
            .File("app/model.bin", new byte[] { 1, 2, 3 })
            .File("app/main.py", "print('hi')\n")
            .WriteTo(layout);
        var locked = new[] { TestImage.Locked("libc6", "2.41-12", "glibc", "2.41-12"), TestImage.Locked("libgcc-s1", "14.2.0-19", "gcc-14", "14.2.0-19") };
        return (ImageInventoryReader.Read(layout, digest, locked, "inference-cpu", ["app"]), dir);
    }

    [Fact]
    public void Sbom_ValidatesAgainstCycloneDx16Schema()
    {
        var (inv, dir) = BuildSample();
        using var _ = dir;
        SchemaValidation.AssertCycloneDx(CycloneDxWriter.Write(inv));
    }

    [Fact]
    public void Sbom_ListsEveryStatusDRecordAndDistInfo()
    {
        var (inv, dir) = BuildSample();
        using var _ = dir;
        using var doc = JsonDocument.Parse(CycloneDxWriter.Write(inv));
        var purls = doc.RootElement.GetProperty("components").EnumerateArray()
            .Select(c => c.TryGetProperty("purl", out var p) ? p.GetString() : c.GetProperty("name").GetString()).ToList();
        Assert.Equal(3, inv.Packages.Count);
        Assert.Contains("pkg:deb/debian/libc6@2.41-12?arch=amd64&distro=debian-13", purls);
        Assert.Contains("pkg:deb/debian/zlib1g@1%3A1.3.dfsg%2Breally1.3.1-1%2Bb1?arch=amd64&distro=debian-13", purls);
        Assert.Contains("pkg:deb/debian/libgcc-s1@14.2.0-19?arch=amd64&distro=debian-13", purls);
        Assert.Contains("pkg:pypi/jinja2@3.1.4", purls);
        Assert.Contains("pkg:pypi/requests@2.31.0", purls);
        Assert.Contains("/app/model.bin", purls);
        Assert.Contains("/app/main.py", purls);
        Assert.Equal("debian-13", inv.Distro);
        var zlib = inv.Packages.Single(p => p.Name == "zlib1g");
        Assert.Equal(("zlib", "1:1.3.dfsg+really1.3.1-1"), (zlib.SourceName, zlib.SourceVersion));
    }

    [Fact]
    public void Sbom_IsByteReproducibleAndDerivedFromTheImage()
    {
        var (inv, dir) = BuildSample();
        using var _ = dir;
        var a = CycloneDxWriter.Write(inv);
        var b = CycloneDxWriter.Write(inv with { Packages = inv.Packages.Reverse().ToList(), Files = inv.Files.Reverse().ToList() });
        Assert.Equal(a, b);
        using var doc = JsonDocument.Parse(a);
        var root = doc.RootElement;
        Assert.Equal("2025-06-01T12:00:00Z", root.GetProperty("metadata").GetProperty("timestamp").GetString());
        var serial = root.GetProperty("serialNumber").GetString()!;
        Assert.Matches("^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", serial);
        Assert.NotEqual(serial, CycloneDxWriter.SerialNumberFor("sha256:" + new string('0', 64)));
        var image = root.GetProperty("metadata").GetProperty("component");
        Assert.Equal("container", image.GetProperty("type").GetString());
        Assert.Equal($"pkg:oci/inference-cpu@sha256%3A{inv.Digest[7..]}?arch=amd64", image.GetProperty("purl").GetString());
    }

    [Fact]
    public void Sbom_LicencesOnlyFromMachineReadableCopyright()
    {
        var (inv, dir) = BuildSample();
        using var _ = dir;
        Assert.Equal(["Zlib", "GPL-2.0-or-later", "Artistic-1.0-Perl", "SomeCustom-License"], inv.Packages.Single(p => p.Name == "libgcc-s1").Licenses);
        Assert.Empty(inv.Packages.Single(p => p.Name == "zlib1g").Licenses);
        Assert.Empty(inv.Packages.Single(p => p.Name == "libc6").Licenses);
        var jinja = inv.PythonDistributions.Single(d => d.Name == "Jinja2");
        Assert.True(jinja.LicenseIsExpression);
        Assert.Equal("BSD-3-Clause", jinja.License);
    }

    [Fact]
    public void Sbom_DependenciesResolveToComponentsPresent()
    {
        var (inv, dir) = BuildSample();
        using var _ = dir;
        using var doc = JsonDocument.Parse(CycloneDxWriter.Write(inv));
        var deps = doc.RootElement.GetProperty("dependencies").EnumerateArray()
            .ToDictionary(d => d.GetProperty("ref").GetString()!, d => d.GetProperty("dependsOn").EnumerateArray().Select(x => x.GetString()!).ToList());
        var libc = "pkg:deb/debian/libc6@2.41-12?arch=amd64&distro=debian-13";
        Assert.Equal(["pkg:deb/debian/libgcc-s1@14.2.0-19?arch=amd64&distro=debian-13"], deps[libc]); // gcc-14-base and foo are absent
        Assert.Contains(libc, deps["pkg:deb/debian/zlib1g@1%3A1.3.dfsg%2Breally1.3.1-1%2Bb1?arch=amd64&distro=debian-13"]);
        var libcComponent = doc.RootElement.GetProperty("components").EnumerateArray().Single(c => c.GetProperty("bom-ref").GetString() == libc);
        Assert.Equal(inv.Packages.Single(p => p.Name == "libc6").Sha256, libcComponent.GetProperty("hashes")[0].GetProperty("content").GetString());
    }

    [Fact]
    public void Inventory_RejectsTamperedLayer()
    {
        using var dir = new TempDir("hi-sbom");
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        var digest = new TestImage().OsRelease().Package("libc6", "2.41-12", source: "glibc").WriteTo(layout);
        var manifest = layout.ReadJson<ImageManifest>(digest);
        var layerPath = layout.BlobPath(manifest.Layers[0].Digest);
        var bytes = File.ReadAllBytes(layerPath);
        bytes[4] ^= 0xFF; // gzip header MTIME: decompressors ignore it, so only the digest check can notice
        File.WriteAllBytes(layerPath, bytes);
        var e = Assert.Throws<HardenException>(() => ImageInventoryReader.Read(layout, digest, [], "x"));
        Assert.Contains("does not match its digest", e.Message);
    }

    [Fact]
    public void Inventory_ReadsZstdLayers()
    {
        using var dir = new TempDir("hi-sbom");
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        var digest = new TestImage().OsRelease("debian", "12", "bookworm").Package("libc6", "2.36-9+deb12u10", source: "glibc")
            .PythonDist("usr/local/lib/python3.11/site-packages", "numpy", "1.26.4").WriteTo(layout, zstd: true);
        var inv = ImageInventoryReader.Read(layout, digest, [], "x");
        // os-release is reported, not used: without a lock nothing says which release the packages are from.
        Assert.Equal(("debian-12", null, "libc6", "numpy"), (inv.OsRelease, inv.Distro, inv.Packages.Single().Name, inv.PythonDistributions.Single().NormalizedName));
    }

    [Fact]
    public void Inventory_AppliesWhiteoutsFromLaterLayers()
    {
        using var dir = new TempDir("hi-sbom");
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        var digest = new TestImage().OsRelease().Package("bash", "5.2.37-2").Package("libc6", "2.41-12", source: "glibc")
            .NextLayer().File("var/lib/dpkg/status.d/.wh.bash", "").WriteTo(layout);
        var inv = ImageInventoryReader.Read(layout, digest, [], "x");
        Assert.Equal(["libc6"], inv.Packages.Select(p => p.Name));
    }

    [Fact]
    public void Copyright_ParsesDep5AndIgnoresFreeText()
    {
        Assert.Equal(["Zlib", "GPL-2.0-or-later", "Artistic-1.0-Perl", "SomeCustom-License"], CopyrightLicenses.Parse(TestImage.Dep5Copyright.Replace("\r", "")));
        Assert.Empty(CopyrightLicenses.Parse("Copyright (c) 1999 Someone\nLicense: MIT\n"));
    }

    [Theory]
    [InlineData("zlib1g", "1:1.3.dfsg+really1.3.1-1+b1", "pkg:deb/debian/zlib1g@1%3A1.3.dfsg%2Breally1.3.1-1%2Bb1?arch=amd64&distro=debian-13")]
    [InlineData("libstdc++6", "14.2.0-19", "pkg:deb/debian/libstdc%2B%2B6@14.2.0-19?arch=amd64&distro=debian-13")]
    [InlineData("tzdata", "2025b-4", "pkg:deb/debian/tzdata@2025b-4?arch=amd64&distro=debian-13")]
    public void Purl_EncodesEpochAndPlus(string name, string version, string expected) =>
        Assert.Equal(expected, Purl.Deb(name, version, "amd64", "debian-13"));
}
