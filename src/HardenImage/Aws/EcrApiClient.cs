using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using HardenImage.Common;

namespace HardenImage.Aws;

/// <summary>Registry login from ECR GetAuthorizationToken. The password is a bearer secret: never printed.</summary>
public sealed record EcrAuthorization(string Username, string Password, Uri ProxyEndpoint, DateTimeOffset ExpiresAt)
{
    // Records print every property; this one must not leak the password into logs (Information disclosure).
    public override string ToString() => $"EcrAuthorization {{ Username = {Username}, ProxyEndpoint = {ProxyEndpoint}, ExpiresAt = {ExpiresAt:O} }}";
}

/// <summary>An ECR repository as DescribeRepositories/CreateRepository report it.</summary>
public sealed record EcrRepository(string Name, string Arn, string RegistryId, string Uri, string ImageTagMutability,
    bool ScanOnPush, string EncryptionType, string? KmsKey);

/// <summary>An image's scan state in ECR: <c>ScanStatus</c> from the API model (COMPLETE, ACTIVE, PENDING, IN_PROGRESS, FAILED, ...).</summary>
public sealed record EcrImageScanStatus(string Status, string? Description)
{
    /// <summary>Findings are final (basic scanning: COMPLETE) or continuously maintained (enhanced scanning: ACTIVE).</summary>
    public bool IsReady => Status is "COMPLETE" or "ACTIVE";

    /// <summary>A scan is queued or running: waiting may help.</summary>
    public bool IsPending => Status is "PENDING" or "IN_PROGRESS";
}

/// <summary>What the push stage needs from ECR besides the distribution API: a repository to push into.</summary>
public interface IEcrRepositories
{
    /// <summary>Creates the repository (immutable tags, scan on push, optional KMS key) or returns the existing one.</summary>
    /// <param name="registryId">Account of the registry (from the ECR host name); null: the caller's own.</param>
    Task<EcrRepository> EnsureRepositoryAsync(string name, string? kmsKeyId = null, string? registryId = null,
        CancellationToken cancellationToken = default);
}

/// <summary>
/// ECR control-plane client (JSON 1.1 over SigV4, service "ecr"): authorization tokens, repositories, PutImage.
/// </summary>
public sealed partial class EcrApiClient : IEcrRepositories, IDisposable
{
    public const string SigningService = "ecr";
    public const string TargetPrefix = "AmazonEC2ContainerRegistry_V20150921.";
    public const string ContentType = "application/x-amz-json-1.1";

    /// <summary>Tokens are refreshed this long before ECR says they expire, so a long push never starts with a dying token.</summary>
    public static readonly TimeSpan TokenRefreshMargin = TimeSpan.FromMinutes(5);

    private readonly AwsJsonTransport _transport;
    private readonly TimeProvider _clock;
    private readonly SemaphoreSlim _tokenLock = new(1, 1);
    private readonly Dictionary<string, EcrAuthorization> _tokens = new(StringComparer.Ordinal);

    public EcrApiClient(AwsContext context)
    {
        _transport = new AwsJsonTransport(context, SigningService, "api.ecr");
        _clock = context.Clock;
        Region = context.Region;
    }

    public string Region { get; }

    /// <summary>HTTP attempts made so far, retries included.</summary>
    public int Attempts => _transport.Attempts;

    /// <summary>
    /// Registry credentials (user "AWS"), cached per registry until <see cref="TokenRefreshMargin"/> before expiry.
    /// </summary>
    /// <param name="registryId">12-digit account of the registry; null: the caller's own registry.</param>
    public async Task<EcrAuthorization> GetAuthorizationTokenAsync(string? registryId = null, CancellationToken cancellationToken = default)
    {
        var key = registryId ?? "";
        await _tokenLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_tokens.TryGetValue(key, out var cached) && _clock.GetUtcNow() < cached.ExpiresAt - TokenRefreshMargin)
                return cached;

            var body = new JsonObject();
            if (registryId != null) body["registryIds"] = new JsonArray(registryId);
            var answer = await CallAsync("GetAuthorizationToken", body, cancellationToken).ConfigureAwait(false);
            var data = (answer?["authorizationData"] as JsonArray)?.FirstOrDefault() as JsonObject
                ?? throw Malformed("GetAuthorizationToken", "authorizationData is empty");
            var auth = ParseAuthorization(data);
            _tokens[key] = auth;
            return auth;
        }
        finally
        {
            _tokenLock.Release();
        }
    }

    internal static EcrAuthorization ParseAuthorization(JsonObject data)
    {
        var token = data["authorizationToken"]?.GetValue<string>() ?? throw Malformed("GetAuthorizationToken", "no authorizationToken");
        string decoded;
        try { decoded = Encoding.UTF8.GetString(Convert.FromBase64String(token)); }
        catch (FormatException) { throw Malformed("GetAuthorizationToken", "authorizationToken is not base64"); }
        var colon = decoded.IndexOf(':');
        if (colon <= 0 || colon == decoded.Length - 1)
            throw Malformed("GetAuthorizationToken", "authorizationToken is not '<user>:<password>'");
        var proxy = data["proxyEndpoint"]?.GetValue<string>() ?? throw Malformed("GetAuthorizationToken", "no proxyEndpoint");
        var expires = ReadTimestamp(data["expiresAt"]) ?? throw Malformed("GetAuthorizationToken", "no expiresAt");
        return new EcrAuthorization(decoded[..colon], decoded[(colon + 1)..], new Uri(proxy), expires);
    }

    /// <summary>DescribeRepositories for the given names (all repositories when null), following nextToken.</summary>
    public async Task<IReadOnlyList<EcrRepository>> DescribeRepositoriesAsync(IReadOnlyList<string>? names = null,
        string? registryId = null, CancellationToken cancellationToken = default)
    {
        var result = new List<EcrRepository>();
        string? next = null;
        var pages = 0;
        do
        {
            // A service that keeps handing out tokens must not keep us here for ever (Denial of service).
            if (++pages > 10_000) throw new HardenException("ECR DescribeRepositories returned more than 10,000 pages; stopping.");
            var body = new JsonObject();
            if (registryId != null) body["registryId"] = ValidateRegistryId(registryId);
            if (names is { Count: > 0 }) body["repositoryNames"] = new JsonArray(names.Select(n => (JsonNode)ValidateRepositoryName(n)).ToArray());
            if (next != null) body["nextToken"] = next;
            var answer = await CallAsync("DescribeRepositories", body, cancellationToken).ConfigureAwait(false);
            foreach (var r in (answer?["repositories"] as JsonArray) ?? [])
                if (r is JsonObject o) result.Add(ParseRepository(o));
            next = answer?["nextToken"]?.GetValue<string>();
        } while (next != null);
        return result;
    }

    /// <summary>
    /// Tags that stay mutable in repositories harden creates: cosign's <c>sha256-&lt;hex&gt;.sig/.att/.sbom</c> tags,
    /// which signing rewrites (a new attestation replaces the previous one under the same tag).
    /// </summary>
    public const string SignatureTagWildcard = "sha256-*";

    /// <summary>
    /// Creates a repository with immutable tags except cosign's signature tags (<c>IMMUTABLE_WITH_EXCLUSION</c>
    /// with the WILDCARD filter <see cref="SignatureTagWildcard"/>): a pushed release tag can never be re-pointed
    /// (Tampering), while <c>harden sign</c> can write and replace <c>.sig</c> and <c>.att</c> several times. Scan on
    /// push is on; with <paramref name="kmsKeyId"/> the layers are encrypted with that KMS key (Information disclosure).
    /// </summary>
    /// <param name="registryId">12-digit account of the registry when it is not the caller's own (cross-account push).</param>
    public async Task<EcrRepository> CreateRepositoryAsync(string name, string? kmsKeyId = null, string? registryId = null,
        CancellationToken cancellationToken = default)
    {
        var body = new JsonObject();
        if (registryId != null) body["registryId"] = ValidateRegistryId(registryId);
        body["repositoryName"] = ValidateRepositoryName(name);
        body["imageTagMutability"] = "IMMUTABLE_WITH_EXCLUSION";
        body["imageTagMutabilityExclusionFilters"] = new JsonArray(new JsonObject
        {
            ["filterType"] = "WILDCARD",
            ["filter"] = SignatureTagWildcard,
        });
        body["imageScanningConfiguration"] = new JsonObject { ["scanOnPush"] = true };
        if (!string.IsNullOrWhiteSpace(kmsKeyId))
            body["encryptionConfiguration"] = new JsonObject { ["encryptionType"] = "KMS", ["kmsKey"] = kmsKeyId };
        var answer = await CallAsync("CreateRepository", body, cancellationToken).ConfigureAwait(false);
        return ParseRepository(answer?["repository"] as JsonObject ?? throw Malformed("CreateRepository", "no repository"));
    }

    /// <inheritdoc />
    public async Task<EcrRepository> EnsureRepositoryAsync(string name, string? kmsKeyId = null, string? registryId = null,
        CancellationToken cancellationToken = default)
    {
        try
        {
            return await CreateRepositoryAsync(name, kmsKeyId, registryId, cancellationToken).ConfigureAwait(false);
        }
        catch (AwsServiceException e) when (e.ErrorCode == "RepositoryAlreadyExistsException")
        {
            var existing = await DescribeRepositoriesAsync([name], registryId, cancellationToken).ConfigureAwait(false);
            return existing.FirstOrDefault() ?? throw new HardenException(
                $"ECR says repository '{name}' exists but DescribeRepositories does not list it; check permissions (ecr:DescribeRepositories).", inner: e);
        }
    }

    /// <summary>
    /// The scan state of one image (DescribeImageScanFindings <c>imageScanStatus</c>, one finding asked for): null
    /// when ECR has no scan for it at all (ScanNotFoundException: scan on push and enhanced scanning are off).
    /// </summary>
    /// <param name="registryId">Account of the registry when it is not the caller's own.</param>
    public async Task<EcrImageScanStatus?> DescribeImageScanStatusAsync(string repository, string imageDigest, string? registryId = null,
        CancellationToken cancellationToken = default)
    {
        var body = new JsonObject();
        if (registryId != null) body["registryId"] = ValidateRegistryId(registryId);
        body["repositoryName"] = ValidateRepositoryName(repository);
        body["imageId"] = new JsonObject { ["imageDigest"] = imageDigest };
        body["maxResults"] = 1;
        JsonNode? answer;
        try
        {
            answer = await CallAsync("DescribeImageScanFindings", body, cancellationToken).ConfigureAwait(false);
        }
        catch (AwsServiceException e) when (e.ErrorCode == "ScanNotFoundException")
        {
            return null;
        }
        catch (AwsServiceException e) when (e.ErrorCode == "ImageNotFoundException")
        {
            throw new HardenException($"ECR repository '{repository}' has no image {imageDigest}{(registryId != null ? " in registry " + registryId : "")} " +
                $"({Region}); push it first, or check the digest, repository and region. ECR said: {e.ServiceMessage}", 2, e);
        }
        var status = answer?["imageScanStatus"] as JsonObject ?? throw Malformed("DescribeImageScanFindings", "no imageScanStatus");
        return new EcrImageScanStatus(status["status"]?.GetValue<string>() ?? throw Malformed("DescribeImageScanFindings", "no imageScanStatus.status"),
            status["description"]?.GetValue<string>());
    }

    /// <summary>PutImage: tags an already uploaded manifest. Returns the image digest ECR reports.</summary>
    public async Task<string> PutImageAsync(string repository, string tag, string manifestJson, string manifestMediaType,
        CancellationToken cancellationToken = default)
    {
        var body = new JsonObject
        {
            ["repositoryName"] = ValidateRepositoryName(repository),
            ["imageManifest"] = manifestJson,
            ["imageManifestMediaType"] = manifestMediaType,
            ["imageTag"] = tag,
        };
        var answer = await CallAsync("PutImage", body, cancellationToken).ConfigureAwait(false);
        return answer?["image"]?["imageId"]?["imageDigest"]?.GetValue<string>() ?? throw Malformed("PutImage", "no image.imageId.imageDigest");
    }

    /// <summary>Turns ECR error codes that need a user decision into messages that say what to do; null for others.</summary>
    public static HardenException? Explain(AwsServiceException e, string? repository = null, string? tag = null, string? region = null) => e.ErrorCode switch
    {
        "ImageTagAlreadyExistsException" => new HardenException(
            $"ECR tag {(repository != null ? repository + ":" : "")}{tag ?? "(tag)"} already exists and the tag is immutable: " +
            "an image is never re-pointed. Push under a new tag (e.g. the version plus build number) or use the digest. " +
            $"ECR said: {e.ServiceMessage}", 2, e),
        "RepositoryNotFoundException" => new HardenException(
            $"ECR repository '{repository}' does not exist{(region != null ? " in " + region : "")}. Create it first " +
            "(harden push creates it when allowed) or check the name, account and region. " +
            $"ECR said: {e.ServiceMessage}", 2, e),
        _ => null,
    };

    private async Task<JsonNode?> CallAsync(string operation, JsonObject body, CancellationToken ct)
    {
        try
        {
            return await _transport.PostAsync(operation, "/", TargetPrefix + operation, ContentType, body, ct).ConfigureAwait(false);
        }
        catch (AwsServiceException e) when (e.ErrorCode is "ImageTagAlreadyExistsException" or "RepositoryNotFoundException")
        {
            var repository = body["repositoryName"]?.GetValue<string>()
                ?? string.Join(", ", (body["repositoryNames"] as JsonArray ?? []).Select(n => n?.GetValue<string>()));
            throw Explain(e, repository, body["imageTag"]?.GetValue<string>(), Region)!;
        }
    }

    private static EcrRepository ParseRepository(JsonObject o)
    {
        var enc = o["encryptionConfiguration"] as JsonObject;
        return new EcrRepository(
            o["repositoryName"]?.GetValue<string>() ?? "",
            o["repositoryArn"]?.GetValue<string>() ?? "",
            o["registryId"]?.GetValue<string>() ?? "",
            o["repositoryUri"]?.GetValue<string>() ?? "",
            o["imageTagMutability"]?.GetValue<string>() ?? "MUTABLE",
            o["imageScanningConfiguration"]?["scanOnPush"]?.GetValue<bool>() ?? false,
            enc?["encryptionType"]?.GetValue<string>() ?? "AES256",
            enc?["kmsKey"]?.GetValue<string>());
    }

    // JSON 1.1 timestamps are epoch seconds (possibly fractional); accept ISO 8601 too.
    internal static DateTimeOffset? ReadTimestamp(JsonNode? node)
    {
        if (node is not JsonValue v) return null;
        if (v.TryGetValue<double>(out var seconds)) return DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Round(seconds * 1000));
        if (v.TryGetValue<string>(out var s))
        {
            if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var secs))
                return DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Round(secs * 1000));
            if (DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var dto)) return dto;
        }
        return null;
    }

    /// <summary>
    /// ECR's repository name rule, from its API model (RepositoryName: 2–256 characters, lower-case path components
    /// joined by '/', each component alphanumeric runs separated by '.', '_', '__' or a run of '-'); checked before a
    /// name is sent, so a bad name fails early and clearly instead of as a ValidationException.
    /// </summary>
    public static string ValidateRepositoryName(string name)
    {
        if (name.Length is < 2 or > 256 || !RepositoryNamePattern().IsMatch(name))
            throw new HardenException($"'{name}' is not a valid ECR repository name: lower-case letters and digits in '/'-separated " +
                "components, joined inside a component by '.', '_', '__' or dashes (e.g. 'team/python-base'), 2 to 256 characters.");
        return name;
    }

    /// <summary>ECR's RegistryId: the 12-digit account.</summary>
    public static string ValidateRegistryId(string registryId) =>
        registryId.Length == 12 && registryId.All(char.IsAsciiDigit) ? registryId
            : throw new HardenException($"'{registryId}' is not an ECR registry id (a 12-digit AWS account).");

    [GeneratedRegex(@"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")]
    private static partial Regex RepositoryNamePattern();

    private static HardenException Malformed(string operation, string what) =>
        new($"ECR {operation} answered with an unexpected body ({what}); is the endpoint really ECR?");

    public void Dispose()
    {
        _transport.Dispose();
        _tokenLock.Dispose();
    }
}
