using System.Diagnostics;
using System.Net;

namespace HardenImage.Tests.Infrastructure;

/// <summary>
/// A real distribution registry (`docker-registry serve`, distribution 2.8) on 127.0.0.1 and a free port, with its
/// own storage directory; killed and deleted on dispose. Use as an xunit class fixture
/// (<c>IClassFixture&lt;RegistryFixture&gt;</c>) or create one with <see cref="Start"/>, optionally with an htpasswd
/// file (bcrypt entries, `htpasswd -B`) to require Basic auth. No OCI 1.1 referrers API (it answers 404).
/// The one registry launcher of the tests (it replaced Registry/DockerRegistryServer and an inline copy).
/// </summary>
public sealed class RegistryFixture : IDisposable
{
    private readonly Process _process;
    private readonly TempDir _dir;
    private readonly System.Text.StringBuilder _log = new();

    public RegistryFixture() : this(null, LoopbackPort.Free()) { }

    private RegistryFixture(string? htpasswdPath, int port)
    {
        var exe = RequiredService.Tool("docker-registry", "docker-registry");
        _dir = new TempDir("hi-registry");
        Port = port;
        var auth = htpasswdPath == null ? "" : $"auth: {{htpasswd: {{realm: hi, path: {htpasswdPath}}}}}\n";
        var config = _dir.Combine("config.yml");
        File.WriteAllText(config,
            "version: 0.1\n" +
            "log: {level: warn, accesslog: {disabled: true}}\n" +
            $"storage: {{filesystem: {{rootdirectory: {_dir.Combine("data")}}}, delete: {{enabled: true}}}}\n" +
            $"http: {{addr: 127.0.0.1:{Port}}}\n" + auth);
        var psi = new ProcessStartInfo(exe) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add(config);
        _process = Process.Start(psi)!;
        _process.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
        try { WaitUntilServing(requiresAuth: htpasswdPath != null); }
        catch { Dispose(); throw; }
    }

    /// <summary>
    /// A registry requiring Basic auth from <paramref name="htpasswdPath"/> (or none when null). Another process
    /// may take the free port between probe and start: up to 3 attempts, each on a fresh port.
    /// </summary>
    public static RegistryFixture Start(string? htpasswdPath = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            try { return new RegistryFixture(htpasswdPath, LoopbackPort.Free()); }
            catch (InvalidOperationException) when (attempt < 3) { }
        }
    }

    /// <summary>A registry requiring Basic auth for one user; the htpasswd file (bcrypt) is generated here.</summary>
    public static RegistryFixture StartWithBasicAuth(string user, string password)
    {
        var salt = new byte[16];
        System.Security.Cryptography.RandomNumberGenerator.Fill(salt);
        var hash = Org.BouncyCastle.Crypto.Generators.OpenBsdBCrypt.Generate("2a", password.ToCharArray(), salt, 5);
        var file = Path.Combine(Path.GetTempPath(), $"hi-htpasswd-{Guid.NewGuid():N}");
        File.WriteAllText(file, $"{user}:{hash}\n");
        var fixture = Start(file);
        fixture._htpasswd = file;
        return fixture;
    }

    private string? _htpasswd;

    public int Port { get; }

    /// <summary>"127.0.0.1:PORT", the host part of image references (e.g. for skopeo's docker:// transport).</summary>
    public string Host => $"127.0.0.1:{Port}";

    public Uri BaseUri => new($"http://127.0.0.1:{Port}/");

    /// <summary>The registry's storage root directory (tests that damage stored blobs behind its back).</summary>
    public string StorageRoot => _dir.Combine("data");

    public string Log { get { lock (_log) return _log.ToString(); } }

    private void WaitUntilServing(bool requiresAuth)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"docker-registry exited with {_process.ExitCode}:\n{Log}");
            try
            {
                using var r = http.GetAsync(new Uri(BaseUri, "v2/")).GetAwaiter().GetResult();
                if (r.StatusCode == HttpStatusCode.OK || (requiresAuth && r.StatusCode == HttpStatusCode.Unauthorized)) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            Thread.Sleep(100);
        }
        throw new InvalidOperationException($"docker-registry did not answer on {BaseUri} within 20 s:\n{Log}");
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
        _dir.Dispose();
        if (_htpasswd != null) File.Delete(_htpasswd);
    }
}
