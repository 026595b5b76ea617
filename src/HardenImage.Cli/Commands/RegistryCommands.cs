using HardenImage.Build;
using System.Collections.Concurrent;
using System.ComponentModel;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Oci;
using HardenImage.Registry;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

public static class RegistryCommandsRegistration
{
    /// <summary>Registers <c>harden push</c>.</summary>
    public static void AddRegistryCommands(this IConfigurator config)
    {
        config.AddCommand<PushCommand>("push")
            .WithDescription("Push the built images (artifacts/oci) to an OCI layout directory, a distribution registry or ECR; writes artifacts/pushed.json.")
            .WithExample("push")
            .WithExample("push", "--registry", "registry.example:5000/hardened")
            .WithExample("push", "--registry", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml", "--create-repositories");
    }
}

/// <summary>
/// Hooks for what other stages provide (ECR credentials and repository creation live in the Aws stage).
/// Null factories mean "not available": ECR then uses the docker config (docker login) and cannot create repositories.
/// </summary>
public sealed record RegistryCommandServices(
    Func<RegistryTarget, IRegistryCredentialProvider?>? Credentials = null,
    Func<RegistryTarget, IRepositoryCreator?>? RepositoryCreator = null,
    Func<HttpMessageHandler>? Transport = null);

public sealed class PushSettings : CommandSettings
{
    [CommandOption("--registry <TARGET>")]
    [Description("oci:DIR (default oci:artifacts/registry), HOST[[:port]]/NAMESPACE, or ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAMESPACE. Env HARDEN_REGISTRY.")]
    public string? Registry { get; init; }

    [CommandOption("--layout <DIR>")]
    [Description("OCI layout holding the built images (default artifacts/oci).")]
    [DefaultValue("artifacts/oci")]
    public string Layout { get; init; } = "artifacts/oci";

    [CommandOption("--artifacts <DIR>")]
    [Description("Where build.json is read and pushed.json written (default artifacts).")]
    [DefaultValue("artifacts")]
    public string Artifacts { get; init; } = "artifacts";

    [CommandOption("--image <NAME>")]
    [Description("Push only this image.")]
    public string? Image { get; init; }

    [CommandOption("--parallel <N>")]
    [Description("Blob uploads in flight at once (default 4).")]
    [DefaultValue(4)]
    public int Parallel { get; init; } = 4;

    [CommandOption("--insecure")]
    [Description("Speak plain http to the registry (loopback or lab registries only).")]
    public bool Insecure { get; init; }

    [CommandOption("--create-repositories")]
    [Description("Create missing repositories first (ECR does not create them on push).")]
    public bool CreateRepositories { get; init; }

    [CommandOption("--username <USER>")]
    [Description("Registry user; the password comes from the environment variable HARDEN_REGISTRY_PASSWORD (never the command line).")]
    public string? Username { get; init; }

    [CommandOption("--aws-profile <NAME>")]
    [Description("ECR: AWS profile for GetAuthorizationToken/CreateRepository (default AWS_PROFILE, then the SDK chain).")]
    public string? AwsProfile { get; init; }

    [CommandOption("--aws-endpoint <URL>")]
    [Description("ECR: send ECR API calls here instead of api.ecr.REGION.amazonaws.com (VPC endpoint, tests).")]
    public string? AwsEndpoint { get; init; }

    [CommandOption("--kms-key <KEY>")]
    [Description("ECR: encrypt repositories created by --create-repositories with this KMS key (id, alias or ARN).")]
    public string? KmsKey { get; init; }

    [CommandOption("--output <FORMAT>")]
    [Description("text (tables) or json (one JSON result on stdout; tables go to stderr)")]
    public HardenImage.Cli.OutputFormat Output { get; init; }

    [CommandOption("--platform <PLATFORM>")]
    [Description("Only this platform, OCI spelling: linux/amd64, linux/arm64 (= linux/arm64/v8); repeatable. Default: every architecture")]
    public string[] Platforms { get; init; } = [];

    public override ValidationResult Validate()
    {
        if (Parallel is < 1 or > 64) return ValidationResult.Error("--parallel must be between 1 and 64");
        CliValues.Architectures(Platforms);
        if (Username != null && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("HARDEN_REGISTRY_PASSWORD")))
            return ValidationResult.Error("--username needs the password in the environment variable HARDEN_REGISTRY_PASSWORD");
        return ValidationResult.Success();
    }
}

/// <summary><c>harden push</c>: thin over <see cref="ImagePusher"/>; progress bars while pushing, a table after.</summary>
public sealed class PushCommand : AsyncCommand<PushSettings>
{
    private readonly RegistryCommandServices? _services;

    /// <summary>What Spectre uses: the services are built at execute time from the target and the --aws-* options.</summary>
    public PushCommand() { }

    /// <summary>For the composition root in this assembly (Program.cs) to wire ECR credentials and repository creation.
    /// Internal so Spectre's resolver, which prefers the greediest public constructor, uses the parameterless one.</summary>
    internal PushCommand(RegistryCommandServices services) => _services = services;

    public override async Task<int> ExecuteAsync(CommandContext context, PushSettings settings, CancellationToken cancellationToken)
    {
        HardenImage.Cli.CliOutput.Begin(settings.Output);
        var target = RegistryTarget.Parse(settings.Registry ?? EnvironmentSetting.Get("HARDEN_REGISTRY") ?? "");
        // Refuse plain HTTP to a non-loopback host before reading anything (the factory checks again).
        if (target.Kind != RegistryKind.OciLayout) ImageReference.UsePlainHttp(target.Location, target.Scheme, settings.Insecure, $"--registry {target}");
        var layout = OciLayout.Open(settings.Layout);
        var buildFile = Path.Combine(settings.Artifacts, "build.json");
        var build = File.Exists(buildFile) ? BuildManifest.Load(buildFile) : null;
        var images = ImagePusher.ImagesInLayout(layout, build, settings.Image);
        // An index is pushed as built (its digest is what was signed off): --platform checks that what is pushed
        // holds the platforms asked for; build with --platform to make narrower indexes.
        if (CliValues.Architectures(settings.Platforms) is { } wanted && build != null)
            foreach (var image in build.Images.Where(b => images.Any(i => i.Name == b.Name)))
                foreach (var arch in wanted.Where(a => image.Architectures.All(x => x.Architecture != a)))
                    throw new HardenException($"{buildFile}: image '{image.Name}' has no {PlatformName.ForArchitecture(arch)} (it has {string.Join(", ", image.Architectures.Select(x => PlatformName.ForArchitecture(x.Architecture)))}); run 'harden build --platform {PlatformName.ForArchitecture(arch)}' first");
        using var owned = _services == null
            ? new RegistryServices(AwsCommandOptions.From(null, settings.AwsProfile, settings.AwsEndpoint, settings.KmsKey))
            : null;
        var services = _services ?? owned!.ForPush();

        var providers = new List<IRegistryCredentialProvider>();
        if (settings.Username != null)
            providers.Add(new ExplicitCredentialProvider(target.Location, settings.Username, Environment.GetEnvironmentVariable("HARDEN_REGISTRY_PASSWORD")!));
        if (services.Credentials?.Invoke(target) is { } extra) providers.Add(extra);
        providers.Add(new DockerConfigCredentialProvider());

        IRepositoryCreator? creator = null;
        if (settings.CreateRepositories)
        {
            creator = services.RepositoryCreator?.Invoke(target);
            if (creator == null && target.Kind == RegistryKind.Ecr)
                throw new HardenException("--create-repositories: ECR repository creation is not available in this build (the Aws stage provides it). Create the repositories with 'aws ecr create-repository' first.");
        }

        var registry = RegistryFactory.Create(target, new RegistryClientOptions
        {
            Insecure = settings.Insecure,
            Credentials = new CredentialProviderChain(providers),
            Transport = services.Transport,
        });
        var pusher = new ImagePusher(layout, registry, target.Namespace, settings.Parallel, creator);

        IReadOnlyList<ImagePushResult> results = [];
        if (HardenImage.Cli.CliConsole.IsCiLog)
        {
            // CI log: a line every few seconds with blob counts and bytes.
            var lines = new HardenImage.Cli.ProgressLines("push");
            var blobs = new Dictionary<string, (long Size, long Done, bool Finished)>(StringComparer.Ordinal);
            string Line() => $"{blobs.Values.Count(b => b.Finished)}/{blobs.Count} blobs seen, {HardenImage.Cli.ProgressLines.Megabytes(blobs.Values.Sum(b => b.Done))} of {HardenImage.Cli.ProgressLines.Megabytes(blobs.Values.Sum(b => b.Size))} MB";
            results = await pusher.PushAsync(images, new ReportInline(p =>
            {
                lock (blobs)
                {
                    var done = p.State is BlobTransfer.Uploaded or BlobTransfer.Skipped or BlobTransfer.Mounted;
                    blobs[p.Repository + "@" + p.Digest] = (p.Size, done ? p.Size : p.Transferred, done);
                    lines.Report(Line);
                }
            }), cancellationToken);
            lock (blobs) lines.Report(Line, force: true);
        }
        else await AnsiConsole.Progress()
            .AutoClear(true)
            .HideCompleted(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new DownloadedColumn(), new TransferSpeedColumn())
            .StartAsync(async ctx =>
            {
                var tasks = new ConcurrentDictionary<string, ProgressTask>();
                var gate = new object();
                var progress = new ReportInline(p =>
                {
                    var key = p.Repository + "@" + p.Digest;
                    ProgressTask task;
                    lock (gate)
                        task = tasks.GetOrAdd(key, _ => ctx.AddTask($"{Markup.Escape(p.Image)} {p.Digest[7..19]}", maxValue: Math.Max(1, p.Size)));
                    task.Value = p.Transferred;
                    if (p.State is BlobTransfer.Uploaded or BlobTransfer.Skipped or BlobTransfer.Mounted)
                    {
                        task.Description = $"{Markup.Escape(p.Image)} {p.Digest[7..19]} {p.State.ToString().ToLowerInvariant()}";
                        task.Value = task.MaxValue;
                        task.StopTask();
                    }
                });
                results = await pusher.PushAsync(images, progress, cancellationToken);
            });

        var pushedPath = Path.Combine(settings.Artifacts, "pushed.json");
        var pushedFile = PushedFile.Save(pushedPath, target.ToString(), results);

        var table = new Table().Title($"pushed to {Markup.Escape(target.ToString())}")
            .AddColumns("image", "repository", "digest", "uploaded", "skipped", "mounted");
        foreach (var r in results)
            table.AddRow(Markup.Escape(r.Image), Markup.Escape(r.Repository), r.IndexDigest,
                Size(r.UploadedBytes, r.UploadedBlobs), Size(r.SkippedBytes, r.SkippedBlobs), Size(r.MountedBytes, r.MountedBlobs));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"wrote {pushedPath}");
        HardenImage.Cli.CliOutput.Result(settings.Output, new
        {
            registry = pushedFile.Registry, pushed = pushedPath,
            images = results.Select(r => new
            {
                image = r.Image, repository = r.Repository, index = r.IndexDigest, reference = pushedFile.Images[r.Image].Reference, tags = r.Tags,
                manifests = r.ManifestDigests, uploadedBytes = r.UploadedBytes, skippedBytes = r.SkippedBytes, mountedBytes = r.MountedBytes,
            }),
        });
        return 0;
    }

    private static string Size(long bytes, int blobs) =>
        blobs == 0 ? "-" : $"{(bytes >= 1 << 20 ? $"{bytes / 1048576.0:0.0} MiB" : $"{bytes / 1024.0:0.0} KiB")} ({blobs})";

    private sealed class ReportInline(Action<BlobProgress> report) : IProgress<BlobProgress>
    {
        public void Report(BlobProgress value) => report(value);
    }
}
