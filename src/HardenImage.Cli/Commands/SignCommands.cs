using System.ComponentModel;
using HardenImage.Aws;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.FanOut;
using HardenImage.Common;
using HardenImage.Registry;
using HardenImage.Signing;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

/// <summary>How sign and verify reach the registry and AWS (ECR credentials, KMS keys).</summary>
public abstract class RegistryAccessSettings : CommandSettings
{
    [CommandOption("--insecure")]
    [Description("Plain HTTP to the registry (loopback test registries)")]
    public bool Insecure { get; init; }

    [CommandOption("--aws-region <REGION>")]
    [Description("AWS region for awskms:// keys named by id or alias (default AWS_REGION); ECR's region comes from its host")]
    public string? AwsRegion { get; init; }

    [CommandOption("--aws-profile <NAME>")]
    [Description("AWS profile for ECR and KMS (default AWS_PROFILE, then the SDK chain)")]
    public string? AwsProfile { get; init; }

    [CommandOption("--aws-endpoint <URL>")]
    [Description("Send AWS API calls (ECR, KMS) here instead of the public endpoints (VPC endpoints, tests)")]
    public string? AwsEndpoint { get; init; }

    internal AwsAccess AwsOptions() => AwsAccess.From(AwsRegion, AwsProfile, AwsEndpoint);
}

/// <summary>What <c>harden sign</c> and <c>harden model sign</c> share: the registry access and the signing key.</summary>
public abstract class SigningKeySettings : RegistryAccessSettings
{
    [CommandOption("--key <REF>")]
    [Description("Signing key: a cosign key file, a PEM private key or awskms:///<key>. Default: HARDEN_SIGNING_KEY, else ARTIFACTS/keys/cosign.key (a development key is generated there if missing)")]
    public string? Key { get; init; }
}

public sealed class SignSettings : SigningKeySettings
{
    [CommandOption("--artifacts <DIR>")]
    [Description("Artifacts directory holding pushed.json, sbom/ and scan/. Default: artifacts")]
    public string Artifacts { get; init; } = "artifacts";

    [CommandOption("--images <DIR>")]
    [Description("Image-set directory (for the lock's provenance). Default: images")]
    public string ImagesDir { get; init; } = "images";

    [CommandOption("--image <NAME>")]
    [Description("Only these images; repeatable")]
    public string[] Images { get; init; } = [];
}

/// <summary>
/// <c>harden sign</c>: a cosign simple-signing signature for every pushed index and manifest, and DSSE
/// attestations (CycloneDX SBOM, SLSA provenance, vulnerability scan) for every manifest (threats S, T, R);
/// thin over <see cref="ImageSetSigner"/>.
/// </summary>
public sealed class SignCommand : AsyncCommand<SignSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, SignSettings settings, CancellationToken ct)
    {
        using var clients = new RegistryClients(settings.AwsOptions());
        var pushed = ImageSetSigner.LoadPushed(settings.Artifacts);
        var key = DevelopmentKey.Choose(settings.Key, settings.Artifacts);
        var signer = await SigningKeys.OpenAsync(key, AwsKmsOptions.For(clients.Aws), ct);
        using var disposeSigner = signer as IDisposable;
        var signed = await new ImageSetSigner(signer, clients).SignAsync(pushed, new ImageSetSignRequest
        {
            ArtifactsDir = settings.Artifacts,
            ImagesDir = settings.ImagesDir,
            Images = settings.Images,
            ToolVersion = ToolVersion,
            Insecure = settings.Insecure,
        }, ct);
        var table = new Table().AddColumns("image", "digest", "signature", "attestations");
        foreach (var d in signed)
        {
            if (d.IsIndex) table.AddRow(d.Image, d.Digest[..19], "index", Markup.Escape(string.Join(", ", d.Attestations)));
            else table.AddRow($"{d.Image} ({d.Platform})", d.Digest[..19], "manifest", string.Join(", ", d.Attestations));
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"[green]signed[/] with {key.Display} into {pushed.Registry}");
        return 0;
    }

    /// <summary>The version the vuln predicates name as the scanner's.</summary>
    internal static string ToolVersion => typeof(SignCommand).Assembly.GetName().Version?.ToString() ?? "0";
}

/// <summary>The development key the default pipeline signs with: generated on first use, and said loudly.</summary>
internal static class DevelopmentKey
{
    /// <summary><see cref="SigningKeys.Choose"/>, with the panel when it generated the development key.</summary>
    public static SigningKeyChoice Choose(string? option, string artifactsDir)
    {
        var key = SigningKeys.Choose(option, artifactsDir);
        if (key.Generated is { } pair)
            AnsiConsole.Write(new Panel(new Markup(
                    $"[yellow bold]DEVELOPMENT SIGNING KEY GENERATED[/]\n{Markup.Escape(pair.PrivateKeyPath)}\n{Markup.Escape(pair.PublicKeyPath)}\n" +
                    (key.GeneratedWithEmptyPassword ? "It has an EMPTY password. " : "") +
                    "Images signed with it prove nothing outside this machine: sign releases with your own key (--key, awskms://)."))
                .Header("harden sign").BorderColor(Color.Yellow));
        return key;
    }
}

public sealed class VerifySettings : RegistryAccessSettings
{
    [CommandArgument(0, "<REF>")]
    [Description("Image to verify: HOST/REPO:TAG, HOST/REPO@sha256:..., or oci:DIR/REPO:TAG (an OCI layout registry)")]
    public string Reference { get; init; } = "";

    [CommandOption("--key <REF>")]
    [Description("Public key: cosign.pub (PEM), a private key file, or awskms:///<key>. Default: artifacts/keys/cosign.pub")]
    public string Key { get; init; } = "artifacts/keys/cosign.pub";

    [CommandOption("--require <LIST>")]
    [Description("Attestations the referenced digest itself must carry, comma separated: sbom, provenance, vuln, vex (an index is not descended into, as cosign, Kyverno and policy-controller do not)")]
    public string Require { get; init; } = "";

    [CommandOption("--output <FORMAT>")]
    [Description(OptionText.Output)]
    public HardenImage.Cli.OutputFormat Output { get; init; }

    [CommandOption("--no-critical")]
    [Description("Fail when the vulnerability attestation lists a critical finding")]
    public bool NoCritical { get; init; }
}

/// <summary>
/// <c>harden verify</c>: checks the signature, digest binding and required attestations of exactly the digest the
/// reference resolves to, as cosign, Kyverno and policy-controller do for a pod's image.
/// </summary>
public sealed class VerifyCommand : AsyncCommand<VerifySettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, VerifySettings settings, CancellationToken ct)
    {
        HardenImage.Cli.CliOutput.Begin(settings.Output);
        using var clients = new RegistryClients(settings.AwsOptions());
        var verified = await new ReferenceVerifier(clients).VerifyAsync(settings.Reference, settings.Require, settings.NoCritical, settings.Key, settings.Insecure, ct);
        var (root, report) = verified;
        var label = verified.Label;
        var table = new Table().AddColumns("subject", "digest", "signatures", "attestations", "result");
        table.AddRow(label, root.Digest[..19],
            $"{report.Signatures.Checks.Count(c => c.Valid)} of {report.Signatures.Checks.Count} valid",
            Markup.Escape(string.Join(", ", verified.AttestationNames
                .GroupBy(n => n).OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => g.Count() == 1 ? g.Key : $"{g.Key} ×{g.Count()}"))),
            report.Passed ? "[green]ok[/]" : "[red]failed[/]");
        AnsiConsole.Write(table);
        // Reasons below the table, one a line, so they are never wrapped inside a cell.
        foreach (var reason in report.Failures) AnsiConsole.MarkupLineInterpolated($"[red]✗[/] {label} {root.Digest[..19]}: {reason}");
        HardenImage.Cli.CliOutput.Result(settings.Output, new
        {
            reference = settings.Reference, digest = root.Digest, passed = report.Passed,
            // One subject: exactly the digest the reference resolves to (an index is not descended into).
            subjects = new[]
            {
                new
                {
                    subject = label, digest = root.Digest, passed = report.Passed, failures = report.Failures,
                    signaturesValid = report.Signatures.Checks.Count(c => c.Valid), signatures = report.Signatures.Checks.Count,
                    attestations = verified.AttestationNames.Distinct().Order(StringComparer.Ordinal),
                },
            },
        });
        if (!report.Passed)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]verification failed[/] for {settings.Reference}");
            return 1;
        }
        AnsiConsole.MarkupLineInterpolated($"[green]verified[/] {settings.Reference} ({root.Digest})");
        return 0;
    }
}

public static class SignCommandRegistration
{
    public static void AddSignVerifyCommands(this IConfigurator config)
    {
        config.AddCommand<SignCommand>("sign").WithDescription("Sign pushed images and attach SBOM, provenance and scan attestations (cosign formats)");
        config.AddCommand<VerifyCommand>("verify").WithDescription("Verify an image's signatures and required attestations against a public key");
    }
}
