using HardenImage.Contracts;
using HardenImage.Sbom;
using HardenImage.Scan;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Scan;

internal static class ScanFixtures
{
    public static string Data(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "TestData", "Scan", .. parts]);

    /// <summary>The real advisory excerpts (copied from the shared vulndb snapshot).</summary>
    public static string RealDb => Data("vulndb");

    private static readonly Lazy<AdvisoryIndex> RealIndexLazy = new(() => AdvisoryIndexStore.Build(RealDb));
    public static AdvisoryIndex RealIndex => RealIndexLazy.Value;

    public static InventoryPackage DebPackage(string name, string version, string source, string? sourceVersion = null) => new()
    {
        Name = name, Version = version, Architecture = "amd64", SourceName = source, SourceVersion = sourceVersion ?? version,
    };

    public static PythonDistribution Py(string name, string version) => new()
    {
        Name = name, Version = version, MetadataPath = $"usr/lib/python3/dist-packages/{name}-{version}.dist-info/METADATA",
    };

    public static ImageInventory Inventory(string distro, IEnumerable<InventoryPackage> debs, IEnumerable<PythonDistribution>? py = null) => new()
    {
        ImageName = "inference-cpu",
        Architecture = "amd64",
        Digest = "sha256:" + new string('a', 64),
        Distro = distro,
        Created = new DateTimeOffset(2025, 6, 1, 0, 0, 0, TimeSpan.Zero),
        Packages = debs.ToList(),
        PythonDistributions = (py ?? []).ToList(),
    };

    /// <summary>
    /// Writes a lock naming <paramref name="packages"/> for one image and amd64: the scan takes each package's
    /// release from its lock origin (TestImage.Locked: debian/trixie), never from the image's os-release.
    /// </summary>
    public static string WriteLock(string path, string image, params LockedPackage[] packages)
    {
        new LockFile
        {
            Sources = [new() { Name = "debian/trixie", Url = "http://deb.debian.org/debian", Suite = "trixie", InReleaseSha256 = new string('d', 64),
                Date = new DateTimeOffset(2025, 6, 1, 0, 0, 0, TimeSpan.Zero) }],
            Images = [new() { Name = image, InputsSha256 = new string('c', 64),
                Architectures = [new() { Architecture = "amd64", Packages = [.. packages] }] }],
        }.Save(path);
        return path;
    }

    public sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    public static readonly TimeProvider Nov2026 = new FixedTime(new DateTimeOffset(2026, 11, 26, 6, 0, 0, TimeSpan.Zero));
}
