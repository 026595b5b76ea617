using System.Text.Json;
using System.Text.Json.Serialization;
using HardenImage.Common;

namespace HardenImage.Contracts;

/// <summary>
/// images/images.lock.json: what every later stage builds from. Stable, sorted, diff-friendly: sources by
/// name, images by name, architectures by name, packages by name. Same lock ⇒ same image digests.
/// </summary>
public sealed record LockFile
{
    public const int CurrentVersion = 1;

    public int LockVersion { get; init; } = CurrentVersion;
    public List<LockedSource> Sources { get; init; } = new();
    public List<LockedImage> Images { get; init; } = new();

    /// <summary>The newest Release Date among all locked sources (the whole set; builds use <see cref="EpochFor"/>).</summary>
    public DateTimeOffset Epoch() =>
        Sources.Count == 0 ? DateTimeOffset.UnixEpoch : Sources.Max(s => s.Date);

    /// <summary>
    /// SOURCE_DATE_EPOCH default of one image: the newest Release Date among the suites that the image's and its
    /// parents' locked packages come from (their <see cref="LockedPackage.Origin"/>). Only the image's own inputs
    /// decide it, so adding another image or refreshing a suite it does not use leaves its digests unchanged.
    /// An image with no packages anywhere in its chain gets 1970-01-01.
    /// </summary>
    public DateTimeOffset EpochFor(string image)
    {
        var origins = new HashSet<string>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = Image(image); i != null && seen.Add(i.Name); i = i.From != null ? Image(i.From) : null)
            foreach (var p in i.Architectures.SelectMany(a => a.Packages)) origins.Add(p.Origin);
        var dates = Sources.Where(s => origins.Contains(s.Name)).Select(s => s.Date).ToList();
        return dates.Count == 0 ? DateTimeOffset.UnixEpoch : dates.Max();
    }

    public LockedImage? Image(string name) => Images.FirstOrDefault(i => i.Name == name);

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static LockFile Load(string path)
    {
        if (!File.Exists(path))
            throw new HardenException($"{path}: no lock file. Run 'harden lock' first.");
        try
        {
            LockFile lf;
            try { lf = BoundedJson.ReadFile<LockFile>(path, "lock file", InputLimits.MaxLockBytes, JsonOptions); }
            catch (HardenException e) when (e.InnerException is JsonException || e.Message.StartsWith(path + ": the lock file is not valid", StringComparison.Ordinal))
            {
                // Unparseable or a forbidden null: say how to recover, as for any unreadable lock.
                var detail = e.Message.StartsWith(path + ": ", StringComparison.Ordinal) ? e.Message[(path.Length + 2)..] : e.Message;
                throw new HardenException($"{path}: not a valid lock file ({detail.TrimEnd('.')}). Restore the committed one ('git checkout -- {path}'), " +
                    "or re-resolve every image with 'harden lock --update' (it replaces an unreadable lock).", e.ExitCode, e);
            }
            if (lf.LockVersion != CurrentVersion)
                throw new HardenException($"{path}: lockVersion {lf.LockVersion} is not supported (expected {CurrentVersion}). Run 'harden lock --update'.");
            lf.Validate(path);
            return lf;
        }
        catch (JsonException e)
        {
            throw new HardenException($"{path}: not a valid lock file ({e.Message}). Restore the committed one ('git checkout -- {path}'), " +
                "or re-resolve every image with 'harden lock --update' (it replaces an unreadable lock).");
        }
    }

    /// <summary>
    /// Shape only (JSON nulls, malformed digests): what every entry claims is proven against the signed indices
    /// later (<see cref="LockProver"/>). One line naming the JSON path, never a NullReferenceException downstream.
    /// </summary>
    private void Validate(string path)
    {
        void Need(bool ok, string where, string what)
        {
            if (!ok) throw new HardenException($"{path}: {where}: {what}. Fix it or run 'harden lock --update' to rewrite the lock.");
        }
        Need(Sources != null && Images != null, "$", "'sources' and 'images' must be lists");
        for (int s = 0; s < Sources!.Count; s++)
        {
            var src = Sources[s];
            Need(src != null && src.Name != null && src.Url != null && src.Suite != null, $"$.sources[{s}]", "needs name, url and suite");
            Need(src!.InReleaseSha256 != null && Sha256Hex.IsValid(src.InReleaseSha256), $"$.sources[{s}].inReleaseSha256", "must be 64 lower-case hex digits");
        }
        for (int i = 0; i < Images!.Count; i++)
        {
            var img = Images[i];
            Need(img != null && img.Name != null && img.Architectures != null, $"$.images[{i}]", "needs name and architectures");
            for (int a = 0; a < img!.Architectures!.Count; a++)
            {
                var arch = img.Architectures[a];
                var at = $"$.images[{i}].architectures[{a}]";
                Need(arch != null && arch.Architecture != null && arch.Packages != null && arch.DroppedDependencies != null && arch.AssumedEssential != null,
                    at, "needs architecture, packages, droppedDependencies and assumedEssential");
                for (int p = 0; p < arch!.Packages!.Count; p++)
                {
                    var pkg = arch.Packages[p];
                    var pat = $"{at}.packages[{p}]";
                    Need(pkg != null && pkg.Name != null && pkg.Version != null && pkg.Architecture != null && pkg.Source != null
                         && pkg.SourceVersion != null && pkg.Url != null && pkg.Origin != null && pkg.RequiredBy != null, pat,
                        "needs name, version, architecture, source, sourceVersion, url, origin and requiredBy");
                    Need(pkg!.Sha256 != null && Sha256Hex.IsValid(pkg.Sha256), $"{pat}.sha256", "must be 64 lower-case hex digits");
                    Need(pkg.Size >= 0, $"{pat}.size", "must not be negative");
                }
                // dpkg holds one version of a package: a second entry of the same name (an older, proven version
                // from another suite) would overwrite the first one's files unseen (threat T).
                var twice = arch.Packages.GroupBy(p => p.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
                Need(twice == null, $"{at}.packages", $"package '{twice?.Key}' is listed more than once ({string.Join(", ", twice?.Select(p => p.Version) ?? [])}); an image holds one version of a package");
                for (int d = 0; d < arch.DroppedDependencies!.Count; d++)
                {
                    var dd = arch.DroppedDependencies[d];
                    Need(dd != null && dd.Package != null && dd.Dependency != null && dd.Reason != null, $"{at}.droppedDependencies[{d}]", "needs package, dependency and reason");
                }
            }
        }
    }

    /// <summary>Sorts everything, then writes atomically with a trailing newline.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());

    public string ToJson() => JsonSerializer.Serialize(Normalized(), JsonOptions) + "\n";

    public LockFile Normalized() => this with
    {
        Sources = Sources.OrderBy(s => s.Name, StringComparer.Ordinal).ToList(),
        Images = Images.OrderBy(i => i.Name, StringComparer.Ordinal).Select(i => i with
        {
            Architectures = i.Architectures.OrderBy(a => a.Architecture, StringComparer.Ordinal).Select(a => a with
            {
                Packages = a.Packages.OrderBy(p => p.Name, StringComparer.Ordinal).ToList(),
                DroppedDependencies = a.DroppedDependencies
                    .OrderBy(d => d.Package, StringComparer.Ordinal).ThenBy(d => d.Dependency, StringComparer.Ordinal).ToList(),
                AssumedEssential = a.AssumedEssential.OrderBy(s => s, StringComparer.Ordinal).ToList(),
            }).ToList(),
        }).ToList(),
    };
}

/// <summary>One apt source × suite as it was when locked.</summary>
public sealed record LockedSource
{
    /// <summary>Source name from sources.yaml plus suite, e.g. "debian/trixie".</summary>
    public required string Name { get; init; }
    public required string Url { get; init; }
    public required string Suite { get; init; }
    public required string InReleaseSha256 { get; init; }
    public required DateTimeOffset Date { get; init; }
    public DateTimeOffset? ValidUntil { get; init; }
}

public sealed record LockedImage
{
    public required string Name { get; init; }
    public string? From { get; init; }
    /// <summary>SHA-256 over the image definition and the sources it uses; <c>lock --check</c> compares it.</summary>
    public required string InputsSha256 { get; init; }
    public List<LockedArchitecture> Architectures { get; init; } = new();
}

public sealed record LockedArchitecture
{
    public required string Architecture { get; init; }
    /// <summary>Packages this image adds on top of its parent (the parent's are in the parent's entry).</summary>
    public List<LockedPackage> Packages { get; init; } = new();
    /// <summary>Dependency edges not followed because the target is excluded.</summary>
    public List<DroppedDependency> DroppedDependencies { get; init; } = new();
    /// <summary>Essential packages nothing in the image provides: the image assumes their absence is fine.</summary>
    public List<string> AssumedEssential { get; init; } = new();
}

public sealed record LockedPackage
{
    public required string Name { get; init; }
    public required string Version { get; init; }
    public required string Architecture { get; init; }
    public required string Source { get; init; }
    public required string SourceVersion { get; init; }
    public required string Url { get; init; }
    public required string Sha256 { get; init; }
    public required long Size { get; init; }
    /// <summary>The requested package(s) whose dependency closure pulled this one in (itself when requested).</summary>
    public List<string> RequiredBy { get; init; } = new();
    /// <summary>sources.yaml entry (name/suite) the package was taken from.</summary>
    public required string Origin { get; init; }
}

public sealed record DroppedDependency
{
    public required string Package { get; init; }
    public required string Dependency { get; init; }
    public required string Reason { get; init; }
}
