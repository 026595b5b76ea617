namespace HardenImage.Tests.Infrastructure;

/// <summary>
/// Integration tests that need a real service (skopeo, umoci, docker-registry, a Docker engine, dpkg tools)
/// call these. Outside CI a missing service skips nothing silently: the test fails with the command that
/// installs or starts it, which is also what `.ci/run` does. No hidden skips.
/// </summary>
public static class RequiredService
{
    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Fails the test with an install hint unless <paramref name="tool"/> is on PATH.</summary>
    public static string Tool(string tool, string debianPackage)
    {
        var found = FindOnPath(tool);
        if (found == null)
            Assert.Fail($"'{tool}' is not installed. Install it with: apt-get install -y {debianPackage} (.ci/run does this).");
        return found!;
    }

    /// <summary>The Docker engine socket (DOCKER_HOST), failing with how to start one.</summary>
    public static Uri DockerHost()
    {
        var host = Environment.GetEnvironmentVariable("DOCKER_HOST");
        if (string.IsNullOrEmpty(host))
        {
            const string def = "/tmp/hi-docker/docker.sock";
            if (File.Exists(def)) host = "unix://" + def;
        }
        if (string.IsNullOrEmpty(host))
            Assert.Fail("No Docker engine: set DOCKER_HOST or start one as in .ci/start-services (see docs/environment.md).");
        return new Uri(host!);
    }

    public static string? FindOnPath(string tool)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(dir, tool);
            if (File.Exists(p)) return p;
        }
        foreach (var dir in new[] { "/usr/sbin", "/sbin", "/usr/bin" })
        {
            var p = Path.Combine(dir, tool);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Runs a process to completion; returns exit code, stdout and stderr.</summary>
    public static (int ExitCode, string StdOut, string StdErr) Run(string file, IEnumerable<string> args,
        string? workingDirectory = null, IDictionary<string, string>? env = null, TimeSpan? timeout = null)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromMinutes(5)))
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            Assert.Fail($"{file} {string.Join(' ', args)} timed out");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs and asserts exit code 0, showing stderr when it is not.</summary>
    public static string RunOk(string file, IEnumerable<string> args, string? workingDirectory = null, IDictionary<string, string>? env = null)
    {
        var (code, o, e) = Run(file, args, workingDirectory, env);
        Assert.True(code == 0, $"{file} {string.Join(' ', args)} exited {code}:\n{e}\n{o}");
        return o;
    }
}

/// <summary>A fresh temp directory, deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir(string prefix = "hi-test")
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
