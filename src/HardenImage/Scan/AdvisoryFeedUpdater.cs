using System.Net;
using HardenImage.Common;

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

    private readonly HttpClient _http;

    public AdvisoryFeedUpdater(HttpClient http) => _http = http;

    /// <summary>The feeds: (file name under the output directory, URL).</summary>
    public static IReadOnlyList<(string File, string Url)> Feeds(string trackerUrl = DebianTrackerUrl, string osvBase = OsvBaseUrl) =>
    [
        ("debian-tracker.json", trackerUrl),
        ("osv-debian.zip", $"{osvBase.TrimEnd('/')}/Debian/all.zip"),
        ("osv-pypi.zip", $"{osvBase.TrimEnd('/')}/PyPI/all.zip"),
    ];

    /// <summary>An HttpClient that gives up quickly when a host is unreachable.</summary>
    public static HttpClient CreateHttpClient(TimeSpan? connectTimeout = null, TimeSpan? overall = null) =>
        new(new SocketsHttpHandler { ConnectTimeout = connectTimeout ?? TimeSpan.FromSeconds(10), AutomaticDecompression = DecompressionMethods.All })
        {
            Timeout = overall ?? TimeSpan.FromMinutes(10),
        };

    public async Task<IReadOnlyList<string>> UpdateAsync(string outDir, IReadOnlyList<(string File, string Url)> feeds, IProgress<string>? progress = null, CancellationToken ct = default)
    {
        Directory.CreateDirectory(outDir);
        var written = new List<string>();
        foreach (var (file, url) in feeds)
        {
            progress?.Report($"fetching {url}");
            var target = Path.Combine(outDir, file);
            try
            {
                using var response = await _http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, ct);
                if (!response.IsSuccessStatusCode)
                    throw new HardenException($"{url}: HTTP {(int)response.StatusCode} {response.ReasonPhrase}. {OfflineHint}");
                await AtomicFile.WriteAsync(target, async s => await (await response.Content.ReadAsStreamAsync(ct)).CopyToAsync(s, ct));
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

    public AdvisoryDataLocator(HttpClient http, string cacheDir)
    {
        _http = http; _cacheDir = cacheDir;
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
        var updater = new AdvisoryFeedUpdater(_http);
        await updater.UpdateAsync(dir, [(name, db)], null, ct);
        return dir;
    }
}
