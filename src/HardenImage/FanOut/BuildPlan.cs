using System.Text.Json;
using System.Text.Json.Serialization;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Lock;
using HardenImage.Oci;

namespace HardenImage.FanOut;

/// <summary>
/// One job of the fan-out: build and push one image for one platform. The property names are what a GitHub
/// Actions matrix entry exposes (<c>matrix.image</c>, <c>matrix.platform</c>, <c>matrix.runner</c>...).
/// </summary>
public sealed record PlanEntry
{
    /// <summary>Position in <see cref="BuildPlan.Jobs"/>: what a Kubernetes Indexed Job's JOB_COMPLETION_INDEX names.</summary>
    [JsonPropertyName("index")] public required int Index { get; init; }
    [JsonPropertyName("image")] public required string Image { get; init; }
    /// <summary>OCI spelling: linux/amd64, linux/arm64/v8.</summary>
    [JsonPropertyName("platform")] public required string Platform { get; init; }
    [JsonPropertyName("architecture")] public required string Architecture { get; init; }
    /// <summary>The hosted runner label that runs this platform natively (arm64 smoke runs on arm64).</summary>
    [JsonPropertyName("runner")] public required string Runner { get; init; }
    /// <summary><see cref="InputsDigest"/> of this image × architecture.</summary>
    [JsonPropertyName("inputs")] public required string Inputs { get; init; }
    /// <summary>False only when the registry holds a manifest for these inputs signed by the release key.</summary>
    [JsonPropertyName("changed")] public required bool Changed { get; init; }
    /// <summary>Why <see cref="Changed"/> is what it is (see <see cref="CacheState"/>).</summary>
    [JsonPropertyName("cache")] public required string Cache { get; init; }
    /// <summary>The cached manifest when <see cref="Changed"/> is false.</summary>
    [JsonPropertyName("manifest")] public string? Manifest { get; init; }
}

/// <summary>The step after every job: assemble the indexes, then push, sign, verify and deploy.</summary>
public sealed record PlanFanIn
{
    /// <summary>Images whose multi-arch indexes the fan-in assembles, with the platforms each needs.</summary>
    [JsonPropertyName("images")] public required SortedDictionary<string, List<string>> Images { get; init; }
    /// <summary>Plan entries (by index) that must each leave a record.</summary>
    [JsonPropertyName("needs")] public required List<int> Needs { get; init; }
}

/// <summary>The GitHub Actions matrix form: <c>strategy.matrix: ${{ fromJSON(...) }}</c> takes exactly this.</summary>
public sealed record PlanMatrix([property: JsonPropertyName("include")] List<PlanEntry> Include);

/// <summary>
/// <c>harden plan</c>: the job list for an image set — one entry per image × platform in build order, plus the
/// fan-in. Its <see cref="Matrix"/> is a GitHub Actions matrix as is.
/// </summary>
public sealed record BuildPlan
{
    [JsonPropertyName("version")] public int Version { get; init; } = 1;
    /// <summary>The registry the cache state was read from (null: not consulted, every entry changed).</summary>
    [JsonPropertyName("registry")] public string? Registry { get; init; }
    [JsonPropertyName("tool")] public string Tool { get; init; } = InputsDigest.ToolVersion;
    [JsonPropertyName("matrix")] public required PlanMatrix Matrix { get; init; }
    [JsonPropertyName("fanIn")] public required PlanFanIn FanIn { get; init; }

    [JsonIgnore] public IReadOnlyList<PlanEntry> Jobs => Matrix.Include;

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json) + "\n";

    /// <summary>Reads a plan file (bounded, strict): an edited or truncated plan is an error naming the file.</summary>
    public static BuildPlan Load(string path)
    {
        if (!File.Exists(path)) throw new HardenException($"{path}: no plan. Run 'harden plan --out {path}' first.");
        var plan = BoundedJson.ReadFile<BuildPlan>(path, "plan", InputLimits.MaxRecordBytes, Json);
        for (var i = 0; i < plan.Jobs.Count; i++)
            if (plan.Jobs[i].Index != i)
                throw new HardenException($"{path}: entry {i} says index {plan.Jobs[i].Index}; the plan was edited. Run 'harden plan' again.");
        return plan;
    }

    /// <summary>Entry <paramref name="index"/>, or an error naming the plan's size.</summary>
    public PlanEntry Entry(int index, string path) =>
        index >= 0 && index < Jobs.Count ? Jobs[index]
            : throw new HardenException($"{path}: no entry {index} (the plan has {Jobs.Count}: 0 to {Jobs.Count - 1}). Is JOB_COMPLETION_INDEX or --entry from another plan?");

    /// <summary>Hosted runner labels per architecture (GitHub: arm64 runners are ubuntu-24.04-arm).</summary>
    public static string RunnerFor(string architecture) => architecture switch
    {
        "arm64" => "ubuntu-24.04-arm",
        _ => "ubuntu-latest",
    };

    /// <summary>
    /// The plan of <paramref name="images"/> (and their parents) in build order; <paramref name="cacheState"/>
    /// says per entry what the registry holds (null: the registry was not consulted).
    /// </summary>
    public static BuildPlan Create(ImageSet set, InputsDigest inputs, IReadOnlyCollection<string> images,
        IReadOnlyCollection<string>? architectures, Func<PlanEntry, CacheLookupResult>? cacheState, string? registry)
    {
        var entries = new List<PlanEntry>();
        var fanIn = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var image in set.Select(images))
        {
            var archs = ImageSet.Effective(set, image).Architectures.Where(a => architectures == null || architectures.Contains(a))
                .Order(StringComparer.Ordinal).ToList();
            fanIn[image.Name] = archs.Select(PlatformName.ForArchitecture).ToList();
            foreach (var arch in archs)
            {
                var entry = new PlanEntry
                {
                    Index = entries.Count, Image = image.Name, Platform = PlatformName.ForArchitecture(arch), Architecture = arch,
                    Runner = RunnerFor(arch), Inputs = inputs.Of(image, arch), Changed = true, Cache = CacheState.NotConsulted,
                };
                if (cacheState != null)
                {
                    var state = cacheState(entry);
                    entry = entry with { Changed = state.State != CacheState.Hit, Cache = state.State, Manifest = state.Manifest?.Digest };
                }
                entries.Add(entry);
            }
        }
        return new BuildPlan
        {
            Registry = registry,
            Matrix = new PlanMatrix(entries),
            FanIn = new PlanFanIn { Images = fanIn, Needs = entries.Select(e => e.Index).ToList() },
        };
    }
}
