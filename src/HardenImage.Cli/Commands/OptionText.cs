namespace HardenImage.Cli.Commands;

/// <summary>
/// Help text of options several commands declare at different places in their option lists (Spectre lists base
/// class options first, so a shared base class would reorder the help): written once here so the copies cannot drift.
/// </summary>
internal static class OptionText
{
    public const string Output = "text (tables) or json (one JSON result on stdout; tables go to stderr)";

    public const string Cache = "Content-addressed cache (indices, .debs, unpacked files). Default: $HARDEN_CACHE, else $XDG_CACHE_HOME/hardenimage, else ~/.cache/hardenimage";

    public const string Platforms = "Only this platform, OCI spelling: linux/amd64, linux/arm64 (= linux/arm64/v8); repeatable. Default: every architecture";

    public const string PushRegistry = "oci:DIR (default oci:artifacts/registry), HOST[[:port]]/NAMESPACE, or ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAMESPACE. Env HARDEN_REGISTRY.";

    public const string AllowRollback = "Accept a Release older than the Date the lock records for its suite (reported loudly)";

    public const string BuildOutput = "Build output (build.json, oci/). Default: artifacts";

    public const string LocalDockerHost = "With --local: the Docker engine (default $DOCKER_HOST, else /tmp/hi-docker/docker.sock)";
}
