using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace HardenImage.Sbom;

/// <summary>
/// Writes an <see cref="ImageInventory"/> as a CycloneDX 1.6 JSON SBOM. Byte-reproducible: the serial number is
/// derived from the image digest, the timestamp is the image's build epoch, every list is sorted, so the same image
/// gives the same bytes and the SBOM can be signed and compared (threat: Repudiation).
/// </summary>
public static class CycloneDxWriter
{
    public const string ToolName = "HardenImage";

    public static string ToolVersion =>
        typeof(CycloneDxWriter).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    /// <summary>urn:uuid from the first 16 bytes of SHA-256("&lt;namespace&gt;" + digest), version 5 and RFC 4122 variant bits set.</summary>
    public static string SerialNumberFor(string digest, string ns = "hardenimage:sbom:")
    {
        var h = SHA256.HashData(Encoding.UTF8.GetBytes(ns + digest));
        h[6] = (byte)((h[6] & 0x0F) | 0x50);
        h[8] = (byte)((h[8] & 0x3F) | 0x80);
        var hex = Convert.ToHexStringLower(h.AsSpan(0, 16));
        return $"urn:uuid:{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..32]}";
    }

    public static string Timestamp(DateTimeOffset t) =>
        t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>bom-ref of each Debian package (its purl).</summary>
    public static string DebRef(ImageInventory inv, InventoryPackage p) => Purl.Deb(p.Name, p.Version, p.Architecture, DistroOf(inv, p));

    /// <summary>The package's release: its lock origin's; the image's for a package not in the lock.</summary>
    public static string? DistroOf(ImageInventory inv, InventoryPackage p) => p.Origin != null ? p.Distro : inv.Distro;

    public static string PyRef(PythonDistribution d) => Purl.PyPi(d.NormalizedName, d.Version);

    public static string ImageRef(ImageInventory inv) => Purl.Oci(inv.ImageName, inv.Digest, inv.Architecture);

    public static byte[] Write(ImageInventory inv)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            WriteHeader(w, inv, SerialNumberFor(inv.Digest));
            var imageRef = ImageRef(inv);

            var debs = inv.Packages.Select(p => (Ref: DebRef(inv, p), Pkg: p))
                .GroupBy(x => x.Ref).Select(g => g.First()).OrderBy(x => x.Ref, StringComparer.Ordinal).ToList();
            // One component per purl; the copy on sys.path (what Python imports) describes it.
            var pys = inv.PythonDistributions.Select(d => (Ref: PyRef(d), Dist: d))
                .GroupBy(x => x.Ref).Select(g => g.OrderBy(x => LocationRank(x.Dist.Location)).ThenBy(x => x.Dist.MetadataPath, StringComparer.Ordinal).First())
                .OrderBy(x => x.Ref, StringComparer.Ordinal).ToList();
            var debByName = inv.Packages.GroupBy(p => p.Name).ToDictionary(g => g.Key, g => DebRef(inv, g.First()), StringComparer.Ordinal);
            var files = inv.Files.OrderBy(f => f.Path, StringComparer.Ordinal).ToList();

            w.WriteStartArray("components");
            foreach (var (bomRef, p) in debs)
            {
                w.WriteStartObject();
                w.WriteString("type", "library");
                w.WriteString("bom-ref", bomRef);
                w.WriteString("name", p.Name);
                w.WriteString("version", p.Version);
                if (p.Sha256 != null) WriteHashes(w, p.Sha256);
                if (p.Licenses.Count > 0)
                {
                    w.WriteStartArray("licenses");
                    foreach (var l in p.Licenses.OrderBy(l => l, StringComparer.Ordinal)) WriteLicense(w, l);
                    w.WriteEndArray();
                }
                w.WriteString("purl", bomRef);
                var debProps = new List<(string, string)> { ("hardenimage:debian:source", p.SourceName), ("hardenimage:debian:sourceVersion", p.SourceVersion),
                    ("hardenimage:evidence", p.Evidence) };
                // The image's record disagrees with the lock: say so in the SBOM as well.
                if (p.Locked is { } locked) debProps.Add(("hardenimage:lock:identity", $"{locked.Version} (source {locked.SourceName} {locked.SourceVersion})"));
                WriteProperties(w, debProps);
                w.WriteEndObject();
            }
            foreach (var (bomRef, d) in pys)
            {
                w.WriteStartObject();
                w.WriteString("type", "library");
                w.WriteString("bom-ref", bomRef);
                w.WriteString("name", d.NormalizedName);
                w.WriteString("version", d.Version);
                if (d.WheelSha256 != null) WriteHashes(w, d.WheelSha256); // the installed wheel's, from the lock (issue 18)
                if (d.License != null)
                {
                    w.WriteStartArray("licenses");
                    if (d.LicenseIsExpression) { w.WriteStartObject(); w.WriteString("expression", d.License); w.WriteEndObject(); }
                    else WriteLicense(w, d.License);
                    w.WriteEndArray();
                }
                w.WriteString("purl", bomRef);
                var props = new List<(string, string)> { ("hardenimage:python:metadataPath", "/" + d.MetadataPath), ("hardenimage:python:location", d.Location) };
                if (d.VendoredIn != null) props.Add(("hardenimage:python:vendoredIn", "/" + d.VendoredIn));
                if (d.DebianPackage != null) props.Add(("hardenimage:python:debianPackage", debByName.GetValueOrDefault(d.DebianPackage) ?? d.DebianPackage));
                if (d.WheelFile != null) props.Add(("hardenimage:python:wheel", d.WheelFile));
                WriteProperties(w, props);
                w.WriteEndObject();
            }
            foreach (var f in files)
            {
                w.WriteStartObject();
                w.WriteString("type", "file");
                w.WriteString("bom-ref", "file:/" + f.Path);
                w.WriteString("name", "/" + f.Path);
                WriteHashes(w, f.Sha256);
                WriteProperties(w, [("hardenimage:file:size", f.Size.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
                w.WriteEndObject();
            }
            w.WriteEndArray();

            // Dependencies: the image on every component; each package on the dependencies present in the image.
            w.WriteStartArray("dependencies");
            var all = debs.Select(d => d.Ref).Concat(pys.Select(p => p.Ref)).Concat(files.Select(f => "file:/" + f.Path))
                .OrderBy(r => r, StringComparer.Ordinal).ToList();
            var entries = new List<(string Ref, List<string> On)> { (imageRef, all) };
            foreach (var (bomRef, p) in debs)
                entries.Add((bomRef, p.Depends.Select(n => debByName.GetValueOrDefault(n)).OfType<string>()
                    .Where(r => r != bomRef).Distinct().OrderBy(r => r, StringComparer.Ordinal).ToList()));
            foreach (var (r, on) in entries.OrderBy(e => e.Ref, StringComparer.Ordinal))
            {
                w.WriteStartObject();
                w.WriteString("ref", r);
                w.WriteStartArray("dependsOn");
                foreach (var o in on) w.WriteStringValue(o);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        ms.WriteByte((byte)'\n');
        return ms.ToArray();
    }

    /// <summary>bomFormat, specVersion, serialNumber, version, metadata (shared with the VEX writer).</summary>
    public static void WriteHeader(Utf8JsonWriter w, ImageInventory inv, string serialNumber, DateTimeOffset? timestamp = null)
    {
        w.WriteString("$schema", "http://cyclonedx.org/schema/bom-1.6.schema.json");
        w.WriteString("bomFormat", "CycloneDX");
        w.WriteString("specVersion", "1.6");
        w.WriteString("serialNumber", serialNumber);
        w.WriteNumber("version", 1);
        w.WriteStartObject("metadata");
        w.WriteString("timestamp", Timestamp(timestamp ?? inv.Created));
        w.WriteStartObject("tools");
        w.WriteStartArray("components");
        w.WriteStartObject();
        w.WriteString("type", "application");
        w.WriteString("name", ToolName);
        w.WriteString("version", ToolVersion);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
        var imageRef = ImageRef(inv);
        w.WriteStartObject("component");
        w.WriteString("type", "container");
        w.WriteString("bom-ref", imageRef);
        w.WriteString("name", inv.ImageName);
        w.WriteString("version", inv.Digest);
        w.WriteString("purl", imageRef);
        WriteProperties(w, [("hardenimage:architecture", inv.Architecture), ("hardenimage:distro", inv.Distro ?? "unknown"),
            ("hardenimage:osRelease", inv.OsRelease ?? "none")]);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static int LocationRank(string location) => location switch
    {
        PythonLocations.SysPath => 0,
        PythonLocations.Vendored => 1,
        _ => 2,
    };

    private static void WriteHashes(Utf8JsonWriter w, string sha256)
    {
        w.WriteStartArray("hashes");
        w.WriteStartObject();
        w.WriteString("alg", "SHA-256");
        w.WriteString("content", sha256);
        w.WriteEndObject();
        w.WriteEndArray();
    }

    private static void WriteLicense(Utf8JsonWriter w, string license)
    {
        w.WriteStartObject();
        w.WriteStartObject("license");
        if (CopyrightLicenses.IsSpdx(license)) w.WriteString("id", license);
        else w.WriteString("name", license);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    internal static void WriteProperties(Utf8JsonWriter w, IEnumerable<(string Name, string Value)> props)
    {
        w.WriteStartArray("properties");
        foreach (var (n, v) in props.OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            w.WriteStartObject();
            w.WriteString("name", n);
            w.WriteString("value", v);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}
