using System.Text.RegularExpressions;
using Amazon;
using Amazon.Runtime;
using Amazon.Runtime.CredentialManagement;
using Amazon.Runtime.Credentials;
using HardenImage.Common;
using HardenImage.Net;

namespace HardenImage.Aws;

/// <summary>What the user (CLI flags, harden.yaml, tests) says about AWS; anything left null comes from the environment.</summary>
public sealed record AwsClientOptions
{
    /// <summary>Explicit region; wins over AWS_REGION, AWS_DEFAULT_REGION and the profile's region.</summary>
    public string? Region { get; init; }

    /// <summary>Profile name in ~/.aws/credentials or ~/.aws/config; default: AWS_PROFILE, then "default".</summary>
    public string? Profile { get; init; }

    /// <summary>Credentials file to read profiles from instead of the SDK's default locations (tests, CI).</summary>
    public string? SharedCredentialsFile { get; init; }

    /// <summary>Explicit credentials (tests); otherwise the SDK's default chain or the named profile.</summary>
    public AWSCredentials? Credentials { get; init; }

    /// <summary>Send every request here instead of https://&lt;service&gt;.&lt;region&gt;.amazonaws.com (loopback tests, VPC endpoints).</summary>
    public Uri? EndpointOverride { get; init; }

    /// <summary>Retries after a throttling/5xx/connection failure; the first attempt is not counted.</summary>
    public int MaxRetryAttempts { get; init; } = 4;

    /// <summary>First back-off delay; doubled per retry with jitter.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Connect, response-header and stall deadlines; null = defaults or HARDEN_HTTP_TIMEOUT.</summary>
    public NetworkDeadlines? Deadlines { get; init; }
}

/// <summary>
/// Resolved AWS settings shared by the typed clients: credentials, region, endpoint, clock, retry policy and the
/// transport below the signing handler. Built once per run by <see cref="Resolve"/>.
/// </summary>
public sealed partial class AwsContext
{
    public AwsContext(AWSCredentials credentials, string region, Uri? endpointOverride = null,
        int maxRetryAttempts = 4, TimeSpan? retryBaseDelay = null, TimeProvider? clock = null, HttpMessageHandler? transport = null,
        NetworkDeadlines? deadlines = null)
    {
        Deadlines = deadlines ?? NetworkDeadlines.FromEnvironment();
        Credentials = credentials;
        Region = ValidateRegion(region, "region");
        EndpointOverride = endpointOverride;
        MaxRetryAttempts = maxRetryAttempts;
        RetryBaseDelay = retryBaseDelay ?? TimeSpan.FromMilliseconds(250);
        Clock = clock ?? TimeProvider.System;
        Transport = transport;
    }

    public AWSCredentials Credentials { get; }
    public string Region { get; }
    public Uri? EndpointOverride { get; }
    public int MaxRetryAttempts { get; }
    public TimeSpan RetryBaseDelay { get; }
    public TimeProvider Clock { get; }

    /// <summary>Deadlines of every AWS request (each attempt of a retry has its own).</summary>
    public NetworkDeadlines Deadlines { get; }

    /// <summary>The innermost handler (null: a SocketsHttpHandler without redirects). Tests inject capture handlers here.</summary>
    public HttpMessageHandler? Transport { get; }

    /// <summary>A copy for another region (ECR registries in several regions share one set of credentials).</summary>
    public AwsContext WithRegion(string region) =>
        new(Credentials, region, EndpointOverride, MaxRetryAttempts, RetryBaseDelay, Clock, Transport, Deadlines);

    /// <summary>The service endpoint: the override when set, else https://&lt;prefix&gt;.&lt;region&gt;.amazonaws.com(.cn)/.</summary>
    public Uri EndpointFor(string endpointPrefix)
    {
        if (EndpointOverride != null) return EndpointOverride;
        var suffix = Region.StartsWith("cn-", StringComparison.Ordinal) ? "amazonaws.com.cn" : "amazonaws.com";
        return new Uri($"https://{endpointPrefix}.{Region}.{suffix}/");
    }

    /// <summary>
    /// Resolves region and credentials. Region: explicit option, AWS_REGION, AWS_DEFAULT_REGION, the profile's region.
    /// Credentials: explicit, the named profile, else the SDK default chain (environment variables, AWS_PROFILE,
    /// web identity token for IRSA, ECS container and EC2 instance metadata).
    /// </summary>
    /// <param name="environment">Environment lookup (tests pass a dictionary); default: the process environment.</param>
    public static AwsContext Resolve(AwsClientOptions options, Func<string, string?>? environment = null,
        TimeProvider? clock = null, HttpMessageHandler? transport = null)
    {
        var env = environment ?? Environment.GetEnvironmentVariable;
        var profileName = NonEmpty(options.Profile) ?? NonEmpty(env("AWS_PROFILE"));
        var store = options.SharedCredentialsFile != null
            ? new CredentialProfileStoreChain(options.SharedCredentialsFile)
            : new CredentialProfileStoreChain();

        var region = NonEmpty(options.Region) ?? NonEmpty(env("AWS_REGION")) ?? NonEmpty(env("AWS_DEFAULT_REGION"));
        if (region == null && store.TryGetProfile(profileName ?? "default", out var regionProfile))
            region = regionProfile.Region?.SystemName;
        if (region == null)
            throw new HardenException("No AWS region: pass --aws-region, set AWS_REGION (or AWS_DEFAULT_REGION), " +
                $"or add 'region = ...' to profile '{profileName ?? "default"}' in ~/.aws/config.");

        // A named profile (option, AWS_PROFILE) or an explicit file is read from the profile store; otherwise the SDK chain.
        var credentialProfile = profileName ?? (options.SharedCredentialsFile != null ? "default" : null);
        var credentials = options.Credentials ?? ResolveCredentials(store, credentialProfile);
        return new AwsContext(credentials, region, options.EndpointOverride, options.MaxRetryAttempts,
            options.RetryBaseDelay, clock, transport, options.Deadlines);
    }

    private static AWSCredentials ResolveCredentials(CredentialProfileStoreChain store, string? profile)
    {
        if (profile != null)
        {
            if (store.TryGetAWSCredentials(profile, out var fromProfile)) return fromProfile;
            throw new HardenException($"AWS profile '{profile}' not found or has no usable credentials in " +
                $"{store.ProfilesLocation ?? "~/.aws/credentials and ~/.aws/config"}; check the profile name (--aws-profile / AWS_PROFILE).");
        }
        try
        {
            return DefaultAWSCredentialsIdentityResolver.GetCredentials(null);
        }
        catch (AmazonClientException e)
        {
            throw new HardenException("No AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY " +
                "(and AWS_SESSION_TOKEN), AWS_PROFILE, a web identity token (IRSA) or run with an instance/container role. " +
                $"SDK said: {e.Message}", inner: e);
        }
    }

    /// <summary>
    /// Regions become part of host names; only the documented shape is accepted so a crafted registry host or
    /// option cannot point signed requests elsewhere (Spoofing / Information disclosure).
    /// </summary>
    public static string ValidateRegion(string region, string source)
    {
        if (!RegionPattern().IsMatch(region))
            throw new HardenException($"'{region}' (from {source}) is not an AWS region name like 'us-east-1'.");
        return region;
    }

    internal RegionEndpoint RegionEndpoint => RegionEndpoint.GetBySystemName(Region);

    private static string? NonEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();

    [GeneratedRegex("^[a-z]{2}(-[a-z]+)+-[0-9]+$")]
    private static partial Regex RegionPattern();
}
