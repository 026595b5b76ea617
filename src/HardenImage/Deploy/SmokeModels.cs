namespace HardenImage.Deploy;

public enum SmokeStatus { Passed, Failed, Skipped }

/// <summary>One check on one image and architecture. Skipped results always say why (no silent skips).</summary>
public sealed record SmokeResult(string Image, string Architecture, string Check, SmokeStatus Status, string Detail, TimeSpan Duration)
{
    public bool Passed => Status == SmokeStatus.Passed;
}

/// <summary>Everything one `harden smoke` run found.</summary>
public sealed record SmokeReport(IReadOnlyList<SmokeResult> Results)
{
    public bool AnyFailed => Results.Any(r => r.Status == SmokeStatus.Failed);

    public IEnumerable<SmokeResult> For(string image, string? architecture = null) =>
        Results.Where(r => r.Image == image && (architecture == null || r.Architecture == architecture));

    public SmokeResult? Find(string image, string architecture, string check) =>
        Results.FirstOrDefault(r => r.Image == image && r.Architecture == architecture && r.Check == check);
}

public sealed record SmokeOptions
{
    /// <summary>Holds build.json and oci/ (what `harden build` wrote).</summary>
    public required string ArtifactsDir { get; init; }
    /// <summary>The image set whose <c>smoke:</c> checks are run (images/).</summary>
    public required string ImagesDir { get; init; }
    /// <summary>Only these images; empty = every image in build.json.</summary>
    public IReadOnlyCollection<string> Images { get; init; } = [];
    /// <summary>An existing model directory for images that serve a model (MODEL_DIR); null = make a tiny one in the image.</summary>
    public string? ModelDir { get; init; }
    /// <summary>Where a copy of the tiny model smoke makes is kept (the pipeline packs and signs it: docs/model.md); null = not kept.</summary>
    public string? KeepMadeModelDir { get; init; }
    /// <summary>Leave the loaded images in the engine afterwards (tests reuse them; vfs loads are slow).</summary>
    public bool KeepImages { get; init; }
    /// <summary>How long an HTTP probe waits for 200 (includes the server's start).</summary>
    public TimeSpan HttpTimeout { get; init; } = TimeSpan.FromMinutes(2);
    /// <summary>Time limit for each run-to-completion container.</summary>
    public TimeSpan RunTimeout { get; init; } = TimeSpan.FromMinutes(3);
    /// <summary>Memory limit for ordinary checks.</summary>
    public long MemoryBytes { get; init; } = 512L << 20;
    /// <summary>Memory limit for containers that load PyTorch and a model.</summary>
    public long ModelMemoryBytes { get; init; } = 2L << 30;
    /// <summary>Architectures this machine can run; null = detect (RuntimeInformation.OSArchitecture).</summary>
    public IReadOnlyCollection<string>? RunnableArchitectures { get; init; }
}
