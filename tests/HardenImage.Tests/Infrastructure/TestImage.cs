using System.Formats.Tar;
using System.Text;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Oci;

namespace HardenImage.Tests.Infrastructure;

/// <summary>
/// Builds small real OCI images with chosen files, packages and Python distributions (gzip or zstd tar layers,
/// config, one manifest) in a layout: for inventory, SBOM, scan and signing tests. For multi-arch images of random
/// bytes see <see cref="TestImages"/>.
/// </summary>
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
            var written = TestImages.WriteTarLayer(layout, tar.ToArray(), zstd);
            diffIds.Add(written.DiffId);
            layerDescriptors.Add(written.Descriptor);
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
