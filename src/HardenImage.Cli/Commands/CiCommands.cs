using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

public static class CiCommandsRegistration
{
    public static void AddCiCommands(this IConfigurator config)
    {
    }
}
