using System.ComponentModel;
using HardenImage.Signing;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

public sealed class KeygenSettings : CommandSettings
{
    [CommandOption("--output-dir <DIR>")]
    [Description("Directory for cosign.key and cosign.pub (default: current directory).")]
    public string OutputDir { get; init; } = ".";

    [CommandOption("--force")]
    [Description("Replace an existing cosign.key/cosign.pub.")]
    public bool Force { get; init; }
}

/// <summary>harden keygen: writes a cosign-format development key pair.</summary>
public sealed class KeygenCommand : Command<KeygenSettings>
{
    public override int Execute(CommandContext context, KeygenSettings settings, CancellationToken cancellationToken)
    {
        var password = KeyPasswordSource.FromEnvironmentOrTerminal()
            .GetPassword(Path.Combine(settings.OutputDir, KeyPairGenerator.PrivateKeyFileName), confirm: true);
        // scrypt (N=65536) takes a moment; say so instead of looking hung.
        var pair = AnsiConsole.Status().Start("Generating and encrypting the key (scrypt)...",
            _ => new KeyPairGenerator().WriteTo(settings.OutputDir, password, settings.Force));

        AnsiConsole.Write(new Panel(new Markup(
                "[yellow bold]A DEVELOPMENT signing key was generated.[/]\n"
                + $"Private key: [bold]{Markup.Escape(pair.PrivateKeyPath)}[/] (encrypted; keep it secret, never commit it)\n"
                + $"Public key:  [bold]{Markup.Escape(pair.PublicKeyPath)}[/] (give this to verifiers: cosign, Kyverno)\n"
                + "For releases use a key that never leaves a KMS: --key awskms:///alias/<name>."))
            .Header("harden keygen").BorderColor(Color.Yellow));
        return 0;
    }
}

public static class SigningCommandRegistration
{
    public static void AddSigningCommands(this IConfigurator config)
    {
        config.AddCommand<KeygenCommand>("keygen")
            .WithDescription("Generate a cosign-compatible ECDSA P-256 key pair (cosign.key encrypted, cosign.pub).");
    }
}
