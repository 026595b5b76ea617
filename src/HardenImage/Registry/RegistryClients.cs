using HardenImage.Aws;

namespace HardenImage.Registry;

/// <summary>
/// Builds what push, sign, verify, fetch and deploy need for a <see cref="RegistryTarget"/>: for ECR, credentials from
/// GetAuthorizationToken (one cached token per registry, shared by every request of the run) ahead of the docker
/// config, and repository creation through CreateRepository (immutable tags, scan on push, optional KMS encryption);
/// for a distribution registry the docker config; for <c>oci:DIR</c> nothing. AWS is only resolved when an ECR
/// target is used, so a run without AWS never needs AWS credentials.
/// Answers Spoofing and Information disclosure: ECR tokens are only handed to hosts that parse as ECR.
/// </summary>
public sealed class RegistryClients : IDisposable
{
    private readonly AwsAccess _aws;
    private readonly Func<string, AwsContext> _contextForRegion;
    private readonly Func<HttpMessageHandler>? _registryTransport;
    private readonly Lazy<EcrCredentialProvider> _ecr;

    /// <param name="contextForRegion">Test hook: the AWS context for an ECR region (default: resolved from the options and environment).</param>
    /// <param name="registryTransport">Test hook: the innermost registry HTTP handler (default: sockets).</param>
    public RegistryClients(AwsAccess aws, Func<string, AwsContext>? contextForRegion = null, Func<HttpMessageHandler>? registryTransport = null)
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

    /// <summary>The AWS settings these clients were made with (KMS keys use the same profile and endpoint).</summary>
    public AwsAccess Aws => _aws;

    /// <summary>
    /// The one credential chain every registry client uses (docs/signing.md "Registries and AWS"): credentials given
    /// for this run (<c>harden push --username</c> with HARDEN_REGISTRY_PASSWORD) first, then ECR's
    /// GetAuthorizationToken for ECR hosts, then the docker config (<c>auths</c>, <c>credHelpers</c>, <c>credsStore</c>).
    /// The first provider with an answer for the host wins.
    /// </summary>
    public CredentialProviderChain CredentialsFor(RegistryTarget target, IRegistryCredentialProvider? given = null)
    {
        var providers = new List<IRegistryCredentialProvider>();
        if (given != null) providers.Add(given);
        if (target.Kind == RegistryKind.Ecr) providers.Add(new EcrRegistryCredentials(_ecr.Value));
        providers.Add(new DockerConfigCredentialProvider());
        return new CredentialProviderChain(providers);
    }

    /// <summary>CreateRepository-if-missing for an ECR target; null for others (distribution registries create on push).</summary>
    public IRepositoryCreator? RepositoryCreatorFor(RegistryTarget target) =>
        target.Kind == RegistryKind.Ecr
            ? new EcrRepositoryCreator(_ecr.Value.ClientFor(target.EcrRegion!), _aws.RepositoryKmsKey, EcrRegistryHost.Parse(target.Location).AccountId)
            : null;

    /// <summary>A registry client with <see cref="CredentialsFor"/>'s chain.</summary>
    public IRegistry Create(RegistryTarget target, bool insecure, IRegistryCredentialProvider? given = null) =>
        RegistryFactory.Create(target, new RegistryClientOptions
        {
            Insecure = insecure,
            Credentials = CredentialsFor(target, given),
            Transport = _registryTransport,
        });

    public void Dispose()
    {
        if (_ecr.IsValueCreated) _ecr.Value.Dispose();
    }

    /// <summary>user "AWS" + the GetAuthorizationToken password, for ECR hosts only.</summary>
    internal sealed class EcrRegistryCredentials(EcrCredentialProvider ecr) : IRegistryCredentialProvider
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
