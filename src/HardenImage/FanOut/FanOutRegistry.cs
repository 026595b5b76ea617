using System.Security.Cryptography;
using HardenImage.Aws;
using HardenImage.Registry;
using HardenImage.Signing;

namespace HardenImage.FanOut;

/// <summary>
/// The registry plan, job and fan-in work with, and — when the release key is given — the cache in it: a cached
/// manifest counts only when signed by that key (<see cref="RegistryCache"/>).
/// </summary>
public sealed class FanOutRegistry : IDisposable
{
    private readonly RegistryClients _clients;
    private readonly ECDsa? _key;

    private FanOutRegistry(RegistryClients clients, RegistryTarget target, IRegistry registry, ECDsa? key)
    {
        _clients = clients; Target = target; Registry = registry; _key = key;
        Cache = key == null ? null : new RegistryCache(registry, key);
    }

    public RegistryTarget Target { get; }
    public IRegistry Registry { get; }

    /// <summary>Null without the release key: then nothing is read from the cache.</summary>
    public RegistryCache? Cache { get; }

    /// <param name="registry">--registry (or HARDEN_REGISTRY): HOST[:port]/NAMESPACE, an ECR host, or oci:DIR.</param>
    /// <param name="releaseKey">The release key's public half (file or awskms://); null = no cache.</param>
    public static async Task<FanOutRegistry> OpenAsync(string registry, string? releaseKey, bool insecure, CancellationToken ct)
    {
        var target = RegistryTarget.Parse(registry);
        if (target.Kind != RegistryKind.OciLayout) ImageReference.UsePlainHttp(target.Location, target.Scheme, insecure, $"--registry {target}");
        var clients = new RegistryClients(new AwsAccess());
        try
        {
            var client = clients.Create(target, insecure);
            var key = releaseKey == null ? null
                : await new SignerFactory(KeyPasswordSource.FromEnvironmentOrTerminal(), AwsKmsOptions.For(clients.Aws)).PublicKeyFromReferenceAsync(releaseKey, ct).ConfigureAwait(false);
            return new FanOutRegistry(clients, target, client, key);
        }
        catch
        {
            clients.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _key?.Dispose();
        _clients.Dispose();
    }
}
