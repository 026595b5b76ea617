using System.ComponentModel;
using HardenImage.Build;
using HardenImage.Deploy;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

public sealed class DeploySettings : CommandSettings
{
    [CommandOption("--deploy-dir <DIR>")]
    [Description("Deployment descriptions (deploy/*.yaml, see docs/deploy.md).")]
    [DefaultValue("deploy")]
    public string DeployDir { get; init; } = "deploy";

    [CommandOption("--artifacts <DIR>")]
    [Description("Reads build.json, pushed.json and oci/ from it; writes deploy/<name>/ and deploy/admission/ into it.")]
    [DefaultValue("artifacts")]
    public string Artifacts { get; init; } = "artifacts";

    [CommandOption("--registry <HOST/NS>")]
    [Description("Registry for images not in pushed.json (repository HOST/NS/<image>, pinned by the build.json digest).")]
    public string? Registry { get; init; }

    [CommandOption("--key <FILE>")]
    [Description("Signing public key for the admission policies (default <artifacts>/keys/cosign.pub).")]
    public string? Key { get; init; }

    [CommandOption("--name <NAME>")]
    [Description("Render only this deployment.")]
    public string? Name { get; init; }

    [CommandOption("--images <DIR>")]
    [Description("Image set directory; deployment images must be named there (default images, skipped when absent).")]
    [DefaultValue("images")]
    public string Images { get; init; } = "images";
}

/// <summary><c>harden deploy</c>: Kubernetes manifests pinned by digest plus admission policies.</summary>
public sealed class DeployCommand : Command<DeploySettings>
{
    public override int Execute(CommandContext context, DeploySettings settings, CancellationToken cancellationToken)
    {
        IReadOnlyCollection<string>? known = null;
        var unbuildable = new Dictionary<string, string>(StringComparer.Ordinal);
        if (Directory.Exists(settings.Images) && File.Exists(Path.Combine(settings.Images, "sources.yaml")))
        {
            var set = ImageSet.Load(settings.Images);
            known = set.Images.Keys.ToList();
            // Without --name, deployments of images that need unreachable repositories are skipped (and said so),
            // as `harden build` skips those images; naming one with --name still refuses it without a digest.
            if (settings.Name == null)
                foreach (var image in set.Images.Values)
                    if (set.Ancestors(image).Prepend(image).FirstOrDefault(i => i.RequiresNetwork != null) is { } blocked)
                        unbuildable[image.Name] = "needs " + blocked.RequiresNetwork;
        }
        var options = new DeployOptions
        {
            DeployDir = settings.DeployDir,
            ArtifactsDir = settings.Artifacts,
            Registry = settings.Registry,
            PublicKey = settings.Key,
            Name = settings.Name,
            KnownImages = known,
            UnbuildableImages = unbuildable,
        };
        var result = new DeployRenderer().RenderAndWrite(options);
        var table = new Table().AddColumns("deployment", "image", "objects", "directory");
        foreach (var d in result.Deployments)
            table.AddRow(Markup.Escape(d.Description.Name), Markup.Escape(d.Image.Reference),
                Markup.Escape(string.Join(", ", d.Objects.Select(o => o.Kind))), Markup.Escape(Path.Combine(options.OutputDir, d.Description.Name)));
        table.AddRow("(admission)", "", Markup.Escape(string.Join(", ", result.AdmissionPolicies.Select(o => o.Kind))),
            Markup.Escape(Path.Combine(options.OutputDir, AdmissionPolicyRenderer.OutputDirectoryName)));
        AnsiConsole.Write(table);
        foreach (var w in result.Warnings) AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] {w}");
        return 0;
    }
}

public static class DeployCommandRegistration
{
    public static void AddDeployCommands(this IConfigurator config)
    {
        config.AddCommand<DeployCommand>("deploy")
            .WithDescription("Render hardened Kubernetes manifests pinned by digest (artifacts/deploy/<name>/) and admission policies (Kyverno, policy-controller).")
            .WithExample("deploy")
            .WithExample("deploy", "--registry", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml", "--key", "cosign.pub");
    }
}
