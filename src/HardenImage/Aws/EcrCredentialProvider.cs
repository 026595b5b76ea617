using System.Collections.Concurrent;

namespace HardenImage.Aws;

/// <summary>
/// Registry credentials for ECR hosts: parses the host, asks that region's ECR for an authorization token (cached by
/// <see cref="EcrApiClient"/>) and returns user "AWS" plus the token password. The registry stage plugs this into its
/// auth handler. Answers Spoofing: credentials go only to hosts that parse as ECR, for the account in the host name.
/// </summary>
public sealed class EcrCredentialProvider : IDisposable
{
    private readonly Func<string, EcrApiClient> _clientForRegion;
    private readonly ConcurrentDictionary<string, Lazy<EcrApiClient>> _clients = new(StringComparer.Ordinal);

    /// <param name="clientForRegion">Creates the ECR client for a region; the provider owns and disposes what it creates.</param>
    public EcrCredentialProvider(Func<string, EcrApiClient> clientForRegion) => _clientForRegion = clientForRegion;

    /// <summary>Uses one resolved context (credentials, endpoint override, clock) for every region.</summary>
    public EcrCredentialProvider(AwsContext context) : this(region => new EcrApiClient(context.WithRegion(region))) { }

    /// <summary>True when <paramref name="registryHost"/> is an ECR registry this provider can log in to.</summary>
    public static bool CanHandle(string registryHost) => EcrRegistryHost.IsEcr(registryHost);

    /// <summary>(username "AWS", password) for <paramref name="registryHost"/>, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com.</summary>
    public Task<EcrAuthorization> GetCredentialAsync(string registryHost, CancellationToken cancellationToken = default)
    {
        var host = EcrRegistryHost.Parse(registryHost);
        return ClientFor(host.Region).GetAuthorizationTokenAsync(host.AccountId, cancellationToken);
    }

    /// <summary>The ECR API client for a region (shared, so its token cache is shared too).</summary>
    public EcrApiClient ClientFor(string region) =>
        _clients.GetOrAdd(AwsContext.ValidateRegion(region, "ECR registry host"), r => new Lazy<EcrApiClient>(() => _clientForRegion(r))).Value;

    public void Dispose()
    {
        foreach (var c in _clients.Values)
            if (c.IsValueCreated) c.Value.Dispose();
    }
}
