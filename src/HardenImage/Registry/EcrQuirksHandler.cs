using System.Net;
using System.Text.RegularExpressions;

namespace HardenImage.Registry;

/// <summary>
/// Everything ECR does differently from the distribution spec, in one place, so the upload code stays generic:
/// <list type="bullet">
/// <item>a push to a repository that does not exist gets its connection dropped: turned into
/// <see cref="RepositoryNotFoundException"/> saying to create it;</item>
/// <item>a chunk PATCH answers 201 instead of 202: normalised to 202;</item>
/// <item>error bodies in the ECR API's shape (<c>ImageTagAlreadyExistsException</c>, <c>ThrottlingException</c>,
/// <c>TooManyRequestsException</c>): an immutable tag becomes <see cref="ImmutableTagException"/> (threat:
/// Tampering — the repository refuses to move a released tag, we say so rather than retry), throttling becomes
/// 429 so <see cref="RetryHandler"/> backs off.</item>
/// </list>
/// Chunks other than the last must be at least <see cref="MinimumChunkSize"/>; <see cref="RegistryFactory"/> sets
/// the upload chunk size accordingly.
/// </summary>
public sealed partial class EcrQuirksHandler : DelegatingHandler
{
    public const int MinimumChunkSize = 5 * 1024 * 1024;

    /// <summary>Chunk size for ECR when none is asked for.</summary>
    public const int DefaultChunkSize = 8 * 1024 * 1024;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            response = await base.SendAsync(request, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException && !ct.IsCancellationRequested
                                  && request.Method == HttpMethod.Post && UploadStart().Match(request.RequestUri!.AbsolutePath) is { Success: true } m)
        {
            var repo = m.Groups["repo"].Value;
            throw new RepositoryNotFoundException(
                $"repository '{repo}' does not exist in ECR registry {request.RequestUri!.Authority} (ECR dropped the connection on upload): " +
                "create it (harden push creates it when --create-repositories)", e);
        }

        if (request.Method == HttpMethod.Patch && response.StatusCode == HttpStatusCode.Created)
            response.StatusCode = HttpStatusCode.Accepted;

        if ((int)response.StatusCode >= 400 && response.Content != null)
        {
            await response.Content.LoadIntoBufferAsync(ct).ConfigureAwait(false);
            var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            if (body.Contains("ImageTagAlreadyExistsException", StringComparison.Ordinal)
                || (body.Contains("TAG_INVALID", StringComparison.Ordinal) && body.Contains("immutable", StringComparison.OrdinalIgnoreCase)))
            {
                var repo = RepoInPath().Match(request.RequestUri!.AbsolutePath).Groups["repo"].Value;
                response.Dispose();
                throw new ImmutableTagException(
                    $"tag is immutable: ECR repository '{repo}' on {request.RequestUri!.Authority} already has {request.RequestUri!.Segments[^1]} and refuses to move it. " +
                    "Push a new tag, or turn off tag immutability on the repository.");
            }
            if (body.Contains("ThrottlingException", StringComparison.Ordinal) || body.Contains("TooManyRequestsException", StringComparison.Ordinal))
                response.StatusCode = HttpStatusCode.TooManyRequests;
            var write = request.Method != HttpMethod.Get && request.Method != HttpMethod.Head;
            if (write && (body.Contains("RepositoryNotFoundException", StringComparison.Ordinal) || body.Contains("NAME_UNKNOWN", StringComparison.Ordinal)))
            {
                var repo = RepoInPath().Match(request.RequestUri!.AbsolutePath).Groups["repo"].Value;
                response.Dispose();
                throw new RepositoryNotFoundException(
                    $"repository '{repo}' does not exist in ECR registry {request.RequestUri!.Authority}: create it (harden push creates it when --create-repositories)");
            }
        }
        return response;
    }

    [GeneratedRegex("^/v2/(?<repo>.+)/blobs/uploads/?$")]
    private static partial Regex UploadStart();

    [GeneratedRegex("^/v2/(?<repo>.+)/(?:blobs|manifests|tags|referrers)/")]
    private static partial Regex RepoInPath();
}
