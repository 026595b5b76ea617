using System.ComponentModel;
using HardenImage.Common;
using HardenImage.FanOut;
using HardenImage.Contracts;
using HardenImage.Oci;
using HardenImage.Registry;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

public sealed class MergeSettings : CommandSettings
{
    [CommandArgument(0, "<DIR>")]
    [Description("Artifacts directories to merge (each with build.json and oci/, optionally pushed.json, sbom/, scan/)")]
    public string[] From { get; init; } = [];

    [CommandOption("--out <DIR>")]
    [Description("Artifacts directory to merge into (its own records take part). Default: artifacts")]
    public string Out { get; init; } = EnvironmentSetting.Get("HARDEN_ARTIFACTS") ?? "artifacts";

    public override ValidationResult Validate()
    {
        foreach (var d in From)
            if (!Directory.Exists(d)) return ValidationResult.Error($"'{d}': no such artifacts directory");
        return ValidationResult.Success();
    }
}

/// <summary>
/// <c>harden merge</c>, thin over <see cref="ArtifactsMerger"/>: combines the artifacts of per-image jobs (possibly on other machines) into one directory:
/// build.json and pushed.json are unioned (an image with two different digests is a conflict, exit 2), the OCI
/// layouts' blobs are copied digest-verified and the images tagged, and per-image SBOM and scan files copied.
/// Then smoke, sign, verify and deploy run over the merged records as after one build.
/// </summary>
public sealed class MergeCommand : Command<MergeSettings>
{
    public override int Execute(CommandContext context, MergeSettings settings, CancellationToken cancellationToken)
    {
        var (outDir, sourceCount, mergedBuild, mergedPushed, copied) = ArtifactsMerger.Merge(settings.From, settings.Out, cancellationToken);
        var table = new Table().AddColumns("image", "index", "pushed");
        foreach (var b in mergedBuild.Images)
            table.AddRow(Markup.Escape(b.Name), b.Index, mergedPushed?.Images.TryGetValue(b.Name, out var p) == true ? Markup.Escape(p.Reference ?? p.Repository) : "-");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"[green]merged[/] {sourceCount} director{(sourceCount == 1 ? "y" : "ies")} into {outDir} ({copied / 1e6:0.0} MB of blobs copied)");
        return 0;
    }
}

public static class MergeCommandsRegistration
{
    public static void AddMergeCommands(this IConfigurator config)
    {
        config.AddCommand<MergeCommand>("merge")
            .WithDescription("Merge build.json, pushed.json, OCI blobs, SBOMs and scans of several artifacts directories (per-image jobs) into one")
            .WithExample("merge", "--out", "artifacts", "job-base/artifacts", "job-python/artifacts");
    }
}
