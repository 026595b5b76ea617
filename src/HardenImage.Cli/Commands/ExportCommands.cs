using System.ComponentModel;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Oci;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

public sealed class ExportSettings : CommandSettings
{
    [CommandArgument(0, "<OUT.tar>")]
    [Description("Archive to write (replaced atomically)")]
    public string Output { get; init; } = "";

    [CommandOption("--image <NAME>")]
    [Description("Built image to export (a name in build.json)")]
    public string Image { get; init; } = "";

    [CommandOption("--platform <PLATFORM>")]
    [Description("Platform, OCI spelling: linux/amd64, linux/arm64/v8. Default: linux/amd64")]
    public string Platform { get; init; } = "linux/amd64";

    [CommandOption("--format <FORMAT>")]
    [Description("docker-archive (docker load, Docker 20.10 and later) or oci-archive (skopeo, podman). Default: docker-archive")]
    public string Format { get; init; } = "docker-archive";

    [CommandOption("--tag <REPO:TAG>")]
    [Description("Name it gets in Docker. Default: harden/<image>:<version or latest>")]
    public string? Tag { get; init; }

    [CommandOption("--artifacts <DIR>")]
    [Description(OptionText.BuildOutput)]
    public string Artifacts { get; init; } = EnvironmentSetting.Get("HARDEN_ARTIFACTS") ?? "artifacts";

    internal ExportFormat ParsedFormat => Format switch
    {
        "docker-archive" => ExportFormat.DockerArchive,
        "oci-archive" => ExportFormat.OciArchive,
        _ => throw new HardenException($"--format '{Format}': expected docker-archive or oci-archive{NameSuggestions.DidYouMean(Format, ["docker-archive", "oci-archive"])}"),
    };

    public override ValidationResult Validate()
    {
        if (Image.Length == 0) return ValidationResult.Error("--image NAME is required (an image in build.json)");
        _ = ParsedFormat;
        PlatformName.ParseArchitecture(Platform);
        return ValidationResult.Success();
    }
}

/// <summary>
/// <c>harden export</c>, thin over <see cref="ImageExporter"/>: one platform of a built image as a file Docker (or
/// skopeo/podman) loads, so "run what you built" needs no registry: <c>harden export --image base out.tar &amp;&amp;
/// docker load -i out.tar</c>. The docker-archive form is what Docker 20.10's <c>docker load</c> takes (it does not
/// load OCI layout tars).
/// </summary>
public sealed class ExportCommand : AsyncCommand<ExportSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ExportSettings settings, CancellationToken ct)
    {
        var arch = PlatformName.ParseArchitecture(settings.Platform);
        var export = ImageExporter.Find(settings.Artifacts, settings.Image, arch);
        var (built, builtArch) = (export.Image, export.Architecture);
        var tag = settings.Tag ?? $"harden/{built.Name}:{built.Version ?? "latest"}";
        HardenImage.Registry.ImageReference.Parse(tag); // a name Docker accepts
        await ImageExporter.WriteAsync(export, settings.ParsedFormat, tag, settings.Output, ct);
        AnsiConsole.MarkupLineInterpolated($"[green]exported[/] {built.Name} ({PlatformName.ForArchitecture(arch)}, {builtArch.Manifest}) as {settings.Format} to {Path.GetFullPath(settings.Output)}");
        AnsiConsole.WriteLine(settings.ParsedFormat == ExportFormat.DockerArchive
            ? $"load it: docker load -i {settings.Output} && docker run --rm {tag}"
            : $"read it: skopeo inspect oci-archive:{settings.Output}");
        return 0;
    }
}

public static class ExportCommandsRegistration
{
    public static void AddExportCommands(this IConfigurator config)
    {
        config.AddCommand<ExportCommand>("export")
            .WithDescription("Write one platform of a built image as a docker-archive (docker load) or oci-archive tar")
            .WithExample("export", "--image", "python", "--platform", "linux/amd64", "python.tar");
    }
}
