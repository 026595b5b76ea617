using System.Diagnostics;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Cli;

/// <summary>Every command answers --help (a broken description or option would throw at render time).</summary>
[Trait("Category", "Integration")]
public sealed class HelpTests
{
    public static TheoryData<string> Commands()
    {
        var data = new TheoryData<string>();
        foreach (var c in ListCommands()) data.Add(c);
        return data;
    }

    private static IEnumerable<string> ListCommands()
    {
        var (code, stdout, stderr) = Harden("--help");
        Assert.True(code == 0, stderr);
        var inCommands = false;
        foreach (var line in stdout.Split('\n'))
        {
            if (line.StartsWith("COMMANDS:", StringComparison.Ordinal)) { inCommands = true; continue; }
            if (!inCommands || line.Length < 5 || line[4] == ' ') continue;
            var name = line.Trim().Split(' ', 2)[0];
            if (name.Length > 0) yield return name;
        }
    }

    [Fact]
    public void TopLevelHelp_ListsEveryStage()
    {
        var names = ListCommands().ToList();
        foreach (var stage in new[] { "lock", "fetch", "build", "sbom", "scan", "push", "sign", "verify", "keygen" })
            Assert.Contains(stage, names);
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void EveryCommand_AnswersHelp(string command)
    {
        var (code, stdout, stderr) = Harden(command, "--help");
        Assert.True(code == 0, $"harden {command} --help exited {code}: {stderr}{stdout}");
        Assert.Contains("USAGE:", stdout);
    }

    internal static (int Code, string StdOut, string StdErr) Harden(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "harden.dll");
        return RequiredService.Run("dotnet", [dll, .. args], env: new Dictionary<string, string> { ["COLUMNS"] = "200", ["NO_COLOR"] = "1" });
    }
}
