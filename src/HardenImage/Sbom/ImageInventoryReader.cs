using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using HardenImage.Apt;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Deb;
using HardenImage.Oci;
using HardenImage.Common.Streams;

namespace HardenImage.Sbom;

/// <summary>
/// Builds an <see cref="ImageInventory"/> from an image in an OCI layout: applies the layers in order (with OCI
/// whiteouts) and reads <c>var/lib/dpkg/status.d/&lt;pkg&gt;</c>, <c>usr/share/doc/&lt;pkg&gt;/copyright</c>,
/// <c>*.dist-info/METADATA</c>, <c>etc/os-release</c> and the payload paths the caller names. Every layer is
/// checked against its digest while it is read, so an SBOM never describes altered bytes (threat: Tampering).
/// </summary>
public static class ImageInventoryReader
{
    private sealed class FileState
    {
        public byte[]? Content;
        public string? Sha256;
        public long Size;
        public string? LinkTarget;
    }

    /// <param name="distributionOf">
    /// The release of a lock origin (<see cref="OriginDistributions.For"/>); by default decided from the origin's suite.
    /// </param>
    public static ImageInventory Read(OciLayout layout, string manifestDigest, IEnumerable<LockedPackage> lockEntries,
        string imageName = "image", IReadOnlyList<string>? payloadPaths = null, Func<string, OriginDistribution>? distributionOf = null)
    {
        distributionOf ??= origin => OriginDistributions.Resolve(origin);
        var manifest = layout.ReadJson<ImageManifest>(manifestDigest);
        var config = layout.ReadJson<ImageConfig>(manifest.Config.Digest);
        var prefixes = (payloadPaths ?? []).Select(p => p.Trim().TrimStart('/').TrimEnd('/')).Where(p => p.Length > 0).ToList();
        var files = new Dictionary<string, FileState>(StringComparer.Ordinal);
        foreach (var layer in manifest.Layers) ApplyLayer(layout, layer, files, prefixes);

        var lockByName = new Dictionary<string, LockedPackage>(StringComparer.Ordinal);
        foreach (var l in lockEntries)
            if (!lockByName.TryGetValue(l.Name, out var prior) || (prior.Architecture != config.Architecture && l.Architecture == config.Architecture))
                lockByName[l.Name] = l;

        var packages = new Dictionary<string, InventoryPackage>(StringComparer.Ordinal);
        foreach (var (path, state) in files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            if (!path.StartsWith("var/lib/dpkg/status.d/", StringComparison.Ordinal) || state.Content is null) continue;
            var fileName = path["var/lib/dpkg/status.d/".Length..];
            if (fileName.Contains('/') || fileName.EndsWith(".md5sums", StringComparison.Ordinal)) continue;
            Deb822Paragraph? p;
            try { p = Deb822.Parse(Encoding.UTF8.GetString(state.Content)).FirstOrDefault(); }
            catch (FormatException e) { throw new HardenException($"image {imageName}: {path} is not a dpkg control record ({e.Message})"); }
            if (p?["Package"] is not { } name || p["Version"] is not { } version) continue;
            var (srcName, srcVersion) = SplitSource(p["Source"], name, version);
            lockByName.TryGetValue(name, out var locked);
            packages[name] = new InventoryPackage
            {
                Name = name,
                Version = version,
                Architecture = p["Architecture"] ?? locked?.Architecture ?? config.Architecture,
                SourceName = srcName,
                SourceVersion = srcVersion,
                Sha256 = locked?.Sha256,
                Licenses = LicensesFor(files, name),
                Depends = ParseDependsNames((p["Pre-Depends"] ?? "") + "," + (p["Depends"] ?? "")),
                Evidence = locked != null ? "status.d+lock" : "status.d",
                // A record that disagrees with the lock (tampered, or a lock updated after the build) must not hide
                // what the other says: the scan matches both.
                Locked = locked != null && (locked.Version, locked.Source, locked.SourceVersion) != (version, srcName, srcVersion)
                    ? new LockedIdentity(locked.Version, locked.Source, locked.SourceVersion) : null,
            }.WithOrigin(locked?.Origin, distributionOf);
        }
        // A locked package without a status record is still in the image (the builder may not describe it).
        foreach (var l in lockByName.Values)
            if (!packages.ContainsKey(l.Name))
                packages[l.Name] = new InventoryPackage
                {
                    Name = l.Name, Version = l.Version, Architecture = l.Architecture, SourceName = l.Source,
                    SourceVersion = l.SourceVersion, Sha256 = l.Sha256, Licenses = LicensesFor(files, l.Name), Evidence = "lock",
                }.WithOrigin(l.Origin, distributionOf);

        var owners = FileOwners(files);
        var pythonFiles = files.Where(f => f.Value.Content != null && PythonDistributionFinder.IsCandidate(f.Key))
            .ToDictionary(f => f.Key, f => f.Value.Content!, StringComparer.Ordinal);
        AddSymlinkedPythonMetadata(files, pythonFiles);
        var pythonPath = (config.Config?.Env ?? []).Where(e => e.StartsWith("PYTHONPATH=", StringComparison.Ordinal))
            .SelectMany(e => e["PYTHONPATH=".Length..].Split(':'));
        var dists = PythonDistributionFinder.Find(pythonFiles, pythonPath, owners.GetValueOrDefault);

        var payload = files.Where(f => f.Value.Sha256 != null && IsPayload(f.Key, prefixes))
            .OrderBy(f => f.Key, StringComparer.Ordinal)
            .Select(f => new PayloadFile(f.Key, f.Value.Sha256!, f.Value.Size)).ToList();

        return new ImageInventory
        {
            ImageName = imageName,
            Architecture = config.Architecture,
            Digest = manifestDigest,
            // The release the packages were locked from, never what a file in the image claims.
            Distro = packages.Values.Select(p => p.Distro).OfType<string>().GroupBy(d => d)
                .OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).Select(g => g.Key).FirstOrDefault(),
            OsRelease = DistroOf(files),
            Created = DateTimeOffset.TryParse(config.Created, System.Globalization.CultureInfo.InvariantCulture,
                System.Globalization.DateTimeStyles.AssumeUniversal, out var created) ? created.ToUniversalTime() : DateTimeOffset.UnixEpoch,
            Packages = packages.Values.OrderBy(p => p.Name, StringComparer.Ordinal).ToList(),
            PythonDistributions = dists,
            Files = payload,
        };
    }

    private static void ApplyLayer(OciLayout layout, Descriptor layer, Dictionary<string, FileState> files, List<string> prefixes)
    {
        using var blob = layout.OpenBlob(layer.Digest);
        using var hashing = new HashingReadStream(blob, leaveOpen: true);
        using (var tarStream = LayerTar.OpenUncompressed(hashing, layer.MediaType, leaveOpen: true)
            ?? throw new HardenException($"{layout.Root}: layer {layer.Digest} has media type '{layer.MediaType}', which cannot be read (expected tar, tar+gzip or tar+zstd)"))
        {
            var reader = new TarReader(tarStream);
            TarEntry? entry;
            while ((entry = reader.GetNextEntry(copyData: false)) != null)
            {
                var path = NormalizePath(entry.Name);
                if (path.Length == 0) continue;
                var name = path.Contains('/') ? path[(path.LastIndexOf('/') + 1)..] : path;
                var dir = path.Contains('/') ? path[..path.LastIndexOf('/')] : "";
                if (name == ".wh..wh..opq") { RemoveUnder(files, dir, keepDir: true); continue; }
                if (name.StartsWith(".wh.", StringComparison.Ordinal))
                {
                    var target = (dir.Length > 0 ? dir + "/" : "") + name[4..];
                    files.Remove(target);
                    RemoveUnder(files, target, keepDir: false);
                    continue;
                }
                switch (entry.EntryType)
                {
                    case TarEntryType.SymbolicLink:
                        files[path] = new FileState { LinkTarget = entry.LinkName };
                        break;
                    case TarEntryType.HardLink:
                        var linked = NormalizePath(entry.LinkName);
                        if (files.TryGetValue(linked, out var src)) files[path] = src;
                        break;
                    case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                        if (IsInteresting(path))
                        {
                            using var ms = new MemoryStream();
                            entry.DataStream?.CopyTo(ms);
                            var bytes = ms.ToArray();
                            files[path] = new FileState { Content = bytes, Size = bytes.Length, Sha256 = IsPayload(path, prefixes) ? Sha256Hex.Of(bytes) : null };
                        }
                        else if (IsPayload(path, prefixes))
                            files[path] = new FileState { Sha256 = entry.DataStream is null ? Sha256Hex.Of(ReadOnlySpan<byte>.Empty) : Sha256Hex.Of(entry.DataStream), Size = entry.Length };
                        else files.Remove(path);
                        break;
                    case TarEntryType.Directory:
                        break;
                    default:
                        files.Remove(path);
                        break;
                }
            }
        }
        hashing.CopyTo(Stream.Null, 1 << 16);
        if (hashing.FinishDigest() != layer.Digest)
            throw new HardenException($"{layout.Root}: layer {layer.Digest} does not match its digest (tampered or corrupt). Rebuild with 'harden build'.");
    }

    private static void RemoveUnder(Dictionary<string, FileState> files, string dir, bool keepDir)
    {
        var prefix = dir.Length == 0 ? "" : dir + "/";
        foreach (var k in files.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList()) files.Remove(k);
    }

    internal static string NormalizePath(string name)
    {
        var p = name.Replace('\\', '/');
        while (p.StartsWith("./", StringComparison.Ordinal)) p = p[2..];
        return p.Trim('/');
    }

    private static bool IsInteresting(string path) =>
        path.StartsWith("var/lib/dpkg/status.d/", StringComparison.Ordinal)
        || (path.StartsWith("usr/share/doc/", StringComparison.Ordinal) && path.EndsWith("/copyright", StringComparison.Ordinal))
        || PythonDistributionFinder.IsCandidate(path)
        // Possible targets of a symlinked egg-info/dist-info.
        || path.EndsWith("/PKG-INFO", StringComparison.Ordinal) || path.EndsWith("/METADATA", StringComparison.Ordinal)
        || path is "etc/os-release" or "usr/lib/os-release";

    /// <summary>
    /// Python follows symlinks: a <c>x.egg-info</c>/<c>x.dist-info</c> (directory or file) that is a link to metadata
    /// elsewhere in the image is a distribution at the link's path.
    /// </summary>
    private static void AddSymlinkedPythonMetadata(Dictionary<string, FileState> files, Dictionary<string, byte[]> pythonFiles)
    {
        byte[]? ContentAt(string path)
        {
            for (int hops = 0; hops < 8 && files.TryGetValue(path, out var f); hops++)
            {
                if (f.Content != null) return f.Content;
                if (f.LinkTarget is null) return null;
                path = ResolveLink(path, f.LinkTarget);
            }
            return null;
        }
        foreach (var (path, state) in files.Where(f => f.Value.LinkTarget != null).OrderBy(f => f.Key, StringComparer.Ordinal).ToList())
        {
            var target = ResolveLink(path, state.LinkTarget!);
            if (path.EndsWith(".egg-info", StringComparison.Ordinal))
            {
                if ((ContentAt(target) ?? ContentAt(target + "/PKG-INFO")) is { } c)
                    pythonFiles[files.ContainsKey(target) ? path : path + "/PKG-INFO"] = c;
            }
            else if (path.EndsWith(".dist-info", StringComparison.Ordinal) && ContentAt(target + "/METADATA") is { } m)
                pythonFiles[path + "/METADATA"] = m;
            else if (PythonDistributionFinder.IsCandidate(path) && ContentAt(target) is { } t)
                pythonFiles[path] = t;
        }
    }

    /// <summary>The image path a symlink at <paramref name="linkPath"/> points to (relative to its directory, or absolute).</summary>
    private static string ResolveLink(string linkPath, string target)
    {
        var dir = linkPath.Contains('/') ? linkPath[..linkPath.LastIndexOf('/')] : "";
        var stack = new List<string>();
        foreach (var seg in ((target.StartsWith('/') ? "" : dir + "/") + target).Split('/'))
        {
            if (seg is "" or ".") continue;
            if (seg == "..") { if (stack.Count > 0) stack.RemoveAt(stack.Count - 1); continue; }
            stack.Add(seg);
        }
        return string.Join('/', stack);
    }

    private static InventoryPackage WithOrigin(this InventoryPackage p, string? origin, Func<string, OriginDistribution> distributionOf)
    {
        if (origin is null) return p;
        var d = distributionOf(origin);
        return p with { Origin = origin, Distro = d.Distro, DistroUnknownReason = d.UnknownReason };
    }

    /// <summary>Path → package from the dpkg file lists (status.d/&lt;pkg&gt;.md5sums: "&lt;md5&gt;  &lt;path&gt;" per line).</summary>
    private static Dictionary<string, string> FileOwners(Dictionary<string, FileState> files)
    {
        var owners = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (path, state) in files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            if (!path.StartsWith("var/lib/dpkg/status.d/", StringComparison.Ordinal) || !path.EndsWith(".md5sums", StringComparison.Ordinal) || state.Content is null) continue;
            var package = path["var/lib/dpkg/status.d/".Length..^".md5sums".Length];
            foreach (var line in Encoding.UTF8.GetString(state.Content).Split('\n'))
            {
                var sep = line.IndexOf("  ", StringComparison.Ordinal);
                if (sep > 0) owners.TryAdd(NormalizePath(line[(sep + 2)..].TrimEnd('\r')), package);
            }
        }
        return owners;
    }

    private static bool IsPayload(string path, List<string> prefixes) =>
        prefixes.Any(p => path == p || path.StartsWith(p + "/", StringComparison.Ordinal));

    private static IReadOnlyList<string> LicensesFor(Dictionary<string, FileState> files, string package)
    {
        var docDir = "usr/share/doc/" + package;
        // Some packages ship their doc directory as a symlink to a sibling package's.
        for (int hops = 0; hops < 4; hops++)
        {
            if (files.TryGetValue(docDir + "/copyright", out var c) && c.Content != null)
                return CopyrightLicenses.Parse(Encoding.UTF8.GetString(c.Content));
            if (!files.TryGetValue(docDir, out var link) || link.LinkTarget is null) break;
            docDir = link.LinkTarget.StartsWith('/') ? NormalizePath(link.LinkTarget) : NormalizePath("usr/share/doc/" + link.LinkTarget);
        }
        return [];
    }

    private static string? DistroOf(Dictionary<string, FileState> files)
    {
        FileState? f = null;
        if (files.TryGetValue("etc/os-release", out var etc))
        {
            if (etc.Content != null) f = etc;
            else if (etc.LinkTarget != null)
                files.TryGetValue(NormalizePath(etc.LinkTarget.StartsWith('/') ? etc.LinkTarget : "etc/" + etc.LinkTarget).Replace("etc/../", ""), out f);
        }
        if (f?.Content is null) files.TryGetValue("usr/lib/os-release", out f);
        if (f?.Content is null) return null;
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in Encoding.UTF8.GetString(f.Content).Split('\n'))
        {
            var eq = line.IndexOf('=');
            if (eq > 0) fields[line[..eq].Trim()] = line[(eq + 1)..].Trim().Trim('"', '\'');
        }
        if (!fields.TryGetValue("ID", out var id)) return null;
        if (fields.TryGetValue("VERSION_ID", out var vid) && vid.Length > 0) return $"{id}-{vid.Split('.')[0]}";
        if (fields.TryGetValue("VERSION_CODENAME", out var cn) && DebianReleases.NumberOf(cn) is { } n) return $"{id}-{n}";
        return id;
    }

    internal static (string Name, string Version) SplitSource(string? source, string name, string version)
    {
        if (string.IsNullOrWhiteSpace(source)) return (name, version);
        source = source.Trim();
        var paren = source.IndexOf('(');
        if (paren > 0) return (source[..paren].Trim(), source[(paren + 1)..].TrimEnd(')', ' ').Trim());
        return (source, version);
    }

    /// <summary>Package names in a Depends-style field: every alternative, without versions or arch qualifiers.</summary>
    public static IReadOnlyList<string> ParseDependsNames(string field)
    {
        var names = new List<string>();
        foreach (var clause in field.Split(','))
            foreach (var alt in clause.Split('|'))
            {
                var t = alt.Trim();
                var end = t.IndexOfAny([' ', '(', ':', '[', '<', '\n', '\t']);
                var n = end >= 0 ? t[..end] : t;
                if (n.Length > 0 && !names.Contains(n)) names.Add(n);
            }
        return names;
    }

    /// <summary>Reads Name, Version and licence from a core-metadata file (RFC 822 headers up to the first blank line).</summary>
    internal static PythonDistribution? ParseMetadata(byte[] content, string path, string? fallbackName = null, string? fallbackVersion = null)
    {
        string? name = null, version = null, license = null, expression = null;
        foreach (var raw in Encoding.UTF8.GetString(content).Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0) break;
            if (line[0] is ' ' or '\t') continue;
            var colon = line.IndexOf(':');
            if (colon <= 0) continue;
            var key = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            switch (key.ToLowerInvariant())
            {
                case "name": name ??= value; break;
                case "version": version ??= value; break;
                case "license-expression": expression ??= value; break;
                case "license": license ??= value; break;
            }
        }
        name = string.IsNullOrWhiteSpace(name) ? fallbackName : name;
        version = string.IsNullOrWhiteSpace(version) ? fallbackVersion : version;
        if (name is null || version is null) return null;
        // A License field that holds the whole licence text (multi-line, very long) is not an identifier.
        if (license is { Length: > 80 } || license is "UNKNOWN" || string.IsNullOrWhiteSpace(license)) license = null;
        return new PythonDistribution
        {
            Name = name, Version = version, MetadataPath = path,
            License = string.IsNullOrWhiteSpace(expression) ? license : expression,
            LicenseIsExpression = !string.IsNullOrWhiteSpace(expression),
        };
    }
}
