using System.ComponentModel;
using HardenImage.Aws;
using HardenImage.Common;
using HardenImage.Model;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Signing;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

public static class ModelCommandsRegistration
{
    /// <summary>Registers <c>harden model pack|push|sign|fetch</c> (docs/model.md).</summary>
    public static void AddModelCommands(this IConfigurator config)
    {
        config.AddBranch("model", model =>
        {
            model.SetDescription("Models as signed OCI artifacts (CNCF ModelPack): pack, push, sign, fetch. docs/model.md");
            model.AddCommand<ModelPackCommand>("pack").WithDescription("Pack a model directory as a ModelPack artifact into artifacts/models/oci and write its CycloneDX ML-BOM.")
                .WithExample("model", "pack", "models/tiny-lm", "--name", "tiny-lm", "--version", "1", "--card", "models/tiny-lm.card.yaml");
            model.AddCommand<ModelPushCommand>("push").WithDescription("Push packed models to the registry (repository NS/models/NAME); writes artifacts/models.json.");
            model.AddCommand<ModelSignCommand>("sign").WithDescription("Sign each pushed model's manifest digest and attest its ML-BOM (cosign formats).");
            model.AddCommand<ModelFetchCommand>("fetch").WithDescription("Pull a model by digest, verify signature and every layer, extract read-only into a directory.")
                .WithExample("model", "fetch", "oci:artifacts/registry/models/tiny-lm@sha256:…", "--key", "artifacts/keys/cosign.pub", "--into", "/models/tiny-lm");
        });
    }
}

public sealed class ModelPackSettings : CommandSettings
{
    [CommandArgument(0, "<DIR>")]
    [Description("The model directory: regular files and sub-directories only (no symlinks, hard links, devices)")]
    public string Directory { get; init; } = "";

    [CommandOption("--name <NAME>")]
    [Description("Model name; pushed to repository NS/models/NAME")]
    public string Name { get; init; } = "";

    [CommandOption("--version <VERSION>")]
    [Description("Model version; the tag it is pushed with")]
    public string Version { get; init; } = "";

    [CommandOption("--card <FILE>")]
    [Description("Model card YAML (license, datasets, intended use, limitations...; docs/model.md#the-model-card)")]
    public string? Card { get; init; }

    [CommandOption("--artifacts <DIR>")]
    [Description("Artifacts directory: the layout goes to DIR/models/oci, the ML-BOM to DIR/models/NAME.cdx.json. Default: artifacts")]
    public string Artifacts { get; init; } = "artifacts";

    public override ValidationResult Validate()
    {
        if (string.IsNullOrWhiteSpace(Name)) return ValidationResult.Error("--name is required");
        if (string.IsNullOrWhiteSpace(Version)) return ValidationResult.Error("--version is required");
        return ValidationResult.Success();
    }
}

/// <summary><c>harden model pack</c>: thin over <see cref="ModelPacker"/> and <see cref="MlBomWriter"/>.</summary>
public sealed class ModelPackCommand : Command<ModelPackSettings>
{
    public override int Execute(CommandContext context, ModelPackSettings settings, CancellationToken ct)
    {
        ModelPacker.ValidateNameAndVersion(settings.Name, settings.Version);
        var card = settings.Card == null ? ModelCard.Empty : ModelCard.Load(settings.Card);
        var layout = OciLayout.OpenOrCreate(ModelPusher.LayoutPath(settings.Artifacts));
        var lines = new ProgressLines("model pack");
        var progress = new InlineProgress<ModelPackProgress>(p => lines.Report(
            () => $"{p.Index + 1}/{p.Count} {p.Path}: {ProgressLines.Megabytes(p.Done)} of {ProgressLines.Megabytes(p.Size)} MB", force: p.Done == p.Size));
        var previous = layout.Resolve(settings.Name + ":" + settings.Version);
        var model = new ModelPacker(layout).Pack(new ModelPackRequest(settings.Directory, settings.Name, settings.Version, card), progress, ct);
        var mlbomPath = Path.Combine(settings.Artifacts, ModelPusher.MlBomPath(model.Name));
        AtomicFile.WriteAllBytes(mlbomPath, MlBomWriter.Write(model, card));

        var table = new Table().AddColumns("file", "layer", "bytes", "sha256");
        foreach (var f in model.Files)
            table.AddRow(Markup.Escape(f.Path), f.MediaType.Replace("application/vnd.cncf.model.", "", StringComparison.Ordinal), f.Size.ToString("N0", System.Globalization.CultureInfo.InvariantCulture), f.Sha256[..16]);
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"[green]packed[/] {model.Name}:{model.Version} {model.Manifest.Digest} ({model.Files.Count} files, {ProgressLines.Megabytes(model.TotalBytes)} MB) into {layout.Root}");
        AnsiConsole.MarkupLineInterpolated($"wrote {mlbomPath}");
        // Same name and version, other files: said, so a re-pack that changed the model is never silent.
        if (previous != null && previous.Digest != model.Manifest.Digest)
            AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] {model.Name}:{model.Version} was {previous.Digest} in {layout.Root}; it now names {model.Manifest.Digest}. Give a new --version for a changed model.");
        return 0;
    }
}

public sealed class ModelPushSettings : RegistryAccessSettings
{
    [CommandOption("--registry <TARGET>")]
    [Description(OptionText.PushRegistry)]
    public string? Registry { get; init; }

    [CommandOption("--artifacts <DIR>")]
    [Description("Where models/oci is read and models.json written. Default: artifacts")]
    public string Artifacts { get; init; } = "artifacts";

    [CommandOption("--name <NAME>")]
    [Description("Push only this model")]
    public string? Name { get; init; }

    [CommandOption("--version <VERSION>")]
    [Description("Push only this version (when the layout holds several of one model)")]
    public string? Version { get; init; }

    [CommandOption("--create-repositories")]
    [Description("Create missing repositories first (ECR does not create them on push)")]
    public bool CreateRepositories { get; init; }
}

/// <summary><c>harden model push</c>: the images' pusher over the model layout; records artifacts/models.json.</summary>
public sealed class ModelPushCommand : AsyncCommand<ModelPushSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ModelPushSettings settings, CancellationToken ct)
    {
        var target = RegistryTarget.Parse(settings.Registry ?? EnvironmentSetting.Get("HARDEN_REGISTRY") ?? "");
        if (target.Kind != RegistryKind.OciLayout) ImageReference.UsePlainHttp(target.Location, target.Scheme, settings.Insecure, $"--registry {target}");
        ModelPusher.OpenPackedModels(settings.Artifacts); // its refusal comes before the AWS options', as it always did
        using var clients = new RegistryClients(settings.AwsOptions());
        var lines = new ProgressLines("model push");
        var progress = new InlineProgress<BlobProgress>(p => lines.Report(
            () => $"{p.Repository} {p.Digest[7..19]}: {ProgressLines.Megabytes(p.Transferred)} of {ProgressLines.Megabytes(p.Size)} MB {p.State.ToString().ToLowerInvariant()}"));
        var (recordPath, pushed) = await ModelPusher.PushArtifactsAsync(settings.Artifacts, target, clients,
            new ModelPushRequest(settings.Name, settings.Version, settings.CreateRepositories, settings.Insecure), progress, ct);
        var table = new Table().Title($"pushed to {Markup.Escape(target.ToString())}").AddColumns("model", "version", "reference");
        foreach (var m in pushed) table.AddRow(Markup.Escape(m.Name), Markup.Escape(m.Version), Markup.Escape(m.Reference));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"wrote {recordPath}");
        return 0;
    }
}

public sealed class ModelSignSettings : SigningKeySettings
{
    [CommandOption("--artifacts <DIR>")]
    [Description("Artifacts directory holding models.json and the ML-BOMs. Default: artifacts")]
    public string Artifacts { get; init; } = "artifacts";

    [CommandOption("--name <NAME>")]
    [Description("Only this model")]
    public string? Name { get; init; }
}

/// <summary>
/// <c>harden model sign</c>: a simple-signing signature on each model's manifest digest and its ML-BOM as a CycloneDX
/// attestation, with the images' <see cref="ImageSigner"/> (threats S, T, R). The ML-BOM must describe that digest.
/// </summary>
public sealed class ModelSignCommand : AsyncCommand<ModelSignSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ModelSignSettings settings, CancellationToken ct)
    {
        using var clients = new RegistryClients(settings.AwsOptions());
        var record = ModelSigner.LoadRecord(settings.Artifacts);
        var key = DevelopmentKey.Choose(settings.Key, settings.Artifacts);
        var signer = await SigningKeys.OpenAsync(key, AwsKmsOptions.For(clients.Aws), ct);
        using var disposeSigner = signer as IDisposable;
        var signed = await new ModelSigner(signer, clients).SignAsync(record, settings.Artifacts, settings.Name, settings.Insecure, ct);
        var table = new Table().AddColumns("model", "digest", "signature", "attestations");
        foreach (var (name, model) in signed) table.AddRow(Markup.Escape(name), model.Digest[..19], "manifest", "sbom (ML-BOM)");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"[green]signed[/] {signed.Count} model(s) with {key.Display} into {record.Registry}");
        return 0;
    }
}

public sealed class ModelFetchSettings : RegistryAccessSettings
{
    [CommandArgument(0, "<REF>")]
    [Description("The model pinned by digest: HOST/REPO@sha256:… or oci:DIR/REPO@sha256:…")]
    public string Reference { get; init; } = "";

    [CommandOption("--key <REF>")]
    [Description("The release public key (cosign.pub, a private key file's public half, or awskms:///<key>)")]
    public string Key { get; init; } = "";

    [CommandOption("--into <DIR>")]
    [Description("New or empty directory to extract into; made read-only")]
    public string Into { get; init; } = "";

    [CommandOption("--require <LIST>")]
    [Description("Attestations the model must also carry, comma separated (sbom = the ML-BOM)")]
    public string Require { get; init; } = "";

    public override ValidationResult Validate()
    {
        if (string.IsNullOrWhiteSpace(Key)) return ValidationResult.Error("--key is required: the release public key the model must be signed with");
        if (string.IsNullOrWhiteSpace(Into)) return ValidationResult.Error("--into is required");
        return ValidationResult.Success();
    }
}

/// <summary><c>harden model fetch</c>: thin over <see cref="ModelFetcher"/>; exit 1 when the model is refused.</summary>
public sealed class ModelFetchCommand : AsyncCommand<ModelFetchSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ModelFetchSettings settings, CancellationToken ct)
    {
        ModelFetcher.CheckRequest(settings.Reference, settings.Require); // its refusals come before the AWS options', as they always did
        using var clients = new RegistryClients(settings.AwsOptions());
        var lines = new ProgressLines("model fetch");
        var fetched = await ModelFetcher.FetchReferenceAsync(clients, settings.Reference, settings.Key, settings.Into, settings.Require, settings.Insecure,
            new InlineProgress<string>(l => lines.Report(() => l, force: true)), ct);
        AnsiConsole.MarkupLineInterpolated($"[green]verified[/] {settings.Reference}: signature, {fetched.Files.Count} layers and files ({ProgressLines.Megabytes(fetched.TotalBytes)} MB) → {fetched.Directory} (read-only)");
        return 0;
    }
}

/// <summary>IProgress that calls back on the reporting thread.</summary>
internal sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
