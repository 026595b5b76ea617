using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using HardenImage.Build.Hardening;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Deb;
using HardenImage.Lock;
using HardenImage.Oci;
using HardenImage.Common.Storage;

namespace HardenImage.Build;

public sealed record BuildOptions
{
    /// <summary>artifacts/ (the layout goes to artifacts/oci, the manifest to artifacts/build.json).</summary>
    public required string ArtifactsDir { get; init; }
    public required string CacheRoot { get; init; }
    public LayerCompression Compression { get; init; } = LayerCompression.Gzip;
    /// <summary>SOURCE_DATE_EPOCH override for every image; default per image: <see cref="LockFile.EpochFor"/>.</summary>
    public long? SourceDateEpoch { get; init; }
    public IReadOnlyCollection<string>? Images { get; init; }
    /// <summary>--platform: only these architectures (each index then holds only them); null = every architecture of each image.</summary>
    public IReadOnlyCollection<string>? Architectures { get; init; }
    /// <summary>Rebuild even when build.json says the inputs are unchanged.</summary>
    public bool Force { get; init; }
    /// <summary>Git revision and repository URL for the index annotations (not the manifests: see docs/images.md, "Git revision and source URL").</summary>
    public string? Revision { get; init; }
    public string? SourceUrl { get; init; }
    public int Parallelism { get; init; } = Environment.ProcessorCount;
    /// <summary>Seals derived cache entries; default <see cref="CacheKey.Load(string)"/> (HARDEN_CACHE_KEY or the per-user key file).</summary>
    public CacheKey? CacheKey { get; init; }
}

/// <summary>Resolves a locked package to the path of its verified .deb in the cache.</summary>
public delegate string DebLocator(LockedPackage package);

/// <summary>What one image × architecture ended up with, for the build table.</summary>
public sealed record ArchitectureReport(
    string Image, string Architecture, int Packages, int Files, long LayerBytes, long ImageCompressedBytes,
    bool Rebuilt, IReadOnlyList<HardeningAction> Hardening, IReadOnlyDictionary<string, long> BytesByPackage);

public sealed record BuildOutcome(BuildManifest Manifest, IReadOnlyList<ArchitectureReport> Report, bool UpToDate)
{
    /// <summary>Cache entries and layout blobs that were refused (forged, corrupt, unsealed) and derived again.</summary>
    public IReadOnlyList<string> CacheRepairs { get; init; } = [];
}

/// <summary>
/// Builds the image set daemonlessly: .debs are unpacked (never configured: no maintainer script runs), merged
/// into one layer per image and architecture, hardened by the named transforms, and written as deterministic
/// OCI layers. Same lock + same image set ⇒ same digests (threat T: anyone can rebuild and compare).
/// </summary>
public sealed class ImageBuilder
{
    /// <summary>The build's own version: part of every layer key and of the fan-out inputs digest (FanOut/InputsDigest).</summary>
    // 4: layers carry byte-code (the byte-code transform), so a layer built by 3 is never reused as if current.
    // 5: gzip layers are 1 MiB chunks deflated apart (ParallelGzipStream): other bytes for the same tar, so a layer
    // gzipped by 4 is never reused (nor a build called up to date) where a clean build gets other digests.
    public const string ToolVersion = "harden-build/5";
    private readonly ImageSet _set;
    private readonly LockFile _lock;
    private readonly BuildOptions _options;
    private readonly ContentStore _store;
    private readonly PackageUnpacker _unpacker;
    private readonly PayloadReader _payload;
    private readonly CacheKey _key;
    private readonly ConcurrentQueue<string> _repairs = new();
    /// <summary>Layout blobs hashed in this run (digest → intact), so a layer shared by a chain is read once.</summary>
    private readonly ConcurrentDictionary<string, bool> _verifiedBlobs = new(StringComparer.Ordinal);

    public ImageBuilder(ImageSet set, LockFile lockFile, BuildOptions options)
    {
        _set = set; _lock = lockFile; _options = options;
        _key = options.CacheKey ?? CacheKey.Load(options.CacheRoot);
        _store = new ContentStore(options.CacheRoot);
        _unpacker = new PackageUnpacker(_store, options.CacheRoot, _key, Repair);
        _payload = new PayloadReader(set.Directory);
    }

    private void Repair(string what)
    {
        if (!_repairs.Contains(what)) _repairs.Enqueue(what);
    }

    public string LayoutDir => ArtifactPaths.Layout(_options.ArtifactsDir);
    public string ManifestPath => ArtifactPaths.BuildRecord(_options.ArtifactsDir);

    /// <summary>
    /// The timestamp of every file, config and manifest of <paramref name="image"/>: --source-date-epoch, else
    /// $SOURCE_DATE_EPOCH (an invalid value is an error, never ignored), else the image's own inputs — the newest
    /// Release Date among the suites its and its parents' locked packages come from. So adding an unrelated image,
    /// or refreshing a suite it does not use, keeps its digests bit for bit.
    /// </summary>
    public long EpochOf(ImageDefinition image) =>
        _options.SourceDateEpoch ?? SourceDateEpoch.FromEnvironment() ?? _lock.EpochFor(image.Name).ToUnixTimeSeconds();

    /// <summary>
    /// The previous build, when nothing that decides the selected images' bytes changed, its record in build.json
    /// is the one this cache sealed, every blob in the layout still hashes to its digest and each tag still names
    /// the image (threat T: an edited build.json or a swapped blob is never reported "up to date"). The cost is
    /// hashing the layout's blobs once.
    /// </summary>
    public BuildOutcome? TryUpToDate()
    {
        if (_options.Force) return null;
        var images = _set.Select(_options.Images);
        CheckLocked(images);
        var previous = BuildManifest.LoadOrRebuildOver(ManifestPath, Repair);
        if (previous == null || !Directory.Exists(LayoutDir)) return null;
        var layout = OciLayout.OpenOrCreate(LayoutDir);
        foreach (var i in images)
        {
            if (previous.Image(i.Name) is not { } b || b.BuildKey != BuildKey(i, EpochOf(i)) || !IsSealed(b)) return null;
            if (!BlobsIntact(b)) return null;
            if (layout.Resolve(i.Name)?.Digest != b.Index)
            {
                Repair($"{LayoutDir}/index.json: tag '{i.Name}' does not name {b.Index} as build.json says; rebuilding");
                return null;
            }
        }
        var names = images.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        return new BuildOutcome(previous with { Images = previous.Images.Where(b => names.Contains(b.Name)).ToList() }, [], UpToDate: true);
    }

    private void CheckLocked(IReadOnlyList<ImageDefinition> images)
    {
        foreach (var image in images)
        {
            if (_lock.Image(image.Name) is not { } locked)
                throw new HardenException($"{image.File}: image '{image.Name}' is not in the lock. Run 'harden lock' first.");
            if (locked.InputsSha256 != _set.InputsSha256(image))
                throw new HardenException($"{image.File}: changed since it was locked. Run 'harden lock' to update images/images.lock.json.");
        }
    }

    /// <summary>Builds the selected images (and their ancestors).</summary>
    public async Task<BuildOutcome> BuildAsync(DebLocator debs, IProgress<string>? progress = null, CancellationToken ct = default)
    {
        // Unpacks started while the .debs downloaded end first, before any way out (up to date, an edited image):
        // none may outlive the build. A failed one fails again, and is reported, below.
        try { await Task.WhenAll(_early); }
        catch (Exception)
        {
            // Cancelled: say so (exit 130), not an unpack's error that happened to come first. Otherwise the build's
            // own unpack of that package meets the error again and reports it.
            ct.ThrowIfCancellationRequested();
        }
        var upToDate = TryUpToDate();
        if (upToDate != null) return upToDate;
        try
        {
            // The bad file was evicted when it was read: building again unpacks its package from the verified .deb
            // (which rewrites all of that package's files). After a crash several packages may hold torn files,
            // so this repeats while each pass meets a new one, a bounded number of times.
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var pass = 1; ; pass++)
            {
                try
                {
                    return await BuildOnceAsync(debs, progress, firstPass: pass == 1, ct);
                }
                catch (Exception e) when (Unwrap(e) is CorruptCacheEntryException corrupt && pass <= MaxRepairPasses && seen.Add(corrupt.CachePath))
                {
                    Repair($"cache file {corrupt.CachePath} {corrupt.Problem}; unpacked the package again and rebuilt");
                    progress?.Report("rebuilding after a corrupt cache entry");
                }
            }
        }
        finally
        {
            // Their temporary interpreter trees go; the compilers stay listed (ByteCodeCompilers) and would write them again.
            foreach (var python in _pythons.Values.Where(p => p.IsValueCreated)) python.Value.Dispose();
        }
    }

    /// <summary>How many corrupt cache entries one build repairs before it gives up and says so.</summary>
    private const int MaxRepairPasses = 16;

    /// <summary>Interpreters for the byte-code transform, one per interpreter package set, shared by the architectures.</summary>
    private readonly ConcurrentDictionary<string, Lazy<PythonByteCodeCompiler>> _pythons = new(StringComparer.Ordinal);

    /// <summary>Compilers of earlier passes of this build (a repair pass starts with new ones).</summary>
    private readonly List<PythonByteCodeCompiler> _earlierPythons = [];

    /// <summary>Python byte-code compilers run in this build, in every pass (for measurements and tests).</summary>
    public IReadOnlyList<PythonByteCodeCompiler> ByteCodeCompilers =>
        _earlierPythons.Concat(_pythons.Values.Where(p => p.IsValueCreated).Select(p => p.Value)).ToList();

    private IReadOnlyList<LockedPackage> LockedFor(ImageDefinition image, string arch) =>
        _lock.Image(image.Name)?.Architectures.FirstOrDefault(a => a.Architecture == arch)?.Packages ?? [];

    private static readonly System.Text.RegularExpressions.Regex PythonMinimal = new("^python(3\\.[0-9]+)-minimal$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>
    /// The image's own interpreter (python3.X-minimal in its chain's lock), as built for this machine's
    /// architecture: it compiles the byte-code of every architecture, without emulation. Its tree is the
    /// packages of the chain up to the image that installs it, so python and its children share one.
    /// </summary>
    private PythonByteCodeCompiler? PythonFor(ImageDefinition image, string arch, DebLocator debs)
    {
        if (image.Allow.NoByteCode) return null;
        var chain = _set.Ancestors(image).Reverse().Append(image).ToList();
        var versions = chain.SelectMany(i => LockedFor(i, arch)).Select(p => PythonMinimal.Match(p.Name))
            .Where(m => m.Success).Select(m => m.Groups[1].Value).Distinct().Order(StringComparer.Ordinal).ToList();
        if (versions.Count == 0) return null;
        if (versions.Count > 1)
            throw new HardenException($"{image.File}: image {image.Name} ({arch}) installs several Python interpreters ({string.Join(", ", versions)}); byte-code is compiled for one. Exclude all but one, or set allow: {{noByteCode: true}}.");
        var version = versions[0];
        var host = PythonByteCodeCompiler.HostArchitecture
                   ?? throw new HardenException($"{image.File}: byte-code is compiled by the image's amd64 or arm64 interpreter, and this machine is neither; build on amd64 or arm64, or set allow: {{noByteCode: true}}.");
        var owner = chain.FindIndex(i => LockedFor(i, host).Any(p => p.Name == $"python{version}-minimal"));
        if (owner < 0)
            throw new HardenException($"{image.File}: image {image.Name} has Python {version} for {arch}, but the lock has no {host} build of it to compile byte-code with (this machine is {host}; no emulation is used). " +
                                      $"Add {host} to the image's architectures (and run 'harden lock'), or set allow: {{noByteCode: true}}.");
        var packages = chain.Take(owner + 1).SelectMany(i => LockedFor(i, host)).OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
        var identity = string.Join("\n", packages.Select(p => p.Sha256));
        return _pythons.GetOrAdd(identity, _ => new Lazy<PythonByteCodeCompiler>(() => new PythonByteCodeCompiler(version,
            packages.Select(p => new InterpreterPackage(p.Name, p.Sha256,
                Unpacked(p, debs).Entries)).ToList(),
            _store, _options.CacheRoot, _key))).Value;
    }

    /// <summary>Each .deb unpacked (or its cached tree read) once per build, whichever layer or interpreter asks first.</summary>
    private readonly ConcurrentDictionary<string, Lazy<UnpackedPackage>> _unpacked = new(StringComparer.Ordinal);

    private UnpackedPackage Unpacked(LockedPackage p, DebLocator debs) =>
        _unpacked.GetOrAdd(p.Sha256, _ => new Lazy<UnpackedPackage>(() =>
            _unpacker.Get(p.Sha256, debs(p), $"{p.Name} {p.Version} ({p.Architecture})"))).Value;

    private readonly ConcurrentBag<Task> _early = [];
    private SemaphoreSlim? _earlySlots;
    private Dictionary<string, LockedPackage>? _needed;

    /// <summary>
    /// Starts unpacking the package of a .deb that has just arrived in the cache, while the others still download:
    /// otherwise a cold build unpacks only after the last download, a core idle meanwhile (on a real network, the
    /// whole download time). <paramref name="debs"/> must be the proof's locator, as for the build: nothing unproven is
    /// unpacked. The build's own unpack then finds the package done (the same per-package Lazy), so nothing is
    /// unpacked twice; a .deb this build does not need is left alone. Call before <see cref="BuildAsync"/>.
    /// </summary>
    public void StartUnpacking(string sha256, DebLocator debs, CancellationToken ct)
    {
        lock (_early)
        {
            _needed ??= _set.Select(_options.Images).SelectMany(i => ArchitecturesOf(i).SelectMany(a => LockedFor(i, a)))
                .DistinctBy(p => p.Sha256).ToDictionary(p => p.Sha256, StringComparer.Ordinal);
            _earlySlots ??= new SemaphoreSlim(Math.Max(1, _options.Parallelism));
        }
        if (!_needed.TryGetValue(sha256, out var package)) return;
        var slots = _earlySlots;
        _early.Add(Task.Run(async () =>
        {
            await slots.WaitAsync(ct);
            try
            {
                Unpacked(package, debs);
                Interlocked.Increment(ref _unpackedWhileFetching);
            }
            finally { slots.Release(); }
        }, ct));
    }

    private int _unpackedWhileFetching;

    /// <summary>
    /// Waits for every unpack <see cref="StartUnpacking"/> began, failures ignored: for a fetch that failed, so none
    /// outlives the command (cancel their token first and those not yet running never start).
    /// </summary>
    public async Task AbandonUnpackingAsync()
    {
        try { await Task.WhenAll(_early); }
        catch (Exception) { /* the fetch's failure is the one reported */ }
    }

    /// <summary>Packages <see cref="StartUnpacking"/> unpacked before the build began (for measurements and tests).</summary>
    public int UnpackedWhileFetching => Volatile.Read(ref _unpackedWhileFetching);

    /// <summary>
    /// Unpacks every package the selected layers need, several at a time, before the layers are assembled: a chain
    /// is assembled layer after layer, so unpacking inside it would leave all but one core idle on a cold cache
    /// (xz/zstd decoding and hashing are most of a cold build). The content store is content-addressed, so the
    /// order in which packages land in it changes nothing in the output.
    /// </summary>
    private async Task UnpackAllAsync(IReadOnlyList<ImageDefinition> images, DebLocator debs, CancellationToken ct)
    {
        var packages = images.SelectMany(i => ArchitecturesOf(i).SelectMany(a => LockedFor(i, a)))
            .DistinctBy(p => p.Sha256).OrderByDescending(p => p.Size).ToList(); // largest first: the tail stays short
        await Parallel.ForEachAsync(packages, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, _options.Parallelism), CancellationToken = ct },
            (p, _) => { Unpacked(p, debs); return ValueTask.CompletedTask; });
    }

    // Parallel work (unpack, the interpreter's tree) may meet several corrupt entries at once: any one of them
    // means "repair and build again".
    private static Exception Unwrap(Exception e) => e is AggregateException a
        ? a.Flatten().InnerExceptions.FirstOrDefault(i => i is CorruptCacheEntryException) ?? (a.InnerExceptions.Count == 1 ? Unwrap(a.InnerExceptions[0]) : e)
        : e;

    private async Task<BuildOutcome> BuildOnceAsync(DebLocator debs, IProgress<string>? progress, bool firstPass, CancellationToken ct)
    {
        var images = _set.Select(_options.Images);
        var epochs = images.ToDictionary(i => i.Name, EpochOf, StringComparer.Ordinal);
        var previous = BuildManifest.LoadOrRebuildOver(ManifestPath, Repair);
        var keys = images.ToDictionary(i => i.Name, i => BuildKey(i, epochs[i.Name]), StringComparer.Ordinal);
        var layerKeys = images.ToDictionary(i => i.Name, i => LayerKey(i, epochs[i.Name]), StringComparer.Ordinal);

        var layout = OciLayout.OpenOrCreate(LayoutDir);
        var archs = images.SelectMany(i => ArchitecturesOf(i)).Distinct().Order(StringComparer.Ordinal).ToList();

        // 0. Unpack what the layers need, in parallel (a corrupt entry found by the first attempt is unpacked again).
        // A repair pass starts from the cache again: interpreters of an earlier pass hold the file lists it read.
        // The first pass keeps what StartUnpacking did while the .debs downloaded.
        foreach (var python in _pythons.Values.Where(p => p.IsValueCreated))
        {
            python.Value.Dispose();
            _earlierPythons.Add(python.Value);
        }
        _pythons.Clear();
        if (!firstPass) _unpacked.Clear();
        using (Timings.Span("build: unpack every package (parallel)")) await UnpackAllAsync(images, debs, ct);

        // 1. Assemble every layer's tree, one task per architecture chain, and 2. write each layer that changed as soon
        // as it is assembled: a parent's layer compresses while its child is still assembling (python's byte-code
        // compile), instead of every core waiting for the slowest chain. A previous layer is reused only when its
        // record is sealed by this cache and its blob still hashes to its digest. Each image's layer carries its own
        // timestamp, so each gets a writer of its own epoch; the layer bytes do not depend on the order of writing.
        var assembled = new Dictionary<(string Image, string Arch), AssembledLayer>();
        var writes = new Dictionary<(string Image, string Arch), Task<WrittenLayer>>();
        using var writers = new SemaphoreSlim(Math.Max(1, _options.Parallelism));
        var assemblyFailed = false;
        try
        {
            using (Timings.Span("build: assemble, harden and write every layer"))
            await Task.WhenAll(archs.Select(arch => Task.Run(() =>
            {
                var lowerByImage = new Dictionary<string, Dictionary<string, FsNode>>(StringComparer.Ordinal);
                foreach (var image in images.Where(i => ArchitecturesOf(i).Contains(arch)))
                {
                    ct.ThrowIfCancellationRequested();
                    progress?.Report($"assembling {image.Name} ({arch})");
                    var lower = image.From != null ? lowerByImage[image.From] : new Dictionary<string, FsNode>(StringComparer.Ordinal);
                    AssembledLayer layer;
                    using (Timings.Span($"build: assemble {image.Name} ({arch})")) layer = AssembleLayer(image, arch, lower, debs);
                    lock (assembled) assembled[(image.Name, arch)] = layer;
                    if (_options.Force || previous == null || !ReusableLayer(previous.Image(image.Name), layerKeys[image.Name], arch))
                    {
                        var spec = new LayerSpec($"{image.Name} ({arch})", ToLayerEntries(layer.Tree));
                        var epoch = epochs[image.Name];
                        var write = Task.Run(async () =>
                        {
                            await writers.WaitAsync(ct);
                            try
                            {
                                progress?.Report($"compressing {spec.Name}");
                                using (Timings.Span($"build: write layer {spec.Name} (tar, {_options.Compression}, digest)"))
                                    return new LayerWriter(new LayerWriterOptions { SourceDateEpoch = epoch, Compression = _options.Compression }).WriteLayer(layout, spec);
                            }
                            finally { writers.Release(); }
                        }, ct);
                        lock (writes) writes[(image.Name, arch)] = write;
                    }
                    lowerByImage[image.Name] = layer.Tree.Merged();
                }
            }, ct)));
        }
        catch
        {
            assemblyFailed = true;
            throw;
        }
        finally
        {
            // Every write started ends before the build goes on or fails: none may outlive it.
            Task[] started;
            lock (writes) started = writes.Values.ToArray<Task>();
            try { await Task.WhenAll(started); }
            catch (Exception) when (assemblyFailed) { /* the assembly's failure is the one to report */ }
        }
        var ownLayer = writes.ToDictionary(kv => kv.Key, kv => kv.Value.Result);
        foreach (var (key, _) in assembled)
        {
            if (ownLayer.ContainsKey(key)) continue;
            var old = previous!.Image(key.Image)!.Architectures.First(a => a.Architecture == key.Arch).Layers[^1];
            ownLayer[key] = new WrittenLayer($"{key.Image} ({key.Arch})",
                new Descriptor { MediaType = old.MediaType, Digest = old.Digest, Size = old.Size }, new TarSummary(old.DiffId, 0, 0, 0));
        }

        // 3. Configs, manifests and indexes; tag everything in one atomic index.json update.
        var writtenImages = new List<WrittenImage>();
        var built = new List<BuiltImage>();
        var report = new List<ArchitectureReport>();
        var layersByImage = new Dictionary<(string, string), List<WrittenLayer>>();
        var manifestByImage = new Dictionary<(string, string), string>();
        foreach (var image in images)
        {
            var imageWriter = new ImageWriter(layout, epochs[image.Name]);
            var platforms = new List<PlatformImageSpec>();
            foreach (var arch in ArchitecturesOf(image).Order(StringComparer.Ordinal))
            {
                var layers = image.From != null ? new List<WrittenLayer>(layersByImage[(image.From, arch)]) : new List<WrittenLayer>();
                layers.Add(ownLayer[(image.Name, arch)]);
                layersByImage[(image.Name, arch)] = layers;
                var layer = assembled[(image.Name, arch)];
                platforms.Add(new PlatformImageSpec
                {
                    Platform = new Platform { Architecture = arch, Variant = arch == "arm64" ? "v8" : null },
                    Layers = layers,
                    Config = ContainerConfigFor(image, layer.Tree),
                    History = layers.Select(l => new HistoryEntry { Created = imageWriter.Created, CreatedBy = "harden build: " + l.Name }).ToList(),
                    Annotations = ManifestAnnotations(image, arch, imageWriter.Created, manifestByImage),
                });
            }
            var indexAnnotations = ManifestAnnotations(image, null, imageWriter.Created, manifestByImage);
            if (_options.Revision != null) indexAnnotations[Annotations.Revision] = _options.Revision;
            if (_options.SourceUrl != null) indexAnnotations[Annotations.Source] = _options.SourceUrl;
            var wi = imageWriter.WriteImage(new ImageSpec { Name = image.Name, Version = image.Version, Platforms = platforms, Annotations = indexAnnotations });
            writtenImages.Add(wi);
            var builtArchs = new List<BuiltArchitecture>();
            foreach (var m in wi.Manifests)
            {
                var arch = m.Config.Architecture;
                manifestByImage[(image.Name, arch)] = m.Descriptor.Digest;
                var layer = assembled[(image.Name, arch)];
                var layers = layersByImage[(image.Name, arch)];
                var compressed = layers.Sum(l => l.Descriptor.Size) + m.ConfigDescriptor.Size + m.Descriptor.Size;
                builtArchs.Add(new BuiltArchitecture
                {
                    Architecture = arch,
                    Platform = PlatformName.ForArchitecture(arch),
                    Manifest = m.Descriptor.Digest,
                    ManifestSize = m.Descriptor.Size,
                    Config = m.ConfigDescriptor.Digest,
                    Layers = layers.Select(l => new BuiltLayer(l.Descriptor.Digest, l.Descriptor.Size, l.DiffId, l.Descriptor.MediaType)).ToList(),
                    CompressedSize = compressed,
                    Packages = layer.Packages.Count,
                });
                report.Add(new ArchitectureReport(image.Name, arch, layer.Packages.Count, layer.Tree.Count,
                    ownLayer[(image.Name, arch)].Descriptor.Size, compressed, ownLayer[(image.Name, arch)].Tar.Size > 0,
                    layer.Actions, layer.BytesByPackage));
            }
            built.Add(new BuiltImage
            {
                Name = image.Name,
                Version = image.Version,
                From = image.From,
                Index = wi.Index.Digest,
                IndexSize = wi.Index.Size,
                // Registry tags (the layout's ref names are "name" and "name:version"): the version, else latest.
                Tags = image.Version != null ? [image.Version] : ["latest"],
                BuildKey = keys[image.Name],
                LayerKey = layerKeys[image.Name],
                Epoch = epochs[image.Name],
                Architectures = builtArchs,
            });
        }
        new ImageWriter(layout, 0).Tag(writtenImages);

        // Per image, under the record lock: entries other processes or earlier runs wrote for other images stay.
        var manifest = BuildManifest.Update(ManifestPath, built, name => _set.Images.ContainsKey(name));
        foreach (var b in built) Seal(b);
        var names = built.Select(b => b.Name).ToHashSet(StringComparer.Ordinal);
        return new BuildOutcome(manifest with { Images = manifest.Images.Where(b => names.Contains(b.Name)).ToList() }, report, UpToDate: false) { CacheRepairs = _repairs.ToList() };
    }

    /// <summary>The image's architectures, narrowed by --platform (a platform the image is not built for is an error).</summary>
    private IReadOnlyList<string> ArchitecturesOf(ImageDefinition image)
    {
        var all = ImageSet.Effective(_set, image).Architectures;
        if (_options.Architectures == null) return all.ToList();
        var selected = all.Where(_options.Architectures.Contains).ToList();
        if (selected.Count == 0)
            throw new HardenException($"{image.File}: '{image.Name}' is built for {string.Join(", ", all.Select(PlatformName.ForArchitecture))}, none of --platform {string.Join(", ", _options.Architectures.Select(PlatformName.ForArchitecture))}");
        return selected;
    }

    // Build records: what build.json says about an image is trusted for reuse only when this cache sealed it
    // (<cache>/builds-v1/<layer key>, an HMAC with the CacheKey over every digest): build.json sits in artifacts/,
    // which may be restored or edited, and pointing it at another self-consistent image must not be "up to date".
    private const string BuildSealPurpose = "build-record-v1";

    private string SealPath(string layerKey) => Path.Combine(_options.CacheRoot, "builds-v1", layerKey);

    private static string[] SealedFields(BuiltImage b) =>
        [b.Name, b.BuildKey, b.LayerKey ?? "", b.Index, .. b.Architectures.Select(a =>
            $"{a.Architecture} {a.Manifest} {a.Config} {string.Join(",", a.Layers.Select(l => $"{l.Digest}/{l.Size}/{l.DiffId}/{l.MediaType}"))}")];

    private void Seal(BuiltImage b) => AtomicFile.WriteAllText(SealPath(b.LayerKey!), _key.Seal(BuildSealPurpose, SealedFields(b)) + "\n");

    private bool IsSealed(BuiltImage b)
    {
        var path = b.LayerKey != null && Sha256Hex.IsValid(b.LayerKey) ? SealPath(b.LayerKey) : null;
        if (path == null || !ContentStore.IsRegularFile(path)) return false; // never sealed here (other cache, or older harden): rebuild quietly
        string? seal;
        try { seal = new FileInfo(path).Length <= PackageUnpacker.MaxSealFileBytes ? File.ReadAllText(path).Trim() : null; }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return false; } // pruned since the check: rebuild quietly
        if (seal != null && _key.Verify(seal, BuildSealPurpose, SealedFields(b)))
        {
            LastUse.Refresh(path); // it made a build up to date, or a layer reusable: harden cache prune keeps it
            return true;
        }
        Repair($"{ManifestPath}: the record of image '{b.Name}' is not the one this cache sealed (edited, or built with another cache key); rebuilding");
        return false;
    }

    /// <summary>Every blob of the image (index, manifests, configs, layers) hashes to its digest.</summary>
    private bool BlobsIntact(BuiltImage b) =>
        new[] { b.Index }.Concat(b.Architectures.SelectMany(a => new[] { a.Manifest, a.Config }.Concat(a.Layers.Select(l => l.Digest))))
            .All(d => BlobIntact(d, b.Name));

    private bool BlobIntact(string digest, string image) => _verifiedBlobs.GetOrAdd(digest, d =>
    {
        if (!Digest.TryParse(d, out var parsed)) return false;
        var path = Path.Combine(LayoutDir, "blobs", "sha256", parsed.Hex);
        if (!File.Exists(path)) return false;
        if (Digest.Prefix + Sha256Hex.OfFile(path) == d) return true;
        Repair($"{path} (image {image}) does not match its digest (tampered or corrupt); it is written again");
        return false;
    });

    /// <summary>The previous build's own layer of this image and architecture, if it may be reused as is.</summary>
    private bool ReusableLayer(BuiltImage? previous, string layerKey, string arch)
    {
        if (previous == null || previous.LayerKey != layerKey || !IsSealed(previous)) return false;
        var own = previous.Architectures.FirstOrDefault(a => a.Architecture == arch)?.Layers.LastOrDefault();
        return own != null && BlobIntact(own.Digest, previous.Name);
    }

    private sealed record AssembledLayer(FsTree Tree, List<HardeningAction> Actions, List<InstalledPackage> Packages, Dictionary<string, long> BytesByPackage);

    private AssembledLayer AssembleLayer(ImageDefinition image, string arch, Dictionary<string, FsNode> lower, DebLocator debs)
    {
        var locked = _lock.Image(image.Name)!.Architectures.FirstOrDefault(a => a.Architecture == arch)
                     ?? throw new HardenException($"{image.File}: not locked for {arch}. Run 'harden lock'.");
        var tree = new FsTree(lower);
        var isRoot = image.From == null;
        var installed = new List<InstalledPackage>();
        // The symlinks below this layer; Merge adds each one it places (threat T: nothing is written through one).
        var symlinks = new PathSafety(tree.Lower.Values.Where(n => n.Type == FsNodeType.Symlink)
            .Select(n => KeyValuePair.Create(n.Path, n.LinkTarget ?? "")));
        if (isRoot) AddMergedUsrLinks(tree, arch);
        var contested = new Dictionary<string, (string Winner, List<string> Shippers)>(StringComparer.Ordinal);
        foreach (var pkg in locked.Packages.OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            var label = $"{pkg.Name} {pkg.Version} ({pkg.Architecture})";
            var unpacked = Unpacked(pkg, debs);
            installed.Add(new InstalledPackage
            {
                Name = unpacked.Name, Version = unpacked.Version, Architecture = unpacked.Architecture,
                ControlText = unpacked.ControlText, Md5sums = unpacked.Md5sums, MaintainerScripts = unpacked.MaintainerScripts,
                Alternatives = unpacked.Alternatives,
            });
            foreach (var e in unpacked.Entries) Merge(tree, symlinks, image, pkg.Name, e, contested);
        }
        // A declared winner may come later in name order than the packages it beats; it must really ship the path.
        foreach (var (path, (winner, shippers)) in contested.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            if (tree.Resolve(path)?.Owner == winner) continue;
            var names = shippers.Distinct().ToList();
            throw new HardenException($"{image.File}: conflicts: /{path} names '{winner}', but it is shipped by " +
                $"{string.Join(", ", names.SkipLast(1))} and {names[^1]}.");
        }
        // Python wheels (issue 18): unpacked into site-packages after the .debs (a clash with a Debian file is refused
        // unless conflicts: names the winner), before the payload; glibc is the chain's locked libc6 for this arch.
        if (image.Python != null)
        {
            var libc6 = _set.Ancestors(image).Prepend(image)
                .Select(i => _lock.Image(i.Name)?.Architectures.FirstOrDefault(a => a.Architecture == arch)?.Packages.FirstOrDefault(p => p.Name == "libc6")?.Version)
                .FirstOrDefault(v => v != null);
            new HardenImage.Python.WheelInstaller(_store, new HardenImage.Python.WheelCache(_options.CacheRoot)).Install(_set, image, arch,
                HardenImage.Python.WheelCompatibility.GlibcFromLibc6(libc6), tree, symlinks, n => Place(tree, symlinks, n, $"image {image.Name}: {n.Owner}"));
        }
        AddPayload(tree, symlinks, image, arch);
        var actions = new List<HardeningAction>();
        var context = new HardeningContext
        {
            Image = image, Architecture = arch, IsRootImage = isRoot, Packages = installed,
            ReadContent = n => n.Inline ?? _store.ReadVerified(n.ContentSha256!, n.Size),
            Python = PythonFor(image, arch, debs),
        };
        foreach (var t in StandardTransforms.All())
            using (Timings.Span($"build: transform {t.Name} on {image.Name} ({arch})")) t.Apply(tree, context, actions);
        AddAncestorDirectories(tree);
        var bytes = tree.Nodes.GroupBy(n => n.Owner, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Sum(n => n.Size), StringComparer.Ordinal);
        return new AssembledLayer(tree, actions, installed, bytes);
    }

    /// <summary>Debian 13 is merged-/usr: /bin, /sbin and /lib* are links into /usr. Keep that shape.</summary>
    private static void AddMergedUsrLinks(FsTree tree, string arch)
    {
        tree.EnsureDirectory("usr");
        foreach (var d in arch == "amd64" ? new[] { "bin", "sbin", "lib", "lib64" } : new[] { "bin", "sbin", "lib" })
        {
            tree.EnsureDirectory("usr/" + d);
            tree.Set(new FsNode { Path = d, Type = FsNodeType.Symlink, Mode = 511, LinkTarget = "usr/" + d, Owner = "harden:merged-usr" });
        }
    }

    private static DebEntryType DebTypeOf(FsNodeType t) => t switch
    {
        FsNodeType.Directory => DebEntryType.Directory,
        FsNodeType.Symlink => DebEntryType.Symlink,
        FsNodeType.HardLink => DebEntryType.HardLink,
        _ => DebEntryType.File,
    };

    private static void Merge(FsTree tree, PathSafety symlinks, ImageDefinition image, string package, UnpackedEntry e,
        Dictionary<string, (string Winner, List<string> Shippers)> contested)
    {
        var who = $"image {image.Name}: package {package}";
        // One merged-/usr rule for the whole code base (Deb/PathSafety): bin/x → usr/bin/x, the alias links
        // themselves are ours (already placed), any other non-directory entry at an alias name is refused.
        var canonical = MergedUsr.Canonicalise(
            new DebEntry(e.Path, DebTypeOf(e.Type), (UnixFileMode)e.Mode, e.Uid, e.Gid, e.Size, e.LinkTarget, default), who);
        if (MergedUsr.IsAliasSymlink(canonical)) return;
        var path = canonical.Path;
        // Refuse writes through a symlink (threat T/E): a package could redirect a later file elsewhere.
        symlinks.EnsureNotThroughSymlink(path, who);
        var node = new FsNode
        {
            Path = path, Type = e.Type, Mode = e.Mode, Uid = e.Uid, Gid = e.Gid, Size = e.Size,
            ContentSha256 = e.Sha256, LinkTarget = e.LinkTarget, Owner = package,
        };
        var existing = tree.Resolve(path);
        if (existing == null) { Place(tree, symlinks, node, who); return; }
        if (existing.Type == FsNodeType.Directory && node.Type == FsNodeType.Directory) return;
        if (existing.Type == FsNodeType.Symlink && node.Type == FsNodeType.Directory)
            throw new HardenException($"image {image.Name}: package {package} ships /{e.Path}/, which would be written through the symlink /{path} → {existing.LinkTarget} (from {existing.Owner}); refusing it.");
        // A directory is never replaced, not even by a declared winner (dpkg refuses it too: "trying to overwrite
        // directory ... with nondirectory"): the entries already under it would end up behind the symlink, written
        // wherever it points on extraction, or under a file (threat T).
        if (existing.Type == FsNodeType.Directory)
            throw new HardenException($"image {image.Name}: package {package} ships /{path} as a {node.Type.ToString().ToLowerInvariant()}, but /{path} is a directory (from {existing.Owner}); " +
                "a directory is never replaced, not even under conflicts: (what is under it would end up behind a symlink or under a file). Exclude one of the two packages.");
        // Identical means the whole entry: owner too, or a setuid file of another uid would merge silently (threat E).
        if (existing.Type == node.Type && existing.ContentSha256 == node.ContentSha256 && existing.LinkTarget == node.LinkTarget
            && existing.Mode == node.Mode && existing.Uid == node.Uid && existing.Gid == node.Gid)
            return;
        if (image.Conflicts.TryGetValue("/" + path, out var winner) || image.Conflicts.TryGetValue(path, out winner))
        {
            if (winner == package) Place(tree, symlinks, node, who);
            else if (winner != existing.Owner)
            {
                // The winner may be merged later (packages go in name order): checked once every package is in.
                if (!contested.TryGetValue(path, out var c)) contested[path] = c = (winner, [existing.Owner]);
                c.Shippers.Add(package);
            }
            return;
        }
        throw new HardenException($"image {image.Name}: packages {existing.Owner} and {package} both ship /{path} with different content. " +
            $"Declare which one wins in {Path.GetFileName(image.File)} under conflicts: (\"/{path}\": {package}), or exclude one.");
    }

    /// <summary>Sets a node and keeps the symlink list in step with the tree.</summary>
    private static void Place(FsTree tree, PathSafety symlinks, FsNode node, string who)
    {
        // Entries live only under directories, and a directory is never replaced by a non-directory: either way
        // entries would end up under a file, which extractors resolve differently (threat T).
        for (var dir = FsTree.ParentOf(node.Path); dir.Length > 0; dir = FsTree.ParentOf(dir))
            if (tree.Resolve(dir) is { Type: not (FsNodeType.Directory or FsNodeType.Symlink) } above)
                throw new HardenException($"{who}: /{node.Path} would be placed under /{dir}, which is a {above.Type.ToString().ToLowerInvariant()} (from {above.Owner}); refusing it.");
        if (node.Type != FsNodeType.Directory && tree.Resolve(node.Path) is { Type: FsNodeType.Directory } replaced)
            throw new HardenException($"{who}: /{node.Path} is a directory (from {replaced.Owner}); a directory is never replaced by a {node.Type.ToString().ToLowerInvariant()} (what is under it would end up under it). Choose another target.");
        tree.Set(node);
        if (node.Type == FsNodeType.Symlink) symlinks.AddSymlink(node.Path, node.LinkTarget ?? "");
        else symlinks.RemoveSymlink(node.Path);
    }

    private void AddPayload(FsTree tree, PathSafety symlinks, ImageDefinition image, string arch)
    {
        foreach (var f in image.Files)
        {
            var where = $"{image.File}:{f.Line}";
            var source = f.SourceFor(arch);
            var items = _payload.List(f, arch, where);
            var top = items[0].RelativePath;
            var target = MergedUsr.Canonicalise(f.Target.Trim('/'));
            foreach (var item in items)
            {
                var path = item.RelativePath == top ? target : target + item.RelativePath[top.Length..];
                // The package records are the build's word, from the lock: a payload replacing a parent's
                // status.d/<pkg> would tell every scanner (ECR/Inspector, trivy, grype) another version (threat R/T).
                if (path == "var/lib/dpkg" || path.StartsWith("var/lib/dpkg/", StringComparison.Ordinal))
                    throw new HardenException($"{where}: files: target {f.Target} writes /{path}: package records are written by the build from the lock " +
                                              "(scanners trust them); a payload cannot add or replace them. Install the software as a package, or put the payload elsewhere.");
                symlinks.EnsureNotThroughSymlink(path, $"{where}: files: target {f.Target}");
                tree.EnsureDirectory(FsTree.ParentOf(path));
                if (item.IsDirectory)
                {
                    Place(tree, symlinks, new FsNode { Path = path, Type = FsNodeType.Directory, Mode = 493, Uid = f.Uid, Gid = f.Gid, Owner = "payload:" + f.Source }, where);
                    continue;
                }
                (string Sha, long Size) stored;
                using (var content = _payload.OpenFile(item, where, source)) stored = _store.Put(content);
                var mode = item.Executable ? f.Mode | 0b001_001_001 : f.Mode;
                Place(tree, symlinks, new FsNode { Path = path, Type = FsNodeType.File, Mode = mode, Uid = f.Uid, Gid = f.Gid, Size = stored.Size, ContentSha256 = stored.Sha, Owner = "payload:" + f.Source }, where);
            }
        }
    }

    /// <summary>
    /// A child layer repeats the directories above its files with the lower layer's metadata, so a tar reader
    /// that creates missing parents cannot reset, say, /tmp's 1777 to 0755.
    /// </summary>
    private static void AddAncestorDirectories(FsTree tree)
    {
        foreach (var node in tree.Nodes.ToList())
        {
            for (var dir = FsTree.ParentOf(node.Path); dir.Length > 0; dir = FsTree.ParentOf(dir))
            {
                if (tree.Contains(dir)) break;
                var lower = tree.Lower.TryGetValue(dir, out var l) ? l : null;
                tree.Set(lower is { Type: FsNodeType.Directory } ? lower
                    : new FsNode { Path = dir, Type = FsNodeType.Directory, Mode = 493, Owner = "harden" });
            }
        }
    }

    private List<LayerEntry> ToLayerEntries(FsTree tree) =>
        tree.Nodes.Select(n => n.Type switch
        {
            FsNodeType.Directory => LayerEntry.Directory(n.Path, n.Mode, n.Uid, n.Gid),
            FsNodeType.Symlink => LayerEntry.Symlink(n.Path, n.LinkTarget!, n.Uid, n.Gid),
            _ => LayerEntry.File(n.Path,
                n.Inline != null ? LayerContent.FromBytes(n.Inline) : LayerContent.FromStream(() => _store.OpenVerified(n.ContentSha256!, n.Size), n.Size),
                n.Mode, n.Uid, n.Gid),
        }).ToList();

    private ContainerConfig ContainerConfigFor(ImageDefinition image, FsTree tree)
    {
        var chain = _set.Ancestors(image).Reverse().Append(image).ToList();
        var env = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ["LANG"] = "C.UTF-8",
        };
        if (tree.Resolve(CaBundle.BundlePath) != null) env["SSL_CERT_FILE"] = "/" + CaBundle.BundlePath;
        var labels = new SortedDictionary<string, string>(StringComparer.Ordinal);
        List<string>? entrypoint = null, cmd = null;
        string? workdir = null;
        foreach (var i in chain)
        {
            foreach (var (k, v) in i.Env) env[k] = v;
            foreach (var (k, v) in i.Labels) labels[k] = v;
            if (i.Entrypoint != null) { entrypoint = i.Entrypoint; cmd = null; }
            if (i.Cmd != null) cmd = i.Cmd;
            workdir = i.Workdir ?? workdir;
        }
        // A child describes itself: its own description replaces the parent's inherited label (an explicit
        // label of its own still wins), so python does not call itself "distroless-style base".
        const string descriptionLabel = "org.opencontainers.image.description";
        if (image.Description != null && !image.Labels.ContainsKey(descriptionLabel)) labels[descriptionLabel] = image.Description;
        return new ContainerConfig
        {
            User = image.User,
            Env = env.Select(kv => $"{kv.Key}={kv.Value}").ToList(),
            Entrypoint = entrypoint,
            Cmd = cmd,
            WorkingDir = workdir ?? "/home/nonroot",
            Labels = labels.Count > 0 ? labels : null,
        };
    }

    /// <summary>
    /// The annotations <see cref="BuildAsync"/> gives <paramref name="image"/>'s index (before <see cref="ImageWriter.WriteIndex"/>
    /// adds created, title and version): the fan-in writes a multi-arch index from per-platform jobs with exactly these.
    /// </summary>
    public SortedDictionary<string, string> IndexAnnotations(ImageDefinition image)
    {
        var a = ManifestAnnotations(image, null, ImageWriter.FormatEpoch(EpochOf(image)), new());
        if (_options.Revision != null) a[Annotations.Revision] = _options.Revision;
        if (_options.SourceUrl != null) a[Annotations.Source] = _options.SourceUrl;
        return a;
    }

    private SortedDictionary<string, string> ManifestAnnotations(ImageDefinition image, string? arch, string created,
        Dictionary<(string, string), string> manifests)
    {
        var a = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            [Annotations.Created] = created,
            [Annotations.Title] = image.Name,
        };
        if (image.Version != null) a[Annotations.Version] = image.Version;
        if (image.Description != null) a["org.opencontainers.image.description"] = image.Description;
        if (image.From != null)
        {
            a[Annotations.BaseName] = image.From;
            if (arch != null && manifests.TryGetValue((image.From, arch), out var d)) a[Annotations.BaseDigest] = d;
        }
        foreach (var (k, v) in image.Annotations) a[k] = v;
        return a;
    }

    /// <summary>Everything that decides an image's bytes, hashed: if it is unchanged the build is skipped.</summary>
    private string BuildKey(ImageDefinition image, long epoch) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            LayerKey(image, epoch) + "\n" + (_options.Revision ?? "") + "\n" + (_options.SourceUrl ?? ""))));

    /// <summary>
    /// What decides the layers, configs and manifests. The git revision is not part of it: a new commit only
    /// rewrites the indexes (which carry the revision annotation), never the layers.
    /// </summary>
    private string LayerKey(ImageDefinition image, long epoch)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string s) { h.AppendData(Encoding.UTF8.GetBytes(s)); h.AppendData("\n"u8); }
        Add(ToolVersion); Add(epoch.ToString(System.Globalization.CultureInfo.InvariantCulture));
        // Only with --platform, so keys of full builds (and their artifacts) stay as they were.
        if (_options.Architectures != null) Add("platforms " + string.Join(",", ArchitecturesOf(image).Order(StringComparer.Ordinal)));
        Add(_options.Compression.ToString());
        foreach (var i in _set.Ancestors(image).Reverse().Append(image))
        {
            Add(_set.InputsSha256(i));
            Add(JsonSerializer.Serialize(_lock.Image(i.Name), LockFile.JsonOptions));
            // The wheels' lock decides the layer as images.lock.json does (issue 18).
            if (i.Python != null && Path.Combine(_set.Directory, i.Python.Lock) is var pylock && File.Exists(pylock)) Add("pylock " + Sha256Hex.OfFile(pylock));
            // Exactly what AddPayload copies (same reader, same rules): paths, directories, content, execute bit.
            // A per-architecture source is read once per built architecture (the set's own sources once, as before).
            foreach (var f in i.Files)
            foreach (var arch in f.PerArchitecture ? ArchitecturesOf(image) : [""])
            {
                var where = $"{i.File}:{f.Line}";
                if (f.PerArchitecture) Add("arch " + arch);
                foreach (var item in _payload.List(f, arch, where))
                {
                    if (item.IsDirectory) { Add($"{f.Target} {item.RelativePath}/"); continue; }
                    using var content = _payload.OpenFile(item, where, f.SourceFor(arch));
                    Add($"{f.Target} {item.RelativePath} {Convert.ToHexStringLower(SHA256.HashData(content))} {(item.Executable ? "x" : "-")}");
                }
            }
        }
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }
}
