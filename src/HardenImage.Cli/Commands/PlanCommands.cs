using System.ComponentModel;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.FanOut;
using HardenImage.Lock;
using HardenImage.Oci;
using HardenImage.Registry;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

/// <summary>Options of the fan-out commands that read the registry cache.</summary>
public class FanOutRegistrySettings : ImageSetSettings
{
    [CommandOption("--registry <TARGET>")]
    [Description("Registry the jobs push to and the cache lives in: HOST[[:port]]/NAMESPACE, an ECR host, or oci:DIR. Env HARDEN_REGISTRY.")]
    public string? Registry { get; init; }

    [CommandOption("--key <REF>")]
    [Description("The release key's public half (cosign.pub, a key file, or awskms://...): a cached manifest counts only when signed by it. Without it the cache is not consulted")]
    public string? Key { get; init; }

    [CommandOption("--insecure")]
    [Description("Plain HTTP to a non-loopback registry (lab registries only)")]
    public bool Insecure { get; init; }

    [CommandOption("--source-date-epoch <SECONDS>")]
    [Description("As for 'harden build' (default $SOURCE_DATE_EPOCH, else per image from the lock); part of the inputs digest")]
    public long? Epoch { get; init; }

    internal string? RegistryText => EnvironmentSetting.Given(Registry) ?? EnvironmentSetting.Get("HARDEN_REGISTRY");
    internal long? EpochOverride => Epoch ?? SourceDateEpoch.FromEnvironment();

    /// <summary>The registry with the release key's cache; null when --registry or --key is missing (then nothing is read from the registry).</summary>
    internal async Task<FanOutRegistry?> OpenCacheAsync(CancellationToken ct) =>
        RegistryText == null || EnvironmentSetting.Given(Key) == null ? null : await FanOutRegistry.OpenAsync(RegistryText, Key, Insecure, ct);
}

public sealed class PlanSettings : FanOutRegistrySettings
{
    [CommandOption("--platform <PLATFORM>")]
    [Description("Only these platforms (linux/amd64, linux/arm64); repeatable. Default: each image's architectures")]
    public string[] Platforms { get; init; } = [];

    [CommandOption("--out <FILE>")]
    [Description("Also write the plan to FILE (what 'harden job --plan' and 'harden fanin --plan' read)")]
    public string? Out { get; init; }

    [CommandOption("--matrix")]
    [Description("Print only the GitHub Actions matrix ({\"include\": [[...]]}) on one line, for $GITHUB_OUTPUT")]
    public bool Matrix { get; init; }

    public override ValidationResult Validate()
    {
        CliValues.Architectures(Platforms);
        return ValidationResult.Success();
    }
}

/// <summary>
/// <c>harden plan</c>: the fan-out job list as JSON on stdout (one entry per image × platform, the fan-in), each
/// entry with its inputs digest and whether the registry already holds a release-signed manifest for it.
/// </summary>
public sealed class PlanCommand : AsyncCommand<PlanSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, PlanSettings settings, CancellationToken ct)
    {
        HardenImage.Cli.CliOutput.Begin(OutputFormat.Json);
        var set = ImageSet.Load(settings.ImagesDir);
        var lockFile = LockFile.Load(settings.LockFilePath);
        var selected = Selection.Buildable(set, settings.Images, out var skipped);
        foreach (var (name, why) in skipped) AnsiConsole.MarkupLineInterpolated($"[yellow]not planned {name}:[/] {why}");
        var inputs = new InputsDigest(set, lockFile, settings.EpochOverride);
        using var cache = await settings.OpenCacheAsync(ct);
        var plan = BuildPlan.Create(set, inputs, selected, CliValues.Architectures(settings.Platforms),
            cache == null ? null : e => cache.Cache!.LookupAsync(cache.Target.RepositoryFor(e.Image), e.Inputs, e.Architecture, ct).GetAwaiter().GetResult(),
            cache?.Target.ToString());
        var table = new Table().AddColumns("#", "image", "platform", "inputs", "changed", "cache");
        foreach (var e in plan.Jobs)
            table.AddRow(e.Index.ToString(), Markup.Escape(e.Image), e.Platform, e.Inputs[..12], e.Changed ? "yes" : "no", Markup.Escape(e.Cache));
        AnsiConsole.Write(table);
        if (cache == null) AnsiConsole.MarkupLine("[yellow]cache not consulted[/] (give --registry and --key): every entry is 'changed'");
        if (settings.Out != null) AtomicFile.WriteAllText(settings.Out, plan.ToJson());
        var stdout = Console.Out;
        if (settings.Matrix) stdout.WriteLine(System.Text.Json.JsonSerializer.Serialize(plan.Matrix, new System.Text.Json.JsonSerializerOptions(BuildPlan.Json) { WriteIndented = false }));
        else stdout.Write(plan.ToJson());
        stdout.Flush();
        return 0;
    }
}

public sealed class JobSettings : FanOutRegistrySettings
{
    [CommandOption("--platform <PLATFORM>")]
    [Description("The one platform this job builds (with --image)")]
    public string? Platform { get; init; }

    [CommandOption("--plan <FILE>")]
    [Description("Take image and platform from this plan's entry --entry (default $JOB_COMPLETION_INDEX)")]
    public string? Plan { get; init; }

    [CommandOption("--entry <N>")]
    [Description("Plan entry number (a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX)")]
    public int? Entry { get; init; }

    [CommandOption("--out <DIR>")]
    [Description("This job's artifacts directory (oci/, build.json, fanout/<image>.<arch>.json). Default: artifacts")]
    public string Out { get; init; } = EnvironmentSetting.Get("HARDEN_ARTIFACTS") ?? "artifacts";

    [CommandOption("--output <FORMAT>")]
    [Description("text or json (the job record on stdout)")]
    public HardenImage.Cli.OutputFormat Output { get; init; }

    public override ValidationResult Validate()
    {
        if (Plan == null && (Images.Length != 1 || Platform == null))
            return ValidationResult.Error("a job builds one image for one platform: give --image NAME --platform P, or --plan FILE [--entry N]");
        if (Plan != null && (Images.Length > 0 || Platform != null))
            return ValidationResult.Error("--plan takes image and platform from the plan entry; drop --image/--platform");
        if (Platform != null) PlatformName.ParseArchitecture(Platform);
        return ValidationResult.Success();
    }
}

/// <summary>
/// <c>harden job</c>: one fan-out job. Reuses the registry's manifest for these inputs when it is signed by the
/// release key; otherwise builds the one image × platform, pushes its manifest under <c>inputs-&lt;hex&gt;</c>, and
/// compares with an untrusted cache entry (a mismatch fails the job, showing both digests). Leaves its record in
/// OUT/fanout/ for the fan-in.
/// </summary>
public sealed class JobCommand : AsyncCommand<JobSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, JobSettings settings, CancellationToken ct)
    {
        HardenImage.Cli.CliOutput.Begin(settings.Output);
        var set = ImageSet.Load(settings.ImagesDir);
        var lockFile = LockFile.Load(settings.LockFilePath);
        var job = FanOutJob.Resolve(set, lockFile, settings.EpochOverride, settings.Plan, settings.Entry,
            settings.Plan == null ? settings.Images[0] : null, settings.Platform);
        if (settings.RegistryText == null) throw new HardenException("harden job pushes its manifest: give --registry (or HARDEN_REGISTRY).");

        var outDir = Path.GetFullPath(settings.Out);
        using var registry = await FanOutRegistry.OpenAsync(settings.RegistryText, EnvironmentSetting.Given(settings.Key), settings.Insecure, ct);
        var lookup = await FanOutJob.LookupAsync(registry, job, ct);
        AnsiConsole.MarkupLineInterpolated($"cache {lookup.State}: {lookup.Reason}");
        if (lookup.IsHit)
        {
            Finish(settings, FanOutJob.SaveHit(registry, job, lookup, outDir));
            return 0;
        }

        var built = await BuildAsync(set, lockFile, job.Image, job.Architecture, outDir, settings, ct);
        var (record, mismatch) = await FanOutJob.PushBuiltAsync(registry, job, lookup, built, outDir, ct);
        Finish(settings, record);
        if (mismatch != null) throw new HardenException(mismatch, 1);
        return 0;
    }

    private static void Finish(JobSettings settings, PlatformRecord record)
    {
        AnsiConsole.MarkupLineInterpolated($"[green]{record.Image} ({record.Platform})[/] {record.Manifest.Manifest} — {record.Cache}; uploaded {record.UploadedBlobs} blobs ({record.UploadedBytes / 1e6:0.0} MB); record {PlatformRecord.PathFor(Path.GetFullPath(settings.Out), record.Image, record.Manifest.Architecture)}");
        HardenImage.Cli.CliOutput.Result(settings.Output, record);
    }

    /// <summary>What 'harden build --image NAME --platform P' does, into this job's own artifacts directory.</summary>
    private static async Task<BuiltArchitecture> BuildAsync(ImageSet set, LockFile lockFile, ImageDefinition image, string arch, string outDir, JobSettings settings, CancellationToken ct)
    {
        var selected = new[] { image.Name };
        var builder = new ImageBuilder(set, lockFile, new BuildOptions
        {
            ArtifactsDir = outDir, CacheRoot = settings.CacheRoot, SourceDateEpoch = settings.Epoch, Images = selected, Architectures = [arch],
            Revision = Git.Revision(set.Directory), SourceUrl = Git.RemoteUrl(set.Directory),
        });
        var proof = await ProofNotices.ProveAsync(set, lockFile, selected, settings.CacheRoot, false, false, ct);
        var outcome = builder.TryUpToDate();
        if (outcome == null)
        {
            var paths = await DebDownloads.FetchAsync(set, lockFile, proof, selected, settings.CacheRoot, 6, printTable: false, ct);
            outcome = await builder.BuildAsync(p => proof.Locate(p, paths), null, ct);
        }
        foreach (var repair in outcome.CacheRepairs) AnsiConsole.MarkupLineInterpolated($"[yellow]cache entry refused:[/] {repair}");
        return outcome.Manifest.Image(image.Name)!.Architectures.Single(a => a.Architecture == arch);
    }
}

public sealed class FanInSettings : FanOutRegistrySettings
{
    [CommandArgument(0, "[DIR]")]
    [Description("The jobs' artifacts directories (each with fanout/*.json, and oci/ when it built)")]
    public string[] From { get; init; } = [];

    [CommandOption("--plan <FILE>")]
    [Description("The plan the jobs ran (harden plan --out FILE)")]
    public string Plan { get; init; } = "plan.json";

    [CommandOption("--out <DIR>")]
    [Description("Artifacts directory to assemble into (oci/, build.json). Default: artifacts")]
    public string Out { get; init; } = EnvironmentSetting.Get("HARDEN_ARTIFACTS") ?? "artifacts";

    [CommandOption("--push")]
    [Description("Also put the indexes into --registry (no blob is read or sent: the jobs pushed them) and write pushed.json; layers are not read back, so run sbom/scan/smoke in the jobs")]
    public bool Push { get; init; }

    public override ValidationResult Validate()
    {
        foreach (var d in From)
            if (!Directory.Exists(d)) return ValidationResult.Error($"'{d}': no such job artifacts directory");
        if (Push && RegistryText == null) return ValidationResult.Error("--push needs --registry");
        return From.Length == 0 ? ValidationResult.Error("name the jobs' artifacts directories") : ValidationResult.Success();
    }
}

/// <summary><c>harden fanin</c>: every plan entry's record → one layout with each image's multi-arch index, and build.json.</summary>
public sealed class FanInCommand : AsyncCommand<FanInSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, FanInSettings settings, CancellationToken ct)
    {
        var set = ImageSet.Load(settings.ImagesDir);
        var lockFile = LockFile.Load(settings.LockFilePath);
        var plan = BuildPlan.Load(settings.Plan);
        var outDir = Path.GetFullPath(settings.Out);
        var builder = new ImageBuilder(set, lockFile, new BuildOptions
        {
            ArtifactsDir = outDir, CacheRoot = settings.CacheRoot, SourceDateEpoch = settings.Epoch,
            Revision = Git.Revision(set.Directory), SourceUrl = Git.RemoteUrl(set.Directory),
        });
        var dirs = settings.From.Select(Path.GetFullPath).Where(d => d != outDir).Distinct().ToList();
        using var connection = settings.RegistryText != null ? await FanOutRegistry.OpenAsync(settings.RegistryText, null, settings.Insecure, ct) : null;
        var assembler = new FanInAssembler(set, builder, connection?.Registry);
        var outcome = await assembler.AssembleAsync(plan, dirs, outDir, withLayers: !settings.Push, ct);
        if (settings.Push)
        {
            var pushed = await assembler.PushIndexesAsync(outDir, connection!.Target, ct);
            PushedFile.Save(ArtifactPaths.PushRecord(outDir), connection.Target.ToString(), pushed);
            AnsiConsole.MarkupLineInterpolated($"[green]pushed[/] {pushed.Count} indexes to {connection.Target} (0 blobs uploaded); wrote {ArtifactPaths.PushRecord(outDir)}");
        }
        var table = new Table().AddColumns("image", "index", "platforms");
        foreach (var b in outcome.Manifest.Images.Where(b => plan.FanIn.Images.ContainsKey(b.Name)))
            table.AddRow(Markup.Escape(b.Name), b.Index, string.Join(", ", b.Architectures.Select(a => a.Platform)));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"[green]assembled[/] {plan.FanIn.Images.Count} images from {plan.Jobs.Count} jobs into {outDir} ({outcome.BlobsFromJobs} blobs from job directories, {outcome.BlobsFromRegistry} ({outcome.BytesFromRegistry / 1e6:0.0} MB) read back from the registry). Next: {(settings.Push ? "harden sign, verify, deploy" : "harden push, sign, verify, deploy")}.");
        return 0;
    }
}

public static class PlanCommandsRegistration
{
    public static void AddPlanCommands(this IConfigurator config)
    {
        config.AddCommand<PlanCommand>("plan").WithDescription("Print the fan-out job list (image × platform, fan-in) as JSON; a GitHub Actions matrix as is")
            .WithExample("plan", "--registry", "registry.example/hardened", "--key", "cosign.pub", "--out", "plan.json");
        config.AddCommand<JobCommand>("job").WithDescription("One fan-out job: reuse the release-signed manifest for these inputs, or build and push one image × platform")
            .WithExample("job", "--plan", "plan.json", "--entry", "3", "--registry", "registry.example/hardened", "--key", "cosign.pub");
        config.AddCommand<FanInCommand>("fanin").WithDescription("Assemble the multi-arch indexes from the fan-out jobs' records, then push, sign, verify, deploy as usual")
            .WithExample("fanin", "--plan", "plan.json", "--registry", "registry.example/hardened", "--out", "artifacts", "jobs/*");
    }
}
