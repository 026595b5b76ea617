using System.Net;
using System.Net.Sockets;
using HardenImage.Common;
using HardenImage.Contracts;

namespace HardenImage.Apt;

/// <summary>
/// One apt source. <see cref="Suite"/> ending in '/' (e.g. <c>./</c> or <c>/</c>) means a FLAT repository
/// (InRelease and Packages in <c>BaseUrl/Suite</c>, no dists/ tree, no components), as NVIDIA's CUDA repository;
/// otherwise the usual <c>BaseUrl/dists/Suite/Component/binary-Arch/</c> layout (Debian, Ubuntu, AWS Neuron).
/// </summary>
public sealed record AptSource
{
    /// <summary>Name of the source in sources.yaml; becomes <see cref="BinaryPackage.Origin"/>.</summary>
    public required string Name { get; init; }
    /// <summary>Repository root, e.g. http://deb.debian.org/debian. Package Filenames are relative to it.</summary>
    public required string BaseUrl { get; init; }
    public required string Suite { get; init; }
    /// <summary>Components, e.g. main. Ignored for flat repositories.</summary>
    public IReadOnlyList<string> Components { get; init; } = ["main"];
    public required IReadOnlyList<string> Architectures { get; init; }
    /// <summary>Keyring files (.gpg binary or .asc armoured) whose keys may sign this source's InRelease.</summary>
    public required IReadOnlyList<string> KeyringPaths { get; init; }
    /// <summary>Accept a Release whose Valid-Until has passed (snapshot archives; apt's Check-Valid-Until=false).</summary>
    public bool AllowExpiredRelease { get; init; }

    public bool IsFlat => Suite.EndsWith('/');

    /// <summary>URL of the directory holding InRelease.</summary>
    public string DistUrl
    {
        get
        {
            var root = BaseUrl.TrimEnd('/');
            if (!IsFlat) return $"{root}/dists/{Suite}";
            var sub = Suite.Trim('/');
            return sub is "" or "." ? root : $"{root}/{sub}";
        }
    }

    public override string ToString() => $"'{Name}' ({BaseUrl.TrimEnd('/')} {Suite})";
}

/// <summary>Knobs of the client; the defaults suit the Debian archive.</summary>
public sealed record AptRepositoryOptions
{
    /// <summary>How long the first request to a repository may take to answer before it counts as unreachable.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Upper bound for downloading one index.</summary>
    public TimeSpan DownloadTimeout { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>How far a Release Date may lie in the future (clock skew between us and the archive).</summary>
    public TimeSpan MaxClockSkew { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>InRelease larger than this is refused (Debian's is ~150 KB).</summary>
    public long MaxInReleaseBytes { get; init; } = 16 << 20;
    /// <summary>Use the system liblzma for .xz (faster) when it loads.</summary>
    public bool PreferNativeXz { get; init; } = true;
}

/// <summary>One index the result was built from.</summary>
public sealed record AptIndexFile(string Component, string Architecture, string Url, string Sha256, long Size)
{
    /// <summary>The path as the Release file lists it, e.g. main/binary-amd64/Packages.xz.</summary>
    public string ReleasePath { get; init; } = "";
}

/// <summary>A verified snapshot of one source: who signed it, when, and every package it offers.</summary>
public sealed record AptRepositoryIndex
{
    public required string SourceName { get; init; }
    public required string BaseUrl { get; init; }
    public required string Suite { get; init; }
    /// <summary>SHA-256 of the InRelease bytes as fetched: pins the whole repository state in a lock.</summary>
    public required string InReleaseSha256 { get; init; }
    public required DateTimeOffset Date { get; init; }
    public DateTimeOffset? ValidUntil { get; init; }
    public required ReleaseFile Release { get; init; }
    public required IReadOnlyList<string> Signers { get; init; }
    public required IReadOnlyList<AptIndexFile> Indices { get; init; }
    public required IReadOnlyList<BinaryPackage> Packages { get; init; }
    /// <summary>Parsed-index cache entries found forged and re-derived, for the user to see.</summary>
    public IReadOnlyList<string> Notices { get; init; } = [];

    /// <summary>The lock file's record of this source.</summary>
    public LockedSource ToLockedSource() => new()
    {
        Name = SourceName, Url = BaseUrl, Suite = Suite, InReleaseSha256 = InReleaseSha256, Date = Date, ValidUntil = ValidUntil,
    };
}

/// <summary>What one signed index lists, by architecture (each list holds that architecture's and the <c>all</c> packages).</summary>
public sealed record AptIndexProof
{
    public required string InReleaseSha256 { get; init; }
    public required DateTimeOffset Date { get; init; }
    public DateTimeOffset? ValidUntil { get; init; }
    /// <summary>True when proven against the pinned InRelease; false when against the mirror's current one.</summary>
    public required bool Pinned { get; init; }
    public required IReadOnlyDictionary<string, IReadOnlyList<ProvenIndexEntry>> Packages { get; init; }
    /// <summary>Cache entries found forged and rebuilt, for the user to see.</summary>
    public IReadOnlyList<string> Notices { get; init; } = [];
}

/// <summary>
/// Fetches a repository's metadata the way apt does, and trusts nothing it has not verified: InRelease is
/// verified against the source's keyring (<see cref="InReleaseVerifier"/>), Release is checked for freshness, every
/// Packages index must match the size and SHA-256 the signed Release lists. Verified indices are cached
/// content-addressed (<see cref="AptIndexCache"/>); InRelease is always fetched anew (it is small and is what
/// tells us whether anything changed).
/// Answers Spoofing and Tampering (signature, hashes), Tampering by replay (Valid-Until, Date), and Denial of
/// service (short connect timeout, size caps on everything downloaded).
/// </summary>
public sealed class AptRepositoryClient
{
    private readonly HttpClient _http;
    private readonly AptIndexCache _cache;
    private readonly AptRepositoryOptions _options;
    private readonly InReleaseVerifier _verifier;
    private readonly TimeProvider _clock;

    private readonly IndexProofCache? _proofs;

    /// <param name="proofs">Authenticated parsed-index cache for <see cref="ProveAsync"/>; without it every proof re-parses.</param>
    public AptRepositoryClient(HttpClient http, AptIndexCache cache, AptRepositoryOptions? options = null, TimeProvider? clock = null,
        IndexProofCache? proofs = null)
    {
        _http = http;
        _cache = cache;
        _proofs = proofs;
        _options = options ?? new AptRepositoryOptions();
        _clock = clock ?? TimeProvider.System;
        _verifier = new InReleaseVerifier(_clock, proofs);
    }

    /// <summary>An HttpClient suited to repositories: short connect timeout, no automatic decompression
    /// (we verify the bytes the Release lists, compressed as they are).</summary>
    public static HttpClient CreateHttpClient(TimeSpan? connectTimeout = null) =>
        // Net.DeadlineHandler: response-header and stall deadlines on every request (sizes are bounded here, per index).
        new(new Net.DeadlineHandler(Net.NetworkDeadlines.FromEnvironment(), Net.DeadlineHandler.Unlimited, new SocketsHttpHandler
        {
            ConnectTimeout = connectTimeout ?? TimeSpan.FromSeconds(10),
            AutomaticDecompression = DecompressionMethods.None,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        }))
        { Timeout = Timeout.InfiniteTimeSpan };

    /// <summary>Fetches, verifies and parses <paramref name="source"/>.</summary>
    public async Task<AptRepositoryIndex> FetchAsync(AptSource source, CancellationToken ct = default)
    {
        if (source.Architectures.Count == 0) throw new HardenException($"Source {source} names no architecture.");
        if (!source.IsFlat && source.Components.Count == 0) throw new HardenException($"Source {source} names no component.");
        OpenPgpKeyring keyring;
        try { keyring = OpenPgpKeyring.Load(source.KeyringPaths.ToArray()); }
        catch (HardenException e) { throw new HardenException($"Source {source}: {e.Message}", e.ExitCode, e); }

        var inReleaseUrl = source.DistUrl + "/InRelease";
        var inRelease = await GetSmallAsync(source, inReleaseUrl, _options.MaxInReleaseBytes, ct);
        var verified = _verifier.Verify(inRelease, keyring, $"source {source}");
        var release = ReleaseFile.Parse(verified.ReleaseText, $"source {source}");
        release.CheckFreshness(_clock.GetUtcNow(), _options.MaxClockSkew, source.AllowExpiredRelease, $"source {source}");
        CheckSuite(source, release);
        // Kept by digest: a lock recording this InRelease stays provable after the mirror moves on.
        _cache.PutInRelease(inRelease);

        var indices = new List<AptIndexFile>();
        var packages = new List<BinaryPackage>();
        var seenAll = new HashSet<(string, string)>();
        var baseUrl = source.BaseUrl.TrimEnd('/');
        // Each (component, architecture) index is fetched and parsed on its own task (parsing is CPU-bound and
        // the big amd64 and arm64 lists are independent); results are merged in a fixed order, so the outcome
        // does not depend on which finishes first.
        var work = (source.IsFlat ? [""] : source.Components)
            .SelectMany(component => source.Architectures.Select(arch => (Component: component, Arch: arch)))
            .Select(x => Task.Run(async () =>
            {
                // The compact snapshot of an index the verified Release still lists (same SHA-256): no download,
                // no decompression, no deb822 parse. Forged or foreign entries are refused by its MAC and re-derived.
                var snapshot = TrySnapshot(source, release, x.Component, x.Arch, baseUrl);
                if (snapshot.Packages != null) return (snapshot.Index!, snapshot.Packages, snapshot.Notice);
                var (index, file) = await FetchPackagesIndexAsync(source, release, x.Component, x.Arch, ct);
                bool Keep(string a) => a == x.Arch || a == "all";
                // Release usually lists the uncompressed index too: its size sizes the parse's allocation.
                var plainSize = release.Sha256.GetValueOrDefault(StripCompression(index.ReleasePath))?.Size ?? 0;
                IReadOnlyList<BinaryPackage> parsed;
                using (Timings.Span($"lock: parse {source.Name} {index.ReleasePath} (decompress + deb822)"))
                    parsed = PackagesIndex.ReadFile(file, index.Url, source.Name, baseUrl, Keep, plainSize, _options.PreferNativeXz);
                _proofs?.Write(index.Sha256, x.Arch, parsed);
                return (index, parsed, snapshot.Notice);
            }, ct)).ToList();
        var notices = new List<string>();
        foreach (var (index, parsed, notice) in await Task.WhenAll(work))
        {
            if (notice != null) notices.Add(notice);
            indices.Add(index);
            foreach (var pkg in parsed)
            {
                // Architecture: all packages appear in every binary-<arch> index; keep one copy.
                if (pkg.Architecture == "all" && !seenAll.Add((pkg.Name, pkg.Version))) continue;
                packages.Add(pkg);
            }
        }

        return new AptRepositoryIndex
        {
            SourceName = source.Name,
            BaseUrl = baseUrl,
            Suite = source.Suite,
            InReleaseSha256 = Sha256Hex.Of(inRelease),
            Date = release.Date,
            ValidUntil = release.ValidUntil,
            Release = release,
            Signers = verified.GoodSigners,
            Indices = indices,
            Packages = packages,
            Notices = notices,
        };
    }

    /// <summary>
    /// The snapshot of the (component, architecture) index, in the order <see cref="FetchPackagesIndexAsync"/> picks
    /// forms (xz, gz, plain), keyed by the SHA-256 the just-verified Release lists; no packages when there is none.
    /// A snapshot that does not authenticate is deleted and the index read again (its notice says so).
    /// </summary>
    private (AptIndexFile? Index, IReadOnlyList<BinaryPackage>? Packages, string? Notice) TrySnapshot(
        AptSource source, ReleaseFile release, string component, string arch, string baseUrl)
    {
        if (_proofs == null) return (null, null, null);
        var dir = source.IsFlat ? "" : $"{component}/binary-{arch}/";
        string? notice = null;
        foreach (var name in new[] { "Packages.xz", "Packages.gz", "Packages" })
        {
            if (release.Sha256.GetValueOrDefault(dir + name) is not { } listed) continue;
            IReadOnlyList<BinaryPackage>? hit;
            string? forged;
            using (Timings.Span($"lock: read snapshot of {source.Name} {listed.Path}"))
                hit = _proofs.TryReadPackages(listed.Sha256, arch, source.Name, baseUrl, out forged);
            notice ??= forged;
            if (hit != null)
                return (new AptIndexFile(source.IsFlat ? "" : component, arch, $"{source.DistUrl}/{listed.Path}", listed.Sha256, listed.Size) { ReleasePath = listed.Path },
                        hit, notice);
            if (notice != null) break; // re-derived below, from the index itself
        }
        return (null, null, notice);
    }

    /// <summary>
    /// What the signed index of <paramref name="source"/> lists, for proving lock entries. With
    /// <paramref name="pinnedInReleaseSha256"/> (the digest a lock records) the proof uses THAT InRelease — from the
    /// content store, or from the mirror while it still serves it — so an old lock stays provable; its signature is
    /// verified again every time. Otherwise, or when the pinned InRelease cannot be had, the mirror's current InRelease
    /// is used and <see cref="AptIndexProof.Pinned"/> is false. Valid-Until is not checked here (see below). Packages indices come from the content store, the archive's
    /// by-hash paths, or the plain path, always checked against the Release's SHA-256.
    /// </summary>
    /// <param name="keepName">Only these packages' entries are returned (the cache keeps every entry).</param>
    public async Task<AptIndexProof> ProveAsync(AptSource source, string? pinnedInReleaseSha256, CancellationToken ct = default,
        Func<string, bool>? keepName = null)
    {
        if (source.Architectures.Count == 0) throw new HardenException($"Source {source} names no architecture.");
        OpenPgpKeyring keyring;
        try { keyring = OpenPgpKeyring.Load(source.KeyringPaths.ToArray()); }
        catch (HardenException e) { throw new HardenException($"Source {source}: {e.Message}", e.ExitCode, e); }

        byte[]? inRelease = null;
        var pin = pinnedInReleaseSha256?.ToLowerInvariant();
        if (pin != null && Sha256Hex.IsValid(pin)) inRelease = _cache.TryGetInRelease(pin, _options.MaxInReleaseBytes);
        inRelease ??= await GetSmallAsync(source, source.DistUrl + "/InRelease", _options.MaxInReleaseBytes, ct);
        var digest = Sha256Hex.Of(inRelease);
        var pinned = digest == pin;
        var verified = _verifier.Verify(inRelease, keyring, $"source {source}");
        var release = ReleaseFile.Parse(verified.ReleaseText, $"source {source}");
        // Proof is about inclusion: the signature (keyring, key validity now) and the Date decide; Valid-Until guards
        // resolution against frozen metadata (lock --update), not whether a locked package was ever signed into the
        // archive. A Date in the future is still refused; a Date older than the lock's is refused by the caller.
        release.CheckFreshness(_clock.GetUtcNow(), _options.MaxClockSkew, allowExpired: true, $"source {source}");
        CheckSuite(source, release);
        _cache.PutInRelease(inRelease);

        var notices = new List<string>();
        var work = (source.IsFlat ? [""] : source.Components)
            .SelectMany(component => source.Architectures.Select(arch => (Component: component, Arch: arch)))
            .Select(x => Task.Run(async () =>
            {
                var dir = source.IsFlat ? "" : $"{x.Component}/binary-{x.Arch}/";
                foreach (var name in new[] { "Packages.xz", "Packages.gz", "Packages" })
                {
                    if (release.Sha256.GetValueOrDefault(dir + name) is not { } listed || _proofs == null) continue;
                    var hit = _proofs.TryRead(listed.Sha256, x.Arch, out var forged, keepName);
                    if (forged != null) lock (notices) notices.Add(forged);
                    if (hit != null) return (x.Arch, Entries: hit);
                }
                var (index, file) = await FetchPackagesIndexAsync(source, release, x.Component, x.Arch, ct);
                bool Keep(string a) => a == x.Arch || a == "all";
                var plainSize = release.Sha256.GetValueOrDefault(StripCompression(index.ReleasePath))?.Size ?? 0;
                var parsed = PackagesIndex.ReadFile(file, index.Url, source.Name, source.BaseUrl, Keep, plainSize, _options.PreferNativeXz);
                _proofs?.Write(index.Sha256, x.Arch, parsed);
                var entries = parsed.Select(ProvenIndexEntry.From).ToList();
                return (x.Arch, Entries: (IReadOnlyList<ProvenIndexEntry>)(keepName == null ? entries : entries.Where(e => keepName(e.Name)).ToList()));
            }, ct)).ToList();
        var byArch = new Dictionary<string, List<ProvenIndexEntry>>(StringComparer.Ordinal);
        foreach (var (arch, entries) in await Task.WhenAll(work))
        {
            if (!byArch.TryGetValue(arch, out var list)) byArch[arch] = list = new List<ProvenIndexEntry>();
            list.AddRange(entries);
        }
        return new AptIndexProof
        {
            InReleaseSha256 = digest, Date = release.Date, ValidUntil = release.ValidUntil, Pinned = pinned,
            Packages = byArch.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<ProvenIndexEntry>)kv.Value, StringComparer.Ordinal),
            Notices = notices,
        };
    }

    private static string StripCompression(string path) =>
        path.EndsWith(".xz", StringComparison.Ordinal) || path.EndsWith(".gz", StringComparison.Ordinal) ? path[..^3] : path;

    private static void CheckSuite(AptSource source, ReleaseFile release)
    {
        if (source.IsFlat) return;
        // A signed Release of another suite (say, an older one) served under this URL is a downgrade.
        if (release.Suite == source.Suite || release.Codename == source.Suite) return;
        throw new HardenException(
            $"InRelease of source {source} describes Suite '{release.Suite}' / Codename '{release.Codename}', not '{source.Suite}': " +
            "the mirror serves another release under this name (misconfiguration or downgrade attempt). Check the suite in sources.yaml.");
    }

    /// <summary>
    /// The (component, architecture) index the Release lists, from the cache or downloaded, open and hashed through the
    /// very descriptor the caller parses (<see cref="AptIndexCache.OpenVerified"/>): checked by path and parsed by path,
    /// a concurrent 'harden cache prune' could remove it in between, or a writer of a shared cache replace it.
    /// </summary>
    private async Task<(AptIndexFile Index, FileStream File)> FetchPackagesIndexAsync(AptSource source, ReleaseFile release,
        string component, string arch, CancellationToken ct)
    {
        var dir = source.IsFlat ? "" : $"{component}/binary-{arch}/";
        var candidates = new[] { "Packages.xz", "Packages.gz", "Packages" }
            .Select(n => release.Sha256.GetValueOrDefault(dir + n))
            .OfType<ReleaseFileEntry>()
            .ToList();
        if (candidates.Count == 0)
        {
            var what = source.IsFlat ? "a Packages index" : $"{component}/binary-{arch}/Packages";
            throw new HardenException(
                $"Release of source {source} lists no {what}. It offers architectures [{string.Join(' ', release.Architectures)}] " +
                $"and components [{string.Join(' ', release.Components)}]: fix the source's components/architectures.");
        }

        var tried = new List<string>();
        foreach (var entry in candidates)
        {
            var url = $"{source.DistUrl}/{entry.Path}";
            var label = source.IsFlat ? "" : component;
            var cached = _cache.OpenVerified(entry.Sha256, entry.Size);
            if (cached != null) return (new AptIndexFile(label, arch, url, entry.Sha256, entry.Size) { ReleasePath = entry.Path }, cached);

            // By-hash URLs never change content, so a mirror updating under us cannot hand us a mismatched pair.
            var urls = new List<string>();
            if (release.AcquireByHash)
            {
                var slash = entry.Path.LastIndexOf('/');
                var folder = slash >= 0 ? entry.Path[..(slash + 1)] : "";
                urls.Add($"{source.DistUrl}/{folder}by-hash/SHA256/{entry.Sha256}");
            }
            urls.Add(url);
            foreach (var u in urls)
            {
                var file = await DownloadVerifiedAsync(source, u, entry, ct);
                if (file != null) return (new AptIndexFile(label, arch, url, entry.Sha256, entry.Size) { ReleasePath = entry.Path }, file);
                tried.Add(u);
            }
        }
        throw new HardenException(
            $"Source {source}: none of the Packages indices the Release lists could be downloaded (404 for {string.Join(", ", tried)}). " +
            "The mirror is incomplete or mid-update; retry later or use another mirror.");
    }

    /// <returns>The verified cached file, open, or null on 404 (try the next form).</returns>
    private async Task<FileStream?> DownloadVerifiedAsync(AptSource source, string url, ReleaseFileEntry entry, CancellationToken ct)
    {
        using var response = await SendAsync(source, url, ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.DownloadTimeout);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        EnsureSuccess(source, url, response);
        if (response.Content.Headers.ContentLength is { } len && len != entry.Size)
            throw Mismatch(source, url, entry, $"the server announces {len} bytes");
        await using var body = await response.Content.ReadAsStreamAsync(timeout.Token);
        try
        {
            var (path, actualHash, actualSize) = await _cache.PutAsync(entry.Sha256, entry.Size, body, timeout.Token);
            if (path == null) throw Mismatch(source, url, entry, $"received {actualSize} bytes with SHA-256 {actualHash}");
            return _cache.OpenVerified(entry.Sha256, entry.Size)
                   ?? throw new HardenException($"{url} (source {source}) was verified into the cache ({path}) and was gone or changed before it could be read: " +
                                                "another process is removing or rewriting HARDEN_CACHE (harden cache prune?). Run again when it is done.");
        }
        catch (Exception e) when (e is HttpRequestException or IOException && !ct.IsCancellationRequested)
        {
            throw new HardenException($"Downloading {url} (source {source}) failed: {e.Message}. Retry; if it persists, the mirror is unhealthy.", inner: e);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new HardenException($"Downloading {url} (source {source}) took longer than {_options.DownloadTimeout.TotalSeconds:0} s. The repository is too slow; retry or use another mirror.");
        }
    }

    private static HardenException Mismatch(AptSource source, string url, ReleaseFileEntry entry, string got) =>
        new($"{url} does not match the signed Release of source {source}: expected {entry.Size} bytes with SHA-256 {entry.Sha256}, {got}. " +
            "The index was tampered with or the mirror is mid-update: not using it. Retry later or use another mirror.");

    private async Task<byte[]> GetSmallAsync(AptSource source, string url, long maxBytes, CancellationToken ct)
    {
        using var response = await SendAsync(source, url, ct);
        if (response.StatusCode == HttpStatusCode.NotFound)
            throw new HardenException(
                $"{url} does not exist (404): source {source} has no InRelease there. Check the URL and suite " +
                "(flat repositories use a suite ending in '/', e.g. './'); repositories with only Release + Release.gpg are not supported.");
        EnsureSuccess(source, url, response);
        if (response.Content.Headers.ContentLength > maxBytes)
            throw new HardenException($"{url} is {response.Content.Headers.ContentLength} bytes, more than the {maxBytes} an InRelease may have. Refusing it.");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.DownloadTimeout);
        try
        {
            using var limited = new MemoryStream();
            await using var body = await response.Content.ReadAsStreamAsync(timeout.Token);
            var buffer = new byte[1 << 16];
            int n;
            while ((n = await body.ReadAsync(buffer, timeout.Token)) > 0)
            {
                if (limited.Length + n > maxBytes) throw new HardenException($"{url} is larger than the {maxBytes} bytes an InRelease may have. Refusing it.");
                limited.Write(buffer, 0, n);
            }
            return limited.ToArray();
        }
        catch (Exception e) when (e is HttpRequestException or IOException && !ct.IsCancellationRequested)
        {
            throw new HardenException($"Downloading {url} (source {source}) failed: {e.Message}. Retry; if it persists, the repository is unhealthy.", inner: e);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new HardenException($"Downloading {url} (source {source}) took longer than {_options.DownloadTimeout.TotalSeconds:0} s. The repository is too slow; retry or use another mirror.");
        }
    }

    /// <summary>GET with the response headers due within ConnectTimeout: an unreachable or silent repository fails
    /// fast even through an injected HttpClient without a connect timeout of its own.</summary>
    private async Task<HttpResponseMessage> SendAsync(AptSource source, string url, CancellationToken callerToken)
    {
        using var headersDue = CancellationTokenSource.CreateLinkedTokenSource(callerToken);
        headersDue.CancelAfter(_options.ConnectTimeout);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, headersDue.Token);
        }
        catch (OperationCanceledException) when (!callerToken.IsCancellationRequested)
        {
            throw Unreachable(source, url, $"no answer within {_options.ConnectTimeout.TotalSeconds:0.#} s");
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException or IOException || e.HttpRequestError is
                     HttpRequestError.NameResolutionError or HttpRequestError.ConnectionError or HttpRequestError.SecureConnectionError)
        {
            throw Unreachable(source, url, e.Message);
        }
    }

    private HardenException Unreachable(AptSource source, string url, string why) =>
        new($"Repository {source.BaseUrl} (source '{source.Name}') is unreachable: {url}: {why}. " +
            "Check the URL, DNS, proxy and network access to it; nothing was fetched.");

    private static void EnsureSuccess(AptSource source, string url, HttpResponseMessage response)
    {
        if (response.IsSuccessStatusCode) return;
        throw new HardenException(
            $"{url} answered HTTP {(int)response.StatusCode} {response.ReasonPhrase} (source {source}). " +
            "The repository or mirror has a problem; retry later or use another mirror.");
    }
}
