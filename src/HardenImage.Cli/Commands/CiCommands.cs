using System.ComponentModel;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Deploy;
using HardenImage.FanOut;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

public class CiSettings : CommandSettings
{
    [CommandOption("--registry <TARGET>")]
    [Description("Registry the jobs push to and cache in: HOST[[:port]]/NAMESPACE or ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAMESPACE. Env HARDEN_REGISTRY.")]
    public string? Registry { get; init; } = EnvironmentSetting.Get("HARDEN_REGISTRY");

    [CommandOption("--signing-key <REF>")]
    [Description("How the fan-in signs: 'secret' (default; a secret holds the PEM key and its password) or awskms://...")]
    public string SigningKey { get; init; } = "secret";

    [CommandOption("--out <FILE>")]
    [Description("Write here (atomically) instead of stdout")]
    public string? Out { get; init; }

    internal string RequireRegistry() => Registry ?? throw new HardenException("--registry: name the registry the jobs share (or set HARDEN_REGISTRY).");

    internal static void Emit(string text, string? path)
    {
        if (path != null) AtomicFile.WriteAllText(path, text);
        else { Console.Out.Write(text); Console.Out.Flush(); }
    }
}

public sealed class CiGithubSettings : CiSettings
{
    [CommandOption("--public-key <FILE>")]
    [Description("The release key's public half, as committed in the repository. Default: cosign.pub")]
    public string PublicKey { get; init; } = "cosign.pub";

    [CommandOption("--aws-role <ARN>")]
    [Description("IAM role assumed through GitHub OIDC (needed with ECR or an awskms:// key)")]
    public string? AwsRole { get; init; }

    [CommandOption("--aws-region <REGION>")]
    [Description("Region of the KMS key (ECR takes it from the host)")]
    public string? AwsRegion { get; init; }
}

/// <summary><c>harden ci github</c>: the fan-out as a GitHub Actions workflow (plan → matrix → fan-in).</summary>
public sealed class CiGithubCommand : Command<CiGithubSettings>
{
    public override int Execute(CommandContext context, CiGithubSettings settings, CancellationToken cancellationToken)
    {
        var workflow = GitHubWorkflowRenderer.Render(new GitHubWorkflowOptions
        {
            Registry = settings.RequireRegistry(), SigningKey = settings.SigningKey, PublicKey = settings.PublicKey,
            AwsRole = settings.AwsRole, AwsRegion = settings.AwsRegion,
        });
        CiSettings.Emit("# Rendered by 'harden ci github'; re-render instead of editing.\n" + ManifestYaml.Write(workflow), settings.Out);
        return 0;
    }
}

public sealed class CiKubernetesSettings : CiSettings
{
    [CommandOption("--plan <FILE>")]
    [Description("The plan to run (harden plan --out FILE). Default: plan.json")]
    public string Plan { get; init; } = "plan.json";

    [CommandOption("--images <DIR>")]
    [Description("Image-set directory shipped to the pods. Default: images")]
    public string ImagesDir { get; init; } = EnvironmentSetting.Get("HARDEN_IMAGES") ?? "images";

    [CommandOption("--public-key <FILE>")]
    [Description("The release key's public half (PEM). Default: cosign.pub")]
    public string PublicKey { get; init; } = "cosign.pub";

    [CommandOption("--tool-image <REF>")]
    [Description("harden's own image, pinned by digest: HOST/NS/harden@sha256:...")]
    public string? ToolImage { get; init; }

    [CommandOption("--records-claim <PVC>")]
    [Description("A ReadWriteMany PersistentVolumeClaim (e.g. EFS) for the jobs' records")]
    public string? RecordsClaim { get; init; }

    [CommandOption("--namespace <NS>")]
    [Description("Namespace of the Jobs. Default: harden")]
    public string Namespace { get; init; } = "harden";

    [CommandOption("--irsa-role <ARN>")]
    [Description("IAM role for the pods' ServiceAccount (needed with ECR or an awskms:// key)")]
    public string? IrsaRole { get; init; }

    [CommandOption("--parallelism <N>")]
    [Description("Pods at once. Default: 8")]
    public int Parallelism { get; init; } = 8;

    [CommandOption("--local")]
    [Description("Also run the Indexed Job's pod on the local Docker engine for every plan entry (or --index), with the pod's restrictions and the tool image from --artifacts, as deploy --local does; records go to --records")]
    public bool Local { get; init; }

    [CommandOption("--index <N>")]
    [Description("With --local: only this completion index (plan entry)")]
    public int? Index { get; init; }

    [CommandOption("--artifacts <DIR>")]
    [Description("With --local: where build.json and oci/ hold the tool image named by --tool-image. Default: artifacts")]
    public string Artifacts { get; init; } = "artifacts";

    [CommandOption("--records <DIR>")]
    [Description("With --local: the host directory that stands in for the records claim. Default: <artifacts>/local-records")]
    public string? Records { get; init; }

    [CommandOption("--docker-host <URI>")]
    [Description(OptionText.LocalDockerHost)]
    public string? DockerHost { get; init; }

    public override ValidationResult Validate() =>
        Parallelism is < 1 or > 1000 ? ValidationResult.Error("--parallelism must be between 1 and 1000") : ValidationResult.Success();
}

/// <summary><c>harden ci kubernetes</c>: the plan as an Indexed Job plus the fan-in Job, running harden's own image.</summary>
public sealed class CiKubernetesCommand : AsyncCommand<CiKubernetesSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, CiKubernetesSettings settings, CancellationToken cancellationToken)
    {
        var plan = BuildPlan.Load(settings.Plan);
        if (!File.Exists(settings.PublicKey)) throw new HardenException($"--public-key {settings.PublicKey}: no such file (the release key's public half).");
        var objects = KubernetesJobRenderer.Render(new KubernetesJobOptions
        {
            Plan = plan,
            PlanJson = File.ReadAllText(settings.Plan),
            ImagesDir = settings.ImagesDir,
            PublicKeyPem = BoundedFile.ReadAllBytes(settings.PublicKey, 64 * 1024, "public key") is var pem ? System.Text.Encoding.UTF8.GetString(pem) : "",
            Registry = settings.RequireRegistry(),
            ToolImage = settings.ToolImage ?? throw new HardenException("--tool-image: name harden's own image pinned by digest (HOST/NS/harden@sha256:...)."),
            RecordsClaim = settings.RecordsClaim ?? throw new HardenException("--records-claim: name a ReadWriteMany PersistentVolumeClaim for the jobs' records."),
            Namespace = settings.Namespace, SigningKey = settings.SigningKey, IrsaRole = settings.IrsaRole, Parallelism = settings.Parallelism,
        });
        CiSettings.Emit(string.Join("---\n", objects.Select(ManifestYaml.Write)), settings.Out);
        return settings.Local ? await RunLocallyAsync(settings, objects, cancellationToken) : 0;
    }

    /// <summary>
    /// Every completion (or --index) of the rendered Indexed Job as its pod on the local engine, one after another
    /// (FanOut/LocalJobRunner). Exit 1 when any pod fails; the table names each entry's image, platform and exit.
    /// </summary>
    private static async Task<int> RunLocallyAsync(CiKubernetesSettings settings, IReadOnlyList<System.Text.Json.Nodes.JsonObject> objects, CancellationToken ct)
    {
        var job = LocalJobRunner.IndexedJob(objects);
        LocalJobRunner.CheckIndex(job, settings.Index); // before the engine is asked anything
        using var engine = new DockerEngine(CliValues.DockerHost(settings.DockerHost));
        var records = settings.Records ?? Path.Combine(settings.Artifacts, "local-records");
        var runs = await new LocalJobRunner(engine, settings.Artifacts).RunAllAsync(objects, settings.Index, records, ct);
        var plan = BuildPlan.Load(settings.Plan);
        var t = new Table().Title($"Job {Markup.Escape(job.Metadata.Name)} on the local engine").AddColumns("index", "image", "platform", "result", "detail");
        foreach (var run in runs)
        {
            var i = run.Index;
            var output = (run.Result.StdErr + run.Result.StdOut).Trim();
            var detail = run.Result.TimedOut ? "timed out" : run.Succeeded ? $"record in {Path.Combine(records, i.ToString(System.Globalization.CultureInfo.InvariantCulture))}" : $"exit {run.Result.ExitCode}: {(output.Length > 600 ? output[^600..] : output)}";
            t.AddRow(i.ToString(System.Globalization.CultureInfo.InvariantCulture), Markup.Escape(plan.Jobs[i].Image), Markup.Escape(plan.Jobs[i].Platform),
                run.Succeeded ? "[green]passed[/]" : "[red]failed[/]", Markup.Escape(detail));
        }
        var failed = runs.Count(r => !r.Succeeded);
        // The rendered YAML may be on stdout: the table goes to stderr.
        var err = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        err.Write(t);
        return failed == 0 ? 0 : 1;
    }
}

public static class CiCommandsRegistration
{
    public static void AddCiCommands(this IConfigurator config)
    {
        config.AddBranch("ci", ci =>
        {
            ci.SetDescription("Render the fan-out for the engines you have: a GitHub Actions workflow, or Kubernetes Jobs");
            ci.AddCommand<CiGithubCommand>("github").WithDescription("GitHub Actions workflow: plan → per-platform matrix (native arm64 runners) → fan-in that signs")
                .WithExample("ci", "github", "--registry", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hardened", "--aws-role", "arn:aws:iam::123456789012:role/harden", "--out", ".github/workflows/harden.yml");
            ci.AddCommand<CiKubernetesCommand>("kubernetes").WithDescription("Indexed Job (one pod per plan entry) + fan-in Job, running harden's own image")
                .WithExample("ci", "kubernetes", "--plan", "plan.json", "--registry", "registry.example/hardened", "--tool-image", "registry.example/hardened/harden@sha256:...", "--records-claim", "harden-records");
        });
    }
}
