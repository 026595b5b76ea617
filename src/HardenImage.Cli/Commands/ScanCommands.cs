using System.ComponentModel;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Oci;
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

    [CommandOption("--out <DIR>")]
    [Description("Artifacts directory: reads build.json from it, writes sbom/ or scan/ into it.")]
    [DefaultValue("artifacts")]
    public string Out { get; init; } = "artifacts";

    [CommandOption("--payload <PATH>")]
    [Description("Image path (file or directory) whose files are listed with their SHA-256; repeatable.")]
    public string[] Payload { get; init; } = [];

    internal BuiltImageInventories OpenBuild()
    {
        var build = BuildResult.Load(Path.Combine(Out, "build.json"));
        var layout = OciLayout.Open(Layout);
        LockFile? lockFile = null;
        if (File.Exists(Lock)) lockFile = LockFile.Load(Lock);
        else AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] {Lock} not found: .deb hashes will be missing from the SBOM");
        return new BuiltImageInventories(layout, build, lockFile);
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
            foreach (var arch in image.Architectures.OrderBy(a => a.Architecture, StringComparer.Ordinal))
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
    [Description("Without advisory data, write outputs marked 'unscanned' instead of failing.")]
    public bool AllowUnscanned { get; init; }

    [CommandOption("--cache <DIR>")]
    [Description("Cache for advisory indexes and downloads.")]
    [DefaultValue(".cache/harden")]
    public string Cache { get; init; } = ".cache/harden";
}

/// <summary><c>harden scan</c>: findings, VEX and the policy gate per image and architecture; exit 1 when a gate fails.</summary>
public sealed class ScanCommand : AsyncCommand<ScanSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ScanSettings settings, CancellationToken cancellationToken)
    {
        var images = settings.OpenBuild();
        var policy = settings.Policy != null ? VulnerabilityPolicy.Load(settings.Policy)
            : File.Exists("policies/vulnerabilities.yaml") ? VulnerabilityPolicy.Load("policies/vulnerabilities.yaml")
            : VulnerabilityPolicy.Default;

        AdvisoryIndex? index = null;
        string? location = settings.Db ?? Environment.GetEnvironmentVariable("HARDEN_DB") ?? (Directory.Exists("vulndb") ? "vulndb" : null);
        if (location != null)
        {
            using var http = AdvisoryFeedUpdater.CreateHttpClient();
            var path = await new AdvisoryDataLocator(http, settings.Cache).ResolveAsync(location, cancellationToken);
            var store = new AdvisoryIndexStore(settings.Cache);
            var sw = System.Diagnostics.Stopwatch.StartNew();
            index = store.LoadOrBuild(path);
            AnsiConsole.MarkupLineInterpolated($"advisory data: {location} ({index.DataDigest[..19]}…, {index.RecordCount} records, {(store.LastWasCacheHit ? "cached index" : "index built")} in {sw.ElapsedMilliseconds} ms)");
            if (File.Exists(Path.Combine(path, "SOURCES.md")) && File.Exists(Path.Combine(path, "manifest.json")))
                AnsiConsole.MarkupLine("[yellow]note:[/] these are the offline excerpts shipped with the repository, not a current feed; 'harden db update' fetches current data.");
        }
        else if (!settings.AllowUnscanned)
            throw new HardenException(VulnerabilityScanner.NoDataMessage);

        var scanner = new VulnerabilityScanner(index, new PolicyGate(policy, TimeProvider.System), TimeProvider.System, null, location);
        var dir = Path.Combine(settings.Out, "scan");
        Directory.CreateDirectory(dir);
        var failed = new List<string>();
        foreach (var image in images.Select(settings.Image))
            foreach (var arch in image.Architectures.OrderBy(a => a.Architecture, StringComparer.Ordinal))
            {
                var inv = images.Read(image, arch, settings.Payload);
                var result = await scanner.ScanAsync(inv, settings.AllowUnscanned, cancellationToken);
                var stem = Path.Combine(dir, $"{image.Name}.{arch.Architecture}");
                AtomicFile.WriteAllBytes(stem + ".json", ScanReportWriter.Write(result, settings.ShowNegligible));
                AtomicFile.WriteAllBytes(stem + ".cdx-vex.json", CycloneDxVexWriter.Write(result, settings.ShowNegligible));
                AtomicFile.WriteAllBytes(stem + ".openvex.json", OpenVexWriter.Write(result, settings.ShowNegligible));
                Show(result, settings.ShowNegligible);
                if (result.Policy is { Passed: false } p)
                    failed.Add($"{image.Name}/{arch.Architecture}: {string.Join("; ", p.Violations)}");
            }
        if (failed.Count > 0)
            throw new HardenException($"vulnerability policy ({policy.Source}) failed for {failed.Count} image(s):\n  " + string.Join("\n  ", failed), exitCode: 1);
        return 0;
    }

    private static void Show(ScanResult r, bool showNegligible)
    {
        var shown = r.Findings.Where(f => showNegligible || f.Status != FindingStatus.Negligible || f.Allowlisted != null).ToList();
        AnsiConsole.MarkupLineInterpolated($"[bold]{r.Image.ImageName}[/] {r.Image.Architecture} {r.Image.Digest[..19]}… ({r.Image.Distro ?? "unknown distro"})");
        foreach (var w in r.Warnings) AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] {w}");
        if (shown.Count > 0)
        {
            var table = new Table().AddColumns("package", "installed", "fixed in", "id", "severity", "status");
            foreach (var f in shown)
                table.AddRow(Markup.Escape(f.Package), Markup.Escape(f.InstalledVersion), Markup.Escape(f.FixedVersion ?? "-"), Markup.Escape(f.Id),
                    $"[{Colour(f.Severity)}]{f.Severity.ToString().ToLowerInvariant()}[/]",
                    Markup.Escape(f.Allowlisted != null ? "allowlisted" : f.Status.ToString().ToLowerInvariant()));
            AnsiConsole.Write(table);
        }
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
