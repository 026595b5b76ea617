using System.Security.Cryptography;
using HardenImage.Common;

namespace HardenImage.Python;

/// <summary>
/// Wheels by content, like .debs (&lt;cache&gt;/wheels/&lt;sha256&gt;): a download is hashed while it streams to a temp
/// file and renamed into place only when it hashes to the SHA-256 the lock pins. A served file that hashes to
/// anything else (an index lying about its hashes, a tampered mirror) is refused and nothing is kept.
/// </summary>
public sealed class WheelCache(string cacheRoot)
{
    public const long MaxWheelBytes = 8L << 30;

    public string Directory { get; } = Path.Combine(cacheRoot, "wheels");

    public string PathFor(string sha256) =>
        Sha256Hex.IsValid(sha256) ? Path.Combine(Directory, sha256) : throw new ArgumentException($"'{sha256}' is not a SHA-256 hex digest", nameof(sha256));

    /// <summary>The cached wheel if present and intact (a corrupt one is evicted).</summary>
    public string? TryGet(string sha256)
    {
        using var file = OpenVerified(sha256);
        return file == null ? null : PathFor(sha256);
    }

    /// <summary>
    /// The cached wheel, opened once, hashed through that descriptor and positioned at its start; null when absent or
    /// not the pinned bytes (then evicted). Install from this stream, never from the path again: a writer of a shared
    /// cache could rename its own wheel over the checked one in between (or a concurrent prune remove it).
    /// </summary>
    public FileStream? OpenVerified(string sha256)
    {
        _ = PathFor(sha256); // refuses a name that is no SHA-256
        return new Common.Storage.ContentAddressedDirectory(Directory).OpenVerified(sha256);
    }

    /// <summary>Downloads <paramref name="url"/> unless cached; returns the cache path of bytes that hash to <paramref name="sha256"/>.</summary>
    public async Task<string> FetchAsync(HttpClient http, string url, string sha256, string label, Action<HttpRequestMessage>? authorize, CancellationToken ct)
    {
        if (TryGet(sha256) is { } hit) return hit;
        // A URL from an index page or a lock is untrusted: only http(s) is fetched (file:, ftp: and the like are refused
        // here with the file's label rather than surfacing as HttpClient's NotSupportedException).
        if (!Uri.TryCreate(url, UriKind.Absolute, out var parsed) || parsed.Scheme is not ("http" or "https"))
            throw new HardenException($"{label}: URL '{Redact(url)}' is not http(s); refused.");
        System.IO.Directory.CreateDirectory(Directory);
        var target = PathFor(sha256);
        var tmp = AtomicFile.TempPathFor(target);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            authorize?.Invoke(request);
            HttpResponseMessage response;
            try { response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct); }
            catch (HttpRequestException e) { throw new HardenException($"{label}: download from {Redact(url)} failed ({e.Message}). Check the index is reachable.", 2, e); }
            using (response)
            {
                if (!response.IsSuccessStatusCode)
                    throw new HardenException($"{label}: {Redact(url)} answered {(int)response.StatusCode}. Check the lock's URL and the index.");
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                long total = 0;
                await using (var body = await response.Content.ReadAsStreamAsync(ct))
                await using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
                {
                    var buffer = new byte[1 << 16];
                    int n;
                    while ((n = await body.ReadAsync(buffer, ct)) > 0)
                    {
                        total += n;
                        if (total > MaxWheelBytes) throw new HardenException($"{label}: {Redact(url)} is larger than {MaxWheelBytes >> 30} GiB; refusing it.");
                        hash.AppendData(buffer, 0, n);
                        await fs.WriteAsync(buffer.AsMemory(0, n), ct);
                    }
                }
                var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
                if (actual != sha256)
                    throw new HardenException($"{label}: {Redact(url)} served bytes with SHA-256 {actual}, but the lock pins {sha256} " +
                                              "(a tampered wheel or an index lying about its hashes). Refused; nothing was cached.");
            }
            File.Move(tmp, target, overwrite: true);
            return target;
        }
        finally
        {
            AtomicFile.TryDelete(tmp);
        }
    }

    /// <summary>A URL without user info or query (tokens never reach a log).</summary>
    public static string Redact(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var u) ? $"{u.Scheme}://{u.Host}{(u.IsDefaultPort ? "" : ":" + u.Port)}{u.AbsolutePath}" : "(unparseable URL)";
}
