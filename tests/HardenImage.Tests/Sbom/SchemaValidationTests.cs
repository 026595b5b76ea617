using System.Text;

namespace HardenImage.Tests.Sbom;

/// <summary>The schema checks used by the other tests must be able to fail.</summary>
public class SchemaValidationTests
{
    [Fact]
    public void CycloneDxSchema_RejectsWrongEnumAndUnknownLicenceId()
    {
        const string bad = """{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[{"type":"gadget","name":"x"}]}""";
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => SchemaValidation.AssertCycloneDx(Encoding.UTF8.GetBytes(bad)));
        const string badLicence = """{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[{"type":"library","name":"x","licenses":[{"license":{"id":"Not-A-Real-SPDX-Id"}}]}]}""";
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => SchemaValidation.AssertCycloneDx(Encoding.UTF8.GetBytes(badLicence)));
        const string good = """{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[{"type":"library","name":"x","licenses":[{"license":{"id":"MIT"}}]}]}""";
        SchemaValidation.AssertCycloneDx(Encoding.UTF8.GetBytes(good));
    }

    [Fact]
    public void OpenVexSchema_RejectsAffectedWithoutActionStatement()
    {
        const string bad = """{"@context":"https://openvex.dev/ns/v0.2.0","@id":"urn:uuid:1","author":"a","timestamp":"2025-01-01T00:00:00Z","version":1,"statements":[{"vulnerability":{"name":"CVE-1"},"products":[{"@id":"pkg:oci/x"}],"status":"affected"}]}""";
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => SchemaValidation.AssertOpenVex(Encoding.UTF8.GetBytes(bad)));
    }
}
