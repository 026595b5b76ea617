using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Lock;

namespace HardenImage.Python;

/// <summary>
/// What the lock, fetch and build commands do for python: blocks, in one place: lock the requirements of the
/// selected images (after the apt lock, which decides each architecture's glibc through libc6), and fetch every
/// locked wheel into the cache, hash-checked, before a build unpacks them.
/// </summary>
public static class PythonStage
{
    public static HttpClient CreateHttpClient() => new(new SocketsHttpHandler { AllowAutoRedirect = true, MaxAutomaticRedirections = 5 })
    {
        Timeout = TimeSpan.FromMinutes(10),
    };

    /// <summary>glibc per architecture of the image: the libc6 its chain locks (null when none is locked).</summary>
    public static Dictionary<string, (int, int)?> GlibcByArchitecture(ImageSet set, LockFile lockFile, ImageDefinition image)
    {
        var result = new Dictionary<string, (int, int)?>(StringComparer.Ordinal);
        foreach (var arch in ImageSet.Effective(set, image).Architectures)
        {
            var libc6 = set.Ancestors(image).Prepend(image)
                .Select(i => lockFile.Image(i.Name)?.Architectures.FirstOrDefault(a => a.Architecture == arch)?.Packages.FirstOrDefault(p => p.Name == "libc6")?.Version)
                .FirstOrDefault(v => v != null);
            result[arch] = WheelCompatibility.GlibcFromLibc6(libc6);
        }
        return result;
    }

    public static async Task<IReadOnlyList<PythonLockReport>> LockAsync(ImageSet set, LockFile lockFile, IReadOnlyCollection<string>? selected,
        string cacheRoot, HttpClient http, Func<string, string?>? environment = null, CancellationToken ct = default)
    {
        var reports = new List<PythonLockReport>();
        var locker = new PythonLocker(new SimpleIndexClient(http, environment), http, new WheelCache(cacheRoot));
        foreach (var image in set.Select(selected).Where(i => i.Python?.Requirements != null))
            reports.Add(await locker.LockAsync(set, image, GlibcByArchitecture(set, lockFile, image), ct));
        return reports;
    }

    /// <summary>Downloads every wheel the selected images' pylock.toml files pin; returns how many were fetched or found.</summary>
    public static async Task<int> FetchAsync(ImageSet set, IReadOnlyCollection<string>? selected, string cacheRoot, HttpClient http,
        Func<string, string?>? environment = null, CancellationToken ct = default)
    {
        var cache = new WheelCache(cacheRoot);
        var client = new SimpleIndexClient(http, environment);
        var count = 0;
        foreach (var image in set.Select(selected).Where(i => i.Python != null))
        {
            var python = image.Python!;
            var lockPath = Path.Combine(set.Directory, python.Lock);
            var pylock = PyLock.Load(lockPath);
            pylock.CheckIndexes(python, lockPath);
            foreach (var p in pylock.Packages)
            {
                var index = python.Indexes.Count > 0 ? PythonIndexes.AllowedFor(python, p.NormalizedName, lockPath) : null;
                foreach (var w in p.Wheels)
                {
                    if (!Uri.TryCreate(w.Url, UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https"))
                        throw new HardenException($"{lockPath}: {p.NormalizedName}: wheel URL '{WheelCache.Redact(w.Url)}' is not http(s).");
                    await cache.FetchAsync(http, w.Url, w.Sha256, $"{lockPath}: {w.Name}", index == null ? null : r => client.Authorize(r, index), ct);
                    count++;
                }
            }
        }
        return count;
    }
}
