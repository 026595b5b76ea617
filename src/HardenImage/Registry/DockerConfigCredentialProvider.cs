using System.Diagnostics;
using System.Text;
using System.Text.Json;
using HardenImage.Common;

namespace HardenImage.Registry;

/// <summary>
/// Reads credentials the way the docker CLI stores them: <c>$DOCKER_CONFIG/config.json</c> (default
/// <c>~/.docker/config.json</c>): <c>credHelpers[host]</c> or <c>credsStore</c> run
/// <c>docker-credential-&lt;name&gt; get</c> with the host on stdin; <c>auths[host].auth</c> is base64 "user:password".
/// The file is only read; secrets stay in memory and are never logged (threat: Information disclosure).
/// </summary>
public sealed class DockerConfigCredentialProvider : IRegistryCredentialProvider
{
    private readonly string _configPath;
    private readonly Func<string, string, CancellationToken, Task<string>> _runHelper;

    /// <param name="configPath">config.json to read; null = $DOCKER_CONFIG/config.json or ~/.docker/config.json.</param>
    /// <param name="runHelper">Runs a credential helper (program, stdin) → stdout; null runs the real process.</param>
    public DockerConfigCredentialProvider(string? configPath = null, Func<string, string, CancellationToken, Task<string>>? runHelper = null)
    {
        _configPath = configPath ?? DefaultPath();
        _runHelper = runHelper ?? RunHelperProcessAsync;
    }

    public static string DefaultPath()
    {
        var dir = Environment.GetEnvironmentVariable("DOCKER_CONFIG");
        if (string.IsNullOrEmpty(dir)) dir = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".docker");
        return Path.Combine(dir, "config.json");
    }

    /// <summary>docker's own config.json is a few KB even with many registries.</summary>
    private const long MaxConfigBytes = 1L << 20;

    public async Task<(string user, string password)?> GetAsync(string host, CancellationToken ct)
    {
        if (!File.Exists(_configPath)) return null;
        // Bounded like every input (a config.json that is /dev/zero or a 2 GB file must not exhaust memory); the
        // message names the file, never its contents (it holds credentials).
        JsonDocument doc;
        try
        {
            doc = BoundedJson.Parse(BoundedFile.ReadAllBytes(_configPath, MaxConfigBytes, "docker config file"), _configPath, "docker config file", MaxConfigBytes);
        }
        catch (HardenException e)
        {
            throw new HardenException($"{e.Message.TrimEnd('.')}. Fix or remove the docker config file.", e.ExitCode, e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.TryGetProperty("credHelpers", out var helpers) && helpers.ValueKind == JsonValueKind.Object)
                foreach (var h in helpers.EnumerateObject())
                    if (SameHost(h.Name, host) && h.Value.GetString() is { Length: > 0 } helper)
                        return await FromHelperAsync(helper, host, ct).ConfigureAwait(false);

            if (root.TryGetProperty("auths", out var auths) && auths.ValueKind == JsonValueKind.Object)
                foreach (var a in auths.EnumerateObject())
                    if (SameHost(a.Name, host) && FromAuthEntry(a.Value, a.Name) is { } creds)
                        return creds;

            if (root.TryGetProperty("credsStore", out var store) && store.GetString() is { Length: > 0 } storeName)
                return await FromHelperAsync(storeName, host, ct).ConfigureAwait(false);
        }
        return null;
    }

    private (string, string)? FromAuthEntry(JsonElement entry, string key)
    {
        if (entry.ValueKind != JsonValueKind.Object) return null;
        if (entry.TryGetProperty("auth", out var auth) && auth.GetString() is { Length: > 0 } b64)
        {
            string decoded;
            try { decoded = Encoding.UTF8.GetString(Convert.FromBase64String(b64)); }
            catch (FormatException) { throw new HardenException($"{_configPath}: auths.\"{key}\".auth is not base64 of user:password. Run 'docker login' again."); }
            var colon = decoded.IndexOf(':');
            if (colon <= 0) throw new HardenException($"{_configPath}: auths.\"{key}\".auth does not decode to user:password. Run 'docker login' again.");
            return (decoded[..colon], decoded[(colon + 1)..]);
        }
        if (entry.TryGetProperty("username", out var u) && entry.TryGetProperty("password", out var p)
            && u.GetString() is { Length: > 0 } user && p.GetString() is { } pass)
            return (user, pass);
        return null;
    }

    private async Task<(string, string)?> FromHelperAsync(string helper, string host, CancellationToken ct)
    {
        if (helper.IndexOfAny(['/', '\\']) >= 0 || helper.Contains(".."))
            throw new HardenException($"{_configPath}: credential helper name '{helper}' is not a plain name");
        var program = "docker-credential-" + helper;
        string output;
        try
        {
            output = await _runHelper(program, host, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or InvalidOperationException)
        {
            throw new HardenException($"{_configPath} names the credential helper '{helper}', but '{program}' could not run ({e.Message}). Install it or remove it from the config.");
        }
        if (output.Contains("credentials not found", StringComparison.OrdinalIgnoreCase)) return null;
        try
        {
            using var doc = JsonDocument.Parse(output);
            var user = doc.RootElement.TryGetProperty("Username", out var u) ? u.GetString() : null;
            var secret = doc.RootElement.TryGetProperty("Secret", out var s) ? s.GetString() : null;
            if (string.IsNullOrEmpty(secret)) return null;
            // Identity tokens come back with the user "<token>"; they are OAuth refresh tokens we do not speak.
            if (user == "<token>")
                throw new HardenException($"'{program}' returned an identity token for {host}; log in with a user name and password instead.");
            return (user ?? "", secret);
        }
        catch (JsonException)
        {
            throw new HardenException($"'{program} get' for {host} did not print the JSON credential document ({{\"Username\":..,\"Secret\":..}}).");
        }
    }

    private static async Task<string> RunHelperProcessAsync(string program, string stdin, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(program, "get")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"{program} did not start");
        await p.StandardInput.WriteAsync(stdin).ConfigureAwait(false);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct).ConfigureAwait(false);
        var o = await stdout.ConfigureAwait(false);
        var e = await stderr.ConfigureAwait(false);
        if (p.ExitCode != 0)
        {
            if ((o + e).Contains("credentials not found", StringComparison.OrdinalIgnoreCase)) return "credentials not found";
            throw new IOException($"exited {p.ExitCode}: {e.Trim()}");
        }
        return o;
    }

    /// <summary>Config keys may be "host", "https://host", "https://host/v1/"; compare the host part only.</summary>
    private static bool SameHost(string key, string host)
    {
        var k = key;
        var scheme = k.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0) k = k[(scheme + 3)..];
        var slash = k.IndexOf('/');
        if (slash >= 0) k = k[..slash];
        if (string.Equals(k, host, StringComparison.OrdinalIgnoreCase)) return true;
        // Docker Hub is stored under index.docker.io.
        return host == ImageReference.DockerHub && k is "index.docker.io" or "registry-1.docker.io";
    }
}
