namespace HardenImage.Deploy;

public enum SmokeStatus { Passed, Failed, Skipped }

/// <summary>How much of a model server's smoke runs under emulation (see <see cref="SmokeOptions.EmulatedWorkload"/>).</summary>
public enum EmulatedWorkload { Light, Full }

/// <summary>
/// One check on one image and architecture. Skipped results always say why (no silent skips). <paramref name="Runner"/>
/// says how it ran: <see cref="SmokeRunners.Docker"/>, <see cref="SmokeRunners.QemuChroot"/> (emulated) or none.
/// </summary>
public sealed record SmokeResult(string Image, string Architecture, string Check, SmokeStatus Status, string Detail, TimeSpan Duration,
    string Runner = SmokeRunners.Docker)
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
    /// <summary>Architectures this machine can run natively (in the engine); null = detect (RuntimeInformation.OSArchitecture).</summary>
    public IReadOnlyCollection<string>? RunnableArchitectures { get; init; }
    /// <summary>Extra environment for the server container (`harden trace` sets PYTHONVERBOSE to see imports).</summary>
    public IReadOnlyDictionary<string, string> ServerEnv { get; init; } = new Dictionary<string, string>();
    /// <summary>Called while the server still runs, after its checks (`harden trace` reads what it loaded).</summary>
    public Func<RunningContainer, CancellationToken, Task>? WhileServing { get; init; }
    /// <summary>Only these architectures (--platform); null = every built one.</summary>
    public IReadOnlyCollection<string>? Architectures { get; init; }
    /// <summary>Run other architectures under qemu-user-static (as root) instead of skipping them.</summary>
    public bool Emulate { get; init; } = true;
    /// <summary>
    /// An architecture that can run neither natively nor emulated (no qemu-user-static, not root) is a failed row,
    /// not a skipped one: `harden smoke` sets it under CI=true, where a missing service must not pass unseen.
    /// </summary>
    public bool RequireEveryArchitecture { get; init; }
    /// <summary>Where qemu-user-static's emulators are (Debian: /usr/bin).</summary>
    public string EmulatorDirectory { get; init; } = "/usr/bin";
    /// <summary>
    /// What an emulated model server runs: light (default: one process makes the tiny model and runs the greedy
    /// generation's forward passes, no HTTP server) or full (the same server checks as the engine: /healthz,
    /// /v1/generate, log hygiene, tampered model; several emulated PyTorch imports, minutes each).
    /// </summary>
    public EmulatedWorkload EmulatedWorkload { get; init; } = EmulatedWorkload.Light;
    /// <summary>Time limit for each emulated run (an emulated PyTorch import takes minutes of CPU; more on a busy machine).</summary>
    public TimeSpan EmulatedRunTimeout { get; init; } = TimeSpan.FromMinutes(30);
}

/// <summary>artifacts/smoke.json: every result with the runner that ran it (docker, qemu-user-chroot, none), written atomically.</summary>
public static class SmokeJson
{
    public static string Serialize(SmokeReport report)
    {
        var doc = new System.Text.Json.Nodes.JsonObject
        {
            ["passed"] = !report.AnyFailed,
            ["results"] = new System.Text.Json.Nodes.JsonArray(report.Results.Select(r => (System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonObject
            {
                ["image"] = r.Image,
                ["architecture"] = r.Architecture,
                ["runner"] = r.Runner,
                ["check"] = r.Check,
                ["status"] = r.Status.ToString().ToLowerInvariant(),
                ["seconds"] = Math.Round(r.Duration.TotalSeconds, 1),
                ["detail"] = r.Detail,
            }).ToArray()),
        };
        return doc.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    public static void Write(string path, SmokeReport report) => HardenImage.Common.AtomicFile.WriteAllText(path, Serialize(report));
}
