using System.Net;
using System.Net.Sockets;

namespace HardenImage.Tests.Infrastructure;

/// <summary>Loopback ports for test servers (and for "nothing listens here" tests).</summary>
public static class LoopbackPort
{
    /// <summary>
    /// A port on 127.0.0.1 that was free a moment ago (the kernel picked it for a listener that is closed again).
    /// Nothing listens on it, so it also serves as a closed port; a server started on it may still lose a race.
    /// </summary>
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
