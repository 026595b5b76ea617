using System.Net.Http;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text.Json;
using System.Text.RegularExpressions;
using HardenImage.Common;
using Spectre.Console.Cli;

namespace HardenImage.Cli;

/// <summary>The documented exit codes (docs/cli.md). Scripts branch on these, so they never change meaning.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>A gate said no: vulnerability policy, lock --check, verify, smoke.</summary>
    public const int GateFailed = 1;
    /// <summary>Bad input: unknown command/option, bad value, malformed file, missing prerequisite.</summary>
    public const int BadInput = 2;
    /// <summary>A remote (registry, mirror, Docker engine, AWS) could not be reached or did not answer in time.</summary>
    public const int Unreachable = 3;
    /// <summary>A bug: an exception nobody anticipated. One line plus the file holding the full trace.</summary>
    public const int InternalError = 70;
    /// <summary>Interrupted (Ctrl-C, SIGTERM).</summary>
    public const int Interrupted = 130;
}

/// <summary>What the user sees for a failure: one line and an exit code; <see cref="IsBug"/> also writes the trace.</summary>
public sealed record CliError(string Message, int ExitCode, bool IsBug = false);

/// <summary>
/// Turns any exception into one actionable line. Our own <see cref="HardenException"/> already says what, where and
/// how to fix; the rest are classified by kind (network, TLS, file system, parse) so that no stack trace and no .NET
/// type name reaches the user for anything but a genuine bug.
/// </summary>
public static partial class CliErrors
{
    public static CliError Describe(Exception e, IReadOnlyList<string> args, IReadOnlyList<CatalogCommand> catalog)
    {
        e = Unwrap(e);
        switch (e)
        {
            case HardenException h:
                return new CliError(h.Message, h.ExitCode);
            case CommandAppException c:
                return new CliError(DescribeParse(c, args, catalog), ExitCodes.BadInput);
            case OperationCanceledException:
                return new CliError("interrupted; nothing half-written was kept (files are written to a temp name, then renamed)", ExitCodes.Interrupted);
            case HttpRequestException http:
                return DescribeNetwork(http);
            case YamlDotNet.Core.YamlException y:
                return new CliError($"YAML syntax error at line {y.Start.Line}, column {y.Start.Column}: {Inner(y)} (in the YAML file named on the command line)", ExitCodes.BadInput);
            case InvalidOperationException when e.Source == "YamlDotNet":
                return new CliError("YAML syntax error (an unclosed [ or { ?) in a YAML file named on the command line; check its brackets and indentation", ExitCodes.BadInput);
            case JsonException j:
                return new CliError($"malformed JSON{(j.Path != null ? $" at {j.Path}" : "")}{(j.LineNumber != null ? $", line {j.LineNumber + 1}" : "")}: {FirstSentence(j.Message)}", ExitCodes.BadInput);
            case UnauthorizedAccessException u:
                return new CliError($"permission denied: {u.Message} Run as a user that may write there, or choose another directory (--out, --artifacts, --cache).", ExitCodes.BadInput);
            case FileNotFoundException or DirectoryNotFoundException:
                return new CliError($"{e.Message} Check the path (relative paths are from {Environment.CurrentDirectory}).", ExitCodes.BadInput);
            case IOException io when IsDiskFull(io):
                return new CliError($"no space left on the device: {io.Message} Free space (or set HARDEN_CACHE / --out elsewhere) and run again; the previous artifacts were not replaced.", ExitCodes.BadInput);
            case IOException io:
                return new CliError($"I/O error: {io.Message}", ExitCodes.BadInput);
            default:
                return new CliError($"internal error (a bug in harden): {e.GetType().Name}: {FirstSentence(e.Message)}", ExitCodes.InternalError, IsBug: true);
        }
    }

    private static Exception Unwrap(Exception e)
    {
        while (true)
        {
            if (e is AggregateException a)
            {
                // Parallel work may fail in several places at once; a harden error among them is the one to say.
                var inner = a.Flatten().InnerExceptions;
                // Ctrl-C first: a cancelled run says "interrupted" (exit 130) even when some worker failed on the way out.
                var next = inner.FirstOrDefault(i => i is OperationCanceledException) ?? inner.FirstOrDefault(i => i is HardenException)
                           ?? (inner.Count == 1 ? inner[0] : null);
                if (next == null) return e;
                e = next;
            }
            else if (e is System.Reflection.TargetInvocationException { InnerException: { } t }) e = t;
            else if (e is TaskCanceledException { InnerException: TimeoutException to }) return new HardenException($"timed out: {to.Message}", ExitCodes.Unreachable);
            else return e;
        }
    }

    private static CliError DescribeNetwork(HttpRequestException e)
    {
        var where = e.InnerException is SocketException s ? $" ({s.SocketErrorCode}: {s.Message})" : "";
        if (e.InnerException is AuthenticationException || e.HttpRequestError == HttpRequestError.SecureConnectionError)
            return new CliError($"TLS handshake failed{where}: {e.Message} If the server speaks plain HTTP, pass --insecure (loopback registries use HTTP without it); otherwise check its certificate.", ExitCodes.Unreachable);
        return new CliError($"cannot reach the server: {e.Message}{where}. Check the host and port, that the service is running, and the network.", ExitCodes.Unreachable);
    }

    private static string DescribeParse(CommandAppException e, IReadOnlyList<string> args, IReadOnlyList<CatalogCommand> catalog)
    {
        var command = CommandCatalog.Find(catalog, args);
        var help = command != null ? $"see 'harden {command.Path} --help'" : "see 'harden --help'";
        var message = e.Message.TrimEnd('.');
        if (UnknownOption().Match(message) is { Success: true } uo)
        {
            var name = uo.Groups[1].Value;
            var typed = args.FirstOrDefault(a => a.TrimStart('-').Split('=')[0] == name) ?? (name.Length == 1 ? "-" + name : "--" + name);
            typed = typed.Split('=')[0];
            var options = command?.Options.SelectMany(o => o.Names) ?? catalog.SelectMany(c => c.Options).SelectMany(o => o.Names).Distinct();
            return $"unknown option {typed}{(command != null ? $" for 'harden {command.Path}'" : "")}{NameSuggestions.DidYouMean(typed, options)}; {help}";
        }
        if (UnknownCommand().Match(message) is { Success: true } uc)
        {
            var name = uc.Groups[1].Value;
            // Suggest among the siblings: 'db updat' → the commands under 'db'.
            var words = args.TakeWhile(a => !a.StartsWith('-')).ToList();
            var prefix = string.Join(' ', words.TakeWhile(w => w != name));
            var names = catalog.Where(c => prefix.Length == 0 || c.Path.StartsWith(prefix + " ", StringComparison.Ordinal))
                .Select(c => c.Path[(prefix.Length == 0 ? 0 : prefix.Length + 1)..].Split(' ')[0]).Distinct();
            return $"unknown command '{name}'{NameSuggestions.DidYouMean(name, names)}; see 'harden --help'";
        }
        if (ConvertFailed().Match(message) is { Success: true } cf)
        {
            var value = cf.Groups[1].Value;
            var (option, type) = OptionForValue(args, value, command);
            return $"{option ?? "a value"} '{value}': expected {Expected(type)}; {help}";
        }
        if (UnmatchedArgument().Match(message) is { Success: true } ua)
            return $"unexpected argument '{ua.Groups[1].Value}' (quote a value that contains spaces); {help}";
        // Whatever else Spectre says, it must not leak generic .NET type names (Nullable`1, Int32, ...).
        return $"{DotNetTypeName().Replace(message, m => Expected(null))}; {help}";
    }

    /// <summary>The option a value was given to: "--opt value" or "--opt=value".</summary>
    private static (string? Option, Type? Type) OptionForValue(IReadOnlyList<string> args, string value, CatalogCommand? command)
    {
        string? option = null;
        for (var i = 0; i < args.Count; i++)
        {
            if (args[i].StartsWith('-') && args[i].Contains('=') && args[i][(args[i].IndexOf('=') + 1)..] == value) { option = args[i][..args[i].IndexOf('=')]; break; }
            if (args[i] == value && i > 0 && args[i - 1].StartsWith('-')) { option = args[i - 1]; break; }
        }
        var type = option != null ? command?.Options.FirstOrDefault(o => o.Names.Contains(option))?.ValueType : null;
        return (option, type);
    }

    private static string Expected(Type? type)
    {
        var t = type == null ? null : Nullable.GetUnderlyingType(type) ?? type;
        if (t != null && t.IsArray) t = t.GetElementType();
        return t switch
        {
            null => "a valid value",
            _ when t == typeof(int) || t == typeof(long) => "a whole number",
            _ when t == typeof(double) || t == typeof(decimal) => "a number",
            _ when t == typeof(bool) => "true or false",
            _ when t.IsEnum => "one of " + string.Join(", ", Enum.GetNames(t).Select(n => n.ToLowerInvariant())),
            _ => "a valid value",
        };
    }

    private static bool IsDiskFull(IOException e) => (e.HResult & 0xFFFF) == 28 || e.Message.Contains("No space left", StringComparison.Ordinal);

    private static string Inner(Exception e) => e.InnerException != null ? e.InnerException.Message : e.Message;

    private static string FirstSentence(string s)
    {
        var line = s.Split('\n')[0].Trim();
        return line.Length > 300 ? line[..300] + "…" : line;
    }

    [GeneratedRegex(@"^Unknown option '([^']+)'")]
    private static partial Regex UnknownOption();

    [GeneratedRegex(@"^Unknown command '([^']+)'")]
    private static partial Regex UnknownCommand();

    [GeneratedRegex(@"^Could not match '(.*)' with an argument")]
    private static partial Regex UnmatchedArgument();

    [GeneratedRegex(@"^Failed to convert '(.*)' to ")]
    private static partial Regex ConvertFailed();

    [GeneratedRegex(@"\b(?:System\.)?(?:Nullable`1|Int32|Int64|Boolean|String\[\]|Double|[A-Z][A-Za-z]+`\d)\b")]
    private static partial Regex DotNetTypeName();
}
