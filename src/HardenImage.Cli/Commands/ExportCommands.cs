using System.ComponentModel;
using System.Formats.Tar;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Oci;
using Spectre.Console;
using Spectre.Console.Cli;

namespace HardenImage.Cli.Commands;

public enum ExportFormat { DockerArchive, OciArchive }

public sealed class ExportSettings : CommandSettings
{
    [CommandArgument(0, "<OUT.tar>")]
    [Description("Archive to write (replaced atomically)")]
    public string Output { get; init; } = "";

    [CommandOption("--image <NAME>")]
    [Description("Built image to export (a name in build.json)")]
    public string Image { get; init; } = "";

    [CommandOption("--platform <PLATFORM>")]
    [Description("Platform, OCI spelling: linux/amd64, linux/arm64/v8. Default: linux/amd64")]
    public string Platform { get; init; } = "linux/amd64";

    [CommandOption("--format <FORMAT>")]
    [Description("docker-archive (docker load, Docker 20.10 and later) or oci-archive (skopeo, podman). Default: docker-archive")]
    public string Format { get; init; } = "docker-archive";

    [CommandOption("--tag <REPO:TAG>")]
    [Description("Name it gets in Docker. Default: harden/<image>:<version or latest>")]
    public string? Tag { get; init; }

    [CommandOption("--artifacts <DIR>")]
    [Description("Build output (build.json, oci/). Default: artifacts")]
    public string Artifacts { get; init; } = EnvironmentSetting.Get("HARDEN_ARTIFACTS") ?? "artifacts";

    internal ExportFormat ParsedFormat => Format switch
    {
        "docker-archive" => ExportFormat.DockerArchive,
        "oci-archive" => ExportFormat.OciArchive,
        _ => throw new HardenException($"--format '{Format}': expected docker-archive or oci-archive{NameSuggestions.DidYouMean(Format, ["docker-archive", "oci-archive"])}"),
    };

    public override ValidationResult Validate()
    {
        if (Image.Length == 0) return ValidationResult.Error("--image NAME is required (an image in build.json)");
        _ = ParsedFormat;
        PlatformName.ParseArchitecture(Platform);
        return ValidationResult.Success();
    }
}

/// <summary>
/// <c>harden export</c>: one platform of a built image as a file Docker (or skopeo/podman) loads, so "run what you
/// built" needs no registry: <c>harden export --image base out.tar &amp;&amp; docker load -i out.tar</c>. The
/// docker-archive form is what Docker 20.10's <c>docker load</c> takes (it does not load OCI layout tars).
/// </summary>
public sealed class ExportCommand : AsyncCommand<ExportSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ExportSettings settings, CancellationToken ct)
    {
        var arch = PlatformName.ParseArchitecture(settings.Platform);
        var build = BuildManifest.Load(Path.Combine(settings.Artifacts, "build.json"));
        var built = build.Image(settings.Image)
                    ?? throw new HardenException($"{Path.Combine(settings.Artifacts, "build.json")}: no built image '{settings.Image}'{NameSuggestions.DidYouMean(settings.Image, build.Images.Select(i => i.Name))}; run 'harden build --image {settings.Image}' first");
        var builtArch = built.Architectures.FirstOrDefault(a => a.Architecture == arch)
                        ?? throw new HardenException($"image '{built.Name}' has no {PlatformName.ForArchitecture(arch)} (it has {string.Join(", ", built.Architectures.Select(a => PlatformName.ForArchitecture(a.Architecture)))})");
        var layout = OciLayout.Open(Path.Combine(settings.Artifacts, "oci"));
        var reader = new OciLayoutReader(layout);
        var manifest = reader.ReadManifest(new Descriptor { MediaType = MediaTypes.ImageManifest, Digest = builtArch.Manifest, Size = builtArch.ManifestSize });
        var tag = settings.Tag ?? $"harden/{built.Name}:{built.Version ?? "latest"}";
        HardenImage.Registry.ImageReference.Parse(tag); // a name Docker accepts
        await AtomicFile.WriteAsync(settings.Output, async stream =>
        {
            if (settings.ParsedFormat == ExportFormat.DockerArchive)
                new DockerArchiveWriter(layout).Write(manifest, [tag], stream, ct);
            else
                await WriteOciArchiveAsync(layout, manifest, tag, stream, ct);
        });
        AnsiConsole.MarkupLineInterpolated($"[green]exported[/] {built.Name} ({PlatformName.ForArchitecture(arch)}, {builtArch.Manifest}) as {settings.Format} to {Path.GetFullPath(settings.Output)}");
        AnsiConsole.WriteLine(settings.ParsedFormat == ExportFormat.DockerArchive
            ? $"load it: docker load -i {settings.Output} && docker run --rm {tag}"
            : $"read it: skopeo inspect oci-archive:{settings.Output}");
        return 0;
    }

    /// <summary>An OCI layout holding just this manifest, as a tar (skopeo's oci-archive), entries in a fixed order.</summary>
    private static async Task WriteOciArchiveAsync(OciLayout layout, ResolvedManifest image, string tag, Stream output, CancellationToken ct)
    {
        var refName = tag[(tag.LastIndexOf(':') + 1)..];
        var index = new ImageIndex
        {
            Manifests = [image.Descriptor with { Annotations = new SortedDictionary<string, string>(StringComparer.Ordinal) { [Annotations.RefName] = refName } }],
        };
        var mtime = DateTimeOffset.UnixEpoch;
        await using var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        async Task Add(string name, Stream content)
        {
            var entry = new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = content, ModificationTime = mtime, Mode = (UnixFileMode)0b110_100_100 };
            await tar.WriteEntryAsync(entry, ct);
        }
        await Add("oci-layout", new MemoryStream("{\"imageLayoutVersion\":\"1.0.0\"}"u8.ToArray()));
        await Add("index.json", new MemoryStream(OciJson.Serialize(index)));
        var digests = new[] { image.Descriptor.Digest, image.Manifest.Config.Digest }.Concat(image.Manifest.Layers.Select(l => l.Digest)).Distinct();
        foreach (var d in digests)
        {
            await using var blob = layout.OpenBlob(d);
            await Add($"blobs/sha256/{Digest.Parse(d).Hex}", blob);
        }
    }
}

public static class ExportCommandsRegistration
{
    public static void AddExportCommands(this IConfigurator config)
    {
        config.AddCommand<ExportCommand>("export")
            .WithDescription("Write one platform of a built image as a docker-archive (docker load) or oci-archive tar")
            .WithExample("export", "--image", "python", "--platform", "linux/amd64", "python.tar");
    }
}
