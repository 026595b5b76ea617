using System.Net.Http.Headers;
using Amazon;
using Amazon.Runtime;
using Amazon.Runtime.Signing;

namespace HardenImage.Aws;

/// <summary>
/// Signs every outgoing request with AWS Signature Version 4 for one service and region, using the public signer
/// of AWSSDK.Core 4.1 (<see cref="AWSSigV4Signer"/>). The body is buffered and hashed, so every request carries
/// <c>x-amz-content-sha256</c>; temporary credentials add a signed <c>x-amz-security-token</c>.
/// Answers Spoofing (AWS authenticates the caller) and Tampering (method, path, query, headers and body are covered
/// by the signature, so a changed byte in transit is rejected).
/// </summary>
/// <remarks>
/// Not the SDK's own <see cref="SigV4SigningHandler"/>: this one takes the signing time from a <see cref="TimeProvider"/>
/// (the official test suite needs a fixed clock per request, not one frozen <c>SignedAt</c>), joins repeated header
/// values the way SigV4 canonicalises them, and never signs hop-by-hop headers a proxy may rewrite.
/// Retries must sit above this handler so each attempt is signed afresh (the typed clients do that).
/// </remarks>
public sealed class AwsSigningHandler : DelegatingHandler
{
    // Headers the transport or a proxy may add or rewrite; signing them would make valid requests fail.
    private static readonly HashSet<string> Unsigned = new(StringComparer.OrdinalIgnoreCase)
    {
        "Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256", "Host",
        "User-Agent", "Expect", "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "TE", "Upgrade",
        "X-Amzn-Trace-Id",
    };

    private readonly AWSCredentials _credentials;
    private readonly RegionEndpoint _region;
    private readonly string _service;
    private readonly TimeProvider _clock;

    public AwsSigningHandler(AWSCredentials credentials, string region, string service, TimeProvider? clock = null,
        HttpMessageHandler? innerHandler = null)
    {
        _credentials = credentials;
        _region = RegionEndpoint.GetBySystemName(AwsContext.ValidateRegion(region, "signing region"));
        _service = service;
        _clock = clock ?? TimeProvider.System;
        InnerHandler = innerHandler ?? new SocketsHttpHandler { AllowAutoRedirect = false };
    }

    /// <summary>The signing service name (the SigV4 credential scope), e.g. "ecr", "inspector-scan".</summary>
    public string Service => _service;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        await SignAsync(request, cancellationToken).ConfigureAwait(false);
        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        SignAsync(request, cancellationToken).GetAwaiter().GetResult();
        return base.Send(request, cancellationToken);
    }

    private async Task SignAsync(HttpRequestMessage request, CancellationToken ct)
    {
        if (request.RequestUri is not { IsAbsoluteUri: true } uri)
            throw new InvalidOperationException("AwsSigningHandler needs an absolute request URI.");

        foreach (var name in new[] { "Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256" })
            request.Headers.Remove(name);

        byte[] body = [];
        if (request.Content != null)
        {
            body = await request.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
            // Re-wrap as re-readable bytes with an explicit length: the signed content-length is what is sent.
            var replacement = new ByteArrayContent(body);
            foreach (var h in request.Content.Headers)
                if (!h.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                    replacement.Headers.TryAddWithoutValidation(h.Key, h.Value);
            replacement.Headers.ContentLength = body.Length;
            request.Content.Dispose();
            request.Content = replacement;
        }

        var signing = new AWSSigningRequest { HttpMethod = request.Method, RequestUri = uri, Content = body };
        AddSignedHeaders(signing, request.Headers);
        if (request.Content != null) AddSignedHeaders(signing, request.Content.Headers);

        var parameters = new AWSSigV4Parameters
        {
            Credentials = _credentials,
            Region = _region,
            Service = _service,
            SignPayload = true,
            SignedAt = _clock.GetUtcNow().UtcDateTime,
        };
        var result = await AWSSigV4Signer.SignAsync(signing, parameters, ct).ConfigureAwait(false);
        foreach (var (name, value) in result.Headers)
        {
            if (name.Equals("Authorization", StringComparison.OrdinalIgnoreCase))
            {
                request.Headers.TryAddWithoutValidation("Authorization", value);
                continue;
            }
            request.Headers.Remove(name);
            request.Headers.TryAddWithoutValidation(name, value);
        }
    }

    private static void AddSignedHeaders(AWSSigningRequest signing, HttpHeaders headers)
    {
        foreach (var h in headers.NonValidated)
        {
            if (Unsigned.Contains(h.Key)) continue;
            // SigV4: one canonical value per name, repeated values trimmed and joined by commas in wire order.
            signing.Headers[h.Key] = string.Join(",", h.Value.Select(v => v.Trim()));
        }
    }
}
