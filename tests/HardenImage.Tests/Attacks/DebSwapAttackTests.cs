using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Tests.Build;
using HardenImage.Tests.Fixtures;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// The fetch verifies each cached .deb against the lock's SHA-256; the build unpacks it later, by its path. A writer of
/// a shared cache who replaces the file in between must not get its bytes into an image, nor into the sealed
/// unpacked tree that later builds trust.
/// </summary>
[Trait("Category", "Integration")]
public sealed class DebSwapAttackTests : IAsyncLifetime
{
    private readonly ImageSetWorkspace _w = new();
    private List<(string, string)> _clean = null!;

    public async Task InitializeAsync()
    {
        await _w.LockAsync();
        _clean = Digests((await _w.BuildAsync()).Manifest);
    }

    public Task DisposeAsync()
    {
        _w.Dispose();
        return Task.CompletedTask;
    }

    private static List<(string, string)> Digests(BuildManifest m) => m.Images.Select(i => (i.Name, i.Index)).Order().ToList();

    [Fact]
    public async Task DebReplacedInTheCache_AfterTheFetchVerifiedIt_BeforeItIsUnpacked_NeverReachesAnImage()
    {
        // The attacker's base-files: same name, version and architecture, one file more.
        using var evil = new AptRepositoryFixture();
        evil.Add(new FakePackage("base-files", "13.8", "amd64").Essential()
            .WithFile("/etc/os-release", "PRETTY_NAME=\"Fixture GNU/Linux\"\nID=debian\nVERSION_ID=\"13\"\n")
            .WithFile("/usr/bin/backdoor", "evil", (UnixFileMode)Convert.ToInt32("755", 8))).Publish();
        var lockFile = LockFile.Load(_w.LockPath);
        var baseFiles = lockFile.Images.SelectMany(i => i.Architectures).Where(a => a.Architecture == "amd64")
            .SelectMany(a => a.Packages).First(p => p.Name == "base-files");
        var cached = Path.Combine(_w.Cache, "debs", "sha256", baseFiles.Sha256);
        foreach (var p in Directory.GetFiles(Path.Combine(_w.Cache, "unpacked-v4"))) File.Delete(p); // the build must read the .debs

        BuildOutcome? swapped = null;
        HardenException? refused = null;
        try
        {
            swapped = await _w.BuildAsync(_ =>
            {
                File.Copy(evil.DebPath("base-files"), cached + ".planted");
                File.Move(cached + ".planted", cached, overwrite: true);
                return Task.CompletedTask;
            }, unpackWhileFetching: false, force: true);
        }
        catch (HardenException e) { refused = e; }

        if (swapped != null) Assert.Equal(_clean, Digests(swapped.Manifest));
        else Assert.Contains("is not the .deb the fetch verified", refused!.Message);
        // Nothing of it was sealed into the cache either: the next undisturbed build is the clean one.
        File.Delete(cached);
        Assert.Equal(_clean, Digests((await _w.BuildAsync(null, null, force: true)).Manifest));
    }
}
