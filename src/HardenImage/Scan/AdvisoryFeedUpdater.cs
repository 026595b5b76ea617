using System.Net;
using HardenImage.Common;
using HardenImage.Net;

namespace HardenImage.Scan;

/// <summary>
/// <c>harden db update</c>: downloads the current public feeds into a directory that <c>--db</c> reads — the
/// Debian security tracker JSON and the OSV exports (Debian, PyPI). Each file is written atomically; a feed
/// that cannot be reached fails at once with the URL and the offline alternative (threat: Denial of service by
/// a hanging download).
/// </summary>
public sealed class AdvisoryFeedUpdater
{
    public const string DebianTrackerUrl = "https://security-tracker.debian.org/tracker/data/json";
    public const string OsvBaseUrl = "https://osv-vulnerabilities.storage.googleapis.com";

    /// <summary>Largest feed file accepted (the Debian tracker JSON is ~70 MB, OSV's Debian export ~150 MB zipped).</summary>
    public const long DefaultMaxFeedBytes = 1L << 30;

    private readonly HttpClient _http;
    private readonly long _maxFeedBytes;
    private readonly NetworkDeadlines _deadlines;

    /// <param name="maxFeedBytes">Per-file bound, counted on the stream (decompressed), so an endless body cannot fill the disk.</param>
    public AdvisoryFeedUpdater(HttpClient http, long maxFeedBytes = DefaultMaxFeedBytes, NetworkDeadlines? deadlines = null)
    {
        _http = http;
        _maxFeedBytes = maxFeedBytes;
        _deadlines = deadlines ?? NetworkDeadlines.FromEnvironment();
    }

    /// <summary>The feeds: (file name under the output directory, URL).</summary>
    public static IReadOnlyList<(string File, string Url)> Feeds(string trackerUrl = DebianTrackerUrl, string osvBase = OsvBaseUrl) =>
    [
        ("debian-tracker.json", trackerUrl),
        ("osv-debian.zip", $"{osvBase.TrimEnd('/')}/Debian/all.zip"),
        ("osv-pypi.zip", $"{osvBase.TrimEnd('/')}/PyPI/all.zip"),
    ];

    /// <summary>An HttpClient with the network deadlines (connect, response headers, stall) and the feed size bound.</summary>
    /// <param name="connectTimeout">Connect deadline (default: <see cref="NetworkDeadlines"/>).</param>
    /// <param name="overall">Backstop for one whole download.</param>
    public static HttpClient CreateHttpClient(TimeSpan? connectTimeout = null, TimeSpan? overall = null, NetworkDeadlines? deadlines = null)
    {
        var d = deadlines ?? NetworkDeadlines.FromEnvironment();
        if (connectTimeout is { } c) d = d with { Connect = c };
        return new HttpClient(DeadlineHandler.OverSockets(d, DefaultMaxFeedBytes, followRedirects: true, DecompressionMethods.All))
        {
            Timeout = overall ?? TimeSpan.FromMinutes(10),
        };
    }

    public async Task<IReadOnlyList<string>> UpdateAsync(string outDir, IReadOnlyList<(string File, string Url)> feeds, IProgress<string>? progress = null, CancellationToken ct = default)
    {
        Directory.CreateDirectory(outDir);
        StaleTempFiles.Clean(outDir); // what a killed update left
        var written = new List<string>();
        foreach (var (file, url) in feeds)
        {
            progress?.Report($"fetching {url}");
            var target = Path.Combine(outDir, file);
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, url);
                request.Options.Set(DeadlineHandler.MaxResponseBytes, _maxFeedBytes);
                request.Options.Set(DeadlineHandler.Purpose, $"advisory feed {file}");
                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
                if (!response.IsSuccessStatusCode)
                    throw new HardenException($"{url}: HTTP {(int)response.StatusCode} {response.ReasonPhrase}. {OfflineHint}");
                if (response.Content.Headers.ContentLength > _maxFeedBytes)
                    throw DeadlineHandler.TooLarge(new Uri(url), $"advisory feed {file}", _maxFeedBytes, $"it declares {response.Content.Headers.ContentLength} bytes");
                // Bounded here as well, whatever HttpClient the caller passed: size and stall on the stream itself;
                // the temp file is removed when either trips, so nothing half-written is left.
                await AtomicFile.WriteAsync(target, async s =>
                {
                    await using var body = new GuardedResponseStream(await response.Content.ReadAsStreamAsync(ct), _maxFeedBytes,
                        _deadlines.Stall, new Uri(url), $"advisory feed {file}");
                    await body.CopyToAsync(s, ct);
                });
            }
            catch (HttpRequestException e)
            {
                throw new HardenException($"{url}: unreachable ({e.Message}). {OfflineHint}", inner: e);
            }
            catch (TaskCanceledException e) when (!ct.IsCancellationRequested)
            {
                throw new HardenException($"{url}: timed out. {OfflineHint}", inner: e);
            }
            written.Add(target);
        }
        // Prove the download is usable before anyone relies on it.
        AdvisoryIndexStore.Build(outDir);
        return written;
    }

    public const string OfflineHint =
        "Advisory feeds are not reachable from here: copy the feed files onto this machine and pass --db PATH, or use the shipped excerpts with --db vulndb/.";
}

/// <summary>Resolves <c>--db PATH|URL</c>: a local path is used as is; a URL is downloaded once into the content-addressed cache.</summary>
public sealed class AdvisoryDataLocator
{
    private readonly HttpClient _http;
    private readonly string _cacheDir;
    private readonly long _maxBytes;
    private readonly NetworkDeadlines? _deadlines;

    /// <param name="maxBytes">Bound on the downloaded file (counted on the stream).</param>
    public AdvisoryDataLocator(HttpClient http, string cacheDir, long maxBytes = AdvisoryFeedUpdater.DefaultMaxFeedBytes,
        NetworkDeadlines? deadlines = null)
    {
        _http = http; _cacheDir = cacheDir; _maxBytes = maxBytes; _deadlines = deadlines;
    }

    public async Task<string> ResolveAsync(string db, CancellationToken ct = default)
    {
        if (!db.StartsWith("http://", StringComparison.OrdinalIgnoreCase) && !db.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            if (!Directory.Exists(db) && !File.Exists(db))
                throw new HardenException($"{db}: advisory data not found. {VulnerabilityScanner.NoDataMessage}");
            return db;
        }
        var name = Path.GetFileName(new Uri(db).AbsolutePath);
        if (string.IsNullOrEmpty(name) || !name.Contains('.')) name = "advisories.json";
        var dir = Path.Combine(_cacheDir, "advisory-downloads", Sha256Hex.Of(System.Text.Encoding.UTF8.GetBytes(db))[..16]);
        StaleTempFiles.Clean(dir); // what a killed download left
        var updater = new AdvisoryFeedUpdater(_http, _maxBytes, _deadlines);
        await updater.UpdateAsync(dir, [(name, db)], null, ct);
        // The downloaded file only, not its cache directory: a file planted beside it (a tracker record saying
        // "unimportant", which outranks OSV for Debian) would join the data and quiet the gate (threat T).
        return Path.Combine(dir, name);
    }
}
