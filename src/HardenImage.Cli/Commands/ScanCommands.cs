using System.ComponentModel;
using HardenImage.Aws;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Lock;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Sbom;
using HardenImage.Scan;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

/// <summary>Options shared by <c>harden sbom</c> and <c>harden scan</c>: where the build is.</summary>
public class ImageSelectionSettings : CommandSettings
{
    [CommandOption("--layout <DIR>")]
    [Description("OCI image layout written by 'harden build'.")]
    [DefaultValue("artifacts/oci")]
    public string Layout { get; init; } = "artifacts/oci";

    [CommandOption("--lock <FILE>")]
    [Description("Lock file (gives each .deb's SHA-256).")]
    [DefaultValue("images/images.lock.json")]
    public string Lock { get; init; } = "images/images.lock.json";

    [CommandOption("--image <NAME>")]
    [Description("Only this image (default: every image in the build).")]
    public string? Image { get; init; }

    [CommandOption("--platform <PLATFORM>")]
    [Description(OptionText.Platforms)]
    public string[] Platforms { get; init; } = [];

    public override ValidationResult Validate()
    {
        CliValues.Architectures(Platforms); // a bad --platform is refused before any work
        return ValidationResult.Success();
    }

    [CommandOption("--out <DIR>")]
    [Description("Artifacts directory: reads build.json from it, writes sbom/ or scan/ into it.")]
    [DefaultValue("artifacts")]
    public string Out { get; init; } = "artifacts";

    [CommandOption("--payload <PATH>")]
    [Description("Image path (file or directory) whose files are listed with their SHA-256; repeatable.")]
    public string[] Payload { get; init; } = [];

    /// <summary>The build, with the lock's warning said here.</summary>
    internal BuiltImageInventories OpenBuild() =>
        BuiltImageInventories.Open(Layout, Out, Lock, warning => AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] {warning}"));
}

/// <summary><c>harden sbom</c>: a CycloneDX 1.6 SBOM per image and architecture.</summary>
public sealed class SbomCommand : Command<ImageSelectionSettings>
{
    public override int Execute(CommandContext context, ImageSelectionSettings settings, CancellationToken cancellationToken)
    {
        var written = ImageSetSbomWriter.WriteAll(settings.OpenBuild(), settings.Out, settings.Image, CliValues.Architectures(settings.Platforms),
            settings.Payload, cancellationToken);
        var table = new Table().AddColumns("image", "arch", "debs", "python", "files", "SBOM");
        foreach (var w in written)
            table.AddRow(Markup.Escape(w.Image), w.Architecture, w.Inventory.Packages.Count.ToString(), w.Inventory.PythonDistributions.Count.ToString(),
                w.Inventory.Files.Count.ToString(), Markup.Escape(w.Path));
        AnsiConsole.Write(table);
        return 0;
    }
}

public sealed class ScanSettings : ImageSelectionSettings
{
    [CommandOption("--output <FORMAT>")]
    [Description(OptionText.Output)]
    public HardenImage.Cli.OutputFormat Output { get; init; }

    [CommandOption("--db <PATH|URL>")]
    [Description("Advisory data: a directory, .zip or .json of OSV / Debian tracker data, or a URL (default: $HARDEN_DB, else ./vulndb when present).")]
    public string? Db { get; init; }

    [CommandOption("--policy <FILE>")]
    [Description("Vulnerability policy (default: policies/vulnerabilities.yaml when present, else the built-in default).")]
    public string? Policy { get; init; }

    [CommandOption("--show-negligible")]
    [Description("Also show findings Debian rates negligible (no-dsa, unimportant, end-of-life).")]
    public bool ShowNegligible { get; init; }

    [CommandOption("--allow-unscanned")]
    [Description("Accept components no advisory source can judge (unknown release, no data for their ecosystem; listed as unscanned) and, without any advisory data, write outputs marked unscanned instead of failing.")]
    public bool AllowUnscanned { get; init; }

    [CommandOption("--cache <DIR>")]
    [Description("Cache for advisory indexes and downloads.")]
    [DefaultValue(".cache/harden")]
    public string Cache { get; init; } = ".cache/harden";

    [CommandOption("--inspector")]
    [Description("Also send each image's SBOM to Amazon Inspector (ScanSbom) and merge its findings; each finding names its source. Needs AWS credentials and a region.")]
    public bool Inspector { get; init; }

    [CommandOption("--ecr <IMAGE>")]
    [Description("Instead of scanning the build: read Amazon Inspector2 findings for a pushed image (sha256:<digest>, REPOSITORY@sha256:<digest>, or an image name in <out>/pushed.json), print them, write <out>/scan/<image>.inspector2.json and apply the policy.")]
    public string? Ecr { get; init; }

    [CommandOption("--region|--aws-region <REGION>")]
    [Description("AWS region for --inspector/--ecr; alias --aws-region (default: the ECR registry's region for --ecr, then AWS_REGION, AWS_DEFAULT_REGION, the profile's region).")]
    public string? Region { get; init; }

    [CommandOption("--aws-profile <PROFILE>")]
    [Description("AWS profile (~/.aws/credentials, ~/.aws/config) for --inspector/--ecr; default: AWS_PROFILE, else the default credential chain.")]
    public string? AwsProfile { get; init; }

    [CommandOption("--inspector-endpoint <URL>")]
    [Description("Send Inspector requests to this endpoint instead of AWS's (VPC endpoint; http only to loopback, for tests).")]
    public string? InspectorEndpoint { get; init; }

    /// <summary>
    /// AWS settings for Inspector. An endpoint override must be https unless it is loopback: the SBOM and the signed
    /// requests must not cross a network in clear text (Information disclosure).
    /// </summary>
    internal AwsContext ResolveAws(string purpose, string? impliedRegion)
    {
        Uri? endpoint = null;
        if (InspectorEndpoint != null)
        {
            if (!Uri.TryCreate(InspectorEndpoint, UriKind.Absolute, out endpoint) || endpoint.Scheme is not ("https" or "http"))
                throw new HardenException($"--inspector-endpoint '{InspectorEndpoint}' is not an http(s) URL.");
            if (endpoint.Scheme == "http" && !endpoint.IsLoopback)
                throw new HardenException($"--inspector-endpoint '{InspectorEndpoint}': plain http is only allowed to a loopback address; use https.");
        }
        try
        {
            return AwsContext.Resolve(new AwsClientOptions { Region = Region ?? impliedRegion, Profile = AwsProfile, EndpointOverride = endpoint });
        }
        catch (HardenException e)
        {
            throw new HardenException($"{purpose} needs AWS credentials and a region. {e.Message}", e.ExitCode, e);
        }
    }
}

/// <summary><c>harden scan</c>: findings, VEX and the policy gate per image and architecture; exit 1 when a gate fails.</summary>
public sealed class ScanCommand : AsyncCommand<ScanSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ScanSettings settings, CancellationToken cancellationToken)
    {
        HardenImage.Cli.CliOutput.Begin(settings.Output);
        var policy = VulnerabilityPolicy.LoadOrDefault(settings.Policy);
        if (settings.Ecr != null)
        {
            if (settings.Inspector)
                throw new HardenException("--ecr reads findings for a pushed image and --inspector scans the local build: run them as two separate 'harden scan' commands.");
            return await ScanEcrAsync(settings, policy, cancellationToken);
        }
        var images = settings.OpenBuild();

        AdvisoryIndex? index = null;
        var location = AdvisoryData.DefaultLocation(settings.Db);
        if (location != null)
        {
            var data = await AdvisoryData.OpenAsync(location, settings.Cache, cancellationToken);
            index = data.Index;
            AnsiConsole.MarkupLineInterpolated($"advisory data: {location} ({index.DataDigest[..19]}…, {index.RecordCount} records, {(data.CacheHit ? "cached index" : "index built")} in {data.ElapsedMilliseconds} ms)");
            // A cache entry that was there but not trusted (forged, damaged, another machine's key) is worth a line:
            // someone or something wrote the cache.
            if (data.Rejected != null)
                AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] the cached advisory index {data.RejectedPath} was not trusted ({data.Rejected}); rebuilt it from {location}.");
            if (data.IsShippedExcerpt)
                AnsiConsole.MarkupLine("[yellow]note:[/] these are the offline excerpts shipped with the repository, not a current feed; 'harden db update' fetches current data.");
        }
        else if (settings.Inspector)
            AnsiConsole.MarkupLine("[yellow]note:[/] no local advisory data: findings come from Amazon Inspector only.");
        else if (!settings.AllowUnscanned)
            throw new HardenException(VulnerabilityScanner.NoDataMessage);

        using var inspector = settings.Inspector ? new InspectorFindingSource(settings.ResolveAws("--inspector", null)) : null;
        var scanner = new VulnerabilityScanner(index, new PolicyGate(policy, TimeProvider.System), TimeProvider.System,
            inspector != null ? [inspector] : null, location);
        var scans = await new ImageSetScanner(scanner, images).ScanAsync(new ImageSetScanRequest
            {
                ArtifactsDir = settings.Out,
                Image = settings.Image,
                Architectures = CliValues.Architectures(settings.Platforms),
                Payload = settings.Payload,
                AllowUnscanned = settings.AllowUnscanned,
                IncludeNegligible = settings.ShowNegligible,
            },
            // Inspector round trips take seconds per image: show that something is happening.
            inspector == null ? null : (image, arch, scan) => AnsiConsole.Status().StartAsync($"{Markup.Escape(image)}/{arch}: waiting for Amazon Inspector…", _ => scan()),
            scan => Show(scan.Result, settings.ShowNegligible), cancellationToken);
        if (inspector != null)
            AnsiConsole.MarkupLineInterpolated($"Amazon Inspector: {inspector.RequestsSent} ScanSbom request(s), {inspector.Attempts} HTTP attempt(s)");
        var failed = scans.Select(s => s.PolicyFailure).OfType<string>().ToList();
        HardenImage.Cli.CliOutput.Result(settings.Output, new
        {
            policy = policy.Source, passed = failed.Count == 0,
            results = scans.Select(s => new
            {
                image = s.Image, architecture = s.Architecture, report = s.ReportPath, findings = s.Result.Findings.Count,
                policyPassed = s.Result.Policy?.Passed, violations = s.Result.Policy?.Violations,
            }),
        });
        if (failed.Count > 0)
            throw new HardenException($"vulnerability policy ({policy.Source}) failed for {failed.Count} image(s):\n  " + string.Join("\n  ", failed), exitCode: 1);
        return 0;
    }

    /// <summary><c>--ecr</c>: Inspector2 findings of a pushed image, the same policy gate, exit 1 when it fails.</summary>
    private static async Task<int> ScanEcrAsync(ScanSettings settings, VulnerabilityPolicy policy, CancellationToken cancellationToken)
    {
        var pushedPath = ArtifactPaths.PushRecord(settings.Out);
        var target = InspectorEcrTarget.Resolve(settings.Ecr!, PushedFile.TryLoad(pushedPath), pushedPath);
        var aws = settings.ResolveAws("--ecr", target.Region);
        using var client = new Inspector2FindingsClient(aws);
        AnsiConsole.MarkupLineInterpolated($"Amazon Inspector2 ({aws.Region}): findings for {target.Reference} ({target.Digests.Count} image manifest(s))");
        using var scanner = new InspectorEcrScanner(client, new PolicyGate(policy, TimeProvider.System), TimeProvider.System)
        {
            OnProgress = line => AnsiConsole.MarkupLineInterpolated($"[grey]{line}[/]"),
        };
        var report = await AnsiConsole.Status().StartAsync("reading Inspector2 findings…", _ => scanner.ScanAsync(target, aws.Region, cancellationToken));

        var path = ImageSetScanner.WriteInspectorReport(settings.Out, target.Label, report);
        var failed = new List<string>();
        foreach (var image in report.Images)
        {
            AnsiConsole.MarkupLineInterpolated($"[bold]{target.Label}[/] {image.Architecture} {image.Digest[..19]}…");
            if (image.Findings.Count > 0)
            {
                var table = new Table().AddColumns("id", "package", "installed", "fixed", "severity", "source", "status");
                foreach (var f in image.Findings)
                    table.AddRow(Markup.Escape(f.Id), Markup.Escape(f.Package), Markup.Escape(f.InstalledVersion), Markup.Escape(f.FixedVersion ?? "-"),
                        $"[{Colour(f.Severity)}]{f.Severity.ToString().ToLowerInvariant()}[/]", Markup.Escape(string.Join(", ", f.Sources)),
                        Markup.Escape(f.Allowlisted != null ? "allowlisted" : f.Status.ToString().ToLowerInvariant()));
                AnsiConsole.Write(table);
            }
            AnsiConsole.MarkupLineInterpolated($"{image.Findings.Count} finding(s) from {InspectorFinding.SourceName}; policy: {(image.Policy.Passed ? "passed" : "FAILED")}");
            foreach (var v in image.Policy.Violations) AnsiConsole.MarkupLineInterpolated($"  [red]✗[/] {v}");
            if (!image.Policy.Passed) failed.Add($"{target.Label}/{image.Architecture}: {string.Join("; ", image.Policy.Violations)}");
        }
        AnsiConsole.MarkupLineInterpolated($"wrote {path} ({client.Attempts} HTTP attempt(s))");
        if (failed.Count > 0)
            throw new HardenException($"vulnerability policy ({policy.Source}) failed for Amazon Inspector2 findings of {failed.Count} image(s):\n  " + string.Join("\n  ", failed), exitCode: 1);
        return 0;
    }

    private static void Show(ScanResult r, bool showNegligible)
    {
        var shown = r.Findings.Where(f => showNegligible || f.Status != FindingStatus.Negligible || f.Allowlisted != null).ToList();
        AnsiConsole.MarkupLineInterpolated($"[bold]{r.Image.ImageName}[/] {r.Image.Architecture} {r.Image.Digest[..19]}… ({r.Image.Distro ?? "unknown distro"})");
        foreach (var w in r.Warnings) AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] {w}");
        if (r.Unscanned.Count > 0)
        {
            var table = new Table().AddColumns("NOT SCANNED", "type", "version", "why");
            foreach (var u in r.Unscanned)
                table.AddRow(Markup.Escape(u.Package), u.PackageType, Markup.Escape(u.Version), Markup.Escape(u.Reason));
            AnsiConsole.Write(table);
        }
        if (shown.Count > 0)
        {
            var table = new Table().AddColumns("package", "installed", "fixed in", "id", "severity", "status", "source");
            foreach (var f in shown)
                table.AddRow(Markup.Escape(f.Package), Markup.Escape(f.InstalledVersion), Markup.Escape(f.FixedVersion ?? "-"), Markup.Escape(f.Id),
                    $"[{Colour(f.Severity)}]{f.Severity.ToString().ToLowerInvariant()}[/]",
                    Markup.Escape(f.Allowlisted != null ? "allowlisted" : f.Status.ToString().ToLowerInvariant()),
                    Markup.Escape(string.Join(", ", f.Sources)));
            AnsiConsole.Write(table);
        }
        if (shown.Count > 0)
            AnsiConsole.MarkupLineInterpolated($"by source: {string.Join(", ", shown.SelectMany(f => f.Sources).GroupBy(x => x).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} {g.Count()}"))}");
        var hidden = r.Findings.Count - shown.Count;
        AnsiConsole.MarkupLineInterpolated($"{shown.Count} finding(s){(hidden > 0 ? $", {hidden} negligible hidden (--show-negligible)" : "")}; policy: {(r.Policy?.Passed == false ? "FAILED" : "passed")}");
        foreach (var v in r.Policy?.Violations ?? []) AnsiConsole.MarkupLineInterpolated($"  [red]✗[/] {v}");
    }

    private static string Colour(Severity s) => s switch
    {
        Severity.Critical => "red bold",
        Severity.High => "red",
        Severity.Medium => "yellow",
        Severity.Low => "green",
        _ => "grey",
    };
}

public sealed class DbUpdateSettings : CommandSettings
{
    [CommandOption("--out <DIR>")]
    [Description("Directory the feeds are written to; pass it to 'harden scan --db'.")]
    [DefaultValue(".cache/harden/feeds")]
    public string Out { get; init; } = ".cache/harden/feeds";

    [CommandOption("--tracker-url <URL>")]
    [Description("Debian security tracker JSON (or a mirror).")]
    [DefaultValue(AdvisoryFeedUpdater.DebianTrackerUrl)]
    public string TrackerUrl { get; init; } = AdvisoryFeedUpdater.DebianTrackerUrl;

    [CommandOption("--osv-url <URL>")]
    [Description("Base of the OSV exports (<base>/<ecosystem>/all.zip) or a mirror.")]
    [DefaultValue(AdvisoryFeedUpdater.OsvBaseUrl)]
    public string OsvUrl { get; init; } = AdvisoryFeedUpdater.OsvBaseUrl;

    [CommandOption("--connect-timeout <SECONDS>")]
    [Description("Give up on a host that does not answer within this time.")]
    [DefaultValue(10)]
    public int ConnectTimeout { get; init; } = 10;
}

/// <summary><c>harden db update</c>: fetches the Debian tracker JSON and the OSV exports.</summary>
public sealed class DbUpdateCommand : AsyncCommand<DbUpdateSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, DbUpdateSettings settings, CancellationToken cancellationToken)
    {
        using var http = AdvisoryFeedUpdater.CreateHttpClient(TimeSpan.FromSeconds(settings.ConnectTimeout));
        var updater = new AdvisoryFeedUpdater(http);
        var files = await updater.UpdateAsync(settings.Out, AdvisoryFeedUpdater.Feeds(settings.TrackerUrl, settings.OsvUrl),
            new Progress<string>(m => AnsiConsole.MarkupLineInterpolated($"[grey]{m}[/]")), cancellationToken);
        foreach (var f in files) AnsiConsole.MarkupLineInterpolated($"wrote {f}");
        AnsiConsole.MarkupLineInterpolated($"Scan with: harden scan --db {settings.Out}");
        return 0;
    }
}

public static class ScanCommandsRegistration
{
    /// <summary>Registers <c>sbom</c>, <c>scan</c> and <c>db update</c>.</summary>
    public static void AddScanCommands(this IConfigurator config)
    {
        config.AddCommand<SbomCommand>("sbom").WithDescription("Write a CycloneDX 1.6 SBOM per image and architecture (artifacts/sbom/).");
        config.AddCommand<ScanCommand>("scan").WithDescription("Scan images against offline advisory data, write findings + VEX (artifacts/scan/), apply the vulnerability policy (exit 1 on failure).");
        config.AddBranch("db", db =>
        {
            db.SetDescription("Advisory data.");
            db.AddCommand<DbUpdateCommand>("update").WithDescription("Fetch the Debian security tracker JSON and the OSV exports (Debian, PyPI).");
        });
    }
}
