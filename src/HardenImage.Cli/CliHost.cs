using HardenImage.Common;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli;

/// <summary>Runs the command app and turns failures into one clear line and an exit code.</summary>
public static class CliHost
{
    public static int Run(CommandApp app, string[] args)
    {
        try
        {
            return app.Run(args);
        }
        catch (HardenException e)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {e.Message}");
            return e.ExitCode;
        }
        catch (CommandParseException e)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {e.Message} (see 'harden --help')");
            return 2;
        }
        catch (CommandRuntimeException e)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {e.Message} (see 'harden --help')");
            return 2;
        }
    }
}
