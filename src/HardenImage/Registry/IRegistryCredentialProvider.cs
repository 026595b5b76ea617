namespace HardenImage.Registry;

/// <summary>
/// Supplies a user name and password (or token) for a registry host; null when it has none for that host.
/// Implementations: <see cref="ExplicitCredentialProvider"/>, <see cref="DockerConfigCredentialProvider"/>,
/// ECR's GetAuthorizationToken provider (Aws stage), chained by <see cref="CredentialProviderChain"/>.
/// Credentials are secrets: never log them (threat: Information disclosure).
/// </summary>
public interface IRegistryCredentialProvider
{
    Task<(string user, string password)?> GetAsync(string host, CancellationToken ct);
}

/// <summary>Creates a repository before the first push when the registry does not create it on demand (ECR).</summary>
public interface IRepositoryCreator
{
    Task EnsureAsync(string repository);
}

/// <summary>Asks each provider in order; the first answer wins.</summary>
public sealed class CredentialProviderChain(IEnumerable<IRegistryCredentialProvider> providers) : IRegistryCredentialProvider
{
    private readonly IReadOnlyList<IRegistryCredentialProvider> _providers = providers.ToList();

    /// <summary>The providers in the order they are asked.</summary>
    public IReadOnlyList<IRegistryCredentialProvider> Providers => _providers;

    public async Task<(string user, string password)?> GetAsync(string host, CancellationToken ct)
    {
        foreach (var p in _providers)
        {
            var c = await p.GetAsync(host, ct).ConfigureAwait(false);
            if (c != null) return c;
        }
        return null;
    }
}

/// <summary>Credentials given on the command line or in code, for one host or (host null) for every host.</summary>
public sealed class ExplicitCredentialProvider(string? host, string user, string password) : IRegistryCredentialProvider
{
    public Task<(string user, string password)?> GetAsync(string requestHost, CancellationToken ct) =>
        Task.FromResult<(string, string)?>(host == null || string.Equals(host, requestHost, StringComparison.OrdinalIgnoreCase)
            ? (user, password) : null);
}
