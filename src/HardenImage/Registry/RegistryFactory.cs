using HardenImage.Net;

namespace HardenImage.Registry;

/// <summary>What a registry client needs beyond the target: credentials, transport and patience.</summary>
public sealed record RegistryClientOptions
{
    /// <summary>Speak http instead of https (a loopback or lab registry).</summary>
    public bool Insecure { get; init; }

    /// <summary>Credentials; null = the docker config (credHelpers, auths, credsStore).</summary>
    public IRegistryCredentialProvider? Credentials { get; init; }

    public RetryOptions Retry { get; init; } = new();

    /// <summary>Blob size below which one PUT carries the whole blob.</summary>
    public int MonolithicLimit { get; init; } = 8 * 1024 * 1024;

    /// <summary>PATCH chunk size for larger blobs; 0 = one streamed PATCH per blob (ECR: 0 means 8 MiB, and never below 5 MiB).</summary>
    public int ChunkSize { get; init; }

    /// <summary>Per-request time limit (a hung connection is dropped and the upload resumed).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Connect, response-header and stall deadlines of every request; null = defaults or HARDEN_HTTP_TIMEOUT.</summary>
    public NetworkDeadlines? Deadlines { get; init; }

    /// <summary>The innermost handler; null = a <see cref="SocketsHttpHandler"/>. Tests hook in here.</summary>
    public Func<HttpMessageHandler>? Transport { get; init; }

    /// <summary>When bearer tokens expire; null = the system clock. Tests inject a fake one.</summary>
    public TimeProvider? Clock { get; init; }
}

/// <summary>
/// Builds the registry for a <see cref="RegistryTarget"/>: for distribution and ECR an <see cref="HttpClient"/>
/// pipeline <c>RegistryAuthHandler → RetryHandler → [EcrQuirksHandler] → transport</c> under a
/// <see cref="DistributionRegistry"/>; for <c>oci:DIR</c> an <see cref="OciLayoutRegistry"/>.
/// </summary>
public static class RegistryFactory
{
    /// <summary>Largest registry answer read whole (tag lists, referrers, error bodies); manifests and blobs set their own.</summary>
    public const long MaxResponseBytes = 16 * 1024 * 1024;

    /// <summary>Largest token-realm answer: tokens are a few kilobytes.</summary>
    public const long MaxTokenResponseBytes = 1024 * 1024;

    public static IRegistry Create(RegistryTarget target, RegistryClientOptions? options = null)
    {
        options ??= new RegistryClientOptions();
        if (target.Kind == RegistryKind.OciLayout) return new OciLayoutRegistry(target.Location);
        var ecr = target.Kind == RegistryKind.Ecr;
        var http = CreateHttpClient(options, ecr, out _);
        return new DistributionRegistry(http, target.Location, new DistributionRegistryOptions
        {
            // Loopback hosts speak HTTP as with Docker and crane; others only with --insecure (ImageReference.UsePlainHttp).
            Insecure = ImageReference.UsePlainHttp(target.Location, target.Scheme, options.Insecure, $"registry {target}"),
            MonolithicLimit = options.MonolithicLimit,
            ChunkSize = !ecr ? options.ChunkSize
                : options.ChunkSize == 0 ? EcrQuirksHandler.DefaultChunkSize
                : Math.Max(EcrQuirksHandler.MinimumChunkSize, options.ChunkSize),
            Retry = options.Retry,
            RestartInterruptedUploads = ecr,
        });
    }

    /// <summary>The handler pipeline; <paramref name="auth"/> is exposed so callers and tests can observe token use.</summary>
    public static HttpClient CreateHttpClient(RegistryClientOptions options, bool ecr, out RegistryAuthHandler auth)
    {
        var deadlines = options.Deadlines ?? NetworkDeadlines.FromEnvironment();
        // Deadlines and size bounds sit right above the transport, so every attempt of every retry has its own.
        HttpMessageHandler Transport(long maxResponseBytes) => new DeadlineHandler(deadlines, maxResponseBytes,
            options.Transport?.Invoke() ?? DeadlineHandler.CreateTransport(deadlines, followRedirects: true));

        HttpMessageHandler inner = Transport(MaxResponseBytes);
        if (ecr) inner = new EcrQuirksHandler { InnerHandler = inner };
        var retry = new RetryHandler(options.Retry) { InnerHandler = inner };
        var tokenClient = new HttpClient(new RegistryErrorHandler { InnerHandler = new RetryHandler(options.Retry) { InnerHandler = Transport(MaxTokenResponseBytes) } }) { Timeout = TimeSpan.FromMinutes(1) };
        var credentials = options.Credentials ?? new DockerConfigCredentialProvider();
        auth = new RegistryAuthHandler(credentials, tokenClient, options.Clock) { InnerHandler = retry };
        var client = new HttpClient(new RegistryErrorHandler { InnerHandler = auth }) { Timeout = options.RequestTimeout };
        client.DefaultRequestHeaders.UserAgent.ParseAdd("harden/1.0");
        return client;
    }
}
