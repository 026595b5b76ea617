using HardenImage.Common;
using System.ComponentModel;
using HardenImage.Deploy;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

/// <summary>Options of the commands that run what was built (smoke, trace): where the build output is.</summary>
public abstract class BuildOutputSettings : CommandSettings
{
    [CommandOption("--artifacts <DIR>")]
    [Description(OptionText.BuildOutput)]
    public string Artifacts { get; init; } = EnvironmentSetting.Get("HARDEN_ARTIFACTS") ?? "artifacts";
}

public sealed class SmokeSettings : BuildOutputSettings
{
    [CommandOption("--images <DIR>")]
    [Description("Image-set directory whose smoke: checks run. Default: images")]
    public string ImagesDir { get; init; } = EnvironmentSetting.Get("HARDEN_IMAGES") ?? "images";

    [CommandOption("--image <NAME>")]
    [Description("Only this image; repeatable. Default: every image in build.json")]
    public string[] Images { get; init; } = [];

    [CommandOption("--platform <PLATFORM>")]
    [Description(OptionText.Platforms)]
    public string[] Platforms { get; init; } = [];

    public override ValidationResult Validate()
    {
        CliValues.Architectures(Platforms); // a bad --platform is refused before any work
        if (EmulatedWorkload is not ("light" or "full"))
            return ValidationResult.Error($"--emulated-workload {EmulatedWorkload}: expected light or full");
        return ValidationResult.Success();
    }

    [CommandOption("--docker-host <URI>")]
    [Description("Docker engine, e.g. unix:///tmp/hi-docker/docker.sock. Default: $DOCKER_HOST, then the engine .ci/services starts")]
    public string? DockerHost { get; init; }

    [CommandOption("--model-dir <DIR>")]
    [Description("Model directory (model.pt, tokenizer.json; smoke pins what it mounts) for model servers. Default: a tiny model made in the image")]
    public string? ModelDir { get; init; }

    [CommandOption("--keep-images")]
    [Description("Leave the loaded images in the engine (faster reruns)")]
    public bool KeepImages { get; init; }

    [CommandOption("--no-emulation")]
    [Description("Skip (with a reason) architectures this host cannot run natively instead of running them under qemu-user-static")]
    public bool NoEmulation { get; init; }

    [CommandOption("--emulated-workload <LEVEL>")]
    [Description("Model servers under emulation: light (one process makes the tiny model and generates, no HTTP server) or full (every server check). Default: light")]
    public string EmulatedWorkload { get; init; } = "light";

    [CommandOption("--http-timeout <SECONDS>")]
    [Description("How long an HTTP probe waits for 200, server start included. Default: 120")]
    public int HttpTimeoutSeconds { get; init; } = 120;
}

/// <summary><c>harden smoke</c>: run every built image in a real Docker engine with the pod's restrictions.</summary>
public sealed class SmokeCommand : AsyncCommand<SmokeSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, SmokeSettings settings, CancellationToken cancellationToken)
    {
        var host = CliValues.DockerHost(settings.DockerHost);
        using var engine = new DockerEngine(host);
        await engine.PingAsync(cancellationToken);
        var runner = new SmokeRunner(engine, new SmokeOptions
        {
            ArtifactsDir = Path.GetFullPath(settings.Artifacts),
            ImagesDir = Path.GetFullPath(settings.ImagesDir),
            Images = settings.Images,
            ModelDir = settings.ModelDir != null ? Path.GetFullPath(settings.ModelDir) : null,
            KeepImages = settings.KeepImages,
            KeepMadeModelDir = Path.GetFullPath(Path.Combine(settings.Artifacts, "models", "smoke-model")),
            HttpTimeout = TimeSpan.FromSeconds(settings.HttpTimeoutSeconds),
            // --platform narrows what runs; another architecture runs emulated (or is reported skipped, saying why).
            Architectures = CliValues.Architectures(settings.Platforms),
            Emulate = !settings.NoEmulation,
            RequireEveryArchitecture = EnvironmentSetting.Get("CI") is "true" or "1",
            EmulatedWorkload = settings.EmulatedWorkload == "full" ? Deploy.EmulatedWorkload.Full : Deploy.EmulatedWorkload.Light,
        });
        SmokeReport report = null!;
        await AnsiConsole.Status().StartAsync("smoke", async ctx =>
        {
            var progress = new Progress<string>(s => ctx.Status(Markup.Escape(s)));
            report = await runner.RunAsync(progress, cancellationToken);
        });
        Print(report);
        SmokeJson.Write(Path.Combine(Path.GetFullPath(settings.Artifacts), "smoke.json"), report);
        var failed = report.Results.Count(r => r.Status == SmokeStatus.Failed);
        var skipped = report.Results.Count(r => r.Status == SmokeStatus.Skipped);
        if (failed > 0)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]smoke failed:[/] {failed} check(s) failed, {skipped} skipped (reasons above)");
            return 1;
        }
        AnsiConsole.MarkupLineInterpolated($"[green]smoke passed:[/] {report.Results.Count - skipped} check(s), {skipped} skipped (reasons above) on {engine.Host}");
        return 0;
    }

    internal static void Print(SmokeReport report)
    {
        var t = new Table().AddColumns("image", "arch", "runner", "check", "result", "s", "detail");
        foreach (var r in report.Results)
        {
            var result = r.Status switch
            {
                SmokeStatus.Passed => "[green]passed[/]",
                SmokeStatus.Failed => "[red]FAILED[/]",
                _ => "[yellow]skipped[/]",
            };
            t.AddRow(Markup.Escape(r.Image), r.Architecture, r.Runner, Markup.Escape(r.Check), result, r.Duration.TotalSeconds.ToString("0.0"), Markup.Escape(r.Detail));
        }
        AnsiConsole.Write(t);
    }
}

public static class SmokeCommandsRegistration
{
    public static void AddSmokeCommands(this IConfigurator config)
    {
        config.AddCommand<SmokeCommand>("smoke")
            .WithDescription("Run each built image in a Docker engine with the pod's restrictions: declared checks, runs as 65532, no shell, no setuid, model integrity.");
    }
}
