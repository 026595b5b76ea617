using System.ComponentModel;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.FanOut;
using HardenImage.Common;
using HardenImage.Oci;
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

    internal AwsCommandOptions AwsOptions() => AwsCommandOptions.From(AwsRegion, AwsProfile, AwsEndpoint);
}

public sealed class SignSettings : RegistryAccessSettings
{
    [CommandOption("--key <REF>")]
    [Description("Signing key: a cosign key file, a PEM private key or awskms:///<key>. Default: HARDEN_SIGNING_KEY, else ARTIFACTS/keys/cosign.key (a development key is generated there if missing)")]
    public string? Key { get; init; }

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
/// attestations (CycloneDX SBOM, SLSA provenance, vulnerability scan) for every manifest (threats S, T, R).
/// </summary>
public sealed class SignCommand : AsyncCommand<SignSettings>
{
    public const string DefaultKey = "artifacts/keys/cosign.key";

    private readonly RegistryServices? _services;

    /// <summary>What Spectre uses: registry and AWS services are built at execute time from the settings.</summary>
    public SignCommand() { }

    /// <summary>Tests: services with loopback transports.</summary>
    internal SignCommand(RegistryServices services) => _services = services;

    /// <summary>--key, else HARDEN_SIGNING_KEY, else the development key; an empty option or variable is unset.</summary>
    internal static string ResolveKeyReference(string? option, Func<string, string?>? environment, string developmentKey) =>
        EnvironmentSetting.Given(option) ?? EnvironmentSetting.Get("HARDEN_SIGNING_KEY", environment) ?? developmentKey;

    public override async Task<int> ExecuteAsync(CommandContext context, SignSettings settings, CancellationToken ct)
    {
        using var owned = _services == null ? new RegistryServices(settings.AwsOptions()) : null;
        var services = _services ?? owned!;
        var pushedPath = Path.Combine(settings.Artifacts, "pushed.json");
        var pushed = PushedFile.TryLoad(pushedPath)
                     ?? throw new HardenException($"{pushedPath}: missing. Sign what is pushed: run 'harden push' first.");
        // The development key lives with the artifacts it signs (artifacts/keys/cosign.key by default).
        var developmentKey = Path.Combine(settings.Artifacts, "keys", KeyPairGenerator.PrivateKeyFileName);
        var keyRef = ResolveKeyReference(settings.Key, null, developmentKey);
        if (EnvironmentSetting.Given(settings.Key) == null && keyRef == developmentKey) DevelopmentKey.EnsureExists(developmentKey);
        var passwords = DevelopmentKey.PasswordsFor(isDevelopmentKey: keyRef == developmentKey || keyRef == DefaultKey);
        var signer = await new SignerFactory(passwords, services.KmsOptions()).FromReferenceAsync(keyRef, ct);
        using var disposeSigner = signer as IDisposable;
        var target = RegistryTarget.Parse(pushed.Registry);
        var registry = services.CreateRegistry(target, settings.Insecure);
        var lockFile = File.Exists(Path.Combine(settings.ImagesDir, "images.lock.json")) ? LockFile.Load(Path.Combine(settings.ImagesDir, "images.lock.json")) : null;
        // Fan-out manifests carry their inputs digest (build.json, from the jobs' records): bound into the signature,
        // it makes the manifest a registry-cache hit for exactly those inputs (FanOut/RegistryCache).
        var inputsOf = (BuildManifest.TryLoad(Path.Combine(settings.Artifacts, "build.json"))?.Images ?? [])
            .SelectMany(i => i.Architectures).Where(a => a.Inputs != null)
            .GroupBy(a => a.Manifest, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Inputs!, StringComparer.Ordinal);
        var table = new Table().AddColumns("image", "digest", "signature", "attestations");
        try
        {
            foreach (var (name, image) in pushed.Images)
            {
                if (settings.Images.Length > 0 && !settings.Images.Contains(name)) continue;
                var store = new RegistrySignatureStore(registry, image.Repository);
                var imageSigner = new ImageSigner(signer, store);
                var reference = DockerReference(target, image.Repository);
                var index = Digest.Parse(image.Index);
                var provenance = Provenance(name, image, lockFile, pushed.Registry);
                var sboms = new List<PlatformDocument>();
                var scans = new List<PlatformDocument>();
                foreach (var (platform, manifest) in image.Manifests)
                {
                    var arch = PlatformName.ArchitectureOf(platform); // "linux/arm64/v8" → the artifacts' "arm64"
                    var digest = Digest.Parse(manifest);
                    await imageSigner.SignAsync(reference, digest,
                        inputsOf.TryGetValue(manifest, out var inputs) ? new Dictionary<string, string> { [RegistryCache.InputsAnnotation] = inputs } : null, ct);
                    var kinds = new List<string>();
                    var sbomPath = Path.Combine(settings.Artifacts, "sbom", $"{name}.{arch}.cdx.json");
                    if (File.Exists(sbomPath))
                    {
                        var sbom = Predicates.CycloneDx(BoundedFile.ReadAllBytes(sbomPath, InputLimits.MaxReportBytes, "SBOM"));
                        await imageSigner.AttestAsync(reference, digest, PredicateTypes.CycloneDx, sbom, ct);
                        sboms.Add(new PlatformDocument(platform, digest, sbom));
                        kinds.Add("sbom");
                    }
                    await imageSigner.AttestAsync(reference, digest, PredicateTypes.SlsaProvenanceV1, provenance, ct);
                    kinds.Add("provenance");
                    var scanPath = Path.Combine(settings.Artifacts, "scan", $"{name}.{arch}.json");
                    if (File.Exists(scanPath))
                    {
                        var scan = ReadJson(scanPath);
                        await imageSigner.AttestAsync(reference, digest, PredicateTypes.CosignVuln, VulnPredicate(scan, scanPath), ct);
                        scans.Add(new PlatformDocument(platform, digest, scan));
                        kinds.Add("vuln");
                    }
                    table.AddRow($"{name} ({platform})", manifest[..19], "manifest", string.Join(", ", kinds));
                }

                // The index is what a Deployment pins and the only digest whose .att cosign, Kyverno and policy-controller
                // read for it, so it carries every attestation the admission policies require — covering all platforms,
                // or none (an index statement about some platforms would vouch for the unscanned rest).
                await imageSigner.SignAsync(reference, index, null, ct);
                await imageSigner.AttestAsync(reference, index, PredicateTypes.SlsaProvenanceV1, provenance, ct);
                var indexKinds = new List<string> { "provenance" };
                var missingSbom = image.Manifests.Keys.Except(sboms.Select(d => d.Platform)).ToList();
                if (sboms.Count > 0 && missingSbom.Count == 0)
                {
                    await imageSigner.AttestAsync(reference, index, PredicateTypes.CycloneDx, Predicates.IndexCycloneDx(name, index, sboms), ct);
                    indexKinds.Add("sbom");
                }
                else if (sboms.Count > 0) indexKinds.Add($"no sbom (none for {string.Join(", ", missingSbom)})");
                var missingScan = image.Manifests.Keys.Except(scans.Select(d => d.Platform)).ToList();
                if (scans.Count > 0 && missingScan.Count == 0)
                {
                    var report = Predicates.IndexScanReport(name, index, scans);
                    await imageSigner.AttestAsync(reference, index, PredicateTypes.CosignVuln,
                        VulnPredicate(report, Path.Combine(settings.Artifacts, "scan", $"{name}.*.json")), ct);
                    indexKinds.Add("vuln");
                }
                else if (scans.Count > 0) indexKinds.Add($"no vuln (no scan for {string.Join(", ", missingScan)})");
                table.AddRow(name, image.Index[..19], "index", Markup.Escape(string.Join(", ", indexKinds)));
            }
        }
        catch (ImmutableTagException e)
        {
            // cosign's layout moves the .sig/.att tags when a signature is added; an immutable repository refuses that.
            throw new HardenException($"{e.Message} Signing adds layers to the sha256-<hex>.sig/.att tags, so they must be able to move: " +
                "sign everything in one run after the push, or exempt 'sha256-*' tags from tag immutability (ECR: IMMUTABLE_WITH_EXCLUSION).", inner: e);
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"[green]signed[/] with {(keyRef.StartsWith("awskms://", StringComparison.Ordinal) ? keyRef : Path.GetFullPath(keyRef))} into {pushed.Registry}");
        return 0;
    }

    private static JsonNode ReadJson(string path)
    {
        return BoundedJson.ParseNode(BoundedFile.ReadAllBytes(path, InputLimits.MaxReportBytes, "scan report"), path, "scan report", InputLimits.MaxReportBytes);
    }

    /// <summary>cosign's vuln predicate around our scan report; the scan's own time (the file's when it records none).</summary>
    private static JsonNode VulnPredicate(JsonNode scan, string scanPath)
    {
        var at = ScanTime(scan, "scannedAt") ?? (File.Exists(scanPath) ? File.GetLastWriteTimeUtc(scanPath) : DateTimeOffset.UnixEpoch);
        return Predicates.Vuln(new VulnScanInput
        {
            ScannerUri = "https://github.com/hardenimage/harden",
            ScannerVersion = typeof(SignCommand).Assembly.GetName().Version?.ToString() ?? "0",
            Result = scan,
            ScanStartedOn = at,
            ScanFinishedOn = at,
        });
    }

    private static DateTimeOffset? ScanTime(JsonNode scan, string field) =>
        scan is JsonObject o && o[field] is JsonValue v && v.TryGetValue<string>(out var t) && DateTimeOffset.TryParse(t, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var d) ? d : null;

    /// <summary>The docker-reference cosign's simple-signing payload names: host/repository (just the repository for a layout).</summary>
    internal static string DockerReference(RegistryTarget target, string repository) =>
        target.Kind == RegistryKind.OciLayout ? repository : target.Reference(repository, null).ToString();

    private static JsonNode Provenance(string image, PushedImage pushed, LockFile? lockFile, string registry)
    {
        var deps = new List<ResolvedDependency>();
        if (lockFile != null)
        {
            var names = new HashSet<string> { image };
            for (var i = lockFile.Image(image); i?.From != null; i = lockFile.Image(i.From)) names.Add(i.From);
            foreach (var li in lockFile.Images.Where(i => names.Contains(i.Name)))
                foreach (var p in li.Architectures.SelectMany(a => a.Packages).DistinctBy(p => p.Sha256))
                    deps.Add(new ResolvedDependency(p.Url, p.Sha256, $"{p.Name}@{p.Version}?arch={p.Architecture}"));
        }
        return Predicates.SlsaProvenance(new SlsaProvenanceInput
        {
            BuildType = "https://github.com/hardenimage/harden/build/v1",
            BuilderId = "https://github.com/hardenimage/harden",
            ExternalParameters = new JsonObject { ["image"] = image, ["registry"] = registry, ["repository"] = pushed.Repository },
            ResolvedDependencies = deps,
        });
    }
}

/// <summary>The development key the default pipeline signs with: generated on first use, and said loudly.</summary>
internal static class DevelopmentKey
{
    public static void EnsureExists(string path)
    {
        if (File.Exists(path)) return;
        var password = Environment.GetEnvironmentVariable(KeyPasswordSource.HardenVariable)
                       ?? Environment.GetEnvironmentVariable(KeyPasswordSource.CosignVariable) ?? "";
        var pair = new KeyPairGenerator().WriteTo(Path.GetDirectoryName(Path.GetFullPath(path))!, password, overwrite: false);
        AnsiConsole.Write(new Panel(new Markup(
                $"[yellow bold]DEVELOPMENT SIGNING KEY GENERATED[/]\n{Markup.Escape(pair.PrivateKeyPath)}\n{Markup.Escape(pair.PublicKeyPath)}\n" +
                (password.Length == 0 ? "It has an EMPTY password. " : "") +
                "Images signed with it prove nothing outside this machine: sign releases with your own key (--key, awskms://)."))
            .Header("harden sign").BorderColor(Color.Yellow));
    }

    /// <summary>For the generated default key an unset password means the empty one; other keys prompt or fail.</summary>
    public static KeyPasswordSource PasswordsFor(bool isDevelopmentKey)
    {
        if (isDevelopmentKey && Environment.GetEnvironmentVariable(KeyPasswordSource.HardenVariable) == null
            && Environment.GetEnvironmentVariable(KeyPasswordSource.CosignVariable) == null)
            return new KeyPasswordSource(name => name == KeyPasswordSource.HardenVariable ? "" : null, null, interactive: false);
        return KeyPasswordSource.FromEnvironmentOrTerminal();
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
    [Description("text (tables) or json (one JSON result on stdout; tables go to stderr)")]
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
    private readonly RegistryServices? _services;

    /// <summary>What Spectre uses: registry and AWS services are built at execute time from the settings.</summary>
    public VerifyCommand() { }

    /// <summary>Tests: services with loopback transports.</summary>
    internal VerifyCommand(RegistryServices services) => _services = services;

    public override async Task<int> ExecuteAsync(CommandContext context, VerifySettings settings, CancellationToken ct)
    {
        HardenImage.Cli.CliOutput.Begin(settings.Output);
        using var owned = _services == null ? new RegistryServices(settings.AwsOptions()) : null;
        var services = _services ?? owned!;
        var (target, repository, reference) = ParseReference(settings.Reference);
        // Names stay names (the verifier maps them, and its messages then say 'sbom', not a URI); unknown ones fail
        // here, before any network call.
        var required = settings.Require.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        foreach (var name in required) PredicateTypes.FromPolicyName(name);
        var registry = services.CreateRegistry(target, settings.Insecure);
        var root = await registry.ResolveManifestAsync(repository, reference, ct)
                   ?? throw new HardenException($"{settings.Reference}: not found in {target}.");
        using var key = await new SignerFactory(KeyPasswordSource.FromEnvironmentOrTerminal(), services.KmsOptions()).PublicKeyFromReferenceAsync(settings.Key, ct);
        var store = new RegistrySignatureStore(registry, repository);
        var verifier = new ImageVerifier(store, key);
        // Exactly what cosign, Kyverno and policy-controller check for this reference: the .sig and .att of the digest
        // it resolves to, nothing else. An index is not descended into: its platforms' attestations do not count for it.
        var digest = Digest.Parse(root.Digest);
        var report = await verifier.VerifyAsync(digest, new VerificationPolicy
        {
            RequiredAttestations = required,
            ForbidCriticalVulnerabilities = settings.NoCritical,
        }, ct);
        var label = root.MediaType == MediaTypes.ImageIndex ? "index" : "manifest";
        var table = new Table().AddColumns("subject", "digest", "signatures", "attestations", "result");
        table.AddRow(label, root.Digest[..19],
            $"{report.Signatures.Checks.Count(c => c.Valid)} of {report.Signatures.Checks.Count} valid",
            Markup.Escape(string.Join(", ", report.Attestations.Checks.Where(c => c.Valid && c.PredicateType != null)
                .GroupBy(c => PolicyName(c.PredicateType!)).OrderBy(g => g.Key, StringComparer.Ordinal)
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
                    attestations = report.Attestations.Checks.Where(c => c.Valid && c.PredicateType != null).Select(c => PolicyName(c.PredicateType!)).Distinct().Order(StringComparer.Ordinal),
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

    /// <summary>The --require name for a predicate type (the URI itself when it has none).</summary>
    private static string PolicyName(string predicateType) => predicateType switch
    {
        PredicateTypes.CycloneDx => "sbom",
        PredicateTypes.SlsaProvenanceV1 => "provenance",
        PredicateTypes.CosignVuln => "vuln",
        _ when predicateType.StartsWith("https://openvex.dev/", StringComparison.Ordinal) => "vex",
        _ => predicateType,
    };

    /// <summary>The registry, repository and tag-or-digest of a verify reference, in <see cref="ImageReference"/>'s grammar.</summary>
    internal static (RegistryTarget Target, string Repository, string Reference) ParseReference(string text)
    {
        var reference = ImageReference.Parse(text);
        return (RegistryTarget.For(reference), reference.Repository, reference.ApiReference);
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
