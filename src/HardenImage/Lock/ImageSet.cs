using System.Security.Cryptography;
using System.Text;
using HardenImage.Apt;
using HardenImage.Common;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace HardenImage.Lock;

// The whole images/*.yaml model lives in this file (STYLE.md: one model file); docs/images.md documents each
// field. Parsing walks YamlDotNet's node tree by hand so every error can name file, line and fix.

/// <summary>An apt repository named in images/sources.yaml.</summary>
public sealed record SourceDefinition
{
    public required string Name { get; init; }
    /// <summary>Base URL. For flat repositories it may contain <c>{arch}</c>, replaced through <see cref="ArchMap"/>.</summary>
    public required string Url { get; init; }
    public List<string> Suites { get; init; } = new();
    public List<string> Components { get; init; } = new();
    public List<string> Architectures { get; init; } = new();
    /// <summary>Keyring path relative to images/ (binary .gpg or armoured .asc).</summary>
    public required string Keyring { get; init; }
    /// <summary>A flat repository (InRelease and Packages directly under the URL, no dists/): NVIDIA's layout.</summary>
    public bool Flat { get; init; }
    /// <summary>Debian architecture → repository spelling (NVIDIA: amd64 → x86_64, arm64 → sbsa).</summary>
    public Dictionary<string, string> ArchMap { get; init; } = new();
    /// <summary>Distribution the packages belong to, for purls and advisory matching (debian-13, ubuntu-22.04).</summary>
    public string Distro { get; init; } = "debian-13";
    public int Line { get; init; }

    public string UrlFor(string arch) =>
        Url.Replace("{arch}", ArchMap.TryGetValue(arch, out var a) ? a : arch, StringComparison.Ordinal).TrimEnd('/');
}

/// <summary>Payload copied into an image: a directory or file under images/.</summary>
public sealed record PayloadFiles
{
    /// <summary>The one placeholder a source may hold: the Debian architecture (amd64, arm64) being built.</summary>
    public const string ArchPlaceholder = "{arch}";

    /// <summary>Path relative to images/; may contain <see cref="ArchPlaceholder"/> (a per-architecture build output).</summary>
    public required string Source { get; init; }
    /// <summary>True when <see cref="Source"/> differs per architecture (a self-contained publish, for example).</summary>
    public bool PerArchitecture => Source.Contains(ArchPlaceholder, StringComparison.Ordinal);
    /// <summary>The source for one architecture: the placeholder replaced by a validated architecture name only.</summary>
    public string SourceFor(string arch) => Source.Replace(ArchPlaceholder, arch, StringComparison.Ordinal);
    /// <summary>Absolute path in the image.</summary>
    public required string Target { get; init; }
    /// <summary>Octal file mode for files (directories get the execute bits where read is set).</summary>
    public int Mode { get; init; } = Convert.ToInt32("0644", 8);
    public int Uid { get; init; }
    public int Gid { get; init; }
    /// <summary>Line of the entry in its image file, for errors.</summary>
    public int Line { get; init; }
}

/// <summary>A check `harden smoke` runs inside the started image.</summary>
public sealed record SmokeCheck
{
    public required string Name { get; init; }
    /// <summary>Arguments passed to the image (replacing its cmd), or null for an HTTP probe.</summary>
    public List<string>? Command { get; init; }
    public int ExitCode { get; init; }
    /// <summary>Substring the combined output must contain.</summary>
    public string? OutputContains { get; init; }
    /// <summary>HTTP probe path (e.g. /healthz) on <see cref="Port"/>.</summary>
    public string? Http { get; init; }
    public int Port { get; init; }
}

/// <summary>Opt-ins that switch off a hardening transform for one image.</summary>
public sealed record ImageAllowances
{
    public bool Shell { get; init; }
    public bool PackageManager { get; init; }
    public bool Setuid { get; init; }
    public bool Docs { get; init; }
    /// <summary>Ship no byte-code: the byte-code transform does not run (every start compiles in memory).</summary>
    public bool NoByteCode { get; init; }
    /// <summary>Owner (package name, or "payload:&lt;source&gt;" for files:) → globs of its .py files that may fail to
    /// byte-compile (they ship without a .pyc, as py3compile's exclusions do); any other failure stops the build.</summary>
    public SortedDictionary<string, List<string>> ByteCodeErrors { get; init; } = new(StringComparer.Ordinal);
    /// <summary>Wheels ("pypi:&lt;name&gt;") that may install Python start-up hooks (site-packages *.pth,
    /// sitecustomize, usercustomize): code every interpreter of the image runs before its program (WheelInstaller).</summary>
    public List<string> PythonStartupHooks { get; init; } = new();
}

/// <summary>A PEP 503/691 index an image's wheels may come from, and the packages it may serve.</summary>
public sealed record PythonIndexDefinition
{
    public required string Name { get; init; }
    /// <summary>The simple index base URL, with a trailing slash (https://pypi.org/simple/).</summary>
    public required string Url { get; init; }
    /// <summary>PEP 503-normalised names this index may serve; "*" = every package no other index names.</summary>
    public List<string> Packages { get; init; } = new();
    /// <summary>Names of environment variables holding HTTP Basic credentials (never the values).</summary>
    public string? UsernameEnv { get; init; }
    public string? PasswordEnv { get; init; }
    public int Line { get; init; }
}

/// <summary>An image's python: block (issue 18).</summary>
public sealed record PythonDefinition
{
    /// <summary>CPython minor version of the image's interpreter ("3.13" → cp313 wheel tags).</summary>
    public required string Version { get; init; }
    /// <summary>pip --require-hashes requirements (relative to images/); 'harden lock' resolves them into <see cref="Lock"/>.</summary>
    public string? Requirements { get; init; }
    /// <summary>PEP 751 pylock.toml (relative to images/): written by 'harden lock' from requirements, or by uv/pip.</summary>
    public required string Lock { get; init; }
    public List<PythonIndexDefinition> Indexes { get; init; } = new();
    /// <summary>Where wheels are unpacked: Debian's python looks in /usr/local/lib/python3.X/dist-packages first.</summary>
    public required string SitePackages { get; init; }
    public int Line { get; init; }

    public string CpythonTag => "cp" + Version.Replace(".", "", StringComparison.Ordinal);

    /// <summary>
    /// The input that decides the wheels, relative to images/: the requirements when we resolve (the pylock.toml we
    /// write is then an output, like images.lock.json), else the pylock.toml uv or pip wrote.
    /// </summary>
    public IEnumerable<string> InputFiles(string imagesDir) => [Requirements ?? Lock];
}

/// <summary>One images/&lt;name&gt;.yaml.</summary>
public sealed record ImageDefinition
{
    public required string Name { get; init; }
    public required string File { get; init; }
    public string? Version { get; init; }
    public string? Description { get; init; }
    public string? From { get; init; }
    public List<string> Sources { get; init; } = new();
    public List<string> Architectures { get; init; } = new();
    public List<string> Packages { get; init; } = new();
    public List<string> Exclude { get; init; } = new();
    /// <summary>
    /// What the image stands in for without installing it, in Provides syntax (<c>python3 (= 3.13.5-1)</c>): it meets
    /// dependencies of this image and its children as an installed package's Provides would (see docs/images.md).
    /// </summary>
    public List<string> Provides { get; init; } = new();
    public string User { get; init; } = "65532:65532";
    public string? Workdir { get; init; }
    public List<string>? Entrypoint { get; init; }
    public List<string>? Cmd { get; init; }
    public SortedDictionary<string, string> Env { get; init; } = new(StringComparer.Ordinal);
    public SortedDictionary<string, string> Labels { get; init; } = new(StringComparer.Ordinal);
    public SortedDictionary<string, string> Annotations { get; init; } = new(StringComparer.Ordinal);
    public List<PayloadFiles> Files { get; init; } = new();
    /// <summary>Path in the image → package that wins when several packages ship it.</summary>
    public SortedDictionary<string, string> Conflicts { get; init; } = new(StringComparer.Ordinal);
    public ImageAllowances Allow { get; init; } = new();
    /// <summary>Extra paths (globs with * and **) removed from the image.</summary>
    public List<string> Remove { get; init; } = new();
    public List<SmokeCheck> Smoke { get; init; } = new();
    /// <summary>Symlinks to create: link path → target (e.g. /usr/bin/python3 → python3.13).</summary>
    public SortedDictionary<string, string> Symlinks { get; init; } = new(StringComparer.Ordinal);
    /// <summary>Why this image cannot be built on a machine without its repositories (shown when skipped).</summary>
    public string? RequiresNetwork { get; init; }
    /// <summary>
    /// The command that produces this image's per-architecture payload (a <c>dotnet publish</c>), which the default
    /// pipeline does not run: build, plan and fetch without --image skip the image and say this; lock does not.
    /// </summary>
    public string? RequiresPublish { get; init; }
    /// <summary>Python wheels installed into site-packages (docs/images.md, "python:"); null when the image has none.</summary>
    public PythonDefinition? Python { get; init; }
}

/// <summary>The image set: sources.yaml plus every images/*.yaml, validated together.</summary>
public sealed class ImageSet
{
    private ImageSet(string directory, IReadOnlyDictionary<string, SourceDefinition> sources,
        IReadOnlyDictionary<string, ImageDefinition> images)
    {
        Directory = directory; Sources = sources; Images = images;
    }

    public string Directory { get; }
    public IReadOnlyDictionary<string, SourceDefinition> Sources { get; }
    public IReadOnlyDictionary<string, ImageDefinition> Images { get; }

    public string SourcesFile => Path.Combine(Directory, "sources.yaml");

    /// <summary>Images ordered so that a parent comes before its children, then by name.</summary>
    public IReadOnlyList<ImageDefinition> InBuildOrder()
    {
        var result = new List<ImageDefinition>();
        var done = new HashSet<string>();
        void Visit(ImageDefinition i)
        {
            if (!done.Add(i.Name)) return;
            if (i.From != null) Visit(Images[i.From]);
            result.Add(i);
        }
        foreach (var i in Images.Values.OrderBy(i => i.Name, StringComparer.Ordinal)) Visit(i);
        return result;
    }

    /// <summary>The chain of ancestors, nearest first.</summary>
    public IReadOnlyList<ImageDefinition> Ancestors(ImageDefinition image)
    {
        var list = new List<ImageDefinition>();
        for (var p = image.From; p != null; p = Images[p].From) list.Add(Images[p]);
        return list;
    }

    /// <summary>Selects images by name plus their ancestors (a child needs its parent's layers).</summary>
    public IReadOnlyList<ImageDefinition> Select(IReadOnlyCollection<string>? names)
    {
        if (names == null || names.Count == 0) return InBuildOrder();
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in names)
        {
            if (!Images.TryGetValue(n, out var img))
                throw new HardenException($"--image {n}: no such image in {Directory}. Known images: {string.Join(", ", Images.Keys.Order(StringComparer.Ordinal))}.");
            wanted.Add(img.Name);
            foreach (var a in Ancestors(img)) wanted.Add(a.Name);
        }
        return InBuildOrder().Where(i => wanted.Contains(i.Name)).ToList();
    }

    /// <summary>
    /// SHA-256 over what determines an image's resolution: its file, its ancestors' files and sources.yaml.
    /// The lock stores it so <c>lock --check</c> sees a changed definition.
    /// </summary>
    public string InputsSha256(ImageDefinition image)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string label, string path)
        {
            h.AppendData(Encoding.UTF8.GetBytes(label + "\n"));
            h.AppendData(NormalizeNewlines(File.ReadAllBytes(path)));
            h.AppendData("\n"u8);
        }
        Add("sources.yaml", SourcesFile);
        Add(Path.GetFileName(image.File), image.File);
        foreach (var a in Ancestors(image)) Add(Path.GetFileName(a.File), a.File);
        // What decides the image's wheels (the requirements, or a pylock.toml from uv/pip) is an input like the YAML.
        foreach (var i in Ancestors(image).Reverse().Append(image))
            foreach (var f in i.Python?.InputFiles(Directory) ?? [])
                if (File.Exists(Path.Combine(Directory, f))) Add(f, Path.Combine(Directory, f));
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    private static byte[] NormalizeNewlines(byte[] bytes) =>
        Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(bytes).Replace("\r\n", "\n"));

    public static readonly string[] KnownArchitectures = ["amd64", "arm64"];

    /// <summary>Loads and validates images/sources.yaml and images/*.yaml.</summary>
    public static ImageSet Load(string directory)
    {
        directory = Path.GetFullPath(directory);
        var sourcesFile = Path.Combine(directory, "sources.yaml");
        if (!System.IO.Directory.Exists(directory))
            throw new HardenException($"{directory}: no image set here. Create images/sources.yaml and images/<name>.yaml (see docs/images.md).");
        if (!File.Exists(sourcesFile))
            throw new HardenException($"{sourcesFile}: missing. Every image set names its apt sources there (see docs/images.md).");
        var sources = LoadSources(sourcesFile);
        var images = new Dictionary<string, ImageDefinition>(StringComparer.Ordinal);
        foreach (var file in System.IO.Directory.GetFiles(directory, "*.yaml").Order(StringComparer.Ordinal))
        {
            if (Path.GetFileName(file) is "sources.yaml") continue;
            var image = LoadImage(file);
            if (images.TryGetValue(image.Name, out var other))
                throw new HardenException($"{file}: image name '{image.Name}' is also used by {other.File}. Give each image a unique name.");
            images[image.Name] = image;
        }
        if (images.Count == 0)
            throw new HardenException($"{directory}: no images/*.yaml besides sources.yaml. Add one (see docs/images.md).");
        Validate(directory, sources, images);
        return new ImageSet(directory, sources, images);
    }

    private static void Validate(string directory, Dictionary<string, SourceDefinition> sources, Dictionary<string, ImageDefinition> images)
    {
        foreach (var s in sources.Values)
        {
            var keyring = Path.Combine(directory, s.Keyring);
            if (!File.Exists(keyring))
                throw new HardenException($"{Path.Combine(directory, "sources.yaml")}:{s.Line}: source '{s.Name}' keyring '{s.Keyring}' does not exist (looked for {keyring}). Put the repository's public key there.");
        }
        foreach (var img in images.Values)
        {
            if (img.From != null && !images.ContainsKey(img.From))
                throw new HardenException($"{img.File}: from: '{img.From}' is not an image in this set. Known images: {string.Join(", ", images.Keys.Order(StringComparer.Ordinal))}{NameSuggestions.DidYouMean(img.From, images.Keys)}.");
            foreach (var src in img.Sources)
                if (!sources.ContainsKey(src))
                    throw new HardenException($"{img.File}: sources: '{src}' is not defined in sources.yaml. Defined: {string.Join(", ", sources.Keys.Order(StringComparer.Ordinal))}{NameSuggestions.DidYouMean(src, sources.Keys)}.");
            foreach (var arch in img.Architectures)
            {
                if (!KnownArchitectures.Contains(arch))
                    throw new HardenException($"{img.File}: architectures: '{arch}' is not supported. Use {string.Join(" or ", KnownArchitectures)}.");
                foreach (var src in img.Sources)
                    if (sources[src].Architectures.Count > 0 && !sources[src].Architectures.Contains(arch))
                        throw new HardenException($"{img.File}: architecture '{arch}' is not served by source '{src}' (it lists {string.Join(", ", sources[src].Architectures)}). Remove the architecture or add it to the source.");
            }
            var both = img.Packages.Select(PackageName).Intersect(img.Exclude, StringComparer.Ordinal).ToList();
            if (both.Count > 0)
                throw new HardenException($"{img.File}: {string.Join(", ", both)} is both in packages: and in exclude:. Remove it from one of them.");
            var providedNames = img.Provides.Select(p => Relation.Parse(p).Name).ToList();
            var providedAndListed = providedNames.Where(n => img.Packages.Select(PackageName).Contains(n) || img.Exclude.Contains(n)).ToList();
            if (providedAndListed.Count > 0)
                throw new HardenException($"{img.File}: {string.Join(", ", providedAndListed)} is in provides: and also in packages: or exclude:. " +
                                          "An image either installs a package, excludes it, or declares that it provides it; keep one.");
            // Payload comes only from inside the set (threat I): the reader refuses '..', absolute paths, symlinks
            // anywhere on the path, special files and hard links, and opens every file once so an unreadable one
            // is reported here with its file:line.
            // A per-architecture source ({arch}) is a build output (dotnet publish) that need not exist yet when
            // the set is loaded for lock or plan: its form is checked here for every architecture, and the same
            // reader walks it, with the same rules, when build or the inputs digest reads it.
            var payload = new PayloadReader(directory);
            var archs = EffectiveArchitectures(img, images);
            foreach (var f in img.Files)
            {
                var where = $"{img.File}:{f.Line}";
                if (!f.PerArchitecture) { payload.List(f.Source, where); continue; }
                foreach (var arch in archs)
                {
                    var problem = PayloadReader.FormProblem(f.SourceFor(arch));
                    if (problem != null)
                        throw new HardenException($"{where}: files: source '{f.Source}' for {arch} ('{f.SourceFor(arch)}') {problem}. Payload must be inside the image-set directory.");
                }
            }
        }
        // Cycles: walk each chain; a repeat means a cycle.
        foreach (var img in images.Values)
        {
            var seen = new List<string> { img.Name };
            for (var p = img.From; p != null; p = images[p].From)
            {
                if (seen.Contains(p))
                    throw new HardenException($"{img.File}: from: forms a cycle ({string.Join(" → ", seen)} → {p}). An image cannot be its own ancestor.");
                seen.Add(p);
            }
        }
        List<string> ArchsOf(ImageDefinition i) => i.Architectures.Count > 0 || i.From == null ? i.Architectures : ArchsOf(images[i.From]);
        foreach (var img in images.Values)
        {
            if (img.From == null) continue;
            var parent = images[img.From];
            var missing = img.Architectures.Except(ArchsOf(parent)).ToList();
            if (missing.Count > 0)
                throw new HardenException($"{img.File}: architectures {string.Join(", ", missing)} are not built by parent '{parent.Name}' ({parent.File}). Add them to the parent or remove them here.");
        }
    }

    /// <summary>
    /// Declared provides of the image and its ancestors, nearest first: a child inherits what its parent stands in
    /// for, as it inherits the parent's installed packages.
    /// </summary>
    public IReadOnlyList<string> ProvidesWithAncestors(ImageDefinition image) =>
        image.Provides.Concat(Ancestors(image).SelectMany(a => a.Provides)).ToList();

    // provides: entries use the Provides field's syntax: a name and at most "(= version)", no alternatives, no arch.
    private static List<string> ParseProvides(YamlFieldReader r, YamlMappingNode root)
    {
        var list = r.StringList(root, "provides") ?? new();
        foreach (var entry in list)
        {
            Relation parsed;
            try { parsed = Relation.ParseProvides(entry).Single(); }
            catch (Exception e) when (e is FormatException or InvalidOperationException)
            {
                throw r.Error(root, $"provides: '{entry}' is not one Provides entry like \"python3 (= 3.13.5-1)\" or \"python3.13\" ({e.Message})");
            }
            if (parsed.ArchQualifier != null || parsed.ArchRestrictions.Count > 0 || parsed.BuildProfiles.Count > 0)
                throw r.Error(root, $"provides: '{entry}' has an architecture qualifier or restriction; write the name and at most (= version)");
        }
        return list;
    }

    /// <summary>Package name without a "=version" pin.</summary>
    public static string PackageName(string spec)
    {
        var eq = spec.IndexOf('=');
        return (eq >= 0 ? spec[..eq] : spec).Trim();
    }

    // Architectures an image is built for before the set is constructed (inherited from the first ancestor naming them).
    private static List<string> EffectiveArchitectures(ImageDefinition img, Dictionary<string, ImageDefinition> images)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = img; ; i = images[i.From!])
            if (i.Architectures.Count > 0 || i.From == null || !images.ContainsKey(i.From) || !seen.Add(i.Name)) return i.Architectures;
    }

    private static Dictionary<string, SourceDefinition> LoadSources(string file)
    {
        var root = YamlFieldReader.ReadRoot(file, "docs/images.md");
        var r = new YamlFieldReader(file);
        r.Fields(root, "sources");
        var map = r.Mapping(root, "sources", required: true)!;
        var result = new Dictionary<string, SourceDefinition>(StringComparer.Ordinal);
        foreach (var (keyNode, valueNode) in map.Children)
        {
            var name = BoundedYaml.KeyText(keyNode, file);
            if (valueNode is not YamlMappingNode m)
                throw r.Error(valueNode, $"source '{name}' must be a mapping with url, suites, components, architectures, keyring");
            r.Fields(m, "url", "suites", "components", "architectures", "keyring", "flat", "archMap", "distro");
            var flat = r.Bool(m, "flat");
            var src = new SourceDefinition
            {
                Name = name,
                Url = r.String(m, "url", required: true)!,
                Suites = r.StringList(m, "suites") ?? (flat ? ["./"] : throw r.Error(m, $"source '{name}' needs suites: (e.g. [trixie]), or flat: true")),
                Components = r.StringList(m, "components") ?? (flat ? [] : ["main"]),
                Architectures = r.StringList(m, "architectures") ?? new(),
                Keyring = r.String(m, "keyring", required: true)!,
                Flat = flat,
                ArchMap = r.StringMap(m, "archMap")?.ToDictionary() ?? new(),
                Distro = r.String(m, "distro") ?? "debian-13",
                Line = (int)m.Start.Line,
            };
            if (!Uri.TryCreate(src.UrlFor("amd64"), UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
                throw r.Error(m, $"source '{name}' url '{src.Url}' is not an http(s) URL");
            result[name] = src;
        }
        return result;
    }

    private static ImageDefinition LoadImage(string file)
    {
        var root = YamlFieldReader.ReadRoot(file, "docs/images.md");
        var r = new YamlFieldReader(file);
        r.Fields(root, "name", "version", "description", "from", "sources", "architectures", "packages", "exclude", "provides", "user",
            "workdir", "entrypoint", "cmd", "env", "labels", "annotations", "files", "conflicts", "allow", "remove", "smoke",
            "symlinks", "requiresNetwork", "requiresPublish", "python");
        var name = r.String(root, "name", required: true)!;
        var expected = Path.GetFileNameWithoutExtension(file);
        if (name != expected)
            throw r.Error(root, $"name: '{name}' differs from the file name; name the file {name}.yaml or set name: {expected}");
        var from = r.String(root, "from");
        var sources = r.StringList(root, "sources");
        var archs = r.StringList(root, "architectures");
        if (from == null && sources == null) throw r.Error(root, "sources: is required for an image without from: (e.g. sources: [debian, debian-security])");
        if (from == null && archs == null) throw r.Error(root, "architectures: is required for an image without from: (e.g. architectures: [amd64, arm64])");
        var allow = r.Mapping(root, "allow");
        var allowances = new ImageAllowances();
        if (allow != null)
        {
            r.Fields(allow, "shell", "packageManager", "setuid", "docs", "noByteCode", "byteCodeErrors", "pythonStartupHooks");
            var startupHooks = new List<string>();
            foreach (var hook in r.Sequence(allow, "pythonStartupHooks") ?? [])
            {
                if (hook is not YamlScalarNode { Value: { } owner } || !owner.StartsWith("pypi:", StringComparison.Ordinal) || owner.Length == "pypi:".Length)
                    throw r.Error(hook, "allow: pythonStartupHooks: lists wheels by owner, e.g. [pypi:setuptools]");
                startupHooks.Add(owner);
            }
            var byteCodeErrors = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
            if (r.Mapping(allow, "byteCodeErrors") is { } errors)
                foreach (var (k, v) in errors.Children)
                {
                    var owner = BoundedYaml.KeyText(k, file);
                    if (v is not YamlSequenceNode seq || seq.Children.Count == 0 || seq.Children.Any(c => c is not YamlScalarNode { Value.Length: > 0 }))
                        throw r.Error(v, $"allow: byteCodeErrors: {owner} must list the image paths (globs) of its files that may fail to compile, e.g. [usr/lib/python3/dist-packages/foo/py2only.py]");
                    byteCodeErrors[owner] = seq.Children.Select(c => ((YamlScalarNode)c).Value!).ToList();
                }
            allowances = new ImageAllowances
            {
                Shell = r.Bool(allow, "shell"),
                PackageManager = r.Bool(allow, "packageManager"),
                Setuid = r.Bool(allow, "setuid"),
                Docs = r.Bool(allow, "docs"),
                NoByteCode = r.Bool(allow, "noByteCode"),
                ByteCodeErrors = byteCodeErrors,
                PythonStartupHooks = startupHooks,
            };
        }
        var files = new List<PayloadFiles>();
        foreach (var node in r.Sequence(root, "files") ?? [])
        {
            if (node is not YamlMappingNode fm) throw r.Error(node, "each files: entry is a mapping with source, target, mode, owner");
            r.Fields(fm, "source", "target", "mode", "owner");
            var target = r.String(fm, "target", required: true)!;
            if (!target.StartsWith('/') || target.Split('/').Contains(".."))
                throw r.Error(fm, $"files: target '{target}' must be an absolute path without '..'");
            var (uid, gid) = ParseOwner(r, fm, r.String(fm, "owner") ?? "0:0");
            var source = r.String(fm, "source", required: true)!;
            // Only {arch} is a placeholder; any other brace is a typo ({ARCH}, {platform}) that would otherwise
            // be read as a literal directory name and fail later with a confusing "does not exist".
            var rest = source.Replace(PayloadFiles.ArchPlaceholder, "", StringComparison.Ordinal);
            if (rest.Contains('{') || rest.Contains('}'))
                throw r.Error(fm, $"files: source '{source}' has an unknown placeholder; the only one is {PayloadFiles.ArchPlaceholder} (amd64 or arm64), e.g. publish/harden-{{arch}}");
            files.Add(new PayloadFiles
            {
                Source = source,
                Target = target,
                Mode = ParseMode(r, fm, r.String(fm, "mode") ?? "0644"),
                Uid = uid,
                Gid = gid,
                Line = (int)fm.Start.Line,
            });
        }
        var smoke = new List<SmokeCheck>();
        foreach (var node in r.Sequence(root, "smoke") ?? [])
        {
            if (node is not YamlMappingNode sm) throw r.Error(node, "each smoke: entry is a mapping with name and command or http");
            r.Fields(sm, "name", "command", "exitCode", "outputContains", "http", "port");
            var check = new SmokeCheck
            {
                Name = r.String(sm, "name", required: true)!,
                Command = r.StringList(sm, "command"),
                ExitCode = r.Int(sm, "exitCode") ?? 0,
                OutputContains = r.String(sm, "outputContains"),
                Http = r.String(sm, "http"),
                Port = r.Int(sm, "port") ?? 8080,
            };
            if (check.Command == null && check.Http == null) throw r.Error(sm, $"smoke check '{check.Name}' needs command: or http:");
            smoke.Add(check);
        }
        var user = r.String(root, "user") ?? "65532:65532";
        if (user is "0" or "root" or "0:0" or "root:root")
            throw r.Error(root, "user: root is refused: images run as nonroot (65532). Remove user: or name a non-zero uid");
        var workdir = r.String(root, "workdir");
        if (workdir != null && !workdir.StartsWith('/')) throw r.Error(root, $"workdir: '{workdir}' must be an absolute path");
        return new ImageDefinition
        {
            Name = name,
            File = file,
            Version = r.String(root, "version"),
            Description = r.String(root, "description"),
            From = from,
            Sources = sources ?? new(),
            Architectures = archs ?? new(),
            Packages = r.StringList(root, "packages") ?? new(),
            Exclude = r.StringList(root, "exclude") ?? new(),
            Provides = ParseProvides(r, root),
            User = user,
            Workdir = workdir,
            Entrypoint = r.StringList(root, "entrypoint"),
            Cmd = r.StringList(root, "cmd"),
            Env = r.StringMap(root, "env") ?? new(StringComparer.Ordinal),
            Labels = r.StringMap(root, "labels") ?? new(StringComparer.Ordinal),
            Annotations = r.StringMap(root, "annotations") ?? new(StringComparer.Ordinal),
            Files = files,
            Conflicts = r.StringMap(root, "conflicts") ?? new(StringComparer.Ordinal),
            Allow = allowances,
            Remove = r.StringList(root, "remove") ?? new(),
            Smoke = smoke,
            Symlinks = r.StringMap(root, "symlinks") ?? new(StringComparer.Ordinal),
            RequiresNetwork = r.String(root, "requiresNetwork"),
            RequiresPublish = r.String(root, "requiresPublish"),
            Python = ParsePython(r, root, Path.GetDirectoryName(file)!),
        };
    }

    /// <summary>Completes inherited fields (sources, architectures) from the parent chain.</summary>
    public static ImageDefinition Effective(ImageSet set, ImageDefinition image)
    {
        if (image.From == null) return image;
        var parent = Effective(set, set.Images[image.From]);
        return image with
        {
            Sources = image.Sources.Count > 0 ? image.Sources : parent.Sources,
            Architectures = image.Architectures.Count > 0 ? image.Architectures : parent.Architectures,
        };
    }

    private static int ParseMode(YamlFieldReader r, YamlNode node, string text)
    {
        try { return Convert.ToInt32(text, 8); }
        catch (FormatException) { throw r.Error(node, $"mode '{text}' is not an octal mode like \"0644\" (quote it in YAML)"); }
    }

    private static (int, int) ParseOwner(YamlFieldReader r, YamlNode node, string text)
    {
        var parts = text.Split(':');
        if (parts.Length == 2 && int.TryParse(parts[0], out var u) && int.TryParse(parts[1], out var g)) return (u, g);
        throw r.Error(node, $"owner '{text}' must be numeric uid:gid like \"65532:65532\"");
    }

    // --- python: (issue 18) -------------------------------------------------------------------------------------
    private static PythonDefinition? ParsePython(YamlFieldReader r, YamlMappingNode root, string imagesDir)
    {
        var m = r.Mapping(root, "python");
        if (m == null) return null;
        r.Fields(m, "version", "requirements", "lock", "indexes", "sitePackages");
        var version = r.String(m, "version") ?? "3.13";
        if (!System.Text.RegularExpressions.Regex.IsMatch(version, @"^3\.\d{1,2}$"))
            throw r.Error(m, $"python: version '{version}' must be a CPython minor version like \"3.13\"");
        var requirements = r.String(m, "requirements");
        var lockPath = r.String(m, "lock") ?? throw r.Error(m, "python: lock: is required: the pylock.toml path (relative to images/) that 'harden lock' writes or that uv/pip wrote");
        foreach (var (field, rel) in new[] { ("requirements", requirements), ("lock", lockPath) })
            if (rel != null && (rel.StartsWith('/') || rel.Split('/').Contains("..")))
                throw r.Error(m, $"python: {field}: '{rel}' must be a path inside images/ without '..'");
        // PEP 751: the file is named pylock.toml or pylock.<name>.toml.
        if (!System.Text.RegularExpressions.Regex.IsMatch(Path.GetFileName(lockPath), @"^pylock(\.[^.]+)?\.toml$"))
            throw r.Error(m, $"python: lock: '{lockPath}' must be named pylock.toml or pylock.<name>.toml (PEP 751)");
        var site = r.String(m, "sitePackages") ?? $"/usr/local/lib/python{version}/dist-packages";
        if (!site.StartsWith('/') || site.Split('/').Contains("..")) throw r.Error(m, $"python: sitePackages: '{site}' must be an absolute path without '..'");
        var indexes = new List<PythonIndexDefinition>();
        foreach (var node in r.Sequence(m, "indexes") ?? [])
        {
            if (node is not YamlMappingNode im) throw r.Error(node, "each python: indexes: entry is a mapping with name, url, packages");
            r.Fields(im, "name", "url", "packages", "usernameEnv", "passwordEnv");
            var name = r.String(im, "name", required: true)!;
            var url = r.String(im, "url", required: true)!;
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                throw r.Error(im, $"python index '{name}' url '{url}' is not an http(s) URL");
            if (uri.UserInfo.Length > 0)
                throw r.Error(im, $"python index '{name}' url carries credentials; remove them and name environment variables in usernameEnv:/passwordEnv: instead");
            var packages = r.StringList(im, "packages") ?? throw r.Error(im, $"python index '{name}' needs packages: (the names it may serve, or [\"*\"] for every package no other index names)");
            indexes.Add(new PythonIndexDefinition
            {
                Name = name, Url = url.TrimEnd('/') + "/", Packages = packages.Select(p => p == "*" ? p : Pep440Version.NormalizeName(p)).ToList(),
                UsernameEnv = r.String(im, "usernameEnv"), PasswordEnv = r.String(im, "passwordEnv"), Line = (int)im.Start.Line,
            });
        }
        if (requirements != null && indexes.Count == 0)
            throw r.Error(m, "python: requirements: needs indexes: to resolve against (name, url, packages)");
        if (indexes.GroupBy(i => i.Name).FirstOrDefault(g => g.Count() > 1) is { } dup)
            throw r.Error(m, $"python: indexes: '{dup.Key}' is named twice");
        if (indexes.Count(i => i.Packages.Contains("*")) > 1)
            throw r.Error(m, "python: indexes: more than one index claims \"*\": a package would have two possible origins (dependency confusion). Give one index \"*\" and name the packages of the others");
        var claimed = indexes.SelectMany(i => i.Packages.Where(p => p != "*").Select(p => (p, i.Name))).GroupBy(x => x.p).FirstOrDefault(g => g.Count() > 1);
        if (claimed != null)
            throw r.Error(m, $"python: package '{claimed.Key}' is named by indexes {string.Join(" and ", claimed.Select(x => x.Name))}: a package may come from one index only (dependency confusion)");
        return new PythonDefinition
        {
            Version = version, Requirements = requirements, Lock = lockPath, Indexes = indexes, SitePackages = site.TrimEnd('/'), Line = (int)m.Start.Line,
        };
    }
}
