using HardenImage.Common;
using Spectre.Console;

namespace HardenImage.Signing;

/// <summary>
/// Finds the password of an encrypted key: HARDEN_KEY_PASSWORD, then COSIGN_PASSWORD (so cosign users' CI keeps
/// working), else a hidden prompt when a person is at a terminal, else a clear error. The password is never
/// echoed or logged (threat: Information disclosure).
/// </summary>
public sealed class KeyPasswordSource
{
    public const string HardenVariable = "HARDEN_KEY_PASSWORD";
    public const string CosignVariable = "COSIGN_PASSWORD";

    private readonly Func<string, string?> _environment;
    private readonly IAnsiConsole? _console;
    private readonly bool _interactive;

    /// <param name="environment">Reads an environment variable (tests pass a dictionary).</param>
    /// <param name="console">Where to prompt; null means never prompt.</param>
    /// <param name="interactive">Whether a person can answer; default: stdin is a terminal and the console is interactive.</param>
    public KeyPasswordSource(Func<string, string?>? environment = null, IAnsiConsole? console = null, bool? interactive = null)
    {
        _environment = environment ?? Environment.GetEnvironmentVariable;
        _console = console;
        _interactive = interactive ?? (console != null && !Console.IsInputRedirected && console.Profile.Capabilities.Interactive);
    }

    /// <summary>A source that reads the process environment and prompts on the real terminal when there is one.</summary>
    public static KeyPasswordSource FromEnvironmentOrTerminal() => new(null, AnsiConsole.Console);

    /// <summary>Returns the password for <paramref name="keyDescription"/>; with <paramref name="confirm"/> a prompt asks twice.</summary>
    public string GetPassword(string keyDescription, bool confirm = false)
    {
        var fromEnv = _environment(HardenVariable) ?? _environment(CosignVariable);
        if (fromEnv != null) return fromEnv;
        if (_console == null || !_interactive)
            throw new HardenException($"{keyDescription}: a password is needed and no terminal is available. "
                + $"Set {HardenVariable} (or {CosignVariable}) in the environment; an empty value means no password.");

        var password = _console.Prompt(new TextPrompt<string>($"Password for {Markup.Escape(keyDescription)}:").Secret().AllowEmpty());
        if (confirm)
        {
            var again = _console.Prompt(new TextPrompt<string>("Enter the password again:").Secret().AllowEmpty());
            if (!string.Equals(password, again, StringComparison.Ordinal))
                throw new HardenException($"{keyDescription}: the two passwords differ; nothing was written.");
        }
        return password;
    }
}
