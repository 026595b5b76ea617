using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;

namespace HardenImage.Cli;

/// <summary>How a command reports its result: tables for people, or one JSON document on stdout for CI.</summary>
public enum OutputFormat { Text, Json }

/// <summary>
/// <c>--output json</c>: stdout carries exactly one JSON document (the command's result), so a CI step can pipe it
/// to jq; tables, progress and warnings move to stderr; errors stay one line on stderr.
/// </summary>
public static class CliOutput
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private static TextWriter? _stdout;

    /// <summary>Call first in a command that takes --output: with json, the human output goes to stderr from here on.</summary>
    public static void Begin(OutputFormat format)
    {
        if (format != OutputFormat.Json) return;
        _stdout = Console.Out;
        AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(Console.Error),
        });
        AnsiConsole.Profile.Width = 4096;
    }

    /// <summary>With --output json, writes <paramref name="result"/> as the one document on stdout.</summary>
    public static void Result(OutputFormat format, object result)
    {
        if (format != OutputFormat.Json) return;
        var w = _stdout ?? Console.Out;
        w.WriteLine(JsonSerializer.Serialize(result, result.GetType(), Json));
        w.Flush();
    }
}
