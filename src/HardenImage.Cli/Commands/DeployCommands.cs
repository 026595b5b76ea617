using System.ComponentModel;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.Deploy;
using HardenImage.Lock;
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

    [CommandOption("--insecure")]
    [Description("Plain HTTP to the registry in pushed.json when checking signatures and attestations (loopback test registries)")]
    public bool Insecure { get; init; }

    [CommandOption("--local")]
    [Description("Also run the deployment's pod on the local Docker engine with the manifest's restrictions, check its probes and send one generation request (default deployment: inference-cpu)")]
    public bool Local { get; init; }

    [CommandOption("--model-dir <DIR>")]
    [Description("With --local: the model directory to mount read-only where the model volume goes, instead of the verified fetch of the pinned model (the server still checks it against the pin); without a pinned model, default: a tiny model made inside the image")]
    public string? ModelDir { get; init; }

    [CommandOption("--model-mount <MOUNT>")]
    [Description("How pinned models reach the pod, for every deployment with model.name: image-volume (Kubernetes >= 1.33) or init-container (our harden image fetches and verifies into an emptyDir). Default: each description's model.mount")]
    public string? ModelMount { get; init; }

    [CommandOption("--docker-host <URI>")]
    [Description(OptionText.LocalDockerHost)]
    public string? DockerHost { get; init; }

    public override ValidationResult Validate()
    {
        if (ModelMount is not (null or "image-volume" or "init-container"))
            return ValidationResult.Error($"--model-mount '{ModelMount}': must be image-volume or init-container");
        if (Registry == null) return ValidationResult.Success();
        if (Registry.StartsWith(HardenImage.Registry.ImageReference.OciScheme, StringComparison.Ordinal))
            return ValidationResult.Error($"--registry '{Registry}': a cluster pulls from a registry host, not a directory; name HOST[:port][/NAMESPACE]");
        HardenImage.Registry.ImageReference.ParseRegistry(Registry, "--registry"); // one grammar; throws a clear line
        return ValidationResult.Success();
    }
}

/// <summary><c>harden deploy</c>: Kubernetes manifests pinned by digest plus admission policies.</summary>
public sealed class DeployCommand : AsyncCommand<DeploySettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, DeploySettings settings, CancellationToken cancellationToken)
    {
        var (known, unbuildable) = DeployArtifacts.ImageSetFacts(settings.Images, skipUnbuildable: settings.Name == null);
        var options = new DeployOptions
        {
            DeployDir = settings.DeployDir,
            ArtifactsDir = settings.Artifacts,
            Registry = settings.Registry,
            PublicKey = settings.Key,
            Name = settings.Name,
            KnownImages = known,
            UnbuildableImages = unbuildable,
            ModelMount = settings.ModelMount switch
            {
                "image-volume" => HardenImage.Deploy.ModelMount.ImageVolume,
                "init-container" => HardenImage.Deploy.ModelMount.InitContainer,
                _ => null,
            },
        };
        var (result, checkedIn) = await DeployArtifacts.RenderAsync(options, settings.Insecure, cancellationToken);
        var table = new Table().AddColumns("deployment", "image", "objects", "directory");
        foreach (var d in result.Deployments)
            table.AddRow(Markup.Escape(d.Description.Name), Markup.Escape(d.Image.Reference),
                Markup.Escape(string.Join(", ", d.Objects.Select(o => o.Kind))), Markup.Escape(Path.Combine(options.OutputDir, d.Description.Name)));
        table.AddRow("(admission)", "", Markup.Escape(string.Join(", ", result.AdmissionPolicies.Select(o => o.Kind))),
            Markup.Escape(Path.Combine(options.OutputDir, AdmissionPolicyRenderer.OutputDirectoryName)));
        AnsiConsole.Write(table);
        foreach (var w in result.Warnings) AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] {w}");
        if (checkedIn != null)
            AnsiConsole.MarkupLineInterpolated($"[green]admission check passed[/]: every pinned digest carries our signature, SBOM and vuln attestations in {checkedIn}");
        if (!settings.Local) return 0;
        var name = settings.Name ?? "inference-cpu";
        var rendered = result.Deployments.FirstOrDefault(d => d.Description.Name == name)
                       ?? throw new HardenImage.Common.HardenException($"--local: no rendered deployment '{name}' (rendered: {string.Join(", ", result.Deployments.Select(d => d.Description.Name))}). Pass --name.");
        using var engine = new DockerEngine(CliValues.DockerHost(settings.DockerHost));
        await engine.PingAsync(cancellationToken);
        // A pinned model is fetched and verified from where 'harden model push' put it (Docker 20.10 has no image volumes).
        using var fetchServices = new Registry.RegistryClients(new Aws.AwsAccess());
        using var fetchKey = Signing.PemKeys.ReadPublicKey(SigningPublicKey.Load(options.PublicKeyPath).Pem, options.PublicKeyPath);
        IModelFetch? modelFetch = rendered.Model?.PushedRegistry is { } pushedTo
            ? new VerifiedModelFetch(fetchServices.Create(Registry.RegistryTarget.Parse(pushedTo), settings.Insecure), fetchKey)
            : null;
        IReadOnlyList<LocalCheck> checks = [];
        await AnsiConsole.Status().StartAsync($"running {name} locally", async ctx =>
        {
            var progress = new Progress<string>(m => ctx.Status(Markup.Escape(m)));
            checks = await new LocalDeployRunner(engine, settings.Artifacts, modelFetch).RunAsync(rendered, settings.ModelDir, progress, cancellationToken);
        });
        var t = new Table().Title($"{name} on the local engine").AddColumns("check", "result", "detail");
        foreach (var c in checks) t.AddRow(Markup.Escape(c.Name), c.Passed ? "[green]passed[/]" : "[red]failed[/]", Markup.Escape(c.Detail));
        AnsiConsole.Write(t);
        return checks.Count > 0 && checks.All(c => c.Passed) ? 0 : 1;
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
