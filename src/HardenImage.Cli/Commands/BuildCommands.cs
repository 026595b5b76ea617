using System.ComponentModel;
using HardenImage.Apt;
using HardenImage.Build;
using HardenImage.Build.Hardening;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Lock;
using HardenImage.Oci;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

/// <summary>Options every image-set command shares.</summary>
public class ImageSetSettings : CommandSettings
{
    [CommandOption("--images <DIR>")]
    [Description("Image-set directory (sources.yaml, <name>.yaml, keys/). Default: images")]
    public string ImagesDir { get; init; } = EnvironmentSetting.Get("HARDEN_IMAGES") ?? "images";

    [CommandOption("--lock <FILE>")]
    [Description("Lock file. Default: <images>/images.lock.json")]
    public string? LockPath { get; init; }

    [CommandOption("--image <NAME>")]
    [Description("Only this image (and its parents); repeatable. Default: every image that can be built here")]
    public string[] Images { get; init; } = [];

    [CommandOption("--cache <DIR>")]
    [Description(OptionText.Cache)]
    public string? Cache { get; init; }

    public string LockFilePath => LockPath ?? Path.Combine(ImagesDir, "images.lock.json");
    public string CacheRoot => HardenPaths.CacheRoot(Cache);
}

public sealed class LockSettings : ImageSetSettings
{
    [CommandOption("--output <FORMAT>")]
    [Description(OptionText.Output)]
    public HardenImage.Cli.OutputFormat Output { get; init; }

    [CommandOption("--update")]
    [Description("Re-resolve every selected image to the newest versions (otherwise pins stay while satisfiable)")]
    public bool Update { get; init; }

    [CommandOption("--check")]
    [Description("Exit 1 when the lock no longer matches images/*.yaml, is incomplete, or an entry is not proven by a signed index (for CI; offline with a warm cache)")]
    public bool Check { get; init; }

    [CommandOption("--explain")]
    [Description("Show what each requested package pulled in")]
    public bool Explain { get; init; }

    [CommandOption("--allow-expired")]
    [Description("Accept Release files past their Valid-Until (replaying an old mirror snapshot)")]
    public bool AllowExpired { get; init; }

    [CommandOption("--allow-rollback")]
    [Description("Accept a Release older than the Date the lock records for its suite (reported loudly, with every downgrade)")]
    public bool AllowRollback { get; init; }
}

/// <summary><c>harden lock</c>: resolve images/*.yaml against the signed apt sources into the lock file.</summary>
public sealed class LockCommand : AsyncCommand<LockSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, LockSettings settings, CancellationToken cancellationToken)
    {
        HardenImage.Cli.CliOutput.Begin(settings.Output);
        var set = ImageSet.Load(settings.ImagesDir);
        LockFile? existing = null;
        try
        {
            existing = File.Exists(settings.LockFilePath) ? LockFile.Load(settings.LockFilePath) : null;
        }
        catch (HardenException e) when (settings.Update && !settings.Check)
        {
            // --update re-resolves everything, so an unreadable lock is replaced (the advice LockFile.Load gives).
            AnsiConsole.MarkupLineInterpolated($"[yellow]replacing an unreadable lock:[/] {e.Message}");
        }
        if (settings.Check)
        {
            // The same selection as locking: images whose repositories are unreachable here are not expected in it.
            var checkable = Selection.Buildable(set, settings.Images, out var notChecked, readsPayload: false);
            foreach (var (name, why) in notChecked) AnsiConsole.MarkupLineInterpolated($"[yellow]not checked {name}:[/] {why}");
            var problems = ImageLocker.Check(set, existing, checkable)
                .Concat(HardenImage.Python.PythonLocker.Check(set, checkable).Select(p => new LockStaleness(p.Image, p.Reason))).ToList();
            HardenImage.Cli.CliOutput.Result(settings.Output, new
            {
                lockFile = settings.LockFilePath, upToDate = problems.Count == 0,
                problems = problems.Select(p => new { image = p.Image, reason = p.Reason }),
                notChecked = notChecked.Select(n => new { image = n.Image, why = n.Why }),
            });
            if (problems.Count == 0)
            {
                // Up to date is not enough: every entry must still be proven by a signed index, and complete.
                var proof = await ProofNotices.ProveAsync(set, existing!, checkable, settings.CacheRoot, settings.AllowExpired, settings.AllowRollback, cancellationToken);
                AnsiConsole.MarkupLineInterpolated($"[green]lock is up to date and proven[/] ({proof.Debs.Count} entries against {proof.Suites.Count} signed suites): {settings.LockFilePath}");
                return 0;
            }
            var t = new Table().AddColumns("image", "why the lock is stale");
            foreach (var p in problems) t.AddRow(Markup.Escape(p.Image), Markup.Escape(p.Reason));
            AnsiConsole.Write(t);
            AnsiConsole.MarkupLine("[red]lock is stale:[/] run 'harden lock' and commit images/images.lock.json");
            return 1;
        }
        var selected = Selection.Buildable(set, settings.Images, out var skipped, readsPayload: false);
        foreach (var (name, why) in skipped) AnsiConsole.MarkupLineInterpolated($"[yellow]skipping {name}:[/] {why}");
        using var http = AptRepositoryClient.CreateHttpClient();
        var locker = new ImageLocker(AptProof.Reader(http, set, settings.CacheRoot, settings.AllowExpired));
        LockOutcome outcome = null!;
        await AnsiConsole.Status().StartAsync("locking", async ctx =>
        {
            var progress = new Progress<string>(s => ctx.Status(Markup.Escape(s)));
            outcome = await locker.LockAsync(set, existing, new LockOptions { Update = settings.Update, Images = selected, AllowRollback = settings.AllowRollback }, progress, cancellationToken);
        });
        var json = outcome.Lock.ToJson();
        var changed = existing == null || existing.ToJson() != json;
        if (changed) AtomicFile.WriteAllText(settings.LockFilePath, json);
        LockReport.Print(outcome, settings.Explain);
        // Python wheels (issue 18): after the apt lock, whose libc6 decides which manylinux wheels fit.
        using (var pyHttp = HardenImage.Python.PythonStage.CreateHttpClient())
            foreach (var r in await HardenImage.Python.PythonStage.LockAsync(set, outcome.Lock, selected, settings.CacheRoot, pyHttp, ct: cancellationToken))
                AnsiConsole.MarkupLineInterpolated($"{(r.Written ? "[green]wrote[/]" : "[green]python lock unchanged:[/]")} {r.LockPath} ({r.Image}){(r.Changes.Count > 0 ? ": " + string.Join(", ", r.Changes) : "")}");
        foreach (var w in outcome.Warnings) AnsiConsole.MarkupLineInterpolated($"[red]warning:[/] {w}");
        foreach (var d in outcome.Downgrades) AnsiConsole.MarkupLineInterpolated($"[red]downgrade:[/] {d}");
        if (changed) AnsiConsole.MarkupLineInterpolated($"[green]wrote[/] {settings.LockFilePath}");
        else AnsiConsole.MarkupLineInterpolated($"[green]lock unchanged:[/] {settings.LockFilePath}");
        HardenImage.Cli.CliOutput.Result(settings.Output, new
        {
            lockFile = settings.LockFilePath, changed,
            images = outcome.Report.Select(r => new { image = r.Image, architecture = r.Architecture, packages = r.Packages, bytes = r.Bytes, resolved = r.Resolved, changes = r.Changes }),
            skipped = skipped.Select(n => new { image = n.Image, why = n.Why }),
        });
        return 0;
    }
}

/// <summary>The lock proof's notices (a Release older than the lock's, --allow-rollback), said before anything uses the lock.</summary>
internal static class ProofNotices
{
    public static async Task<LockProof> ProveAsync(ImageSet set, LockFile lockFile, IReadOnlyCollection<string> selected, string cacheRoot,
        bool allowExpired, bool allowRollback, CancellationToken ct)
    {
        var proof = await AptProof.ProveAsync(set, lockFile, selected, cacheRoot, allowExpired, allowRollback, ct);
        foreach (var n in proof.Notices) AnsiConsole.MarkupLineInterpolated($"[red]warning:[/] {n}");
        return proof;
    }
}

internal static class LockReport
{
    public static void Print(LockOutcome outcome, bool explain)
    {
        var t = new Table().AddColumns("image", "arch", "packages", "MB", "state", "changes");
        foreach (var r in outcome.Report)
            t.AddRow(Markup.Escape(r.Image), r.Architecture, r.Packages.ToString(), (r.Bytes / 1e6).ToString("0.0"),
                r.Resolved ? "[green]resolved[/]" : "kept", Markup.Escape(r.Changes.Count == 0 ? "-" : string.Join(", ", r.Changes.Take(4)) + (r.Changes.Count > 4 ? $" (+{r.Changes.Count - 4})" : "")));
        AnsiConsole.Write(t);
        var dropped = outcome.Report.Where(r => r.Dropped.Count > 0).ToList();
        if (dropped.Count > 0)
        {
            var d = new Table().Title("dependency edges dropped by exclude:").AddColumns("image", "arch", "package", "dependency", "reason");
            foreach (var r in dropped)
                foreach (var e in r.Dropped) d.AddRow(r.Image, r.Architecture, Markup.Escape(e.Package), Markup.Escape(e.Dependency), Markup.Escape(e.Reason));
            AnsiConsole.Write(d);
        }
        foreach (var r in outcome.Report.Where(r => r.AssumedEssential.Count > 0 && r.Resolved))
            AnsiConsole.MarkupLineInterpolated($"[grey]{r.Image} ({r.Architecture}) assumes these Essential packages are not needed: {string.Join(", ", r.AssumedEssential)}[/]");
        if (!explain) return;
        foreach (var r in outcome.Report.Where(r => r.PulledIn.Count > 0))
        {
            var p = new Table().Title($"{r.Image} ({r.Architecture}): what each requested package pulled in").AddColumns("requested", "pulled in");
            foreach (var (root, deps) in r.PulledIn) p.AddRow(Markup.Escape(root), Markup.Escape(deps.Count == 0 ? "-" : string.Join(", ", deps)));
            AnsiConsole.Write(p);
        }
    }
}

public sealed class FetchSettings : ImageSetSettings
{
    [CommandOption("--allow-rollback")]
    [Description(OptionText.AllowRollback)]
    public bool AllowRollback { get; init; }

    [CommandOption("--parallel <N>")]
    [Description("Parallel downloads. Default: 6")]
    public int Parallel { get; init; } = 6;

    public override ValidationResult Validate() =>
        Parallel is < 1 or > 64 ? ValidationResult.Error("--parallel must be between 1 and 64") : ValidationResult.Success();
}

/// <summary><c>harden fetch</c>: download the locked .debs into the content-addressed cache, verified.</summary>
public sealed class FetchCommand : AsyncCommand<FetchSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, FetchSettings settings, CancellationToken cancellationToken)
    {
        var set = ImageSet.Load(settings.ImagesDir);
        var lockFile = LockFile.Load(settings.LockFilePath);
        var selected = Selection.Buildable(set, settings.Images, out var skipped);
        foreach (var (name, why) in skipped) AnsiConsole.MarkupLineInterpolated($"[yellow]skipping {name}:[/] {why}");
        var proof = await ProofNotices.ProveAsync(set, lockFile, selected, settings.CacheRoot, false, settings.AllowRollback, cancellationToken);
        await DebDownloads.FetchAsync(set, lockFile, proof, selected, settings.CacheRoot, settings.Parallel, printTable: true, cancellationToken);
        using (var pyHttp = HardenImage.Python.PythonStage.CreateHttpClient())
            await HardenImage.Python.PythonStage.FetchAsync(set, selected, settings.CacheRoot, pyHttp, ct: cancellationToken);
        return 0;
    }
}

internal static class DebDownloads
{
    /// <summary>Fetches every locked .deb of the selection with progress bars; returns sha256 → cache path.</summary>
    public static async Task<Dictionary<string, string>> FetchAsync(ImageSet set, LockFile lockFile, LockProof proof, IReadOnlyCollection<string> selected,
        string cacheRoot, int parallel, bool printTable, CancellationToken ct, Action<FetchedDeb>? arrived = null)
    {
        using var downloads = LockedDebDownloads.Plan(set, lockFile, proof, selected, cacheRoot, parallel);
        var all = downloads.Downloads;
        IReadOnlyList<FetchedDeb> fetched = [];
        var total = downloads.TotalBytes;
        if (HardenImage.Cli.CliConsole.IsCiLog)
        {
            // CI log: a line every few seconds with counts and bytes, not a bar redrawn in place.
            var lines = new HardenImage.Cli.ProgressLines("fetch");
            var bytes = new Dictionary<string, long>(StringComparer.Ordinal);
            var finished = new HashSet<string>(StringComparer.Ordinal);
            string Line() => $"{finished.Count}/{all.Count} packages, {HardenImage.Cli.ProgressLines.Megabytes(bytes.Values.Sum())} of {HardenImage.Cli.ProgressLines.Megabytes(total)} MB";
            fetched = await downloads.FetchAsync(new SynchronousProgress<FetchProgress>(p =>
            {
                lock (bytes)
                {
                    bytes[p.Package] = p.Completed ? p.TotalBytes : p.BytesSoFar;
                    if (p.Completed) finished.Add(p.Package);
                    lines.Report(Line);
                }
            }), ct, arrived);
            lock (bytes) lines.Report(Line, force: true);
        }
        else await AnsiConsole.Progress().AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn())
            .StartAsync(async ctx =>
            {
                var bar = ctx.AddTask($"{all.Count} packages", maxValue: Math.Max(1, total));
                var done = new Dictionary<string, long>(StringComparer.Ordinal);
                var progress = new SynchronousProgress<FetchProgress>(p =>
                {
                    lock (done)
                    {
                        done[p.Package] = p.BytesSoFar;
                        bar.Value = done.Values.Sum();
                    }
                });
                fetched = await downloads.FetchAsync(progress, ct, arrived);
                bar.Value = bar.MaxValue;
            });
        var bySha = fetched.ToDictionary(f => f.Deb.Sha256, f => f, StringComparer.Ordinal);
        if (printTable)
        {
            var t = new Table().AddColumns("image", "arch", "packages", "MB", "cache hits");
            foreach (var (image, arch, packages) in downloads.Rows)
                t.AddRow(image, arch, packages.Count.ToString(), (packages.Sum(p => p.Size) / 1e6).ToString("0.0"),
                    $"{packages.Count(p => bySha[p.Sha256].CacheHit)}/{packages.Count}");
            AnsiConsole.Write(t);
        }
        return fetched.ToDictionary(f => f.Deb.Sha256, f => f.Path, StringComparer.Ordinal);
    }
}

/// <summary>IProgress that reports on the caller's thread (Progress&lt;T&gt; posts to the thread pool and can lag).</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

public sealed class BuildSettings : ImageSetSettings
{
    [CommandOption("--output <FORMAT>")]
    [Description(OptionText.Output)]
    public HardenImage.Cli.OutputFormat Output { get; init; }

    [CommandOption("--platform <PLATFORM>")]
    [Description(OptionText.Platforms)]
    public string[] Platforms { get; init; } = [];

    [CommandOption("--out <DIR>")]
    [Description("Artifacts directory: the layout goes to <out>/oci, the manifest to <out>/build.json. Default: artifacts")]
    public string Out { get; init; } = EnvironmentSetting.Get("HARDEN_ARTIFACTS") ?? "artifacts";

    [CommandOption("--zstd")]
    [Description("Compress layers with zstd instead of gzip")]
    public bool Zstd { get; init; }

    [CommandOption("--force")]
    [Description("Rebuild even when nothing changed")]
    public bool Force { get; init; }

    [CommandOption("--source-date-epoch <SECONDS>")]
    [Description("Timestamp for every file and config (default: $SOURCE_DATE_EPOCH, else per image the newest Release Date of the suites its locked packages come from)")]
    public long? Epoch { get; init; }

    [CommandOption("--report")]
    [Description("Print every hardening action, not just the summary")]
    public bool Report { get; init; }

    [CommandOption("--allow-rollback")]
    [Description(OptionText.AllowRollback)]
    public bool AllowRollback { get; init; }

    public override ValidationResult Validate()
    {
        if (Epoch is < 0 or > SourceDateEpoch.Max)
            return ValidationResult.Error($"--source-date-epoch {Epoch}: expected seconds since 1970 between 0 and {SourceDateEpoch.Max}");
        CliValues.Architectures(Platforms); // a bad --platform is refused before any work
        return ValidationResult.Success();
    }
}

/// <summary><c>harden build</c>: assemble hardened, reproducible OCI images from the lock, without a daemon.</summary>
public sealed class BuildCommand : AsyncCommand<BuildSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, BuildSettings settings, CancellationToken cancellationToken)
    {
        HardenImage.Cli.CliOutput.Begin(settings.Output);
        ImageSet set;
        LockFile lockFile;
        using (Timings.Span("build: load the image set and the lock"))
        {
            set = ImageSet.Load(settings.ImagesDir);
            lockFile = LockFile.Load(settings.LockFilePath);
        }
        var selected = Selection.Buildable(set, settings.Images, out var skipped);
        foreach (var (name, why) in skipped) AnsiConsole.MarkupLineInterpolated($"[yellow]skipping {name}:[/] {why}");
        var options = new BuildOptions
        {
            ArtifactsDir = Path.GetFullPath(settings.Out),
            CacheRoot = settings.CacheRoot,
            Compression = settings.Zstd ? LayerCompression.Zstd : LayerCompression.Gzip,
            SourceDateEpoch = settings.Epoch,
            Images = selected,
            Architectures = CliValues.Architectures(settings.Platforms),
            Force = settings.Force,
            Revision = Git.Revision(set.Directory),
            SourceUrl = Git.RemoteUrl(set.Directory),
        };
        var builder = new ImageBuilder(set, lockFile, options);
        var started = System.Diagnostics.Stopwatch.StartNew();
        // Before anything uses an entry, even an "up to date" check: the lock must be proven by the signed indices.
        LockProof proof;
        using (Timings.Span("build: prove the lock against the signed indices"))
            proof = await ProofNotices.ProveAsync(set, lockFile, selected, settings.CacheRoot, false, settings.AllowRollback, cancellationToken);
        // Cheap check first: an unchanged build needs neither downloads nor unpacking.
        var outcome = builder.TryUpToDate();
        if (outcome == null)
        {
            Dictionary<string, string> paths;
            // Each .deb is unpacked as soon as it arrives, while the others download (only proven entries: the same
            // locator as the build's). A failed fetch stops them before it is reported.
            using var unpacking = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            try
            {
                using (Timings.Span("build: fetch the locked .debs (unpacking each as it lands)"))
                    paths = await DebDownloads.FetchAsync(set, lockFile, proof, selected, settings.CacheRoot, 6, printTable: false, cancellationToken,
                        arrived: deb => builder.StartUnpacking(deb.Deb.Sha256, p => proof.Locate(p, new Dictionary<string, string> { [deb.Deb.Sha256] = deb.Path }), unpacking.Token));
                using (var pyHttp = HardenImage.Python.PythonStage.CreateHttpClient())
                    await HardenImage.Python.PythonStage.FetchAsync(set, selected, settings.CacheRoot, pyHttp, ct: cancellationToken);
            }
            catch
            {
                await unpacking.CancelAsync();
                await builder.AbandonUnpackingAsync();
                throw;
            }
            if (HardenImage.Cli.CliConsole.IsCiLog)
            {
                var lines = new HardenImage.Cli.ProgressLines("build");
                var steps = 0;
                outcome = await builder.BuildAsync(p => proof.Locate(p, paths), new SynchronousProgress<string>(s => lines.Report(() => $"step {Interlocked.Increment(ref steps)}: {s}, {started.Elapsed.TotalSeconds:0} s")), cancellationToken);
            }
            else await AnsiConsole.Status().StartAsync("building", async ctx =>
            {
                var progress = new SynchronousProgress<string>(s => ctx.Status(Markup.Escape(s)));
                outcome = await builder.BuildAsync(p => proof.Locate(p, paths), progress, cancellationToken);
            });
        }
        // Forged or corrupt cache entries and layout blobs were refused and derived again: say so, they are evidence.
        foreach (var repair in outcome!.CacheRepairs) AnsiConsole.MarkupLineInterpolated($"[yellow]cache entry refused:[/] {repair}");
        BuildReportPrinter.Print(outcome!, settings.Report);
        AnsiConsole.MarkupLine((outcome!.UpToDate ? "[green]up to date[/] " : "[green]built[/] ")
            + Markup.Escape($"{builder.LayoutDir} in {started.Elapsed.TotalSeconds:0.0} s; manifest {builder.ManifestPath}"));
        HardenImage.Cli.CliOutput.Result(settings.Output, new
        {
            layout = builder.LayoutDir, manifest = builder.ManifestPath, upToDate = outcome.UpToDate,
            seconds = Math.Round(started.Elapsed.TotalSeconds, 1), images = outcome.Manifest.Images,
        });
        return 0;
    }
}

internal static class BuildReportPrinter
{
    public static void Print(BuildOutcome outcome, bool full)
    {
        var t = new Table().AddColumns("image", "arch", "digest", "packages", "files", "layer MB", "image MB (gzip)");
        foreach (var image in outcome.Manifest.Images)
            foreach (var a in image.Architectures)
            {
                var r = outcome.Report.FirstOrDefault(x => x.Image == image.Name && x.Architecture == a.Architecture);
                t.AddRow(image.Name, a.Architecture, a.Manifest[..19], a.Packages.ToString(), r?.Files.ToString() ?? "-",
                    (a.Layers[^1].Size / 1e6).ToString("0.00"), (a.CompressedSize / 1e6).ToString("0.00"));
            }
        AnsiConsole.Write(t);
        if (outcome.Report.Count == 0) return;
        // Each transform with the STRIDE letter(s) it answers (docs/threat-model.md).
        var threats = HardenImage.Build.Hardening.StandardTransforms.All().ToDictionary(t => t.Name, t => t.Threat);
        var h = new Table().Title("hardening").AddColumns("image", "arch", "transform (STRIDE)", "removed", "changed", "generated", "not run");
        foreach (var r in outcome.Report)
            foreach (var g in r.Hardening.GroupBy(a => a.Transform))
                h.AddRow(r.Image, r.Architecture, Markup.Escape($"{g.Key} ({threats.GetValueOrDefault(g.Key, "-")})"), Count(g, "removed"), Count(g, "changed"), Count(g, "generated"), Count(g, "not run"));
        AnsiConsole.Write(h);
        if (full)
        {
            foreach (var r in outcome.Report)
                foreach (var a in r.Hardening)
                    AnsiConsole.MarkupLineInterpolated($"[grey]{r.Image} {r.Architecture} {a.Transform} {a.Action} /{a.Path} {a.Detail}[/]");
            // What each package still contributes after hardening (uncompressed bytes in this image's own layer).
            foreach (var r in outcome.Report.Where(r => r.Architecture == "amd64"))
            {
                var b = new Table().Title($"{r.Image} (amd64): bytes per package that remain").AddColumns("package", "KB");
                foreach (var (owner, bytes) in r.BytesByPackage.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal))
                    b.AddRow(Markup.Escape(owner), (bytes / 1024.0).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture));
                AnsiConsole.Write(b);
            }
        }
        else
            foreach (var r in outcome.Report.Where(r => r.Architecture == "amd64"))
                foreach (var a in r.Hardening.Where(a => a.Action == "not run"))
                    AnsiConsole.MarkupLineInterpolated($"[grey]{r.Image}: maintainer scripts of {a.Path} not run ({a.Detail})[/]");
    }

    private static string Count(IEnumerable<HardeningAction> g, string action)
    {
        var n = g.Count(a => a.Action == action);
        return n == 0 ? "-" : n.ToString();
    }
}

public static class BuildCommandRegistration
{
    public static void AddBuildCommands(this IConfigurator config)
    {
        config.AddCommand<LockCommand>("lock").WithDescription("Resolve images/*.yaml against signed apt repositories into images/images.lock.json");
        config.AddCommand<FetchCommand>("fetch").WithDescription("Download the locked .debs into the verified, content-addressed cache");
        config.AddCommand<BuildCommand>("build").WithDescription("Build hardened, reproducible OCI images from the lock (no Docker needed)");
    }
}
