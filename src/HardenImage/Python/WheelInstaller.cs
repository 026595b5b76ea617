using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Deb;
using HardenImage.Lock;
using HardenImage.Oci;

namespace HardenImage.Python;

/// <summary>
/// Installs an image's locked wheels into its layer without running anything (no pip, no setup.py, no Python):
/// for each package whose marker holds on this architecture, the best wheel for the image's CPython and glibc is
/// taken from the content-addressed cache, its RECORD is verified (every file listed with a matching SHA-256 and
/// size, nothing unlisted, nothing missing), its paths are checked like .deb paths (no absolute, no '..', nothing
/// through a symlink), and its files are placed under site-packages with INSTALLER = hardenimage, a RECORD of what
/// was installed, and console scripts that run /usr/bin/python3 directly (no shell).
/// A wheel file that is also shipped by a Debian package or another wheel with different content is refused unless
/// the image's conflicts: names "pypi:&lt;name&gt;" (or the other owner) as the winner.
/// </summary>
public sealed partial class WheelInstaller(ContentStore store, WheelCache cache)
{
    public const string InstallerName = "hardenimage";
    /// <summary>File in each installed .dist-info naming the wheel and its SHA-256, for the SBOM (installers may add files there).</summary>
    public const string ProvenanceFile = "HARDENIMAGE-WHEEL";
    private const int MaxEntries = 200_000;

    public sealed record InstalledWheel(string Name, string Version, string WheelFile, string Sha256, int Files);

    public IReadOnlyList<InstalledWheel> Install(ImageSet set, ImageDefinition image, string arch, (int, int)? glibc,
        FsTree tree, PathSafety symlinks, Action<FsNode> place)
    {
        var python = image.Python!;
        var lockPath = Path.Combine(set.Directory, python.Lock);
        var pylock = PyLock.Load(lockPath);
        pylock.CheckIndexes(python, lockPath);
        var compat = new WheelCompatibility(python.CpythonTag, arch, glibc);
        var env = EnvironmentMarker.EnvironmentFor(python.Version, arch);
        // The image's LD_LIBRARY_PATH (its own, else the nearest ancestor's) comes before the system library directories
        // for every dynamically linked program: a wheel file there is loaded in place of the image's libraries.
        var libraryDirs = (set.Ancestors(image).Prepend(image).Select(i => i.Env.GetValueOrDefault("LD_LIBRARY_PATH")).FirstOrDefault(v => v != null) ?? "")
            .Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(d => MergedUsr.Canonicalise(d.Trim('/'))).ToHashSet(StringComparer.Ordinal);
        var installed = new List<InstalledWheel>();
        foreach (var p in pylock.Packages.OrderBy(p => p.NormalizedName, StringComparer.Ordinal))
        {
            var where = $"{lockPath}: {p.NormalizedName} {p.Version}";
            if (p.Marker != null && !EnvironmentMarker.Evaluate(p.Marker, env, where)) continue;
            var candidates = p.Wheels.Select(w => (Locked: w, Parsed: WheelFileName.TryParse(w.Name)!))
                .Select(x => (x.Locked, x.Parsed, Rank: compat.Rank(x.Parsed))).ToList();
            var best = candidates.Where(c => c.Rank != null).OrderBy(c => c.Rank).ThenBy(c => c.Locked.Name, StringComparer.Ordinal).FirstOrDefault();
            if (best.Locked == null)
                throw new HardenException($"{where}: no locked wheel fits {image.Name} ({arch}, CPython {python.Version}): " +
                    string.Join("; ", candidates.Select(c => $"{c.Locked.Name}: {compat.WhyNot(c.Parsed)}")) + ". Lock a wheel for this platform or drop the architecture.");
            // Installed from the very descriptor whose bytes were hashed (not the path again: see WheelCache.OpenVerified).
            using var file = cache.OpenVerified(best.Locked.Sha256)
                             ?? throw new HardenException($"{where}: wheel {best.Locked.Name} ({best.Locked.Sha256}) is not in the cache {cache.Directory}. Run 'harden fetch' (or 'harden build', which fetches) first.");
            installed.Add(InstallOne(python, image, p, best.Locked, best.Parsed, file, tree, symlinks, place, libraryDirs));
        }
        return installed;
    }

    private InstalledWheel InstallOne(PythonDefinition python, ImageDefinition image, LockedPythonPackage package, LockedWheel locked,
        WheelFileName wheel, FileStream file, FsTree tree, PathSafety symlinks, Action<FsNode> place, IReadOnlySet<string> libraryDirs)
    {
        var who = $"image {image.Name}: wheel {locked.Name}";
        var owner = "pypi:" + package.NormalizedName;
        var site = python.SitePackages.Trim('/');
        var prefix = "usr/local";
        ZipArchive zip;
        try { zip = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true); }
        catch (InvalidDataException e) { throw new HardenException($"{who}: not a valid zip ({e.Message}); the wheel is refused.", 2, e); }
        using var _ = zip;
        if (zip.Entries.Count > MaxEntries) throw new HardenException($"{who}: more than {MaxEntries} entries; refused.");
        // Each entry inflates only to the size it declares (ZipEntryLimit), so the declared sizes bound the whole
        // unpack; they are the wheel author's numbers, so their sum is checked before a byte is unpacked.
        var declared = zip.Entries.Sum(e => e.Length);
        if (declared > InputLimits.MaxUnpackedBytesPerPackage)
            throw new HardenException($"{who}: its entries declare {declared} bytes unpacked, more than {InputLimits.MaxUnpackedBytesPerPackage >> 30} GiB (a zip bomb); refused.");
        try
        {
            return InstallEntries(python, image, package, locked, wheel, zip, who, owner, site, prefix, tree, symlinks, place, libraryDirs);
        }
        catch (InvalidDataException e)
        {
            // A deflate stream that does not decode, or decodes to other bytes than its CRC says.
            throw new HardenException($"{who}: a zip entry is corrupt ({e.Message}); the wheel is refused.", 2, e);
        }
    }

    private InstalledWheel InstallEntries(PythonDefinition python, ImageDefinition image, LockedPythonPackage package, LockedWheel locked,
        WheelFileName wheel, ZipArchive zip, string who, string owner, string site, string prefix, FsTree tree, PathSafety symlinks, Action<FsNode> place,
        IReadOnlySet<string> libraryDirs)
    {

        // 1. Names: normalised like .deb paths, no duplicates, no symlinks or special files.
        var entries = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
        foreach (var e in zip.Entries)
        {
            if (e.FullName.EndsWith('/')) continue;
            if (e.FullName.Contains('\\')) throw new HardenException($"{who}: entry '{e.FullName}' has a backslash; refused (a path on Windows, a traversal on extraction).");
            var norm = DebPath.TryNormalise(e.FullName, out var problem)
                       ?? throw new HardenException($"{who}: entry '{e.FullName}' is refused ({problem}): a wheel may only write inside its install scheme.");
            var type = (e.ExternalAttributes >> 16) & 0xF000;
            if (type != 0 && type != 0x8000) throw new HardenException($"{who}: entry '{e.FullName}' is not a regular file (symlink or special file); refused.");
            if (!entries.TryAdd(norm, e)) throw new HardenException($"{who}: entry '{norm}' appears twice; refused (which copy wins is undefined).");
        }
        var distInfo = $"{wheel.Distribution}-{wheel.Version}.dist-info";
        var dataDir = $"{wheel.Distribution}-{wheel.Version}.data";
        var topDistInfos = entries.Keys.Select(k => k.Split('/')[0]).Where(k => k.EndsWith(".dist-info", StringComparison.Ordinal)).Distinct().ToList();
        if (!topDistInfos.Contains(distInfo))
        {
            // The directory name escapes the name as the file name does, but a lock may spell it differently: take the one that normalises.
            var match = topDistInfos.Where(d => Pep440Version.NormalizeName(d[..d.LastIndexOf('-')]) == wheel.NormalizedName).ToList();
            if (match.Count != 1) throw new HardenException($"{who}: no single {distInfo}/ directory (found {string.Join(", ", topDistInfos)}); not a valid wheel.");
            distInfo = match[0];
            dataDir = distInfo[..^".dist-info".Length] + ".data";
        }
        if (topDistInfos.Count > 1) throw new HardenException($"{who}: several .dist-info directories ({string.Join(", ", topDistInfos)}); refused.");
        if (!entries.ContainsKey(distInfo + "/RECORD") || !entries.ContainsKey(distInfo + "/METADATA") || !entries.ContainsKey(distInfo + "/WHEEL"))
            throw new HardenException($"{who}: {distInfo}/ lacks RECORD, METADATA or WHEEL; not a valid wheel.");
        var wheelMeta = ReadText(entries[distInfo + "/WHEEL"], who);
        if (WheelVersion().Match(wheelMeta) is not { Success: true } wv || wv.Groups[1].Value != "1")
            throw new HardenException($"{who}: {distInfo}/WHEEL has no Wheel-Version 1.x; this installer reads format 1 only.");

        // The SBOM and every scanner read the name and version from METADATA: they must be what the lock pins.
        var metadata = ReadText(entries[distInfo + "/METADATA"], who);
        var metaName = MetadataField().Match(metadata) is { Success: true } mn ? mn.Groups["value"].Value.Trim() : null;
        var metaVersion = MetadataVersion().Match(metadata) is { Success: true } mv ? mv.Groups["value"].Value.Trim() : null;
        if (metaName == null || Pep440Version.NormalizeName(metaName) != package.NormalizedName
            || metaVersion == null || !Pep440Version.TryParse(metaVersion, out var mver) || mver!.CompareTo(Pep440Version.Parse(package.Version)) != 0)
            throw new HardenException($"{who}: METADATA says {metaName ?? "(no Name)"} {metaVersion ?? "(no Version)"}, but the lock pins {package.NormalizedName} {package.Version}; " +
                                      "scanners would see another package. Refused.");

        // 2. RECORD: every file listed with its hash and size; nothing unlisted; nothing listed but missing.
        var record = ParseRecord(ReadText(entries[distInfo + "/RECORD"], who), who);
        var unhashed = new HashSet<string>(StringComparer.Ordinal) { distInfo + "/RECORD", distInfo + "/RECORD.jws", distInfo + "/RECORD.p7s" };
        foreach (var path in record.Keys)
            if (!entries.ContainsKey(path)) throw new HardenException($"{who}: RECORD lists '{path}', which the wheel does not contain (RECORD mismatch); refused.");
        var contents = new Dictionary<string, (string Sha, long Size, bool Exec)>(StringComparer.Ordinal);
        foreach (var (path, entry) in entries.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            if (!record.TryGetValue(path, out var expected))
                throw new HardenException($"{who}: '{path}' is not listed in RECORD (RECORD mismatch: a file nothing vouches for); refused.");
            (string Sha, long Size) stored;
            if (entry.Length > InputLimits.MaxUnpackedBytesPerPackage) throw new HardenException($"{who}: '{path}' declares {entry.Length} bytes; refused.");
            using (var s = new ZipEntryLimit(entry.Open(), entry.Length, $"{who}: '{path}'")) stored = store.Put(s);
            if (unhashed.Contains(path)) continue;
            if (expected.Sha256 == null) throw new HardenException($"{who}: RECORD gives no sha256 for '{path}'; refused.");
            if (expected.Sha256 != stored.Sha || (expected.Size is { } size && size != stored.Size))
                throw new HardenException($"{who}: '{path}' does not match RECORD (sha256 {stored.Sha}, {stored.Size} bytes; RECORD says {expected.Sha256}, {expected.Size?.ToString() ?? "?"} bytes): the wheel was altered; refused.");
            contents[path] = (stored.Sha, stored.Size, ((entry.ExternalAttributes >> 16) & 0b001_001_001) != 0);
        }

        // 3. Place: the install schemes of the binary distribution format.
        var newRecord = new List<(string Path, string? Sha, long? Size)>();
        foreach (var (path, c) in contents.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            if (path.StartsWith(distInfo + "/RECORD", StringComparison.Ordinal)) continue;
            string target;
            var mode = c.Exec ? 0b111_101_101 : 0b110_100_100;
            if (path.StartsWith(dataDir + "/", StringComparison.Ordinal))
            {
                var rest = path[(dataDir.Length + 1)..];
                var slash = rest.IndexOf('/');
                if (slash <= 0) throw new HardenException($"{who}: '{path}' is not inside a .data/<scheme>/ directory; refused.");
                var (scheme, tail) = (rest[..slash], rest[(slash + 1)..]);
                target = scheme switch
                {
                    "purelib" or "platlib" => $"{site}/{tail}",
                    "scripts" => $"{prefix}/bin/{tail}",
                    "headers" => $"{prefix}/include/python{python.Version}/{package.NormalizedName}/{tail}",
                    "data" => $"{prefix}/{tail}",
                    _ => throw new HardenException($"{who}: '{path}' uses unknown install scheme '{scheme}'; refused."),
                };
                if (scheme == "scripts")
                {
                    mode = 0b111_101_101;
                    var bytes = store.ReadVerified(c.Sha);
                    if (bytes.AsSpan().StartsWith("#!python"u8))
                    {
                        // The spec's placeholder shebang (#!python, #!pythonw, #!python3 …): the whole first line becomes the image's interpreter.
                        var eol = Array.IndexOf(bytes, (byte)'\n');
                        var rewritten = Encoding.UTF8.GetBytes("#!/usr/bin/python3").Concat(eol < 0 ? "\n"u8.ToArray() : bytes[eol..]).ToArray();
                        Put(target, rewritten, mode);
                        continue;
                    }
                }
            }
            else target = $"{site}/{path}";
            if (IsByteCode(target, out var inPycache))
            {
                // Byte-code is the byte-code transform's output, compiled from the source that was verified; a shipped
                // .pyc is code nobody reviewed that the interpreter may run instead of that source (a timestamp .pyc
                // matches the layer's fixed mtimes). In __pycache__ it is dropped (the transform writes its own);
                // a sourceless module is refused.
                if (inPycache) continue;
                throw new HardenException($"{who}: '{path}' is byte-code without its source (/{target}); refused: modules are installed as source and compiled by the image's interpreter.");
            }
            PlaceFile(target, c.Sha, c.Size, mode);
        }
        // Entry points: console and GUI scripts as small Python files, no shell wrapper.
        if (entries.ContainsKey(distInfo + "/entry_points.txt"))
            foreach (var (name, module, attr) in ConsoleScripts(ReadText(entries[distInfo + "/entry_points.txt"], who), who))
                Put($"{prefix}/bin/{name}", Encoding.UTF8.GetBytes(
                    $"#!/usr/bin/python3\n# Console script of {package.NormalizedName} {package.Version}, written by {InstallerName}.\nimport sys\nfrom {module} import {attr.Split('.')[0]}\nif __name__ == \"__main__\":\n    sys.exit({attr}())\n"),
                    0b111_101_101);
        Put($"{site}/{distInfo}/INSTALLER", Encoding.UTF8.GetBytes(InstallerName + "\n"), 0b110_100_100);
        Put($"{site}/{distInfo}/{ProvenanceFile}", Encoding.UTF8.GetBytes($"wheel={locked.Name}\nsha256={locked.Sha256}\nindex={package.Index ?? "(the lock names none)"}\n"), 0b110_100_100);
        // RECORD of what is installed, relative to site-packages, as pip writes it (uninstallers and scanners read it).
        var sb = new StringBuilder();
        foreach (var (p, sha, size) in newRecord.OrderBy(r => r.Path, StringComparer.Ordinal))
            sb.Append(Csv(RelativeToSite(p, site))).Append(',').Append(sha == null ? "" : "sha256=" + UrlSafe(sha)).Append(',').Append(size?.ToString() ?? "").Append('\n');
        sb.Append(Csv($"{distInfo}/RECORD")).Append(",,\n");
        Put($"{site}/{distInfo}/RECORD", Encoding.UTF8.GetBytes(sb.ToString()), 0b110_100_100, record: false);
        return new InstalledWheel(package.NormalizedName, package.Version, locked.Name, locked.Sha256, newRecord.Count + 1);

        void Put(string target, byte[] bytes, int mode, bool record = true)
        {
            var sha = store.Put(bytes);
            PlaceFile(target, sha, bytes.Length, mode, record);
        }

        void PlaceFile(string target, string sha, long size, int mode, bool record = true)
        {
            target = MergedUsr.Canonicalise(target);
            if (SiteDirectories(python, site).Select(d => StartupHook(target, d)).FirstOrDefault(h => h != null) is { } hook && !image.Allow.PythonStartupHooks.Contains(owner))
                throw new HardenException($"{who}: installs /{target}, {hook}; refused. If {image.Name} needs it, allow it in {Path.GetFileName(image.File)}: allow: {{pythonStartupHooks: [{owner}]}}.");
            var declaredWinner = image.Conflicts.GetValueOrDefault("/" + target) ?? image.Conflicts.GetValueOrDefault(target);
            if (libraryDirs.Contains(FsTree.ParentOf(target)) && declaredWinner != owner)
                throw new HardenException($"{who}: installs /{target} into /{FsTree.ParentOf(target)}, which the image's LD_LIBRARY_PATH puts before the system libraries " +
                                          $"(every program would load it); refused. If {image.Name} means it, declare it in {Path.GetFileName(image.File)}: conflicts: {{\"/{target}\": {owner}}}.");
            if (ShadowedCommand(target, tree) is { } shadowed && declaredWinner != owner)
                throw new HardenException($"{who}: installs /{target}, which shadows /{shadowed.Path} of {shadowed.Owner} (/{FsTree.ParentOf(target)} comes first on PATH); refused. " +
                                          $"If {image.Name} means it, declare it in {Path.GetFileName(image.File)}: conflicts: {{\"/{target}\": {owner}}}.");
            symlinks.EnsureNotThroughSymlink(target, who);
            for (var dir = FsTree.ParentOf(target); dir.Length > 0; dir = FsTree.ParentOf(dir))
            {
                var d = tree.Resolve(dir);
                if (d != null && d.Type != FsNodeType.Directory)
                    throw new HardenException($"{who}: /{target} needs /{dir} to be a directory, but {d.Owner} ships it as a {d.Type}; refused.");
            }
            tree.EnsureDirectory(FsTree.ParentOf(target));
            var node = new FsNode { Path = target, Type = FsNodeType.File, Mode = mode, Size = size, ContentSha256 = sha, Owner = owner };
            var existing = tree.Resolve(target);
            if (existing != null && !(existing.Type == FsNodeType.File && existing.ContentSha256 == sha && existing.Mode == mode))
            {
                var winner = image.Conflicts.GetValueOrDefault("/" + target) ?? image.Conflicts.GetValueOrDefault(target);
                if (winner == null)
                    throw new HardenException($"image {image.Name}: {existing.Owner} and wheel {locked.Name} both ship /{target} with different content. " +
                        $"Declare which one wins in {Path.GetFileName(image.File)} under conflicts: (\"/{target}\": {owner}), or drop one.");
                if (winner != owner)
                {
                    if (winner != existing.Owner)
                        throw new HardenException($"{image.File}: conflicts: /{target} names '{winner}', but it is shipped by {existing.Owner} and {owner}.");
                    return; // the declared winner stays
                }
            }
            place(node);
            if (record) newRecord.Add((target, sha, size));
        }
    }

    /// <summary>
    /// Why <paramref name="target"/> is a Python start-up hook, or null: site.py reads every *.pth at the top of
    /// site-packages at each interpreter start (an "import" line is executed, any other line is added to sys.path) and
    /// imports sitecustomize and usercustomize (module, package or extension) — code that runs in every Python
    /// program of the image, whether or not anything imports the wheel.
    /// </summary>
    internal static string? StartupHook(string target, string site)
    {
        if (!target.StartsWith(site + "/", StringComparison.Ordinal)) return null;
        var rest = target[(site.Length + 1)..];
        var top = rest.Split('/')[0];
        if (top == rest && top.EndsWith(".pth", StringComparison.Ordinal))
            return "a .pth file site.py processes at every interpreter start (its import lines run, its other lines extend sys.path)";
        var stem = top.Split('.')[0];
        return stem is "sitecustomize" or "usercustomize"
            ? $"the {stem} module site.py imports at every interpreter start"
            : null;
    }

    /// <summary>
    /// Every site directory Debian's python3 puts on sys.path (site.getsitepackages() on Debian: /usr/local/lib/python3.X/dist-packages,
    /// /usr/lib/python3/dist-packages, /usr/lib/python3.X/dist-packages) plus the image's sitePackages: site.py runs the .pth
    /// files of each, so a wheel's .data/data/ file reaching any of them is a start-up hook too.
    /// </summary>
    private static IEnumerable<string> SiteDirectories(PythonDefinition python, string site) =>
        new[] { site, $"usr/local/lib/python{python.Version}/dist-packages", "usr/lib/python3/dist-packages", $"usr/lib/python{python.Version}/dist-packages" }
            .Select(MergedUsr.Canonicalise).Distinct(StringComparer.Ordinal);

    /// <summary>
    /// The image's command that <paramref name="target"/> would hide: a file directly in usr/local/bin or usr/local/sbin
    /// whose name the image already has in usr/sbin or usr/bin (Debian's PATH lists /usr/local first).
    /// </summary>
    internal static FsNode? ShadowedCommand(string target, FsTree tree)
    {
        var dir = FsTree.ParentOf(target);
        if (dir is not ("usr/local/bin" or "usr/local/sbin")) return null;
        var name = target[(dir.Length + 1)..];
        return tree.Resolve($"usr/sbin/{name}") ?? tree.Resolve($"usr/bin/{name}");
    }

    /// <summary>.pyc/.pyo files; <paramref name="inPycache"/> when they sit in a __pycache__ directory.</summary>
    private static bool IsByteCode(string target, out bool inPycache)
    {
        inPycache = target.Contains("/__pycache__/", StringComparison.Ordinal) || target.StartsWith("__pycache__/", StringComparison.Ordinal);
        return target.EndsWith(".pyc", StringComparison.Ordinal) || target.EndsWith(".pyo", StringComparison.Ordinal);
    }

    private static string RelativeToSite(string path, string site) => Path.GetRelativePath("/" + site, "/" + path);

    private static string ReadText(ZipArchiveEntry e, string who)
    {
        if (e.Length > InputLimits.MaxRecordBytes) throw new HardenException($"{who}: {e.FullName} is larger than {InputLimits.MaxRecordBytes >> 20} MiB; refused.");
        using var s = e.Open();
        using var r = new StreamReader(new ZipEntryLimit(s, e.Length, $"{who}: {e.FullName}"), Encoding.UTF8);
        return r.ReadToEnd();
    }

    /// <summary>RECORD: CSV rows path,sha256=&lt;urlsafe base64, no padding&gt;,size.</summary>
    internal static Dictionary<string, (string? Sha256, long? Size)> ParseRecord(string text, string who)
    {
        var result = new Dictionary<string, (string?, long?)>(StringComparer.Ordinal);
        foreach (var raw in text.Replace("\r\n", "\n").Split('\n'))
        {
            if (raw.Length == 0) continue;
            var fields = SplitCsv(raw);
            if (fields.Count != 3) throw new HardenException($"{who}: RECORD row '{raw}' does not have 3 fields; refused.");
            var path = DebPath.TryNormalise(fields[0], out var problem)
                       ?? throw new HardenException($"{who}: RECORD names '{fields[0]}' ({problem}); refused.");
            string? sha = null;
            if (fields[1].Length > 0)
            {
                var eq = fields[1].IndexOf('=');
                var alg = eq > 0 ? fields[1][..eq] : "";
                if (alg != "sha256") throw new HardenException($"{who}: RECORD hashes '{path}' with '{alg}'; only sha256 is accepted (the spec forbids md5 and sha1).");
                try { sha = Convert.ToHexStringLower(Convert.FromBase64String(FromUrlSafe(fields[1][(eq + 1)..]))); }
                catch (FormatException) { throw new HardenException($"{who}: RECORD hash of '{path}' is not base64; refused."); }
                if (sha.Length != 64) throw new HardenException($"{who}: RECORD hash of '{path}' is not a SHA-256; refused.");
            }
            long? size = fields[2].Length > 0 && long.TryParse(fields[2], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : fields[2].Length == 0 ? null
                : throw new HardenException($"{who}: RECORD size of '{path}' is not a number; refused.");
            if (!result.TryAdd(path, (sha, size))) throw new HardenException($"{who}: RECORD lists '{path}' twice; refused.");
        }
        return result;
    }

    private static List<string> SplitCsv(string line)
    {
        var fields = new List<string>();
        var sb = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"') { sb.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else sb.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { fields.Add(sb.ToString()); sb.Clear(); }
            else sb.Append(c);
        }
        fields.Add(sb.ToString());
        return fields;
    }

    private static string Csv(string field) => field.IndexOfAny([',', '"', '\n']) >= 0 ? "\"" + field.Replace("\"", "\"\"") + "\"" : field;

    private static string FromUrlSafe(string s)
    {
        s = s.Replace('-', '+').Replace('_', '/');
        return s + new string('=', (4 - s.Length % 4) % 4);
    }

    internal static string UrlSafe(string hex) =>
        Convert.ToBase64String(Convert.FromHexString(hex)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>[console_scripts] and [gui_scripts] of entry_points.txt: name = module:attr [extras].</summary>
    internal static List<(string Name, string Module, string Attr)> ConsoleScripts(string text, string who)
    {
        var list = new List<(string, string, string)>();
        string? section = null;
        foreach (var raw in text.Replace("\r\n", "\n").Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#') || line.StartsWith(';')) continue;
            if (line.StartsWith('[')) { section = line.Trim('[', ']').Trim(); continue; }
            if (section is not ("console_scripts" or "gui_scripts")) continue;
            var eq = line.IndexOf('=');
            if (eq <= 0) throw new HardenException($"{who}: entry_points.txt line '{line}' is not name = module:attr; refused.");
            var name = line[..eq].Trim();
            var value = line[(eq + 1)..].Split('[')[0].Trim();
            var m = EntryPoint().Match(value);
            if (!ScriptName().IsMatch(name) || !m.Success)
                throw new HardenException($"{who}: entry point '{name} = {value}' is not a safe script name with module:attr; refused.");
            list.Add((name, m.Groups["module"].Value, m.Groups["attr"].Value));
        }
        return list;
    }

    [GeneratedRegex(@"(?m)^Name:[ \t]*(?<value>[^\r\n]*)$")]
    private static partial Regex MetadataField();

    [GeneratedRegex(@"(?m)^Version:[ \t]*(?<value>[^\r\n]*)$")]
    private static partial Regex MetadataVersion();

    [GeneratedRegex(@"(?m)^Wheel-Version:\s*(\d+)\.\d+\s*$")]
    private static partial Regex WheelVersion();

    [GeneratedRegex(@"^(?<module>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*:\s*(?<attr>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)$")]
    private static partial Regex EntryPoint();

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex ScriptName();
}
