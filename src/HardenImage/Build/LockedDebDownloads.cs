using HardenImage.Apt;
using HardenImage.Common;
using HardenImage.Lock;
using HardenImage.Contracts;

namespace HardenImage.Build;

/// <summary>The locked .debs of one image and architecture, for the fetch table.</summary>
public sealed record LockedDebRow(string Image, string Architecture, IReadOnlyList<LockedPackage> Packages);

/// <summary>
/// <c>harden fetch</c>'s (and build's) downloads: every locked .deb of the selection, only as proven entries and from
/// the URL the signed index gives (never the lock's own url), into the verified content-addressed cache. Planned
/// first, so the caller can size its progress display before anything is fetched.
/// </summary>
public sealed class LockedDebDownloads : IDisposable
{
    private readonly HttpClient _http;
    private readonly DebFetcher _fetcher;

    private LockedDebDownloads(IReadOnlyList<LockedDebRow> rows, IReadOnlyList<DebDownload> downloads, string cacheRoot, int parallel)
    {
        Rows = rows;
        Downloads = downloads;
        // Same deadlines as the index downloads (connect, headers, stall); the fetcher bounds each .deb by its proven size.
        _http = AptRepositoryClient.CreateHttpClient();
        _fetcher = new DebFetcher(_http, new DebCache(cacheRoot), new DebFetcherOptions { MaxParallelDownloads = parallel });
    }

    public IReadOnlyList<LockedDebRow> Rows { get; }
    public IReadOnlyList<DebDownload> Downloads { get; }
    public long TotalBytes => Downloads.Sum(p => p.Size);

    public static LockedDebDownloads Plan(ImageSet set, LockFile lockFile, LockProof proof, IReadOnlyCollection<string> selected, string cacheRoot, int parallel)
    {
        var rows = new List<LockedDebRow>();
        foreach (var image in set.Select(selected))
        {
            var locked = lockFile.Image(image.Name)
                         ?? throw new HardenException($"{image.File}: '{image.Name}' is not in {lockFile}; run 'harden lock'.");
            foreach (var a in locked.Architectures) rows.Add(new LockedDebRow(image.Name, a.Architecture, a.Packages));
        }
        return new LockedDebDownloads(rows, proof.Downloads(), cacheRoot, parallel);
    }

    /// <summary>Fetches (or finds in the cache) every planned .deb; <paramref name="arrived"/> hears of each as it lands.</summary>
    public Task<IReadOnlyList<FetchedDeb>> FetchAsync(IProgress<FetchProgress>? progress, CancellationToken ct, Action<FetchedDeb>? arrived = null) =>
        _fetcher.FetchAsync(Downloads, progress, ct, arrived);

    public void Dispose() => _http.Dispose();
}
