using HardenImage.Aws;
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

public sealed class PushSettings : CommandSettings
{
    [CommandOption("--registry <TARGET>")]
    [Description(OptionText.PushRegistry)]
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
    [Description(OptionText.Output)]
    public HardenImage.Cli.OutputFormat Output { get; init; }

    [CommandOption("--platform <PLATFORM>")]
    [Description(OptionText.Platforms)]
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

/// <summary><c>harden push</c>: thin over <see cref="ImageSetPusher"/>; progress bars while pushing, a table after.</summary>
public sealed class PushCommand : AsyncCommand<PushSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, PushSettings settings, CancellationToken cancellationToken)
    {
        HardenImage.Cli.CliOutput.Begin(settings.Output);
        var target = RegistryTarget.Parse(settings.Registry ?? EnvironmentSetting.Get("HARDEN_REGISTRY") ?? "");
        // Refuse plain HTTP to a non-loopback host before reading anything (the factory checks again).
        if (target.Kind != RegistryKind.OciLayout) ImageReference.UsePlainHttp(target.Location, target.Scheme, settings.Insecure, $"--registry {target}");
        var pusher = ImageSetPusher.Open(new ImageSetPushRequest
        {
            Layout = settings.Layout,
            ArtifactsDir = settings.Artifacts,
            Image = settings.Image,
            Architectures = CliValues.Architectures(settings.Platforms),
            Parallel = settings.Parallel,
            Insecure = settings.Insecure,
            CreateRepositories = settings.CreateRepositories,
            Credentials = settings.Username != null
                ? new ExplicitCredentialProvider(target.Location, settings.Username, Environment.GetEnvironmentVariable("HARDEN_REGISTRY_PASSWORD")!)
                : null,
        });
        using var clients = new RegistryClients(AwsAccess.From(null, settings.AwsProfile, settings.AwsEndpoint, settings.KmsKey));
        pusher.Connect(target, clients);

        ImageSetPushOutcome outcome = null!;
        if (HardenImage.Cli.CliConsole.IsCiLog)
        {
            // CI log: a line every few seconds with blob counts and bytes.
            var lines = new HardenImage.Cli.ProgressLines("push");
            var blobs = new Dictionary<string, (long Size, long Done, bool Finished)>(StringComparer.Ordinal);
            string Line() => $"{blobs.Values.Count(b => b.Finished)}/{blobs.Count} blobs seen, {HardenImage.Cli.ProgressLines.Megabytes(blobs.Values.Sum(b => b.Done))} of {HardenImage.Cli.ProgressLines.Megabytes(blobs.Values.Sum(b => b.Size))} MB";
            outcome = await pusher.PushAsync(new ReportInline(p =>
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
                outcome = await pusher.PushAsync(progress, cancellationToken);
            });

        var (pushedPath, pushedFile, results) = outcome;

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
