using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using HardenImage.Common;
using HardenImage.Net;
using Polly;
using Polly.Retry;

namespace HardenImage.Aws;

/// <summary>An error answer from an AWS API, with the service's error code (e.g. <c>RepositoryNotFoundException</c>).</summary>
public class AwsServiceException : HardenException
{
    public AwsServiceException(string service, string operation, HttpStatusCode status, string errorCode, string? serviceMessage, string? requestId)
        : base(Describe(service, operation, status, errorCode, serviceMessage, requestId))
    {
        Service = service;
        Operation = operation;
        StatusCode = status;
        ErrorCode = errorCode;
        ServiceMessage = serviceMessage;
        RequestId = requestId;
    }

    public string Service { get; }
    public string Operation { get; }
    public HttpStatusCode StatusCode { get; }
    public string ErrorCode { get; }
    public string? ServiceMessage { get; }
    public string? RequestId { get; }

    private static string Describe(string service, string operation, HttpStatusCode status, string code, string? msg, string? requestId)
    {
        var text = $"AWS {service} {operation} failed: {code} (HTTP {(int)status})";
        if (!string.IsNullOrWhiteSpace(msg)) text += $": {msg}";
        if (IsSignatureProblem(code))
            text += ". AWS did not accept the request signature or credentials: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY " +
                    "(or the profile), AWS_SESSION_TOKEN for temporary credentials, and that the system clock is right.";
        if (requestId != null) text += $" (request id {requestId})";
        return text;
    }

    internal static bool IsSignatureProblem(string code) => code is "InvalidSignatureException" or "SignatureDoesNotMatch"
        or "UnrecognizedClientException" or "InvalidClientTokenId" or "ExpiredTokenException" or "IncompleteSignatureException"
        or "MissingAuthenticationTokenException";
}

/// <summary>
/// Sends JSON requests to one AWS service through <see cref="AwsSigningHandler"/>, retrying throttling, 5xx and
/// connection failures with exponential back-off (Polly) and turning error bodies into <see cref="AwsServiceException"/>.
/// Each attempt builds a new request, so each is signed with a fresh timestamp. Answers Denial of service (a
/// throttled run backs off instead of hammering the API, and gives up after a bounded number of attempts).
/// </summary>
internal sealed class AwsJsonTransport : IDisposable
{
    private static readonly HashSet<string> RetryableCodes = new(StringComparer.Ordinal)
    {
        "ThrottlingException", "TooManyRequestsException", "ThrottledException", "RequestLimitExceeded",
        "Throttling", "RequestThrottled", "RequestThrottledException", "ServiceUnavailable", "ServiceUnavailableException",
        "InternalServerException", "InternalFailure", "ServerException",
    };

    /// <summary>Largest AWS answer read (a ScanSbom report of 5,000 components is a few megabytes).</summary>
    public const long MaxResponseBytes = 64 * 1024 * 1024;

    /// <summary>Longest wait between two attempts, also on a server's Retry-After.</summary>
    public static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(20);

    private readonly HttpClient _http;
    private readonly ResiliencePipeline<AwsRawResponse> _retry;
    private readonly string _service;

    public AwsJsonTransport(AwsContext context, string signingService, string endpointPrefix)
    {
        _service = signingService;
        Endpoint = context.EndpointFor(endpointPrefix);
        // Deadlines and the answer's size bound apply to each signed attempt. A shared transport (tests) must
        // survive this client, so the deadline handler is not disposed with it then.
        var deadline = new DeadlineHandler(context.Deadlines, MaxResponseBytes, context.Transport ?? DeadlineHandler.CreateTransport(context.Deadlines));
        var signer = new AwsSigningHandler(context.Credentials, context.Region, signingService, context.Clock, deadline);
        _http = new HttpClient(signer, disposeHandler: context.Transport == null) { Timeout = TimeSpan.FromMinutes(5) };
        // Polly refuses zero retries; "no retries" is simply the empty pipeline.
        _retry = context.MaxRetryAttempts <= 0 ? ResiliencePipeline<AwsRawResponse>.Empty : new ResiliencePipelineBuilder<AwsRawResponse>().AddRetry(new RetryStrategyOptions<AwsRawResponse>
        {
            MaxRetryAttempts = context.MaxRetryAttempts,
            Delay = context.RetryBaseDelay,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            MaxDelay = MaxRetryDelay,
            // A throttling answer that says when to come back is obeyed (capped), instead of our own back-off.
            DelayGenerator = args => ValueTask.FromResult(args.Outcome.Result?.RetryAfter),
            ShouldHandle = args => ValueTask.FromResult(args.Outcome switch
            {
                { Exception: HttpRequestException } => true,
                { Exception: TaskCanceledException } when !args.Context.CancellationToken.IsCancellationRequested => true,
                { Result: { } r } => IsRetryable(r),
                _ => false,
            }),
        }).Build();
    }

    public Uri Endpoint { get; }

    /// <summary>Number of HTTP attempts made so far (for reports and tests).</summary>
    public int Attempts => _attempts;
    private int _attempts;

    /// <summary>POSTs <paramref name="body"/> and returns the parsed JSON answer (null for an empty body); throws on errors.</summary>
    public async Task<JsonNode?> PostAsync(string operation, string path, string? target, string contentType, JsonNode body,
        CancellationToken ct)
    {
        var payload = Encoding.UTF8.GetBytes(body.ToJsonString());
        var uri = new Uri(Endpoint, path);
        AwsRawResponse response;
        var attemptsBefore = _attempts;
        try
        {
            response = await SendWithRetriesAsync(uri, target, contentType, payload, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new HardenException($"Cannot reach AWS {_service} at {Endpoint} ({operation}) after {_attempts - attemptsBefore} attempt(s): {e.Message}. " +
                "Check the network or proxy, the region, and any endpoint override.", 2, e);
        }
        catch (TaskCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new HardenException($"AWS {_service} at {Endpoint} did not answer {operation} in time after {_attempts - attemptsBefore} attempt(s). " +
                "Check the network or proxy and the endpoint.", 2, e);
        }

        if (response.IsSuccess)
        {
            if (string.IsNullOrWhiteSpace(response.Body)) return null;
            try { return JsonNode.Parse(response.Body); }
            catch (JsonException e)
            {
                throw new HardenException($"AWS {_service} at {Endpoint} answered {operation} with HTTP {(int)response.Status} but no JSON; " +
                    "is the endpoint (or a proxy in front of it) really the AWS API?", 2, e);
            }
        }
        throw new AwsServiceException(_service, operation, response.Status, response.ErrorCode ?? $"HTTP{(int)response.Status}",
            response.ErrorMessage, response.RequestId);
    }

    private ValueTask<AwsRawResponse> SendWithRetriesAsync(Uri uri, string? target, string contentType, byte[] payload,
        CancellationToken ct) =>
        _retry.ExecuteAsync(async token =>
        {
            Interlocked.Increment(ref _attempts);
            using var request = new HttpRequestMessage(HttpMethod.Post, uri);
            request.Content = new ByteArrayContent(payload);
            request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            if (target != null) request.Headers.TryAddWithoutValidation("X-Amz-Target", target);
            using var answer = await _http.SendAsync(request, token).ConfigureAwait(false);
            var text = await answer.Content.ReadAsStringAsync(token).ConfigureAwait(false);
            return AwsRawResponse.From(answer, text);
        }, ct);

    private static bool IsRetryable(AwsRawResponse r) =>
        !r.IsSuccess && ((int)r.Status == 429 || (int)r.Status >= 500 || (r.ErrorCode != null && RetryableCodes.Contains(r.ErrorCode)));

    public void Dispose() => _http.Dispose();
}

/// <summary>A fully read HTTP answer with the AWS error fields pulled out (JSON 1.1 and REST-JSON shapes).</summary>
internal sealed record AwsRawResponse(HttpStatusCode Status, string Body, string? ErrorCode, string? ErrorMessage, string? RequestId,
    TimeSpan? RetryAfter = null)
{
    public bool IsSuccess => (int)Status is >= 200 and < 300;

    public static AwsRawResponse From(HttpResponseMessage response, string body)
    {
        var requestId = FirstHeader(response, "x-amzn-RequestId") ?? FirstHeader(response, "x-amz-request-id");
        if (response.IsSuccessStatusCode) return new(response.StatusCode, body, null, null, requestId);
        var retryAfter = Net.RetryAfter.Of(response, AwsJsonTransport.MaxRetryDelay);

        string? code = FirstHeader(response, "x-amzn-ErrorType");
        string? message = null;
        try
        {
            if (JsonNode.Parse(body) is JsonObject o)
            {
                code ??= (o["__type"] ?? o["code"] ?? o["Code"])?.GetValue<string>();
                message = (o["message"] ?? o["Message"] ?? o["errorMessage"])?.GetValue<string>();
            }
        }
        catch (JsonException) { message = body.Length > 300 ? body[..300] : body; }
        catch (InvalidOperationException) { }
        return new(response.StatusCode, body, NormaliseCode(code), message, requestId, retryAfter);
    }

    // "com.amazonaws.ecr#RepositoryNotFoundException" and "ValidationException:http://..." both mean the bare name.
    internal static string? NormaliseCode(string? code)
    {
        if (string.IsNullOrWhiteSpace(code)) return null;
        var c = code.Trim();
        var colon = c.IndexOf(':');
        if (colon >= 0) c = c[..colon];
        var hash = c.LastIndexOf('#');
        if (hash >= 0) c = c[(hash + 1)..];
        return c;
    }

    private static string? FirstHeader(HttpResponseMessage r, string name) =>
        r.Headers.TryGetValues(name, out var v) ? v.FirstOrDefault() : null;
}
