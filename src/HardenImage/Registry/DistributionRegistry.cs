using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using HardenImage.Net;
using HardenImage.Oci;
using HardenImage.Common.Streams;

namespace HardenImage.Registry;

/// <summary>Upload tuning for <see cref="DistributionRegistry"/>.</summary>
public sealed record DistributionRegistryOptions
{
    /// <summary>Use http instead of https (loopback registries, --insecure).</summary>
    public bool Insecure { get; init; }

    /// <summary>Blobs smaller than this go in one PUT after the POST; larger ones in PATCH chunks.</summary>
    public int MonolithicLimit { get; init; } = 8 * 1024 * 1024;

    /// <summary>
    /// Chunk size of a chunked upload; 0 sends the rest of the blob in one streamed PATCH (as skopeo does: fewest
    /// round trips, and distribution 2.8 cannot resume mid-upload anyway). ECR needs ≥ 5 MiB except the last.
    /// </summary>
    public int ChunkSize { get; init; }

    /// <summary>
    /// After an interrupted upload, start a new one instead of resuming from the upload's <c>Range</c>. ECR's
    /// Range stops advancing after the first chunk, so a resume from it is refused with 416 again and again.
    /// </summary>
    public bool RestartInterruptedUploads { get; init; }

    /// <summary>Upload retries: back-off between resumption attempts.</summary>
    public RetryOptions Retry { get; init; } = new();
}

/// <summary>
/// The OCI distribution API over an <see cref="HttpClient"/> whose pipeline carries auth, retries and vendor quirks
/// (<see cref="RegistryFactory"/> builds it). Digests are checked on everything read and on manifests written
/// (threat: Tampering); the registry itself checks blob digests on the final PUT.
/// </summary>
public sealed class DistributionRegistry : IRegistry
{
    private static readonly string[] ManifestAccept =
    [
        MediaTypes.ImageIndex, MediaTypes.ImageManifest, MediaTypes.DockerManifestList, MediaTypes.DockerManifest,
    ];

    private const int MaxManifestBytes = 4 * 1024 * 1024;
    private const int MaxPages = 10_000;

    private readonly HttpClient _http;
    private readonly DistributionRegistryOptions _options;
    private readonly Uri _base;

    public DistributionRegistry(HttpClient http, string host, DistributionRegistryOptions? options = null)
    {
        _http = http;
        _options = options ?? new DistributionRegistryOptions();
        Host = host;
        _base = new Uri($"{(_options.Insecure ? "http" : "https")}://{host}/v2/");
    }

    public string Host { get; }
    public string Name => Host;

    public async Task<bool> BlobExistsAsync(string repository, string digest, CancellationToken ct = default)
    {
        using var response = await SendAsync(HttpMethod.Head, BlobUri(repository, digest), ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound) return false;
        await EnsureSuccessAsync(response, $"checking blob {digest} in {repository}", ct).ConfigureAwait(false);
        return true;
    }

    public async Task<bool> MountBlobAsync(string repository, string digest, string fromRepository, CancellationToken ct = default)
    {
        var uri = new Uri(_base, $"{repository}/blobs/uploads/?mount={Uri.EscapeDataString(digest)}&from={Uri.EscapeDataString(fromRepository)}");
        using var request = new HttpRequestMessage(HttpMethod.Post, uri) { Content = new ByteArrayContent([]) };
        request.Options.Set(RegistryAuthHandler.ExtraScope, $"repository:{fromRepository}:pull");
        using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Created) return true;
        if (response.StatusCode == HttpStatusCode.Accepted)
        {
            // The registry opened an ordinary upload instead; close it, the caller uploads.
            if (response.Headers.Location is { } location) await CancelUploadAsync(location, ct).ConfigureAwait(false);
            return false;
        }
        await EnsureSuccessAsync(response, $"mounting blob {digest} from {fromRepository} into {repository}", ct).ConfigureAwait(false);
        return false;
    }

    public async Task PushBlobAsync(string repository, Descriptor blob, Stream content, IProgress<long>? progress = null, CancellationToken ct = default)
    {
        if (!content.CanSeek) throw new ArgumentException("blob content must be seekable so a failed upload can resume", nameof(content));
        Uri? location = null;
        long offset = 0;
        Exception? last = null;
        // Bounded by failures in a row: a long upload through a flaky link may fail many times in all,
        // as long as each retry gets further.
        var failuresInARow = 0;
        var maxFailures = Math.Max(0, _options.Retry.MaxRetries);
        while (true)
        {
            try
            {
                if (last != null)
                {
                    if (await BlobExistsAsync(repository, blob.Digest, ct).ConfigureAwait(false))
                    {
                        progress?.Report(blob.Size);
                        return;
                    }
                    (location, offset) = location == null || _options.RestartInterruptedUploads ? (null, 0)
                        : await UploadStatusAsync(location, ct).ConfigureAwait(false);
                }
                if (location == null)
                {
                    location = await StartUploadAsync(repository, ct).ConfigureAwait(false);
                    offset = 0;
                }
                if (offset == 0 && blob.Size <= _options.MonolithicLimit)
                {
                    await PutMonolithicAsync(location, blob, content, progress, ct).ConfigureAwait(false);
                }
                else
                {
                    while (offset < blob.Size)
                    {
                        var rest = blob.Size - offset;
                        var n = _options.ChunkSize > 0 ? Math.Min(_options.ChunkSize, rest) : rest;
                        location = await PatchChunkAsync(location, content, offset, n, blob.Size, progress, ct).ConfigureAwait(false);
                        offset += n;
                        failuresInARow = 0;
                        progress?.Report(offset);
                    }
                    await CompleteUploadAsync(location, blob.Digest, blob.Size, ct).ConfigureAwait(false);
                }
                progress?.Report(blob.Size);
                return;
            }
            catch (Exception e) when (IsResumable(e, ct))
            {
                last = e;
                if (++failuresInARow > maxFailures)
                    throw new RegistryException($"{Name}: uploading blob {blob.Digest} ({blob.Size} bytes) to {repository} failed {failuresInARow} times in a row: {e.Message}", inner: e);
                var delay = e is RegistryHttpStatusException { RetryAfter: { } ra } ? ra : RetryHandler.Backoff(failuresInARow, _options.Retry);
                await Task.Delay(delay, ct).ConfigureAwait(false);
            }
        }
    }

    public async Task<Stream> GetBlobAsync(string repository, string digest, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, BlobUri(repository, digest));
        // Streamed and digest-checked; its length is bounded by the Content-Length the verifying stream enforces.
        request.Options.Set(DeadlineHandler.MaxResponseBytes, DeadlineHandler.Unlimited);
        request.Options.Set(DeadlineHandler.Purpose, $"blob {repository}@{digest}");
        var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        try
        {
            await EnsureSuccessAsync(response, $"reading blob {digest} from {repository}", ct).ConfigureAwait(false);
            var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            return new DigestVerifyingStream(stream, digest, response.Content.Headers.ContentLength, response);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    public async Task<RegistryManifest?> GetManifestAsync(string repository, string reference, CancellationToken ct = default)
    {
        using var request = ManifestRequest(HttpMethod.Get, repository, reference);
        using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        await EnsureSuccessAsync(response, $"reading manifest {repository}:{reference}", ct).ConfigureAwait(false);
        if (response.Content.Headers.ContentLength > MaxManifestBytes)
            throw new RegistryException($"{Name}: manifest {repository}:{reference} is larger than {MaxManifestBytes} bytes; refusing it");
        var bytes = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        var digest = Digest.Of(bytes).ToString();
        if (Digest.TryParse(reference, out _) && digest != reference)
            throw new RegistryException($"{Name}: manifest {repository}@{reference} arrived with digest {digest}: tampered or corrupt, refusing it");
        if (response.Headers.TryGetValues("Docker-Content-Digest", out var header) && header.FirstOrDefault() is { } claimed
            && claimed.StartsWith(Digest.Prefix, StringComparison.Ordinal) && claimed != digest)
            throw new RegistryException($"{Name}: manifest {repository}:{reference} hashes to {digest} but the registry says {claimed}; refusing it");
        var mediaType = response.Content.Headers.ContentType?.MediaType ?? MediaTypeOf(bytes);
        return new RegistryManifest(bytes, mediaType, digest);
    }

    public async Task<Descriptor?> ResolveManifestAsync(string repository, string reference, CancellationToken ct = default)
    {
        using var request = ManifestRequest(HttpMethod.Head, repository, reference);
        using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        await EnsureSuccessAsync(response, $"resolving manifest {repository}:{reference}", ct).ConfigureAwait(false);
        if (response.Headers.TryGetValues("Docker-Content-Digest", out var header) && header.FirstOrDefault() is { } d
            && Digest.TryParse(d, out _) && response.Content.Headers.ContentType?.MediaType is { } mt
            && response.Content.Headers.ContentLength is { } size)
            return new Descriptor { MediaType = mt, Digest = d, Size = size };
        // No digest header: fetch the body and hash it ourselves.
        var manifest = await GetManifestAsync(repository, reference, ct).ConfigureAwait(false);
        return manifest == null ? null : new Descriptor { MediaType = manifest.MediaType, Digest = manifest.Digest, Size = manifest.Bytes.Length };
    }

    public async Task<string> PutManifestAsync(string repository, string reference, byte[] bytes, string mediaType, CancellationToken ct = default)
    {
        var digest = Digest.Of(bytes).ToString();
        if (Digest.TryParse(reference, out _) && reference != digest)
            throw new ArgumentException($"manifest bytes hash to {digest}, not {reference}", nameof(reference));
        using var request = new HttpRequestMessage(HttpMethod.Put, new Uri(_base, $"{repository}/manifests/{reference}"))
        {
            Content = new ByteArrayContent(bytes),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
        await EnsureSuccessAsync(response, $"pushing manifest {repository}:{reference}", ct).ConfigureAwait(false);
        return digest;
    }

    public async Task<IReadOnlyList<string>> ListTagsAsync(string repository, CancellationToken ct = default)
    {
        var tags = new List<string>();
        Uri? next = new(_base, $"{repository}/tags/list");
        var pages = 0;
        while (next != null)
        {
            // A registry that keeps linking to a next page must not keep us here for ever (Denial of service).
            if (++pages > MaxPages) throw new RegistryException($"{Name}: listing tags of {repository} went past {MaxPages} pages; refusing to follow more.");
            using var response = await SendAsync(HttpMethod.Get, next, ct).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound) return tags;
            await EnsureSuccessAsync(response, $"listing tags of {repository}", ct).ConfigureAwait(false);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false));
            if (doc.RootElement.TryGetProperty("tags", out var arr) && arr.ValueKind == JsonValueKind.Array)
                tags.AddRange(arr.EnumerateArray().Select(t => t.GetString()).OfType<string>());
            next = NextLink(response, next);
        }
        return tags;
    }

    public async Task<ImageIndex?> GetReferrersAsync(string repository, string digest, string? artifactType = null, CancellationToken ct = default)
    {
        Digest.Parse(digest);
        var path = $"{repository}/referrers/{digest}" + (artifactType != null ? "?artifactType=" + Uri.EscapeDataString(artifactType) : "");
        using var response = await SendAsync(HttpMethod.Get, new Uri(_base, path), ct).ConfigureAwait(false);
        // No referrers API (distribution 2.8, older ECR): the caller falls back to the sha256-<hex> tag.
        if (response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.MethodNotAllowed or HttpStatusCode.NotImplemented) return null;
        await EnsureSuccessAsync(response, $"listing referrers of {repository}@{digest}", ct).ConfigureAwait(false);
        var index = OciJson.Deserialize<ImageIndex>(await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false));
        var filtered = response.Headers.TryGetValues("OCI-Filters-Applied", out var applied) && applied.Any(a => a.Contains("artifactType"));
        if (artifactType != null && !filtered)
            index = index with { Manifests = index.Manifests.Where(m => m.ArtifactType == artifactType).ToList() };
        return index;
    }

    private async Task<Uri> StartUploadAsync(string repository, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_base, $"{repository}/blobs/uploads/")) { Content = new ByteArrayContent([]) };
        using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Accepted)
            await EnsureSuccessAsync(response, $"starting a blob upload to {repository}", ct, expected: "202").ConfigureAwait(false);
        return Location(response, "starting a blob upload");
    }

    private async Task PutMonolithicAsync(Uri location, Descriptor blob, Stream content, IProgress<long>? progress, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, WithDigest(location, blob.Digest))
        {
            Content = new BlobRangeContent(content, 0, blob.Size, progress == null ? null : progress.Report),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        request.Options.Set(RetryHandler.NoRetry, true);
        request.Options.Set(DeadlineHandler.ExtraResponseTime, CompletionTime(blob.Size));
        using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Created)
            await EnsureSuccessAsync(response, $"uploading blob {blob.Digest}", ct, expected: "201").ConfigureAwait(false);
    }

    private async Task<Uri> PatchChunkAsync(Uri location, Stream content, long offset, long length, long total, IProgress<long>? progress, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Patch, location)
        {
            Content = new BlobRangeContent(content, offset, length, progress == null ? null : sent => progress.Report(offset + sent)),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        request.Content.Headers.TryAddWithoutValidation("Content-Range", $"{offset}-{offset + length - 1}");
        request.Options.Set(RetryHandler.NoRetry, true);
        using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Accepted)
            await EnsureSuccessAsync(response, $"uploading bytes {offset}-{offset + length - 1} of {total}", ct, expected: "202").ConfigureAwait(false);
        return Location(response, "uploading a chunk");
    }

    private async Task CompleteUploadAsync(Uri location, string digest, long size, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, WithDigest(location, digest)) { Content = new ByteArrayContent([]) };
        request.Options.Set(RetryHandler.NoRetry, true);
        request.Options.Set(DeadlineHandler.ExtraResponseTime, CompletionTime(size));
        using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Created)
            await EnsureSuccessAsync(response, $"completing the upload of {digest}", ct, expected: "201").ConfigureAwait(false);
    }

    /// <summary>Where an interrupted upload stands: (location, next offset), or (null, 0) when it must restart.</summary>
    private async Task<(Uri?, long)> UploadStatusAsync(Uri location, CancellationToken ct)
    {
        using var response = await SendAsync(HttpMethod.Get, location, ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode) return (null, 0);
        var next = response.Headers.Location is { } l ? new Uri(_base, l) : location;
        if (!response.Headers.TryGetValues("Range", out var ranges)) return (null, 0);
        var range = ranges.First();
        var dash = range.IndexOf('-');
        // "0-0" is ambiguous (empty or one byte) in distribution: start afresh rather than guess.
        if (dash < 0 || !long.TryParse(range[(dash + 1)..], out var end) || end <= 0) return (null, 0);
        return (next, end + 1);
    }

    private async Task CancelUploadAsync(Uri location, CancellationToken ct)
    {
        try
        {
            using var _ = await SendAsync(HttpMethod.Delete, new Uri(_base, location), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or RegistryUnreachableException)
        {
            // Best effort: an abandoned upload session expires on the registry by itself.
        }
    }

    // The registry may hash or move the whole blob before answering the final PUT: one second more per 50 MB
    // on top of the response deadline (a 5 GB layer: 100 s more).
    private static TimeSpan CompletionTime(long size) => TimeSpan.FromSeconds(size / 50_000_000.0);

    private static bool IsResumable(Exception e, CancellationToken ct)
    {
        if (ct.IsCancellationRequested) return false;
        return e switch
        {
            RegistryHttpStatusException s => RetryHandler.IsTransientStatus(s.Status)
                || s.ErrorCode is "BLOB_UPLOAD_UNKNOWN" or "BLOB_UPLOAD_INVALID" || s.Status == HttpStatusCode.RequestedRangeNotSatisfiable,
            RegistryAuthenticationException or ImmutableTagException or RepositoryNotFoundException => false,
            HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError } => false,
            RegistryUnreachableException u => u.Transient,
            HttpRequestException or IOException => true,
            TaskCanceledException { InnerException: TimeoutException } => true,
            // A stalled chunk: resumed like a dropped connection (bounded by failures in a row).
            Net.NetworkTimeoutException => true,
            _ => false,
        };
    }

    private Uri BlobUri(string repository, string digest) => new(_base, $"{repository}/blobs/{Digest.Parse(digest)}");

    private HttpRequestMessage ManifestRequest(HttpMethod method, string repository, string reference)
    {
        var request = new HttpRequestMessage(method, new Uri(_base, $"{repository}/manifests/{reference}"));
        // Bounded on the stream by the deadline handler: Content-Length is only what the server claims.
        request.Options.Set(DeadlineHandler.MaxResponseBytes, MaxManifestBytes);
        request.Options.Set(DeadlineHandler.Purpose, $"manifest {repository}:{reference}");
        foreach (var a in ManifestAccept) request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(a));
        return request;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri uri, CancellationToken ct,
        HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        using var request = new HttpRequestMessage(method, uri);
        return await _http.SendAsync(request, completion, ct).ConfigureAwait(false);
    }

    private Uri Location(HttpResponseMessage response, string what) =>
        response.Headers.Location is { } l
            ? new Uri(_base, l)
            : throw new RegistryException($"{Name}: {what}: the registry answered {(int)response.StatusCode} without a Location header");

    private static Uri WithDigest(Uri location, string digest)
    {
        var s = location.ToString();
        return new Uri(s + (s.Contains('?') ? "&" : "?") + "digest=" + Uri.EscapeDataString(digest));
    }

    private static Uri? NextLink(HttpResponseMessage response, Uri current)
    {
        if (!response.Headers.TryGetValues("Link", out var links)) return null;
        foreach (var link in links)
        {
            var lt = link.IndexOf('<');
            var gt = link.IndexOf('>');
            if (lt >= 0 && gt > lt && link.Contains("rel=\"next\"", StringComparison.Ordinal))
                return new Uri(current, link[(lt + 1)..gt]);
        }
        return null;
    }

    private static string MediaTypeOf(byte[] bytes)
    {
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.TryGetProperty("mediaType", out var mt) && mt.GetString() is { } s) return s;
            return doc.RootElement.TryGetProperty("manifests", out _) ? MediaTypes.ImageIndex : MediaTypes.ImageManifest;
        }
        catch (JsonException)
        {
            return MediaTypes.ImageManifest;
        }
    }

    /// <summary>Turns an error response into a <see cref="RegistryException"/> naming the operation and the fix.</summary>
    private async Task EnsureSuccessAsync(HttpResponseMessage response, string operation, CancellationToken ct, string? expected = null)
    {
        if (response.IsSuccessStatusCode && expected == null) return;
        string? code = null, message = null;
        try
        {
            var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
            if (body.Length > 0 && body.Length < 64 * 1024)
            {
                using var doc = JsonDocument.Parse(body);
                if (doc.RootElement.TryGetProperty("errors", out var errs) && errs.ValueKind == JsonValueKind.Array && errs.GetArrayLength() > 0)
                {
                    var first = errs[0];
                    code = first.TryGetProperty("code", out var c) ? c.GetString() : null;
                    message = first.TryGetProperty("message", out var m) ? m.GetString() : null;
                }
            }
        }
        catch (JsonException)
        {
            // Not the spec's error body; the status says enough.
        }
        var status = response.StatusCode;
        var hint = status switch
        {
            HttpStatusCode.Unauthorized => " Log in (docker login) or pass credentials.",
            HttpStatusCode.Forbidden => " The credentials lack rights on this repository.",
            _ when code == "DIGEST_INVALID" => " The local blob does not match its digest: rebuild with 'harden build'.",
            _ when code == "MANIFEST_BLOB_UNKNOWN" => " A blob the manifest names is missing from the repository.",
            _ => "",
        };
        var detail = $"{Name}: {operation}: HTTP {(int)status}{(expected != null ? $" (expected {expected})" : "")}" +
                     $"{(code != null ? " " + code : "")}{(message != null ? ": " + message : "")}.{hint}";
        if (status == HttpStatusCode.Unauthorized) throw new RegistryAuthenticationException(detail, status);
        throw new RegistryHttpStatusException(detail, status, code, RetryHandler.RetryAfter(response, _options.Retry.MaxDelay));
    }
}

/// <summary>A registry error response, with its status and Retry-After for the upload resumption loop.</summary>
public sealed class RegistryHttpStatusException(string message, HttpStatusCode status, string? errorCode, TimeSpan? retryAfter)
    : RegistryException(message, status, errorCode)
{
    public HttpStatusCode Status { get; } = status;
    public TimeSpan? RetryAfter { get; } = retryAfter;
}
