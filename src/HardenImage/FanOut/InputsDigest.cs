using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Lock;

namespace HardenImage.FanOut;

/// <summary>
/// The fan-out cache key of one image × architecture: everything that decides the bytes of its manifest — the
/// tool version, the epoch, the layer compression, the image definition (and sources.yaml), its locked packages
/// for that architecture, its payload files' content, and its parent's inputs digest for the same architecture.
/// The git revision is not in it: it only reaches the multi-arch index (an annotation), which the fan-in writes.
/// Two checkouts that compute one digest build one manifest, bit for bit (Build/ReproducibilityTests).
/// </summary>
public sealed class InputsDigest
{
    /// <summary>Bumped when what goes into the digest changes.</summary>
    public const string Format = "harden-inputs/1";

    private readonly ImageSet _set;
    private readonly LockFile _lock;
    private readonly long? _epochOverride;
    private readonly string _compression;
    private readonly PayloadReader _payload;
    private readonly Dictionary<(string, string), string> _memo = new();

    /// <param name="epochOverride">--source-date-epoch / SOURCE_DATE_EPOCH, as the build takes it; null = per image from the lock.</param>
    public InputsDigest(ImageSet set, LockFile lockFile, long? epochOverride = null, string compression = "Gzip")
    {
        _set = set; _lock = lockFile; _epochOverride = epochOverride; _compression = compression;
        _payload = new PayloadReader(set.Directory);
    }

    /// <summary>harden's release (without the "+commit" suffix the SDK appends) and the build format version.</summary>
    public static string ToolVersion { get; } =
        (typeof(InputsDigest).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0").Split('+')[0]
        + " " + ImageBuilder.ToolVersion;

    /// <summary>Lower-case hex SHA-256 of <paramref name="image"/>'s inputs for <paramref name="architecture"/> (memoised per run).</summary>
    public string Of(ImageDefinition image, string architecture)
    {
        if (_memo.TryGetValue((image.Name, architecture), out var known)) return known;
        var locked = _lock.Image(image.Name)
            ?? throw new HardenException($"{image.File}: image '{image.Name}' is not in the lock. Run 'harden lock' first.");
        if (locked.InputsSha256 != _set.InputsSha256(image))
            throw new HardenException($"{image.File}: changed since it was locked. Run 'harden lock' to update images/images.lock.json.");
        var arch = locked.Architectures.FirstOrDefault(a => a.Architecture == architecture)
            ?? throw new HardenException($"{image.File}: image '{image.Name}' has no {architecture} entry in the lock. Run 'harden lock'.");
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string s) { h.AppendData(Encoding.UTF8.GetBytes(s)); h.AppendData("\n"u8); }
        Add(Format);
        Add(ToolVersion);
        Add(architecture);
        Add((_epochOverride ?? _lock.EpochFor(image.Name).ToUnixTimeSeconds()).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Add(_compression);
        Add(image.Name);
        Add(_set.InputsSha256(image));
        Add(JsonSerializer.Serialize(arch, LockFile.JsonOptions));
        // The same reader and rules as the build's payload copy: paths, directories, content, execute bit.
        foreach (var f in image.Files)
        {
            var where = $"{image.File}:{f.Line}";
            foreach (var item in _payload.List(f, architecture, where))
            {
                if (item.IsDirectory) { Add($"{f.Target} {item.RelativePath}/"); continue; }
                using var content = _payload.OpenFile(item, where, f.SourceFor(architecture));
                Add($"{f.Target} {item.RelativePath} {Convert.ToHexStringLower(SHA256.HashData(content))} {(item.Executable ? "x" : "-")}");
            }
        }
        Add(image.From == null ? "-" : Of(_set.Images[image.From], architecture));
        return _memo[(image.Name, architecture)] = Convert.ToHexStringLower(h.GetHashAndReset());
    }

    /// <summary>The registry tag a job's manifest is cached under: <c>inputs-&lt;64 hex&gt;</c> (a valid tag: ≤ 128 chars).</summary>
    public static string CacheTag(string inputs) => "inputs-" + inputs;
}
