using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Amazon;
using Amazon.KeyManagementService;
using Amazon.KeyManagementService.Model;
using Amazon.Runtime;
using HardenImage.Common;

namespace HardenImage.Signing;

/// <summary>
/// A parsed <c>awskms://</c> key reference, in cosign's spelling: <c>awskms:///&lt;key-id|alias/name|key or alias ARN&gt;</c>
/// or <c>awskms://host:port/&lt;key&gt;</c> to talk to a specific endpoint.
/// </summary>
public sealed partial record AwsKmsKeyReference(string? Endpoint, string KeyId)
{
    public const string Scheme = "awskms://";

    /// <summary>The region named by a key or alias ARN, else null (the SDK's region chain decides).</summary>
    public string? Region => ArnPattern().Match(KeyId) is { Success: true } m ? m.Groups["region"].Value : null;

    public static bool IsKmsReference(string reference) => reference.StartsWith(Scheme, StringComparison.Ordinal);

    public static AwsKmsKeyReference Parse(string reference)
    {
        if (!IsKmsReference(reference)) throw new HardenException($"'{reference}' is not an awskms:// key reference.");
        var rest = reference[Scheme.Length..];
        var slash = rest.IndexOf('/');
        if (slash < 0) throw Invalid(reference);
        var endpoint = rest[..slash];
        var key = rest[(slash + 1)..];
        var arn = ArnPattern().Match(key);
        var ok = KeyIdPattern().IsMatch(key)
            || (key.StartsWith("alias/", StringComparison.Ordinal) && key.Length > "alias/".Length)
            || (arn.Success && (arn.Groups["rest"].Value.StartsWith("key/", StringComparison.Ordinal)
                || arn.Groups["rest"].Value.StartsWith("alias/", StringComparison.Ordinal)));
        if (!ok) throw Invalid(reference);
        return new AwsKmsKeyReference(endpoint.Length == 0 ? null : endpoint, key);
    }

    public override string ToString() => Scheme + Endpoint + "/" + KeyId;

    private static HardenException Invalid(string reference) => new(
        $"'{reference}' is not a valid AWS KMS key reference. Use awskms:///<key-id>, awskms:///alias/<name>, "
        + "awskms:///arn:aws:kms:<region>:<account>:key/<id> (or alias/<name>), or awskms://host:port/<key> for a custom endpoint.");

    [GeneratedRegex(@"^(mrk-)?[A-Fa-f0-9]{8}-?[A-Fa-f0-9]{4}-?[A-Fa-f0-9]{4}-?[A-Fa-f0-9]{4}-?[A-Fa-f0-9]{12}$|^mrk-[A-Fa-f0-9]{32}$")]
    private static partial Regex KeyIdPattern();

    [GeneratedRegex(@"^arn:(aws|aws-us-gov|aws-cn):kms:(?<region>[a-z0-9-]+):\d{12}:(?<rest>.+)$")]
    private static partial Regex ArnPattern();
}

/// <summary>How to reach KMS. Everything is optional: by default the SDK's credential and region chains decide.</summary>
public sealed record AwsKmsOptions
{
    /// <summary>Full service URL (e.g. http://127.0.0.1:4566); overrides the endpoint in the key reference.</summary>
    public string? ServiceUrl { get; init; }

    public string? Region { get; init; }

    public AWSCredentials? Credentials { get; init; }

    /// <summary>Deadlines of each KMS request (connect + response); null = defaults or HARDEN_HTTP_TIMEOUT.</summary>
    public Net.NetworkDeadlines? Deadlines { get; init; }

    /// <summary>KMS client settings for <c>awskms://</c> keys from the run's AWS settings: the endpoint override, region and named profile.</summary>
    public static AwsKmsOptions For(Aws.AwsAccess aws)
    {
        AWSCredentials? credentials = null;
        if (!string.IsNullOrWhiteSpace(aws.Profile) && !new Amazon.Runtime.CredentialManagement.CredentialProfileStoreChain().TryGetAWSCredentials(aws.Profile, out credentials))
            throw new HardenException($"--aws-profile '{aws.Profile}': no such profile with usable credentials in ~/.aws/credentials or ~/.aws/config.");
        return new AwsKmsOptions { ServiceUrl = aws.Endpoint?.ToString().TrimEnd('/'), Region = aws.Region, Credentials = credentials };
    }
}

/// <summary>
/// Signs through AWS KMS: the private key never leaves the HSM, so it cannot be copied off a CI runner
/// (threat: Information disclosure / Spoofing). Uses <c>Sign</c> with <c>MessageType=DIGEST</c> and
/// <c>ECDSA_SHA_256</c> (DER signature) and <c>GetPublicKey</c> (SPKI DER), as cosign does.
/// </summary>
public sealed class AwsKmsSigner : ISigner, IDisposable
{
    private readonly IAmazonKeyManagementService _kms;

    private AwsKmsSigner(IAmazonKeyManagementService kms, string keyId, byte[] spki)
    {
        _kms = kms;
        KeyId = keyId;
        PublicKeySpki = spki;
    }

    public string? KeyId { get; }

    public byte[] PublicKeySpki { get; }

    /// <summary>Connects, fetches the public key and checks the key is an ECC_NIST_P256 signing key.</summary>
    public static async Task<AwsKmsSigner> CreateAsync(AwsKmsKeyReference reference, AwsKmsOptions? options = null, CancellationToken ct = default)
    {
        options ??= new AwsKmsOptions();
        var deadlines = options.Deadlines ?? Net.NetworkDeadlines.FromEnvironment();
        // A KMS endpoint that accepts and never answers ends after the deadline, not the SDK's 100 s times its retries.
        var config = new AmazonKeyManagementServiceConfig { Timeout = deadlines.Connect + deadlines.ResponseHeaders, MaxErrorRetry = 3 };
        var region = options.Region ?? reference.Region;
        var serviceUrl = options.ServiceUrl ?? (reference.Endpoint != null ? "https://" + reference.Endpoint : null);
        if (serviceUrl != null)
        {
            config.ServiceURL = serviceUrl;
            config.AuthenticationRegion = region ?? Environment.GetEnvironmentVariable("AWS_REGION") ?? "us-east-1";
        }
        else if (region != null)
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(region);
        }
        AmazonKeyManagementServiceClient client;
        try
        {
            client = options.Credentials != null
                ? new AmazonKeyManagementServiceClient(options.Credentials, config)
                : new AmazonKeyManagementServiceClient(config);
        }
        catch (AmazonClientException e)
        {
            throw new HardenException($"{reference}: cannot set up the AWS KMS client: {e.Message}. "
                + "Set AWS_REGION (or use a key ARN, which names its region) and AWS credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID).", inner: e);
        }
        try
        {
            var response = await Call(reference, () => client.GetPublicKeyAsync(new GetPublicKeyRequest { KeyId = reference.KeyId }, ct));
            if (response.KeySpec != null && response.KeySpec != KeySpec.ECC_NIST_P256)
                throw new HardenException($"{reference}: the KMS key is {response.KeySpec}; HardenImage signs with ECC_NIST_P256 keys only.");
            if (response.KeyUsage != null && response.KeyUsage != KeyUsageType.SIGN_VERIFY)
                throw new HardenException($"{reference}: the KMS key usage is {response.KeyUsage}; it must be SIGN_VERIFY.");
            var spki = response.PublicKey.ToArray();
            PemKeys.ReadPublicKey(spki, reference.ToString()).Dispose(); // fails clearly on a non-P-256 key
            return new AwsKmsSigner(client, response.KeyId ?? reference.KeyId, spki);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    public async Task<byte[]> SignAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        var digest = SHA256.HashData(data.Span);
        var request = new SignRequest
        {
            KeyId = KeyId,
            Message = new MemoryStream(digest),
            MessageType = MessageType.DIGEST,
            SigningAlgorithm = SigningAlgorithmSpec.ECDSA_SHA_256,
        };
        var response = await Call(KeyId!, () => _kms.SignAsync(request, ct));
        return response.Signature.ToArray();
    }

    public void Dispose() => _kms.Dispose();

    private static Task<T> Call<T>(AwsKmsKeyReference reference, Func<Task<T>> call) => Call(reference.ToString(), call);

    private static async Task<T> Call<T>(string key, Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (AmazonServiceException e) when (e.InnerException is HttpRequestException or TaskCanceledException || e.StatusCode == 0)
        {
            throw new HardenException($"AWS KMS ({key}) is unreachable: {e.Message}. Check network access, AWS_REGION and the endpoint.", inner: e);
        }
        catch (AmazonServiceException e)
        {
            throw new HardenException($"AWS KMS refused the request for {key}: {e.ErrorCode} {e.Message}. "
                + "Check the key id and that the caller may use kms:Sign and kms:GetPublicKey on it.", inner: e);
        }
        catch (AmazonClientException e)
        {
            // Raised before any request leaves: no credentials, no region, bad configuration.
            throw new HardenException($"AWS KMS ({key}): {e.Message}. Set AWS_REGION and AWS credentials "
                + "(AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an instance/pod role).", inner: e);
        }
        catch (HttpRequestException e)
        {
            throw new HardenException($"AWS KMS ({key}) is unreachable: {e.Message}.", inner: e);
        }
        catch (Exception e) when (e is TimeoutException // what the SDK throws when its request timeout passes
                                  || (e is OperationCanceledException oce && !oce.CancellationToken.IsCancellationRequested))
        {
            throw new HardenException($"AWS KMS ({key}) did not answer in time. Check network access and the endpoint, or set "
                + $"{Net.NetworkDeadlines.EnvironmentVariable} (seconds) to wait longer.", inner: e);
        }
    }
}
