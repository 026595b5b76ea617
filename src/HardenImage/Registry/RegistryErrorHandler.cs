using System.Security.Authentication;
using HardenImage.Common;

namespace HardenImage.Registry;

/// <summary>
/// Outermost handler of the registry pipeline: a connection that fails (dead port, DNS, TLS against a plain-HTTP
/// registry, timeout) becomes one <see cref="RegistryException"/> naming the registry host and what to do, with
/// exit code 3 (unreachable) — instead of a socket exception with fifty frames.
/// </summary>
public sealed class RegistryErrorHandler : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        var host = request.RequestUri?.Authority ?? "the registry";
        try
        {
            return await base.SendAsync(request, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (e.InnerException is AuthenticationException || e.HttpRequestError == HttpRequestError.SecureConnectionError)
        {
            throw new RegistryUnreachableException($"registry {host}: TLS handshake failed ({Innermost(e)}). If it is a plain-HTTP lab registry, pass --insecure (loopback registries use HTTP without it); otherwise check its certificate.", e, transient: false);
        }
        catch (HttpRequestException e)
        {
            throw new RegistryUnreachableException($"registry {host}: cannot connect ({Innermost(e)}). Check the host and port and that the registry is running.", e, transient: true);
        }
        catch (TaskCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new RegistryUnreachableException($"registry {host}: no answer in time ({request.Method} {request.RequestUri?.AbsolutePath}). Check the network or try again.", e, transient: true);
        }
    }

    private static string Innermost(Exception e)
    {
        while (e.InnerException != null) e = e.InnerException;
        return e.Message.TrimEnd('.');
    }
}

/// <summary>The registry could not be reached at all (exit code 3), as opposed to answering with an error.</summary>
public sealed class RegistryUnreachableException(string message, Exception inner, bool transient) : RegistryException(message, 3, inner)
{
    /// <summary>A dropped connection or timeout (an upload may resume); false for TLS failures, which repeat.</summary>
    public bool Transient { get; } = transient;
}
