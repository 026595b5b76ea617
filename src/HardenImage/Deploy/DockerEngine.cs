using Docker.DotNet;
using Docker.DotNet.Models;
using HardenImage.Common;
using HardenImage.Oci;
using Platform = HardenImage.Oci.Platform;

namespace HardenImage.Deploy;

/// <summary>How to run one container: the restrictions our Kubernetes pods will have are the defaults.</summary>
public sealed record ContainerRunSpec
{
    public required string Image { get; init; }
    public IList<string>? Entrypoint { get; init; }
    public IList<string>? Cmd { get; init; }
    public string User { get; init; } = "65532:65532";
    public bool ReadOnlyRootFilesystem { get; init; } = true;
    public bool DropAllCapabilities { get; init; } = true;
    public bool NoNewPrivileges { get; init; } = true;
    /// <summary>"none" (default) or "host" (the engine here has no bridge: servers are probed on host loopback).</summary>
    public string Network { get; init; } = "none";
    public long MemoryBytes { get; init; } = 512L << 20;
    public long PidsLimit { get; init; } = 256;
    public IDictionary<string, string> Tmpfs { get; init; } = new Dictionary<string, string> { ["/tmp"] = "rw,nosuid,nodev,size=64m" };
    /// <summary>host path → container path, mounted read-only.</summary>
    public IDictionary<string, string> ReadOnlyMounts { get; init; } = new Dictionary<string, string>();
    /// <summary>host path → container path, mounted read-write (smoke uses it for one run that writes a test model).</summary>
    public IDictionary<string, string> WritableMounts { get; init; } = new Dictionary<string, string>();
    public IDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(2);
}

public sealed record ContainerRunResult(long ExitCode, string StdOut, string StdErr, bool TimedOut);

/// <summary>
/// A real Docker engine through Docker.DotNet, for smoke runs. Images are loaded from our OCI layout as a
/// docker-archive (Docker 20.10's API 1.41 does not load OCI layout tars) and run with pod-like restrictions.
/// </summary>
public sealed class DockerEngine : IDisposable
{
    private readonly DockerClient _client;

    public DockerEngine(Uri host)
    {
        Host = host;
        _client = new DockerClientConfiguration(host).CreateClient();
    }

    public Uri Host { get; }

    /// <summary>DOCKER_HOST, else the private engine .ci/services starts, else the system socket.</summary>
    public static Uri DefaultHost()
    {
        var env = Environment.GetEnvironmentVariable("DOCKER_HOST");
        if (!string.IsNullOrEmpty(env)) return new Uri(env);
        foreach (var sock in new[] { "/tmp/hi-docker/docker.sock", "/var/run/docker.sock" })
            if (File.Exists(sock)) return new Uri("unix://" + sock);
        throw new HardenException("No Docker engine found: set DOCKER_HOST, or start one with 'sudo bash .ci/services' (see docs/environment.md).");
    }

    public async Task PingAsync(CancellationToken ct = default)
    {
        try { await _client.System.PingAsync(ct); }
        catch (Exception e) when (e is HttpRequestException or IOException or DockerApiException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw new HardenException($"Docker engine at {Host} does not answer ({e.Message}). Start it with 'sudo bash .ci/services'.", 3);
        }
    }

    /// <summary>Loads one architecture of a tagged image from the layout; returns the engine's image id (= config digest).</summary>
    public async Task<string> LoadAsync(OciLayout layout, string refName, string architecture, string repoTag, CancellationToken ct = default)
    {
        var image = new OciLayoutReader(layout).Resolve(refName, new Platform { Architecture = architecture });
        await using (var archive = new DockerArchiveWriter(layout).OpenRead(image, [repoTag], ct))
        {
            await _client.Images.LoadImageAsync(new ImageLoadParameters { Quiet = true }, archive, new Progress<JSONMessage>(_ => { }), ct);
        }
        var inspected = await _client.Images.InspectImageAsync(repoTag, ct);
        return inspected.ID;
    }

    /// <summary>The engine's id for <paramref name="reference"/> (tag or id), or null when it has no such image.</summary>
    public async Task<string?> ImageIdAsync(string reference, CancellationToken ct = default)
    {
        try { return (await _client.Images.InspectImageAsync(reference, ct)).ID; }
        catch (DockerImageNotFoundException) { return null; }
    }

    /// <summary>Tags the image <paramref name="imageId"/> as <paramref name="repoTag"/>; false when the engine has no such image.</summary>
    public async Task<bool> TagAsync(string imageId, string repoTag, CancellationToken ct = default)
    {
        var colon = repoTag.LastIndexOf(':');
        try { await _client.Images.TagImageAsync(imageId, new ImageTagParameters { RepositoryName = repoTag[..colon], Tag = repoTag[(colon + 1)..] }, ct); }
        catch (DockerImageNotFoundException) { return false; }
        return true;
    }

    public async Task RemoveImageAsync(string repoTag, CancellationToken ct = default)
    {
        try { await _client.Images.DeleteImageAsync(repoTag, new ImageDeleteParameters { Force = true }, ct); }
        catch (DockerImageNotFoundException) { }
    }

    /// <summary>Runs a container to completion (or its timeout) and returns its exit code and output.</summary>
    public async Task<ContainerRunResult> RunAsync(ContainerRunSpec spec, CancellationToken ct = default)
    {
        var id = await CreateAsync(spec, ct);
        try
        {
            await _client.Containers.StartContainerAsync(id, new ContainerStartParameters(), ct);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(spec.Timeout);
            var timedOut = false;
            long exit = -1;
            try { exit = (await _client.Containers.WaitContainerAsync(id, timeout.Token)).StatusCode; }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                timedOut = true;
                await _client.Containers.KillContainerAsync(id, new ContainerKillParameters(), ct);
            }
            var (stdout, stderr) = await LogsAsync(id, ct);
            return new ContainerRunResult(exit, stdout, stderr, timedOut);
        }
        finally
        {
            await _client.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters { Force = true }, ct);
        }
    }

    /// <summary>Starts a long-running container (a server); dispose the handle to stop and remove it.</summary>
    public async Task<RunningContainer> StartAsync(ContainerRunSpec spec, CancellationToken ct = default)
    {
        var id = await CreateAsync(spec, ct);
        try { await _client.Containers.StartContainerAsync(id, new ContainerStartParameters(), ct); }
        catch
        {
            // A container that failed to start is still created: remove it rather than leak it.
            await StopAndRemoveAsync(id);
            throw;
        }
        return new RunningContainer(this, id);
    }

    internal async Task<(string StdOut, string StdErr)> LogsAsync(string id, CancellationToken ct)
    {
        using var logs = await _client.Containers.GetContainerLogsAsync(id, tty: false,
            new ContainerLogsParameters { ShowStdout = true, ShowStderr = true }, ct);
        return await logs.ReadOutputToEndAsync(ct);
    }

    internal async Task<bool> IsRunningAsync(string id, CancellationToken ct) =>
        (await _client.Containers.InspectContainerAsync(id, ct)).State.Running;

    /// <summary>The exit code once the container has stopped, null while it runs.</summary>
    internal async Task<long?> ExitCodeAsync(string id, CancellationToken ct)
    {
        var state = (await _client.Containers.InspectContainerAsync(id, ct)).State;
        return state.Running ? null : state.ExitCode;
    }

    /// <summary>The host PID of the container's first process, 0 when it is not running (for `harden trace`).</summary>
    internal async Task<long> HostPidAsync(string id, CancellationToken ct) =>
        (await _client.Containers.InspectContainerAsync(id, ct)).State.Pid;

    internal async Task StopAndRemoveAsync(string id) =>
        await _client.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters { Force = true });

    private async Task<string> CreateAsync(ContainerRunSpec spec, CancellationToken ct)
    {
        var created = await _client.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Image = spec.Image,
            Entrypoint = spec.Entrypoint,
            Cmd = spec.Cmd,
            User = spec.User,
            Env = spec.Env.Select(kv => $"{kv.Key}={kv.Value}").ToList(),
            HostConfig = new HostConfig
            {
                NetworkMode = spec.Network,
                ReadonlyRootfs = spec.ReadOnlyRootFilesystem,
                CapDrop = spec.DropAllCapabilities ? ["ALL"] : null,
                SecurityOpt = spec.NoNewPrivileges ? ["no-new-privileges"] : null,
                Memory = spec.MemoryBytes,
                PidsLimit = spec.PidsLimit,
                Tmpfs = spec.Tmpfs,
                Binds = spec.ReadOnlyMounts.Select(kv => $"{kv.Key}:{kv.Value}:ro")
                    .Concat(spec.WritableMounts.Select(kv => $"{kv.Key}:{kv.Value}:rw")).ToList(),
            },
        }, ct);
        return created.ID;
    }

    public void Dispose() => _client.Dispose();
}

/// <summary>A started container; disposing stops and removes it.</summary>
public sealed class RunningContainer(DockerEngine engine, string id) : IAsyncDisposable
{
    public string Id { get; } = id;
    public Task<(string StdOut, string StdErr)> LogsAsync(CancellationToken ct = default) => engine.LogsAsync(Id, ct);
    public Task<bool> IsRunningAsync(CancellationToken ct = default) => engine.IsRunningAsync(Id, ct);
    /// <summary>The exit code once the container has stopped, null while it runs.</summary>
    public Task<long?> ExitCodeAsync(CancellationToken ct = default) => engine.ExitCodeAsync(Id, ct);
    /// <summary>Host PID of the container's first process (0 once stopped).</summary>
    public Task<long> HostPidAsync(CancellationToken ct = default) => engine.HostPidAsync(Id, ct);
    public async ValueTask DisposeAsync() => await engine.StopAndRemoveAsync(Id);
}
