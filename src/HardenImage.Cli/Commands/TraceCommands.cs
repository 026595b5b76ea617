using System.ComponentModel;
using System.Text.Json;
using HardenImage.Common;
using HardenImage.Deploy;
using HardenImage.Trace;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

public sealed class TraceSettings : BuildOutputSettings
{
    [CommandOption("--images <DIR>")]
    [Description("Image-set directory. Default: images")]
    public string ImagesDir { get; init; } = EnvironmentSetting.Get("HARDEN_IMAGES") ?? "images";

    [CommandOption("--image <NAME>")]
    [Description("The image whose smoke workload is traced (required)")]
    public string? Image { get; init; }

    [CommandOption("--platform <PLATFORM>")]
    [Description("linux/amd64 or linux/arm64; default: this host's architecture")]
    public string? Platform { get; init; }

    [CommandOption("--docker-host <URI>")]
    [Description("Docker engine. Default: $DOCKER_HOST, then the engine .ci/services starts")]
    public string? DockerHost { get; init; }

    [CommandOption("--model-dir <DIR>")]
    [Description("Model directory for model servers. Default: a tiny model made in the image")]
    public string? ModelDir { get; init; }

    [CommandOption("--try-exclude <PACKAGE>")]
    [Description("Also judge this exclude: entry against the evidence; repeatable")]
    public string[] TryExclude { get; init; } = [];

    [CommandOption("--try-remove <GLOB>")]
    [Description("Also judge this remove: glob against the evidence; repeatable")]
    public string[] TryRemove { get; init; } = [];

    [CommandOption("--keep-images")]
    [Description("Leave the loaded image in the engine (faster reruns)")]
    public bool KeepImages { get; init; }

    [CommandOption("--output <FORMAT>")]
    [Description("text (tables) or json (one JSON document on stdout)")]
    public string Output { get; init; } = "text";

    public override ValidationResult Validate()
    {
        if (string.IsNullOrEmpty(Image)) return ValidationResult.Error("--image NAME is required: the image whose workload is traced");
        if (Output is not ("text" or "json")) return ValidationResult.Error($"--output {Output}: use text or json");
        if (Platform != null) CliValues.Architectures([Platform]);
        return ValidationResult.Success();
    }
}

/// <summary><c>harden trace</c>: run the smoke workload, record what it loaded, propose exclude:/remove: entries.</summary>
public sealed class TraceCommand : AsyncCommand<TraceSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, TraceSettings settings, CancellationToken cancellationToken)
    {
        var arch = settings.Platform != null ? CliValues.Architectures([settings.Platform])!.First() : SmokeRunner.HostArchitecture();
        using var engine = new DockerEngine(CliValues.DockerHost(settings.DockerHost));
        await engine.PingAsync(cancellationToken);
        var runner = new TraceRunner(engine, new TraceOptions
        {
            Image = settings.Image!,
            Architecture = arch,
            TryExclude = settings.TryExclude,
            TryRemove = settings.TryRemove,
            Smoke = new SmokeOptions
            {
                ArtifactsDir = Path.GetFullPath(settings.Artifacts),
                ImagesDir = Path.GetFullPath(settings.ImagesDir),
                ModelDir = settings.ModelDir != null ? Path.GetFullPath(settings.ModelDir) : null,
                KeepImages = settings.KeepImages,
            },
        });
        var console = settings.Output == "json" ? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) }) : AnsiConsole.Console;
        TraceReport report = null!;
        await console.Status().StartAsync("trace", async ctx =>
        {
            var progress = new Progress<string>(s => ctx.Status(Markup.Escape(s)));
            report = await runner.RunAsync(progress, cancellationToken);
        });
        if (settings.Output == "json")
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                image = settings.Image, architecture = arch, failure = report.Failure,
                smoke = report.Smoke.Results.Select(r => new { r.Check, status = r.Status.ToString().ToLowerInvariant(), r.Detail }),
                loaded = report.Loaded.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => new { path = "/" + kv.Key, how = kv.Value }),
                proposal = report.Proposal,
            }, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));
        }
        else Print(report);
        if (report.Failure != null)
        {
            console.MarkupLineInterpolated($"[red]trace: no proposal:[/] {report.Failure}");
            return 1;
        }
        return report.Proposal!.Refused.Count > 0 && (settings.TryExclude.Length > 0 || settings.TryRemove.Length > 0) ? 1 : 0;
    }

    private static void Print(TraceReport report)
    {
        SmokeCommand.Print(report.Smoke);
        if (report.Proposal is not { } p) return;
        var t = new Table().Title("proposed exclude: (none of their files loaded or linked by a loaded object)").AddColumns("package", "MB", "files", "evidence");
        foreach (var e in p.Exclude) t.AddRow(Markup.Escape(e.Package), (e.Bytes / 1e6).ToString("0.0"), e.Files.ToString(), Markup.Escape(e.Evidence));
        AnsiConsole.Write(t);
        if (p.Remove.Count > 0)
        {
            var r = new Table().Title("proposed remove:").AddColumns("path", "package", "evidence");
            foreach (var e in p.Remove) r.AddRow(Markup.Escape("/" + e.Path.TrimStart('/')), Markup.Escape(e.Package), Markup.Escape(e.Evidence));
            AnsiConsole.Write(r);
        }
        if (p.Refused.Count > 0)
        {
            var r = new Table().Title("refused").AddColumns("entry", "why");
            foreach (var e in p.Refused) r.AddRow(Markup.Escape(e.Entry), Markup.Escape(e.Reason));
            AnsiConsole.Write(r);
        }
        if (p.DroppedWith.Count > 0) AnsiConsole.MarkupLineInterpolated($"dropped with them (only they depend on these): {string.Join(", ", p.DroppedWith)}");
        AnsiConsole.MarkupLineInterpolated($"evidence: {p.LoadedFiles} files loaded, {p.ProtectedFiles} protected with their DT_NEEDED closure; {p.Exclude.Count} packages, {p.Bytes / 1e6:0.0} MB proposed.");
        AnsiConsole.WriteLine("Review, then commit what you accept to the image's YAML (exclude:/remove:) and run 'harden lock' and 'harden smoke'.");
    }
}

public static class TraceCommandsRegistration
{
    public static void AddTraceCommands(this IConfigurator config)
    {
        config.AddCommand<TraceCommand>("trace")
            .WithDescription("Run an image's smoke workload, record the libraries, modules and files it loaded, and propose exclude:/remove: entries with the evidence.");
    }
}
