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
    [Description("Only this platform, OCI spelling: linux/amd64, linux/arm64 (= linux/arm64/v8); repeatable. Default: every architecture")]
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

    /// <summary>The architectures --platform selects (all without it).</summary>
    internal IEnumerable<BuiltArchitecture> Selected(IEnumerable<BuiltArchitecture> architectures) =>
        CliValues.Architectures(Platforms) is { } wanted ? architectures.Where(a => wanted.Contains(a.Architecture)) : architectures;

    internal BuiltImageInventories OpenBuild()
    {
        var build = BuildManifest.Load(Path.Combine(Out, "build.json"));
        var layout = OciLayout.Open(Layout);
        LockFile? lockFile = null;
        if (File.Exists(Lock)) lockFile = LockFile.Load(Lock);
        else AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] {Lock} not found: .deb hashes will be missing from the SBOM");
        // The packages' release comes from the lock and the image set's sources.yaml beside it, never from the image.
        var sourcesYaml = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(Lock))!, "sources.yaml");
        var definitions = File.Exists(sourcesYaml) ? ImageSet.Load(Path.GetDirectoryName(sourcesYaml)!).Sources : null;
        return new BuiltImageInventories(layout, build, lockFile, definitions);
    }
}

/// <summary><c>harden sbom</c>: a CycloneDX 1.6 SBOM per image and architecture.</summary>
public sealed class SbomCommand : Command<ImageSelectionSettings>
{
    public override int Execute(CommandContext context, ImageSelectionSettings settings, CancellationToken cancellationToken)
    {
        var images = settings.OpenBuild();
        var dir = Path.Combine(settings.Out, "sbom");
        Directory.CreateDirectory(dir);
        var table = new Table().AddColumns("image", "arch", "debs", "python", "files", "SBOM");
        foreach (var image in images.Select(settings.Image))
            foreach (var arch in settings.Selected(image.Architectures).OrderBy(a => a.Architecture, StringComparer.Ordinal))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var inv = images.Read(image, arch, settings.Payload);
                var path = Path.Combine(dir, $"{image.Name}.{arch.Architecture}.cdx.json");
                AtomicFile.WriteAllBytes(path, CycloneDxWriter.Write(inv));
                table.AddRow(Markup.Escape(image.Name), arch.Architecture, inv.Packages.Count.ToString(), inv.PythonDistributions.Count.ToString(),
                    inv.Files.Count.ToString(), Markup.Escape(path));
            }
        AnsiConsole.Write(table);
        return 0;
    }
}

public sealed class ScanSettings : ImageSelectionSettings
{
    [CommandOption("--output <FORMAT>")]
    [Description("text (tables) or json (one JSON result on stdout; tables go to stderr)")]
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
        var policy = settings.Policy != null ? VulnerabilityPolicy.Load(settings.Policy)
            : File.Exists("policies/vulnerabilities.yaml") ? VulnerabilityPolicy.Load("policies/vulnerabilities.yaml")
            : VulnerabilityPolicy.Default;
        if (settings.Ecr != null)
        {
            if (settings.Inspector)
                throw new HardenException("--ecr reads findings for a pushed image and --inspector scans the local build: run them as two separate 'harden scan' commands.");
            return await ScanEcrAsync(settings, policy, cancellationToken);
        }
        var images = settings.OpenBuild();

        AdvisoryIndex? index = null;
        string? location = settings.Db ?? EnvironmentSetting.Get("HARDEN_DB") ?? (Directory.Exists("vulndb") ? "vulndb" : null);
        if (location != null)
        {
            using var http = AdvisoryFeedUpdater.CreateHttpClient();
            var path = await new AdvisoryDataLocator(http, settings.Cache).ResolveAsync(location, cancellationToken);
            var store = new AdvisoryIndexStore(settings.Cache);
            var sw = System.Diagnostics.Stopwatch.StartNew();
            index = store.LoadOrBuild(path);
            AnsiConsole.MarkupLineInterpolated($"advisory data: {location} ({index.DataDigest[..19]}…, {index.RecordCount} records, {(store.LastWasCacheHit ? "cached index" : "index built")} in {sw.ElapsedMilliseconds} ms)");
            // A cache entry that was there but not trusted (forged, damaged, another machine's key) is worth a line:
            // someone or something wrote the cache.
            if (store.LastRejected != null)
                AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] the cached advisory index {store.CachePathFor(index.DataDigest)} was not trusted ({store.LastRejected}); rebuilt it from {location}.");
            if (File.Exists(Path.Combine(path, "SOURCES.md")) && File.Exists(Path.Combine(path, "manifest.json")))
                AnsiConsole.MarkupLine("[yellow]note:[/] these are the offline excerpts shipped with the repository, not a current feed; 'harden db update' fetches current data.");
        }
        else if (settings.Inspector)
            AnsiConsole.MarkupLine("[yellow]note:[/] no local advisory data: findings come from Amazon Inspector only.");
        else if (!settings.AllowUnscanned)
            throw new HardenException(VulnerabilityScanner.NoDataMessage);

        using var inspector = settings.Inspector ? new InspectorFindingSource(settings.ResolveAws("--inspector", null)) : null;
        var scanner = new VulnerabilityScanner(index, new PolicyGate(policy, TimeProvider.System), TimeProvider.System,
            inspector != null ? [inspector] : null, location);
        var dir = Path.Combine(settings.Out, "scan");
        Directory.CreateDirectory(dir);
        var failed = new List<string>();
        var summary = new List<object>();
        foreach (var image in images.Select(settings.Image))
            foreach (var arch in settings.Selected(image.Architectures).OrderBy(a => a.Architecture, StringComparer.Ordinal))
            {
                var inv = images.Read(image, arch, settings.Payload);
                // Inspector round trips take seconds per image: show that something is happening.
                var result = inspector == null
                    ? await scanner.ScanAsync(inv, settings.AllowUnscanned, cancellationToken)
                    : await AnsiConsole.Status().StartAsync($"{Markup.Escape(image.Name)}/{arch.Architecture}: waiting for Amazon Inspector…",
                        _ => scanner.ScanAsync(inv, settings.AllowUnscanned, cancellationToken));
                var stem = Path.Combine(dir, $"{image.Name}.{arch.Architecture}");
                AtomicFile.WriteAllBytes(stem + ".json", ScanReportWriter.Write(result, settings.ShowNegligible));
                AtomicFile.WriteAllBytes(stem + ".cdx-vex.json", CycloneDxVexWriter.Write(result, settings.ShowNegligible));
                AtomicFile.WriteAllBytes(stem + ".openvex.json", OpenVexWriter.Write(result, settings.ShowNegligible));
                Show(result, settings.ShowNegligible);
                summary.Add(new
                {
                    image = image.Name, architecture = arch.Architecture, report = stem + ".json", findings = result.Findings.Count,
                    policyPassed = result.Policy?.Passed, violations = result.Policy?.Violations,
                });
                if (result.Policy is { Passed: false } p)
                    failed.Add($"{image.Name}/{arch.Architecture}: {string.Join("; ", p.Violations)}");
            }
        if (inspector != null)
            AnsiConsole.MarkupLineInterpolated($"Amazon Inspector: {inspector.RequestsSent} ScanSbom request(s), {inspector.Attempts} HTTP attempt(s)");
        HardenImage.Cli.CliOutput.Result(settings.Output, new { policy = policy.Source, passed = failed.Count == 0, results = summary });
        if (failed.Count > 0)
            throw new HardenException($"vulnerability policy ({policy.Source}) failed for {failed.Count} image(s):\n  " + string.Join("\n  ", failed), exitCode: 1);
        return 0;
    }

    /// <summary><c>--ecr</c>: Inspector2 findings of a pushed image, the same policy gate, exit 1 when it fails.</summary>
    private static async Task<int> ScanEcrAsync(ScanSettings settings, VulnerabilityPolicy policy, CancellationToken cancellationToken)
    {
        var pushedPath = Path.Combine(settings.Out, "pushed.json");
        var target = InspectorEcrTarget.Resolve(settings.Ecr!, PushedFile.TryLoad(pushedPath), pushedPath);
        var aws = settings.ResolveAws("--ecr", target.Region);
        using var client = new Inspector2FindingsClient(aws);
        AnsiConsole.MarkupLineInterpolated($"Amazon Inspector2 ({aws.Region}): findings for {target.Reference} ({target.Digests.Count} image manifest(s))");
        using var scanner = new InspectorEcrScanner(client, new PolicyGate(policy, TimeProvider.System), TimeProvider.System)
        {
            OnProgress = line => AnsiConsole.MarkupLineInterpolated($"[grey]{line}[/]"),
        };
        var report = await AnsiConsole.Status().StartAsync("reading Inspector2 findings…", _ => scanner.ScanAsync(target, aws.Region, cancellationToken));

        var dir = Path.Combine(settings.Out, "scan");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, SafeFileStem(target.Label) + ".inspector2.json");
        AtomicFile.WriteAllBytes(path, InspectorEcrReportWriter.Write(report));
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

    // The label comes from pushed.json or the user's reference; it must not walk out of artifacts/scan (Tampering).
    private static string SafeFileStem(string label)
    {
        var chars = label.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-').ToArray();
        var stem = new string(chars).TrimStart('.');
        return stem.Length == 0 ? "image" : stem;
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
