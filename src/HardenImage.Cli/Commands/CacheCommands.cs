using System.ComponentModel;
using System.Globalization;
using HardenImage.Build;
using HardenImage.Cache;
using HardenImage.Common;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

/// <summary>Options of <c>harden cache</c> and <c>harden cache prune</c>.</summary>
public class CacheSettings : CommandSettings
{
    [CommandOption("--cache <DIR>")]
    [Description(OptionText.Cache)]
    public string? Cache { get; init; }

    [CommandOption("--unused-for <AGE>")]
    [Description("Remove entries not used for this long: " + PruneOptions.AgeForms + ". Default: 30d")]
    public string UnusedFor { get; init; } = PruneOptions.FormatAge(PruneOptions.DefaultUnusedFor);

    [CommandOption("--max-size <SIZE>")]
    [Description("Then remove the least recently used entries until the cache is no larger: " + PruneOptions.SizeForms)]
    public string? MaxSize { get; init; }

    [CommandOption("--output <FORMAT>")]
    [Description(OptionText.Output)]
    public OutputFormat Output { get; init; }

    [CommandOption("--json")]
    [Description("The same as --output json")]
    public bool Json { get; init; }

    public string CacheRoot => HardenPaths.CacheRoot(Cache);
    public OutputFormat Format => Json ? OutputFormat.Json : Output;
    public PruneOptions Options => new(PruneOptions.ParseAge(UnusedFor), MaxSize == null ? null : PruneOptions.ParseSize(MaxSize));

    public override ValidationResult Validate()
    {
        _ = Options; // a bad --unused-for or --max-size is one line naming it, before the cache is read
        return ValidationResult.Success();
    }
}

public sealed class CachePruneSettings : CacheSettings
{
    [CommandOption("--dry-run")]
    [Description("Say what would be removed; remove nothing")]
    public bool DryRun { get; init; }
}

/// <summary><c>harden cache</c> (<c>cache info</c>): per part, what the cache holds, when it was last used, and what prune would remove.</summary>
public sealed class CacheInfoCommand : Command<CacheSettings>
{
    public override int Execute(CommandContext context, CacheSettings settings, CancellationToken cancellationToken)
    {
        CliOutput.Begin(settings.Format);
        var plan = CachePruner.Plan(CacheInventory.Read(settings.CacheRoot), settings.Options, DateTimeOffset.UtcNow);
        var rows = CacheSummary.Of(plan);
        if (!plan.Inventory.Exists) AnsiConsole.MarkupLineInterpolated($"[grey]{CacheText.Name(settings.CacheRoot)} does not exist yet (an empty cache)[/]");
        var t = new Table().AddColumns("part", "entries", "bytes", "oldest use", "newest use", $"prune would remove ({CacheText.Rule(plan.Options)})", "holds");
        foreach (var r in rows)
            t.AddRow(Markup.Escape(r.Part), CacheText.Count(r.Entries), CacheText.Bytes(r.Bytes), CacheText.When(r.OldestLastUse), CacheText.When(r.NewestLastUse),
                r.PruneEntries == 0 ? "-" : $"{CacheText.Count(r.PruneEntries)} ({CacheText.Bytes(r.PruneBytes)})", Markup.Escape(CacheLayout.Describe(r.Part)));
        t.AddRow("[bold]total[/]", CacheText.Count(rows.Sum(r => r.Entries)), CacheText.Bytes(plan.TotalBytes), "", "",
            $"{CacheText.Count(plan.Removals.Count)} ({CacheText.Bytes(plan.FreedBytes)})", "");
        AnsiConsole.MarkupLineInterpolated($"cache {CacheText.Name(settings.CacheRoot)}");
        AnsiConsole.Write(t);
        CacheText.PrintLeft(plan.Inventory.Left);
        if (!plan.Inventory.IsCache)
            AnsiConsole.MarkupLineInterpolated($"[yellow]{CacheText.Name(settings.CacheRoot)} holds none of harden's cache directories: 'harden cache prune' refuses it[/]");
        CliOutput.Result(settings.Format, new
        {
            cache = settings.CacheRoot, exists = plan.Inventory.Exists, isCache = plan.Inventory.IsCache,
            unusedFor = PruneOptions.FormatAge(plan.Options.UnusedFor), maxSizeBytes = plan.Options.MaxBytes,
            totalBytes = plan.TotalBytes, pruneEntries = plan.Removals.Count, pruneBytes = plan.FreedBytes,
            parts = rows.Select(r => new
            {
                part = r.Part, oldFormat = r.OldFormat, entries = r.Entries, bytes = r.Bytes, oldestLastUse = r.OldestLastUse, newestLastUse = r.NewestLastUse,
                pruneEntries = r.PruneEntries, pruneBytes = r.PruneBytes,
            }),
            left = plan.Inventory.Left.Select(l => new { path = l.Path, why = l.Why }),
        });
        return 0;
    }
}

/// <summary><c>harden cache prune</c>: removes entries unused for a while, then the least recently used over a size, and older formats whole.</summary>
public sealed class CachePruneCommand : Command<CachePruneSettings>
{
    public override int Execute(CommandContext context, CachePruneSettings settings, CancellationToken cancellationToken)
    {
        CliOutput.Begin(settings.Format);
        var inventory = CacheInventory.Read(settings.CacheRoot);
        CachePruner.RefuseIfNotACache(inventory);
        var plan = CachePruner.Plan(inventory, settings.Options, DateTimeOffset.UtcNow);
        var result = settings.DryRun ? null : CachePruner.Execute(plan);
        var done = result?.Removed ?? plan.Removals;
        var freed = result?.FreedBytes ?? plan.FreedBytes;
        var t = new Table().AddColumns("part", settings.DryRun ? "would remove" : "removed", settings.DryRun ? "would free" : "freed", "why");
        foreach (var g in done.GroupBy(r => r.Entry.Part).OrderBy(g => g.Key, StringComparer.Ordinal))
            t.AddRow(Markup.Escape(g.Key), CacheText.Count(g.Count()), CacheText.Bytes(g.Sum(r => r.FreedBytes)), Markup.Escape(CacheText.Why(g.Key, g.ToList(), plan.Options)));
        AnsiConsole.MarkupLineInterpolated($"cache {CacheText.Name(settings.CacheRoot)}");
        if (done.Count > 0) AnsiConsole.Write(t);
        foreach (var old in done.Where(r => r.Entry.Rule == EntryRule.OldFormat).Select(r => r.Entry.Part).Distinct().Order(StringComparer.Ordinal))
            AnsiConsole.MarkupLineInterpolated($"{old}/: an older cache format this version never reads, {(settings.DryRun ? "would be removed" : "removed")} whole whatever its age");
        foreach (var k in result?.Kept ?? []) AnsiConsole.MarkupLineInterpolated($"[grey]kept {CacheText.Name(k.Path)}: {k.Why}[/]");
        CacheText.PrintLeft(inventory.Left);
        foreach (var f in result?.Failures ?? []) AnsiConsole.MarkupLineInterpolated($"[red]could not remove[/] {CacheText.Name(f.Path)}: {f.Error}");
        var remaining = plan.TotalBytes - freed;
        if (settings.DryRun)
            AnsiConsole.MarkupLineInterpolated($"[green]would free {CacheText.Bytes(freed)}[/] ({CacheText.Count(done.Count)} entries, {CacheText.Rule(plan.Options)}); nothing was removed (--dry-run); the cache holds {CacheText.Bytes(plan.TotalBytes)}");
        else
            AnsiConsole.MarkupLineInterpolated($"[green]freed {CacheText.Bytes(freed)}[/] ({CacheText.Count(done.Count)} entries, {CacheText.Rule(plan.Options)}); the cache holds {CacheText.Bytes(remaining)}");
        var failures = result?.Failures ?? [];
        CliOutput.Result(settings.Format, new
        {
            cache = settings.CacheRoot, dryRun = settings.DryRun,
            unusedFor = PruneOptions.FormatAge(plan.Options.UnusedFor), maxSizeBytes = plan.Options.MaxBytes,
            removed = done.GroupBy(r => r.Entry.Part).OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new { part = g.Key, oldFormat = CacheLayout.OldParts.Contains(g.Key), entries = g.Count(), bytes = g.Sum(r => r.FreedBytes) }),
            freedBytes = freed, remainingBytes = remaining,
            failures = failures.Select(f => new { path = f.Path, error = f.Error }),
            kept = (result?.Kept ?? []).Select(k => new { path = k.Path, why = k.Why }),
            left = inventory.Left.Select(l => new { path = l.Path, why = l.Why }),
        });
        if (failures.Count > 0)
            throw new HardenException($"{failures.Count} file{(failures.Count == 1 ? "" : "s")} of {settings.CacheRoot} could not be removed (each named above); the rest was pruned. " +
                                      "Run prune as the cache's owner, or fix the permissions.", ExitCodes.GateFailed);
        return 0;
    }
}

/// <summary>How the cache commands spell sizes, counts, times and reasons.</summary>
internal static class CacheText
{
    public static string Bytes(long bytes) => bytes switch
    {
        >= 1_000_000_000 => (bytes / 1e9).ToString("0.0", CultureInfo.InvariantCulture) + " GB",
        >= 1_000_000 => (bytes / 1e6).ToString("0.0", CultureInfo.InvariantCulture) + " MB",
        >= 1_000 => (bytes / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + " kB",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + " B",
    };

    public static string Count(int n) => n.ToString("N0", CultureInfo.InvariantCulture);

    public static string When(DateTimeOffset? t) => t is { } v ? v.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture) : "-";

    public static string Rule(PruneOptions o) =>
        (o.UnusedFor == TimeSpan.Zero ? "everything" : $"unused for {PruneOptions.FormatAge(o.UnusedFor)}")
        + (o.MaxBytes is { } max ? $", then down to {Bytes(max)}" : "");

    public static string Why(string part, IReadOnlyList<PlannedRemoval> removals, PruneOptions options) =>
        CacheLayout.OldParts.Contains(part) ? "older format, never read by this version"
        : part == CacheInventory.TempFiles ? "left by killed writers (older than a minute, not held)"
        : string.Join("; ", removals.Select(r => r.Reason.StartsWith("least recently used", StringComparison.Ordinal) ? "least recently used over --max-size"
            : options.UnusedFor == TimeSpan.Zero ? "--unused-for 0" : $"unused for {PruneOptions.FormatAge(options.UnusedFor)} or more").Distinct());

    /// <summary>
    /// A path below the cache as a line may show it: whoever writes the cache names its files, and a name with a line
    /// break, an escape sequence or a bidi override would forge lines ("error: …") or colours in a CI log. JSON keeps
    /// the name as it is (its strings escape control characters).
    /// </summary>
    public static string Name(string path) => UntrustedText.Escape(path, 400);

    /// <summary>What prune leaves where it is: one line each, the first 20 (JSON has them all).</summary>
    public static void PrintLeft(IReadOnlyList<LeftEntry> left)
    {
        foreach (var l in left.Take(20)) AnsiConsole.MarkupLineInterpolated($"[yellow]left[/] {Name(l.Path)}: {l.Why}");
        if (left.Count > 20) AnsiConsole.MarkupLineInterpolated($"[yellow]left[/] {left.Count - 20} more (--output json lists them all)");
    }
}

public static class CacheCommandsRegistration
{
    /// <summary>Registers <c>cache</c> (<c>cache info</c>) and <c>cache prune</c>.</summary>
    public static void AddCacheCommands(this IConfigurator config)
    {
        config.AddBranch("cache", cache =>
        {
            cache.SetDescription("What the cache (HARDEN_CACHE) holds, and pruning it: entries unused for 30 days, older formats, or down to a size");
            cache.SetDefaultCommand<CacheInfoCommand>();
            cache.AddCommand<CacheInfoCommand>("info").WithDescription("Per part: entries, bytes, oldest and newest use, and what prune would remove (the default of 'harden cache')")
                .WithExample("cache")
                .WithExample("cache", "info", "--unused-for", "7d", "--max-size", "10GB", "--output", "json");
            cache.AddCommand<CachePruneCommand>("prune").WithDescription("Remove entries not used for --unused-for (30d), then the least recently used over --max-size; older formats whole. Exit 1 when a file could not be removed")
                .WithExample("cache", "prune")
                .WithExample("cache", "prune", "--unused-for", "7d", "--max-size", "10GB")
                .WithExample("cache", "prune", "--dry-run", "--json");
        });
    }
}
