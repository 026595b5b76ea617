using System.Diagnostics;
using HardenImage.Common;
using HardenImage.Sbom;
using HardenImage.Contracts;

namespace HardenImage.Scan;

/// <summary>The advisory data a scan runs against, and how it was found (for the line the CLI prints).</summary>
/// <param name="Location">What the user named: --db, HARDEN_DB, or ./vulndb.</param>
/// <param name="Rejected">Why a cached index that was there was not trusted (someone wrote the cache), else null.</param>
/// <param name="RejectedPath">The cached index that was not trusted.</param>
/// <param name="IsShippedExcerpt">The offline excerpts shipped with the repository, not a current feed.</param>
public sealed record AdvisoryData(AdvisoryIndex Index, string Location, bool CacheHit, long ElapsedMilliseconds,
    string? Rejected, string RejectedPath, bool IsShippedExcerpt)
{
    /// <summary>--db, else HARDEN_DB, else ./vulndb when present; null when there is none.</summary>
    public static string? DefaultLocation(string? option) =>
        option ?? EnvironmentSetting.Get("HARDEN_DB") ?? (Directory.Exists("vulndb") ? "vulndb" : null);

    /// <summary>Resolves <paramref name="location"/> (a URL is downloaded into the cache) and loads or builds its index.</summary>
    public static async Task<AdvisoryData> OpenAsync(string location, string cacheDir, CancellationToken ct)
    {
        using var http = AdvisoryFeedUpdater.CreateHttpClient();
        var path = await new AdvisoryDataLocator(http, cacheDir).ResolveAsync(location, ct).ConfigureAwait(false);
        var store = new AdvisoryIndexStore(cacheDir);
        var sw = Stopwatch.StartNew();
        var index = store.LoadOrBuild(path);
        return new AdvisoryData(index, location, store.LastWasCacheHit, sw.ElapsedMilliseconds, store.LastRejected, store.CachePathFor(index.DataDigest),
            File.Exists(Path.Combine(path, "SOURCES.md")) && File.Exists(Path.Combine(path, "manifest.json")));
    }
}

/// <summary>One image and architecture scanned: the result and the report written for it.</summary>
public sealed record ImageScan(string Image, string Architecture, string ReportPath, ScanResult Result)
{
    /// <summary>"IMAGE/ARCH: violation; violation" when the policy gate failed, else null.</summary>
    public string? PolicyFailure => Result.Policy is { Passed: false } p ? $"{Image}/{Architecture}: {string.Join("; ", p.Violations)}" : null;
}

/// <summary>What <see cref="ImageSetScanner"/> scans and writes.</summary>
public sealed record ImageSetScanRequest
{
    /// <summary>ARTIFACTS: reports go to ARTIFACTS/scan/IMAGE.ARCH.{json,cdx-vex.json,openvex.json}.</summary>
    public required string ArtifactsDir { get; init; }

    /// <summary>Only this image; null = every image of the build.</summary>
    public string? Image { get; init; }

    /// <summary>Only these architectures; null = all.</summary>
    public IReadOnlyCollection<string>? Architectures { get; init; }

    public IReadOnlyList<string> Payload { get; init; } = [];

    /// <summary>Accept components no advisory source can judge (and, without any data, unscanned outputs).</summary>
    public bool AllowUnscanned { get; init; }

    /// <summary>Write negligible findings into the reports too.</summary>
    public bool IncludeNegligible { get; init; }
}

/// <summary>
/// <c>harden scan</c>'s work over a build: for every selected image and architecture, read its inventory, scan it
/// (offline advisories and any external source), apply the policy gate and write the report, CycloneDX VEX and
/// OpenVEX beside each other. Each result is handed to the caller as soon as it is written.
/// </summary>
public sealed class ImageSetScanner(VulnerabilityScanner scanner, BuiltImageInventories images)
{
    /// <param name="around">Wraps each scan (e.g. a status line while an external source is asked); null runs it as is.</param>
    /// <param name="scanned">Told about each image and architecture as soon as its reports are written.</param>
    public async Task<IReadOnlyList<ImageScan>> ScanAsync(ImageSetScanRequest request,
        Func<string, string, Func<Task<ScanResult>>, Task<ScanResult>>? around, Action<ImageScan>? scanned, CancellationToken ct)
    {
        var dir = ArtifactPaths.ScanDirectory(request.ArtifactsDir);
        Directory.CreateDirectory(dir);
        var results = new List<ImageScan>();
        foreach (var (image, arch) in images.Targets(request.Image, request.Architectures))
        {
            var inventory = images.Read(image, arch, request.Payload);
            Task<ScanResult> Run() => scanner.ScanAsync(inventory, request.AllowUnscanned, ct);
            var result = around == null ? await Run().ConfigureAwait(false) : await around(image.Name, arch.Architecture, Run).ConfigureAwait(false);
            var stem = Path.Combine(dir, $"{image.Name}.{arch.Architecture}");
            AtomicFile.WriteAllBytes(stem + ".json", ScanReportWriter.Write(result, request.IncludeNegligible));
            AtomicFile.WriteAllBytes(stem + ".cdx-vex.json", CycloneDxVexWriter.Write(result, request.IncludeNegligible));
            AtomicFile.WriteAllBytes(stem + ".openvex.json", OpenVexWriter.Write(result, request.IncludeNegligible));
            var scan = new ImageScan(image.Name, arch.Architecture, stem + ".json", result);
            results.Add(scan);
            scanned?.Invoke(scan);
        }
        return results;
    }

    /// <summary>ARTIFACTS/scan/LABEL.inspector2.json for an Inspector2 (--ecr) report; the label cannot walk out of scan/.</summary>
    public static string WriteInspectorReport(string artifactsDir, string label, InspectorEcrReport report)
    {
        var dir = ArtifactPaths.ScanDirectory(artifactsDir);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, SafeFileStem(label) + ".inspector2.json");
        AtomicFile.WriteAllBytes(path, InspectorEcrReportWriter.Write(report));
        return path;
    }

    // The label comes from pushed.json or the user's reference; it must not walk out of artifacts/scan (Tampering).
    private static string SafeFileStem(string label)
    {
        var chars = label.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-').ToArray();
        var stem = new string(chars).TrimStart('.');
        return stem.Length == 0 ? "image" : stem;
    }
}
