using HardenImage.Oci;

namespace HardenImage.Deploy;

/// <summary>How one architecture's smoke checks were run: said in every result row and in smoke.json.</summary>
public static class SmokeRunners
{
    public const string Docker = "docker";
    public const string QemuChroot = "qemu-user-chroot";
    public const string None = "none";
}

/// <summary>
/// What the smoke checks need from whatever runs an image: load it, run a command to completion, start a server.
/// Docker runs the host's architecture; <see cref="EmulatedSmokeRuntime"/> runs another one under qemu-user.
/// </summary>
public interface ISmokeRuntime
{
    /// <summary>One of <see cref="SmokeRunners"/>.</summary>
    string Runner { get; }
    /// <summary>Where it runs, for the report (an engine URI, or the emulator and the way it isolates).</summary>
    string Describe { get; }
    /// <summary>The id of an image loaded under <paramref name="tag"/> (its config digest), null when none is.</summary>
    Task<string?> ImageIdAsync(string tag, CancellationToken ct);
    /// <summary>Makes one architecture of a tagged image runnable under <paramref name="tag"/>; returns its id (the config digest).</summary>
    Task<string> LoadAsync(OciLayoutReader reader, ResolvedManifest image, string refName, string architecture, string tag, CancellationToken ct);
    Task RemoveImageAsync(string tag, CancellationToken ct);
    /// <summary>Adds <paramref name="tag"/> to an image already loaded with id <paramref name="imageId"/>; false when
    /// there is none (or the runtime cannot share images between runs): then the caller loads it.</summary>
    Task<bool> TagAsync(string imageId, string tag, CancellationToken ct);
    Task<ContainerRunResult> RunAsync(ContainerRunSpec spec, CancellationToken ct);
    Task<ISmokeContainer> StartAsync(ContainerRunSpec spec, CancellationToken ct);
}

/// <summary>A started server; disposing stops it and removes what it left.</summary>
public interface ISmokeContainer : IAsyncDisposable
{
    Task<(string StdOut, string StdErr)> LogsAsync(CancellationToken ct = default);
    /// <summary>The exit code once stopped, null while it runs.</summary>
    Task<long?> ExitCodeAsync(CancellationToken ct = default);
}

/// <summary>The Docker engine as a smoke runtime (the host's own architecture).</summary>
public sealed class DockerSmokeRuntime(DockerEngine engine) : ISmokeRuntime
{
    public string Runner => SmokeRunners.Docker;
    public string Describe => $"Docker engine {engine.Host}";

    public Task<string?> ImageIdAsync(string tag, CancellationToken ct) => engine.ImageIdAsync(tag, ct);

    public Task<string> LoadAsync(OciLayoutReader reader, ResolvedManifest image, string refName, string architecture, string tag, CancellationToken ct) =>
        engine.LoadAsync(reader.Layout, refName, architecture, tag, ct);

    public Task RemoveImageAsync(string tag, CancellationToken ct) => engine.RemoveImageAsync(tag, ct);

    public Task<bool> TagAsync(string imageId, string tag, CancellationToken ct) => engine.TagAsync(imageId, tag, ct);

    public Task<ContainerRunResult> RunAsync(ContainerRunSpec spec, CancellationToken ct) => engine.RunAsync(spec, ct);

    public async Task<ISmokeContainer> StartAsync(ContainerRunSpec spec, CancellationToken ct) => new Started(await engine.StartAsync(spec, ct));

    /// <summary>The engine's container behind a smoke container (`harden trace` reads its /proc); null when emulated.</summary>
    public static RunningContainer? EngineContainer(ISmokeContainer container) => (container as Started)?.Container;

    private sealed class Started(RunningContainer container) : ISmokeContainer
    {
        public RunningContainer Container => container;
        public Task<(string StdOut, string StdErr)> LogsAsync(CancellationToken ct = default) => container.LogsAsync(ct);
        public Task<long?> ExitCodeAsync(CancellationToken ct = default) => container.ExitCodeAsync(ct);
        public ValueTask DisposeAsync() => container.DisposeAsync();
    }
}
