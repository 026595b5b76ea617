using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

public sealed class VersionCommand : Command
{
    public override int Execute(CommandContext context, CancellationToken cancellationToken)
    {
        var v = typeof(VersionCommand).Assembly.GetName().Version;
        AnsiConsole.WriteLine($"harden {v}");
        return 0;
    }
}
