using System.Runtime.CompilerServices;
using Amazon.Runtime.CredentialManagement;
using HardenImage.Aws;
using HardenImage.Common;
using HardenImage.Registry;
using HardenImage.Signing;

// The end-to-end tests drive push/sign/verify in-process through the commands' internal constructors
// (to point the ECR registry side at a loopback fake, which a command line cannot do).
[assembly: InternalsVisibleTo("HardenImage.Tests")]

namespace HardenImage.Cli.Commands;

/// <summary>What the user says about AWS on push/sign/verify; anything null comes from the environment (AWS_PROFILE, AWS_REGION...).</summary>
public sealed record AwsCommandOptions
{
    /// <summary>Region for KMS keys named without an ARN; ECR's region always comes from the registry host.</summary>
    public string? Region { get; init; }

    public string? Profile { get; init; }

    /// <summary>Send AWS API calls (ECR control plane, KMS) here instead of the public endpoints: VPC endpoints, loopback tests.</summary>
    public Uri? Endpoint { get; init; }

    /// <summary>KMS key (id, alias or ARN) that encrypts repositories harden creates in ECR; null = AES256.</summary>
    public string? RepositoryKmsKey { get; init; }

    public static AwsCommandOptions From(string? region, string? profile, string? endpoint, string? repositoryKmsKey = null)
    {
        Uri? uri = null;
        if (!string.IsNullOrWhiteSpace(endpoint) && (!Uri.TryCreate(endpoint, UriKind.Absolute, out uri) || uri.Scheme is not ("http" or "https")))
            throw new HardenException($"--aws-endpoint '{endpoint}': expected an http(s) URL such as https://api.ecr.eu-west-1.amazonaws.com/.");
        return new AwsCommandOptions { Region = region, Profile = profile, Endpoint = uri, RepositoryKmsKey = repositoryKmsKey };
    }
}

/// <summary>
/// Builds what push, sign and verify need for a <see cref="RegistryTarget"/>: for ECR, credentials from
/// GetAuthorizationToken (one cached token per registry, shared by every request of the run) ahead of the docker
/// config, and repository creation through CreateRepository (immutable tags, scan on push, optional KMS encryption);
/// for a distribution registry the docker config; for <c>oci:DIR</c> nothing. AWS is only resolved when an ECR
/// target is used, so a run without AWS never needs AWS credentials.
/// Answers Spoofing and Information disclosure: ECR tokens are only handed to hosts that parse as ECR.
/// </summary>
public sealed class RegistryServices : IDisposable
{
    private readonly AwsCommandOptions _aws;
    private readonly Func<string, AwsContext> _contextForRegion;
    private readonly Func<HttpMessageHandler>? _registryTransport;
    private readonly Lazy<EcrCredentialProvider> _ecr;

    /// <param name="contextForRegion">Test hook: the AWS context for an ECR region (default: resolved from the options and environment).</param>
    /// <param name="registryTransport">Test hook: the innermost registry HTTP handler (default: sockets).</param>
    public RegistryServices(AwsCommandOptions aws, Func<string, AwsContext>? contextForRegion = null, Func<HttpMessageHandler>? registryTransport = null)
    {
        _aws = aws;
        _registryTransport = registryTransport;
        _contextForRegion = contextForRegion ?? (region => AwsContext.Resolve(new AwsClientOptions
        {
            Region = region,
            Profile = aws.Profile,
            EndpointOverride = aws.Endpoint,
        }));
        _ecr = new Lazy<EcrCredentialProvider>(() => new EcrCredentialProvider(region => new EcrApiClient(_contextForRegion(region))));
    }

    /// <summary>The hooks <see cref="PushCommand"/> takes.</summary>
    public RegistryCommandServices ForPush() => new(CredentialsFor, RepositoryCreatorFor, _registryTransport);

    /// <summary>ECR credentials for an ECR target; null otherwise (the docker config then answers).</summary>
    public IRegistryCredentialProvider? CredentialsFor(RegistryTarget target) =>
        target.Kind == RegistryKind.Ecr ? new EcrRegistryCredentials(_ecr.Value) : null;

    /// <summary>CreateRepository-if-missing for an ECR target; null for others (distribution registries create on push).</summary>
    public IRepositoryCreator? RepositoryCreatorFor(RegistryTarget target) =>
        target.Kind == RegistryKind.Ecr
            ? new EcrRepositoryCreator(_ecr.Value.ClientFor(target.EcrRegion!), _aws.RepositoryKmsKey, EcrRegistryHost.Parse(target.Location).AccountId)
            : null;

    /// <summary>A registry client for sign and verify: ECR token first (for ECR hosts), then the docker config.</summary>
    public IRegistry CreateRegistry(RegistryTarget target, bool insecure)
    {
        var providers = new List<IRegistryCredentialProvider>();
        if (CredentialsFor(target) is { } ecr) providers.Add(ecr);
        providers.Add(new DockerConfigCredentialProvider());
        return RegistryFactory.Create(target, new RegistryClientOptions
        {
            Insecure = insecure,
            Credentials = new CredentialProviderChain(providers),
            Transport = _registryTransport,
        });
    }

    /// <summary>KMS client settings for <c>awskms://</c> keys: the endpoint override, region and named profile.</summary>
    public AwsKmsOptions KmsOptions()
    {
        Amazon.Runtime.AWSCredentials? credentials = null;
        if (!string.IsNullOrWhiteSpace(_aws.Profile) && !new CredentialProfileStoreChain().TryGetAWSCredentials(_aws.Profile, out credentials))
            throw new HardenException($"--aws-profile '{_aws.Profile}': no such profile with usable credentials in ~/.aws/credentials or ~/.aws/config.");
        return new AwsKmsOptions { ServiceUrl = _aws.Endpoint?.ToString().TrimEnd('/'), Region = _aws.Region, Credentials = credentials };
    }

    public void Dispose()
    {
        if (_ecr.IsValueCreated) _ecr.Value.Dispose();
    }

    /// <summary>user "AWS" + the GetAuthorizationToken password, for ECR hosts only.</summary>
    private sealed class EcrRegistryCredentials(EcrCredentialProvider ecr) : IRegistryCredentialProvider
    {
        public async Task<(string user, string password)?> GetAsync(string host, CancellationToken ct)
        {
            if (!EcrCredentialProvider.CanHandle(host)) return null;
            var auth = await ecr.GetCredentialAsync(host, ct).ConfigureAwait(false);
            return (auth.Username, auth.Password);
        }
    }

    /// <summary>
    /// ECR drops pushes to a missing repository, so push creates it first (Tampering: tags immutable), in the
    /// account the registry host names (registryId), which may not be the caller's own.
    /// </summary>
    private sealed class EcrRepositoryCreator(EcrApiClient ecr, string? kmsKey, string registryId) : IRepositoryCreator
    {
        public Task EnsureAsync(string repository) => ecr.EnsureRepositoryAsync(repository, kmsKey, registryId);
    }
}
