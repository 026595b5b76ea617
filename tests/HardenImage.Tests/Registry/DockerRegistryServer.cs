using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Registry;

/// <summary>
/// A real distribution 2.8 registry (Debian's docker-registry) on a free loopback port with a temp config and
/// storage, optionally behind htpasswd Basic auth. Killed (by its own process id) on dispose.
/// </summary>
public sealed class DockerRegistryServer : IDisposable
{
    private readonly Process _process;
    private readonly TempDir _dir;

    private DockerRegistryServer(Process process, TempDir dir, int port)
    {
        _process = process;
        _dir = dir;
        Port = port;
    }

    public int Port { get; }
    public string Host => $"127.0.0.1:{Port}";
    public string StorageRoot => _dir.Combine("data");

    public static DockerRegistryServer Start(string? htpasswdFile = null)
    {
        var exe = RequiredService.Tool("docker-registry", "docker-registry");
        for (var attempt = 0; ; attempt++)
        {
            var dir = new TempDir("hi-reg");
            var port = FreePort();
            var auth = htpasswdFile == null ? "" : $"auth: {{htpasswd: {{realm: hi, path: {htpasswdFile}}}}}\n";
            File.WriteAllText(dir.Combine("config.yml"),
                "version: 0.1\n" +
                "log: {level: error, accesslog: {disabled: true}}\n" +
                $"storage: {{filesystem: {{rootdirectory: {dir.Combine("data")}}}, delete: {{enabled: true}}}}\n" +
                $"http: {{addr: 127.0.0.1:{port}}}\n" + auth);
            var psi = new ProcessStartInfo(exe) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            psi.ArgumentList.Add("serve");
            psi.ArgumentList.Add(dir.Combine("config.yml"));
            var p = Process.Start(psi)!;
            p.ErrorDataReceived += (_, _) => { };
            p.OutputDataReceived += (_, _) => { };
            p.BeginErrorReadLine();
            p.BeginOutputReadLine();
            var server = new DockerRegistryServer(p, dir, port);
            if (server.WaitReady()) return server;
            server.Dispose();
            if (attempt >= 2) Assert.Fail("docker-registry did not start on a free loopback port (3 attempts)");
        }
    }

    private bool WaitReady()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && !_process.HasExited)
        {
            try
            {
                using var r = http.GetAsync($"http://{Host}/v2/").GetAwaiter().GetResult();
                if (r.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized) return true;
            }
            catch (HttpRequestException) { }
            Thread.Sleep(50);
        }
        return false;
    }

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
        _dir.Dispose();
    }
}
