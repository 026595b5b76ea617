using System.Text;
using HardenImage.Common;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli;

/// <summary>
/// Runs the command app: strict parsing, a console fit for CI logs, and the last-chance handler that turns every
/// failure into one line on stderr and a documented exit code (<see cref="ExitCodes"/>). A genuine bug also gets
/// its full trace written to a file, whose path the line names; the terminal never sees a stack trace.
/// </summary>
public static class CliHost
{
    public static void Configure(IConfigurator config)
    {
        config.SetApplicationName("harden");
        config.SetApplicationVersion(Version);
        // Unknown options are errors: 'lock --chekc' must not silently rewrite the lock.
        config.UseStrictParsing();
        config.PropagateExceptions();
    }

    public static string Version =>
        typeof(CliHost).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion.Split('+')[0]
        ?? typeof(CliHost).Assembly.GetName().Version?.ToString() ?? "0";

    public static int Run(CommandApp app, string[] args, TextWriter? stderr = null, TimeProvider? clock = null)
    {
        stderr ??= Console.Error;
        clock ??= TimeProvider.System;
        CliConsole.Setup();
        var catalog = CommandCatalog.Read(app);
        try
        {
            return app.Run(args);
        }
        catch (Exception e)
        {
            return Report(e, args, catalog, stderr, clock);
        }
    }

    /// <summary>
    /// For the harden process only (Program.cs), not for in-process test hosts: an exception on a background thread
    /// also ends in one line, a trace file and exit 70 instead of the runtime's dump and exit 134.
    /// </summary>
    public static void InstallProcessHandler(CommandApp app, string[] args)
    {
        var catalog = CommandCatalog.Read(app);
        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
        {
            var code = Report(e.ExceptionObject as Exception ?? new InvalidOperationException(e.ExceptionObject?.ToString()), args, catalog, Console.Error, TimeProvider.System);
            Environment.Exit(code);
        };
    }

    /// <summary>Prints the one line for <paramref name="e"/> and returns its exit code.</summary>
    public static int Report(Exception e, IReadOnlyList<string> args, IReadOnlyList<CatalogCommand> catalog, TextWriter stderr, TimeProvider clock)
    {
        var error = CliErrors.Describe(e, args, catalog);
        var line = "error: " + OneLine(error.Message);
        if (error.IsBug)
        {
            var trace = CrashLog.TryWrite(e, args, clock);
            line += trace != null ? $" Full trace: {trace} (please attach it to a bug report)." : " (the trace could not be written to the temp directory)";
        }
        stderr.WriteLine(line);
        stderr.Flush();
        return error.ExitCode;
    }

    // Line breaks become spaces (a gate's list of failures reads as one line); any other control or bidi character left,
    // from a hostile input quoted in the message, is escaped so the line cannot hide or reorder text.
    private static string OneLine(string s) => UntrustedText.Escape(s.ReplaceLineEndings(" ").Trim(), int.MaxValue);
}

/// <summary>Where the full trace of an unexpected exception goes: $TMPDIR/harden-crash-&lt;UTC time&gt;-&lt;pid&gt;.txt.</summary>
public static class CrashLog
{
    public static string? TryWrite(Exception e, IReadOnlyList<string> args, TimeProvider clock)
    {
        try
        {
            var now = clock.GetUtcNow();
            var path = Path.Combine(Path.GetTempPath(), $"harden-crash-{now:yyyyMMdd'T'HHmmss'Z'}-{Environment.ProcessId}.txt");
            var text = new StringBuilder()
                .AppendLine($"harden {CliHost.Version} on .NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}")
                .AppendLine($"time: {now:O}")
                // Arguments can carry a --username but never a password (those come from the environment only).
                .AppendLine($"arguments: {string.Join(' ', args)}")
                .AppendLine()
                .AppendLine(e.ToString())
                .ToString();
            AtomicFile.WriteAllText(path, text);
            return path;
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
}

/// <summary>
/// The console for people and for CI logs. Without a terminal (redirected output): no ANSI unless FORCE_COLOR is
/// set, and no wrapping at 80 columns, so digests, CVE ids, paths and URLs stay whole on one line and greppable.
/// </summary>
public static class CliConsole
{
    /// <summary>True when stdout is not a terminal: progress is then printed as periodic lines, not redrawn bars.</summary>
    public static bool IsCiLog { get; private set; }

    public static void Setup()
    {
        IsCiLog = Console.IsOutputRedirected;
        var force = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("FORCE_COLOR"));
        var noColor = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"));
        if (!IsCiLog && !force) return; // a terminal: Spectre's own detection is right
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = force && !noColor ? AnsiSupport.Yes : AnsiSupport.No,
            ColorSystem = force && !noColor ? ColorSystemSupport.Standard : ColorSystemSupport.NoColors,
            Interactive = IsCiLog ? InteractionSupport.No : InteractionSupport.Detect,
            Out = new AnsiConsoleOutput(Console.Out),
        });
        if (IsCiLog)
            console.Profile.Width = int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), out var c) && c > 0 ? c : 4096;
        AnsiConsole.Console = console;
    }
}
