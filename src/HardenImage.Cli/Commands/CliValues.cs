using HardenImage.Common;
using HardenImage.Deploy;

namespace HardenImage.Cli.Commands;

/// <summary>Option values that need more than a type conversion, checked before any work with one clear line.</summary>
internal static class CliValues
{
    /// <summary>--platform values (OCI spelling) as architectures; null when none was given.</summary>
    public static IReadOnlyCollection<string>? Architectures(string[] platforms) =>
        platforms.Length == 0 ? null : platforms.Select(HardenImage.Oci.PlatformName.ParseArchitecture).Distinct().ToList();

    /// <summary>--docker-host, else $DOCKER_HOST, else the engine .ci/services starts: unix://PATH, tcp://HOST:PORT or npipe://.</summary>
    public static Uri DockerHost(string? option)
    {
        var (text, source) = option != null ? (option, "--docker-host") : (Environment.GetEnvironmentVariable("DOCKER_HOST"), "DOCKER_HOST");
        if (string.IsNullOrEmpty(text)) return DockerEngine.DefaultHost();
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("unix" or "tcp" or "http" or "https" or "npipe"))
            throw new HardenException($"{source} '{text}': expected unix:///path/to/docker.sock or tcp://HOST:PORT, e.g. unix:///tmp/hi-docker/docker.sock");
        return uri;
    }
}
