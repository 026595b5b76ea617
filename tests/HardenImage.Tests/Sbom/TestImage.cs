using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Oci;

namespace HardenImage.Tests.Sbom;

/// <summary>Builds small real OCI images (gzip tar layers, config, manifest) in a layout for inventory tests.</summary>
public sealed class TestImage
{
    private readonly List<List<(string Path, byte[]? Content, string? Link)>> _layers = new() { new() };

    public TestImage File(string path, string content) => File(path, Encoding.UTF8.GetBytes(content));

    public TestImage File(string path, byte[] content)
    {
        _layers[^1].Add((path, content, null));
        return this;
    }

    public TestImage Symlink(string path, string target)
    {
        _layers[^1].Add((path, null, target));
        return this;
    }

    /// <summary>Starts a new layer; later layers override earlier ones (whiteouts are files named .wh.NAME).</summary>
    public TestImage NextLayer()
    {
        _layers.Add(new());
        return this;
    }

    public TestImage Package(string name, string version, string arch = "amd64", string? source = null, string? depends = null, string? copyright = null)
    {
        var sb = new StringBuilder($"Package: {name}\n");
        if (source != null) sb.Append($"Source: {source}\n");
        sb.Append($"Version: {version}\nArchitecture: {arch}\nMaintainer: Test <t@example.invalid>\n");
        if (depends != null) sb.Append($"Depends: {depends}\n");
        sb.Append("Description: test package\n multi-line description\n");
        File($"var/lib/dpkg/status.d/{name}", sb.ToString());
        File($"var/lib/dpkg/status.d/{name}.md5sums", "d41d8cd98f00b204e9800998ecf8427e  usr/share/doc/x\n");
        if (copyright != null) File($"usr/share/doc/{name}/copyright", copyright);
        return this;
    }

    public TestImage OsRelease(string id = "debian", string versionId = "13", string codename = "trixie") =>
        File("usr/lib/os-release", $"PRETTY_NAME=\"Debian GNU/Linux {versionId} ({codename})\"\nID={id}\nVERSION_ID=\"{versionId}\"\nVERSION_CODENAME={codename}\n")
            .Symlink("etc/os-release", "../usr/lib/os-release");

    public TestImage PythonDist(string sitePackages, string name, string version, string? license = null, string? expression = null)
    {
        var meta = new StringBuilder($"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n");
        if (license != null) meta.Append($"License: {license}\n");
        if (expression != null) meta.Append($"License-Expression: {expression}\n");
        meta.Append("\nLong description here.\nLicense: not a header\n");
        return File($"{sitePackages}/{name.Replace('-', '_')}-{version}.dist-info/METADATA", meta.ToString());
    }

    /// <summary>Writes the image into <paramref name="layout"/>; returns the manifest digest.</summary>
    public string WriteTo(OciLayout layout, string arch = "amd64", string tag = "test", string created = "2025-06-01T12:00:00Z", bool zstd = false)
    {
        var layerDescriptors = new List<Descriptor>();
        var diffIds = new List<string>();
        foreach (var layer in _layers)
        {
            using var tar = new MemoryStream();
            using (var w = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
            {
                foreach (var (path, content, link) in layer.OrderBy(l => l.Path, StringComparer.Ordinal))
                {
                    if (link != null)
                    {
                        w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, path) { LinkName = link });
                        continue;
                    }
                    var e = new PaxTarEntry(TarEntryType.RegularFile, path) { DataStream = new MemoryStream(content!) };
                    w.WriteEntry(e);
                }
            }
            diffIds.Add(Digest.Of(tar.ToArray()).ToString());
            using var compressed = new MemoryStream();
            if (zstd)
            {
                using (var z = new ZstdSharp.CompressionStream(compressed, 3, leaveOpen: true)) z.Write(tar.ToArray());
                layerDescriptors.Add(layout.WriteBlob(compressed.ToArray(), MediaTypes.LayerZstd));
            }
            else
            {
                using (var z = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true)) z.Write(tar.ToArray());
                layerDescriptors.Add(layout.WriteBlob(compressed.ToArray(), MediaTypes.LayerGzip));
            }
        }
        var config = layout.WriteJson(new ImageConfig { Architecture = arch, Created = created, RootFs = new RootFs { DiffIds = diffIds } }, MediaTypes.ImageConfig);
        var manifest = layout.WriteJson(new ImageManifest { Config = config, Layers = layerDescriptors }, MediaTypes.ImageManifest);
        layout.Tag(tag, manifest with { Platform = new Platform { Architecture = arch } });
        return manifest.Digest;
    }

    public static LockedPackage Locked(string name, string version, string source, string sourceVersion, string arch = "amd64") => new()
    {
        Name = name, Version = version, Architecture = arch, Source = source, SourceVersion = sourceVersion,
        Url = $"http://deb.debian.org/debian/pool/main/{name[0]}/{source}/{name}_{version}_{arch}.deb",
        Sha256 = HardenImage.Common.Sha256Hex.Of(Encoding.UTF8.GetBytes(name + version)), Size = 1234, Origin = "debian/trixie",
    };

    public const string Dep5Copyright = """
        Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
        Upstream-Name: zlib
        Source: https://zlib.net/

        Files: *
        Copyright: 1995-2024 Jean-loup Gailly and Mark Adler
        License: Zlib

        Files: debian/*
        Copyright: 2000 Someone
        License: GPL-2+ or Artistic
         This program is free software.
         .
         More text.

        Files: contrib/*
        Copyright: 2001 Other
        License: SomeCustom-License
        """;
}

/// <summary>Validates JSON documents against the official schemas copied into TestData.</summary>
public static class SchemaValidation
{
    private static string Data(string stage, string file) => Path.Combine(AppContext.BaseDirectory, "TestData", stage, file);

    private static readonly Lazy<Json.Schema.JsonSchema> CycloneDx = new(() =>
    {
        var options = new Json.Schema.BuildOptions { SchemaRegistry = new Json.Schema.SchemaRegistry() };
        foreach (var (file, alias) in new[] { ("spdx.schema.json", "spdx.SNAPSHOT.schema.json"), ("jsf-0.82.schema.json", "jsf-0.82.SNAPSHOT.schema.json") })
        {
            var schema = Json.Schema.JsonSchema.FromText(System.IO.File.ReadAllText(Data("Sbom", file)), options);
            options.SchemaRegistry.Register(new Uri("http://cyclonedx.org/schema/" + alias), schema);
        }
        return Json.Schema.JsonSchema.FromText(System.IO.File.ReadAllText(Data("Sbom", "bom-1.6.schema.json")), options);
    });

    private static readonly Lazy<Json.Schema.JsonSchema> OpenVex = new(() =>
        Json.Schema.JsonSchema.FromText(System.IO.File.ReadAllText(Data("Scan", "openvex_json_schema.json")),
            new Json.Schema.BuildOptions { SchemaRegistry = new Json.Schema.SchemaRegistry() }));

    public static void AssertCycloneDx(byte[] json) => AssertValid(CycloneDx.Value, json, "CycloneDX 1.6");

    public static void AssertOpenVex(byte[] json) => AssertValid(OpenVex.Value, json, "OpenVEX 0.2.0");

    private static void AssertValid(Json.Schema.JsonSchema schema, byte[] json, string what)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        var result = schema.Evaluate(doc.RootElement, new Json.Schema.EvaluationOptions { OutputFormat = Json.Schema.OutputFormat.List });
        if (!result.IsValid)
        {
            var errors = (result.Details ?? []).Where(d => d.Errors != null)
                .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key}: {e.Value}")).Take(20);
            Assert.Fail($"not valid {what}:\n{string.Join("\n", errors)}");
        }
    }
}
