using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace HardenImage.Bench;

/// <summary>docker-registry on a free loopback port with storage under the work directory; killed (by its own id)
/// and, unless <c>keepData</c>, its storage and configuration removed on dispose.</summary>
public sealed class RegistryProcess : IDisposable
{
    private readonly Process _p;
    private readonly string _config;
    private readonly string _data;
    private readonly bool _keepData;
    private RegistryProcess(Process p, string host, string config, string data, bool keepData) { _p = p; Host = host; _config = config; _data = data; _keepData = keepData; }
    public string Host { get; }

    public static RegistryProcess Start(string work, bool keepData = false)
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        var data = Path.Combine(work, $"registry-data-{port}");
        if (Directory.Exists(data)) Directory.Delete(data, true);
        var config = Path.Combine(work, $"registry-{port}.yml");
        File.WriteAllText(config, $"version: 0.1\nlog: {{level: error, accesslog: {{disabled: true}}}}\nstorage: {{filesystem: {{rootdirectory: {data}}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n");
        var psi = new ProcessStartInfo("docker-registry") { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add(config);
        var p = Process.Start(psi)!;
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        using var http = new HttpClient();
        for (var i = 0; i < 200; i++)
        {
            try { if (http.GetAsync($"http://127.0.0.1:{port}/v2/").Result.IsSuccessStatusCode) return new RegistryProcess(p, $"127.0.0.1:{port}", config, data, keepData); }
            catch (AggregateException) { }
            Thread.Sleep(50);
        }
        p.Kill();
        throw new InvalidOperationException("docker-registry did not start");
    }

    public void Dispose()
    {
        if (!_p.HasExited) { _p.Kill(); _p.WaitForExit(5000); }
        _p.Dispose();
        if (!_keepData) try { Directory.Delete(_data, true); File.Delete(_config); } catch (IOException) { }
    }
}
