using HardenImage.Cli;
using HardenImage.Cli.Commands;
using Spectre.Console.Cli;

var app = new CommandApp();
app.Configure(config =>
{
    CliHost.Configure(config);
    config.AddBuildCommands();
    config.AddSigningCommands();
    config.AddScanCommands();
    config.AddRegistryCommands();
    config.AddSignVerifyCommands();
    config.AddDeployCommands();
    config.AddSmokeCommands();
    config.AddTraceCommands();
    config.AddMergeCommands();
    config.AddExportCommands();
    config.AddModelCommands();
    config.AddPlanCommands();
    config.AddCiCommands();
    config.AddCacheCommands();
    config.AddCommand<VersionCommand>("version").WithDescription("Print the harden version.");
});
CliHost.InstallProcessHandler(app, args);
return CliHost.Run(app, args);
