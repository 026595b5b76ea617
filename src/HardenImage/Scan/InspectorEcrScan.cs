using System.Text.Json;
using HardenImage.Aws;
using HardenImage.Common;
using HardenImage.Contracts;

namespace HardenImage.Scan;

/// <summary>
/// What <c>harden scan --ecr</c> asks Inspector2 about: one or more pushed image manifests (one per architecture).
/// </summary>
/// <param name="Label">Name used for the output file: the image name from pushed.json, else "sha256-&lt;hex&gt;".</param>
/// <param name="Reference">What the user passed.</param>
/// <param name="Repository">ECR repository (from pushed.json or the reference), when known.</param>
/// <param name="Region">Region implied by the registry host, when the reference or pushed.json names an ECR host.</param>
/// <param name="Digests">Architecture (or "image" for a bare digest) → manifest digest, sorted by architecture.</param>
public sealed record InspectorEcrTarget(string Label, string Reference, string? Repository, string? Region,
    IReadOnlyList<(string Architecture, string Digest)> Digests)
{
    /// <summary>The 12-digit account the ECR host names (sent as registryId: the registry may be another account's).</summary>
    public string? RegistryId { get; init; }

    /// <summary>
    /// Accepts "sha256:&lt;hex&gt;", an image name in pushed.json (each architecture's manifest digest: Inspector
    /// records findings per platform image), or "[host/]repository@sha256:&lt;hex&gt;". Tags are refused: a tag can
    /// move, and findings must belong to the exact image that was built (Spoofing).
    /// </summary>
    public static InspectorEcrTarget Resolve(string reference, PushedFile? pushed, string pushedPath)
    {
        var text = reference.Trim();
        if (IsDigest(text))
            return new InspectorEcrTarget("sha256-" + text[7..], text, null, null, [("image", text)]);

        EcrRegistryHost? pushedHost = null;
        if (pushed != null) EcrRegistryHost.TryParse(pushed.Registry, out pushedHost);
        var registryRegion = pushedHost?.Region;
        if (pushed != null && pushed.Images.TryGetValue(text, out var image))
        {
            var digests = image.Manifests.Count > 0
                ? image.Manifests.Select(kv => (kv.Key, kv.Value)).ToList()
                : [("image", image.Index)];
            foreach (var (arch, d) in digests)
                if (!IsDigest(d))
                    throw new HardenException($"{pushedPath}: images.{text}.manifests.{arch} '{d}' is not a sha256 digest; push again to rewrite it.");
            return new InspectorEcrTarget(text, text, image.Repository, registryRegion, digests) { RegistryId = pushedHost?.AccountId };
        }

        var at = text.LastIndexOf('@');
        if (at > 0 && IsDigest(text[(at + 1)..]))
        {
            var name = text[..at];
            var digest = text[(at + 1)..];
            string? region = EcrRegistryHost.TryParse(name, out var host) ? host.Region : null;
            var repository = host?.Repository ?? name;
            var label = repository.Split('/')[^1];
            return new InspectorEcrTarget(label.Length > 0 ? label : "sha256-" + digest[7..], text, repository, region, [("image", digest)])
            {
                RegistryId = host?.AccountId,
            };
        }

        var known = pushed == null ? $"{pushedPath} does not exist (run 'harden push' first)"
            : $"images in {pushedPath}: {string.Join(", ", pushed.Images.Keys)}";
        throw new HardenException($"--ecr '{reference}': expected an image digest (sha256:<64 hex>), REPOSITORY@sha256:<64 hex>, " +
            $"or an image name from pushed.json ({known}). Tags are not accepted: Inspector2 findings are looked up by digest.");
    }

    private static bool IsDigest(string s) =>
        s.StartsWith("sha256:", StringComparison.Ordinal) && s.Length == 71 && Sha256Hex.IsValid(s[7..]);
}

/// <summary>Inspector2 findings for one architecture's manifest, after the policy gate.</summary>
/// <param name="ScanStatus">ECR's imageScanStatus.status when the findings were read (COMPLETE or ACTIVE).</param>
public sealed record InspectorEcrImageResult(string Architecture, string Digest, IReadOnlyList<Finding> Findings, PolicyResult Policy,
    string? ScanStatus = null);

/// <summary>The result of <c>harden scan --ecr</c> for one target.</summary>
public sealed record InspectorEcrReport(InspectorEcrTarget Target, string Region, DateTimeOffset QueriedAt,
    IReadOnlyList<InspectorEcrImageResult> Images)
{
    public bool Passed => Images.All(i => i.Policy.Passed);
}

/// <summary>How long <c>scan --ecr</c> waits for ECR to finish scanning an image, and how often it asks.</summary>
public sealed record EcrScanWait
{
    public const string EnvironmentVariable = "HARDEN_ECR_SCAN_WAIT";

    /// <summary>Longest wait for a PENDING or IN_PROGRESS scan; zero fails at once.</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromMinutes(5);

    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The defaults, or <c>HARDEN_ECR_SCAN_WAIT</c> seconds (0–3600) as the longest wait.</summary>
    public static EcrScanWait FromEnvironment(Func<string, string?>? environment = null)
    {
        var text = (environment ?? Environment.GetEnvironmentVariable)(EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(text)) return new EcrScanWait();
        if (!int.TryParse(text.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds) || seconds > 3600)
            throw new HardenException($"{EnvironmentVariable}='{text}' is not a number of seconds between 0 and 3600.");
        return new EcrScanWait { MaxWait = TimeSpan.FromSeconds(seconds) };
    }
}

/// <summary>
/// Reads what Amazon Inspector found in images already pushed to ECR (Inspector2 ListFindings, followed across
/// pages) and applies the same vulnerability policy as the offline scan, so an image whose registry scan shows a
/// fixable critical fails the gate (Elevation of privilege through a known-vulnerable image in production).
/// <para>
/// "No findings" only means something once the image has been scanned: ECR's scan status
/// (DescribeImageScanFindings <c>imageScanStatus</c>) is checked first. COMPLETE (basic) or ACTIVE (enhanced,
/// continuous) proceeds; PENDING/IN_PROGRESS is waited for, boundedly (<see cref="EcrScanWait"/>), with progress;
/// anything else — no scan at all, FAILED, UNSUPPORTED_IMAGE, SCAN_ELIGIBILITY_EXPIRED, FINDINGS_UNAVAILABLE, ... —
/// fails with ECR's reason instead of passing an unscanned image (Spoofing of a clean result).
/// Findings Inspector CLOSED are not open risk and are dropped; SUPPRESSED ones are kept in the report, marked as
/// allowlisted by the Inspector suppression, so a suppression is visible where the gate's result is (Repudiation).
/// </para>
/// </summary>
public sealed class InspectorEcrScanner : IDisposable
{
    /// <summary>The allowlist justification of a finding Inspector reports as SUPPRESSED.</summary>
    public const string SuppressedJustification = "suppressed in Amazon Inspector (a suppression rule of the AWS account)";

    private readonly Inspector2FindingsClient _client;
    private readonly EcrApiClient _ecr;
    private readonly bool _ownsEcr;
    private readonly PolicyGate _gate;
    private readonly TimeProvider _time;
    private readonly EcrScanWait _wait;

    /// <summary>Checks scan status with an ECR client built from the Inspector client's AWS settings.</summary>
    public InspectorEcrScanner(Inspector2FindingsClient client, PolicyGate gate, TimeProvider time)
        : this(client, new EcrApiClient(client.Context), gate, time, EcrScanWait.FromEnvironment()) => _ownsEcr = true;

    public InspectorEcrScanner(Inspector2FindingsClient client, EcrApiClient ecr, PolicyGate gate, TimeProvider time, EcrScanWait? wait = null)
    {
        _client = client; _ecr = ecr; _gate = gate; _time = time; _wait = wait ?? new EcrScanWait();
    }

    /// <summary>Called with one line per wait ("waiting for ECR to finish scanning ...").</summary>
    public Action<string>? OnProgress { get; init; }

    public async Task<InspectorEcrReport> ScanAsync(InspectorEcrTarget target, string region, CancellationToken ct = default)
    {
        if (target.Repository == null)
            throw new HardenException($"--ecr '{target.Reference}': the scan status is read per ECR repository; pass REPOSITORY@sha256:<digest> " +
                "or an image name from pushed.json instead of a bare digest.");
        var images = new List<InspectorEcrImageResult>();
        foreach (var (arch, digest) in target.Digests)
        {
            var status = await WaitForScanAsync(target, digest, ct).ConfigureAwait(false);
            var found = await _client.ListImageFindingsAsync(digest, cancellationToken: ct).ConfigureAwait(false);
            var findings = VulnerabilityMatcher.Sort(found.Distinct()
                .Where(f => f.FindingStatus is null or "ACTIVE" or "SUPPRESSED")
                .Select(f => f.FindingStatus == "SUPPRESSED" ? Suppressed(ToFinding(f)) : ToFinding(f)).ToList());
            var (annotated, policy) = _gate.Evaluate(findings);
            images.Add(new InspectorEcrImageResult(arch, digest, annotated, policy, status.Status));
        }
        return new InspectorEcrReport(target, region, _time.GetUtcNow(), images);
    }

    private async Task<EcrImageScanStatus> WaitForScanAsync(InspectorEcrTarget target, string digest, CancellationToken ct)
    {
        DateTimeOffset? firstPending = null; // the wait is counted from the first "not yet" answer
        var what = $"{target.Repository}@{digest}";
        while (true)
        {
            var status = await _ecr.DescribeImageScanStatusAsync(target.Repository!, digest, target.RegistryId, ct).ConfigureAwait(false);
            if (status == null)
                throw new HardenException($"ECR has no scan of {what}: scan on push and enhanced scanning (Amazon Inspector) are off " +
                    "for this repository, so an empty finding list would prove nothing. Turn on enhanced scanning (or scan on push) and push again.");
            if (status.IsReady) return status;
            firstPending ??= _time.GetUtcNow();
            var waited = _time.GetUtcNow() - firstPending.Value;
            if (!status.IsPending)
                throw new HardenException($"ECR scan of {what} is {status.Status}{(status.Description != null ? ": " + status.Description : "")}; " +
                    "its findings cannot be trusted to be complete, so the gate does not pass.");
            if (waited >= _wait.MaxWait)
                throw new HardenException($"ECR scan of {what} is still {status.Status} after {waited.TotalSeconds:0} s; " +
                    $"run 'harden scan --ecr' again later, or wait longer with {EcrScanWait.EnvironmentVariable}=<seconds>.");
            OnProgress?.Invoke($"waiting for ECR to finish scanning {what}: {status.Status} ({waited.TotalSeconds:0} s of at most {_wait.MaxWait.TotalSeconds:0} s)");
            await Task.Delay(_wait.PollInterval, _time, ct).ConfigureAwait(false);
        }
    }

    private static Finding Suppressed(Finding f) => f with
    {
        Allowlisted = new AllowlistEntry(f.Id, f.Package, SuppressedJustification, DateOnly.MaxValue),
    };

    public void Dispose()
    {
        if (_ownsEcr) _ecr.Dispose();
    }

    /// <summary>An Inspector finding as one of ours: fixed when Inspector names a fixed version, else unfixed.</summary>
    public static Finding ToFinding(InspectorFinding f)
    {
        var severity = InspectorFindingSource.MapSeverity(f.Severity);
        var fromCvss = severity == Severity.Unknown && f.CvssScore is { } s;
        return new Finding
        {
            Id = f.Id,
            Package = f.PackageName,
            PackageType = f.PackagePurl is { } p && p.StartsWith("pkg:", StringComparison.Ordinal) ? p[4..].Split('/')[0] : "unknown",
            Purl = f.PackagePurl ?? "",
            InstalledVersion = f.InstalledVersion ?? "",
            FixedVersion = f.FixedVersion,
            Status = f.FixedVersion != null ? FindingStatus.Fixed : FindingStatus.Unfixed,
            Severity = fromCvss ? CvssV3.Rating(f.CvssScore!.Value) : severity,
            SeveritySource = fromCvss ? SeveritySources.CvssV3 : SeveritySources.External,
            SourceSeverity = f.Severity,
            CvssScore = f.CvssScore,
            Sources = [f.Source],
        };
    }
}

/// <summary>
/// <c>artifacts/scan/&lt;image&gt;.inspector2.json</c> (schema "hardenimage.inspector2/v1", documented in docs/scan.md).
/// </summary>
public static class InspectorEcrReportWriter
{
    public const string Schema = "hardenimage.inspector2/v1";

    public static byte[] Write(InspectorEcrReport r)
    {
        using var ms = new MemoryStream();
        using (var w = ScanJson.Writer(ms))
        {
            w.WriteStartObject();
            w.WriteString("schema", Schema);
            w.WriteString("queriedAt", ScanJson.Time(r.QueriedAt));
            w.WriteString("source", InspectorFinding.SourceName);
            w.WriteString("api", "inspector2:ListFindings");
            w.WriteString("region", r.Region);
            w.WriteString("reference", r.Target.Reference);
            w.WriteString("image", r.Target.Label);
            if (r.Target.Repository != null) w.WriteString("repository", r.Target.Repository);
            w.WriteBoolean("passed", r.Passed);
            w.WriteStartArray("images");
            foreach (var image in r.Images)
            {
                w.WriteStartObject();
                w.WriteString("architecture", image.Architecture);
                w.WriteString("digest", image.Digest);
                if (image.ScanStatus != null) w.WriteString("scanStatus", image.ScanStatus);
                w.WriteStartObject("summary");
                foreach (var sev in Enum.GetValues<Severity>().OrderByDescending(s => s))
                    w.WriteNumber(ScanJson.Name(sev), image.Findings.Count(f => f.Severity == sev));
                w.WriteNumber("fixable", image.Findings.Count(f => f.Status == FindingStatus.Fixed));
                w.WriteNumber("allowlisted", image.Findings.Count(f => f.Allowlisted != null));
                w.WriteNumber("suppressedInInspector", image.Findings.Count(f => f.Allowlisted?.Justification == InspectorEcrScanner.SuppressedJustification));
                w.WriteEndObject();
                w.WriteStartObject("policy");
                w.WriteString("source", image.Policy.PolicySource);
                w.WriteBoolean("passed", image.Policy.Passed);
                w.WriteStartArray("violations");
                foreach (var v in image.Policy.Violations) w.WriteStringValue(v);
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteStartArray("findings");
                foreach (var f in image.Findings) ScanReportWriter.WriteFinding(w, f);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        ms.WriteByte((byte)'\n');
        return ms.ToArray();
    }
}
