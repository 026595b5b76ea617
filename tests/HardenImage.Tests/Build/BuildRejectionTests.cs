using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Build;

/// <summary>
/// Bad input gets a clear error naming the package and path, and leaves the previous artifacts/oci valid:
/// conflicting files, writes through a symlink, a .deb with a "../" path, a tampered .deb.
/// </summary>
[Trait("Category", "Integration")]
public sealed class BuildRejectionTests : IAsyncLifetime
{
    private readonly ImageSetWorkspace _w = new();
    private byte[] _indexBefore = [];

    public async Task InitializeAsync()
    {
        await _w.LockAsync();
        await _w.BuildAsync();
        _indexBefore = File.ReadAllBytes(Path.Combine(_w.Artifacts, "oci", "index.json"));
    }

    public Task DisposeAsync()
    {
        _w.Dispose();
        return Task.CompletedTask;
    }

    private void AssertPreviousLayoutStillValid()
    {
        Assert.Equal(_indexBefore, File.ReadAllBytes(Path.Combine(_w.Artifacts, "oci", "index.json")));
        var layout = OciLayout.Open(Path.Combine(_w.Artifacts, "oci"));
        foreach (var tag in new[] { "base", "tool" })
            Assert.Empty(new OciLayoutReader(layout).Verify(tag));
        Assert.Empty(Directory.GetFiles(Path.Combine(_w.Artifacts, "oci", "blobs", "sha256"), ".tmp-*"));
    }

    private async Task<HardenException> BuildFails(string image)
    {
        await _w.LockAsync(false, image);
        var e = await Assert.ThrowsAsync<HardenException>(() => _w.BuildAsync(null, null, false, image));
        AssertPreviousLayoutStillValid();
        return e;
    }

    private void Image(string name, string packages, string extra = "") =>
        _w.WriteImage(name, $"name: {name}\nsources: [fixture]\narchitectures: [amd64]\npackages: [{packages}]\n{extra}");

    [Fact]
    public async Task ConflictingFiles_AreRefused_UntilTheImageDeclaresAWinner()
    {
        Image("clash", "conflict-a, conflict-b");
        var e = await BuildFails("clash");
        Assert.Contains("conflict-a and conflict-b both ship /usr/share/conflict.txt", e.Message);
        Assert.Contains("conflicts:", e.Message);

        Image("clash", "conflict-a, conflict-b", "conflicts:\n  /usr/share/conflict.txt: conflict-b\n");
        await _w.LockAsync(false, "clash");
        var built = await _w.BuildAsync(null, null, false, "clash");
        Assert.Contains(built.Manifest.Images, i => i.Name == "clash");
    }

    [Fact]
    public async Task WritingThroughASymlink_IsRefused()
    {
        Image("through", "through-link");
        var e = await BuildFails("through");
        Assert.Contains("through-link ships /usr/lib/evil", e.Message);
        Assert.Contains("symlink /usr/lib/evil", e.Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task DebWithDotDotPath_IsRefusedTheSameWay_UnpackedWhileFetchingOrAfter(bool whileFetching)
    {
        // `harden build` unpacks each .deb as it lands, on a background task: a hostile one must still stop the build
        // with the unpacker's own message (not an AggregateException, not a success), as when unpacked afterwards.
        var deb = _w.Repo.DebPath("dotdot");
        var work = _w.Combine("craft-" + whileFetching);
        Directory.CreateDirectory(work);
        RequiredService.RunOk("/bin/sh", ["-c", $"""
            set -e
            cd '{work}'
            ar x '{deb}'
            rm -f data.tar.*
            mkdir -p payload && echo pwned > payload/evil
            python3 -c "import tarfile; t=tarfile.open('data.tar.gz','w:gz'); t.add('payload/evil', arcname='./../../etc/evil'); t.close()"
            rm -f '{deb}'
            ar rc '{deb}' debian-binary control.tar.* data.tar.gz
            """]);
        _w.Repo.Publish();
        Image("dotdot", "dotdot");
        await _w.LockAsync(false, "dotdot");
        var e = await Assert.ThrowsAsync<HardenException>(() => _w.BuildAsync(whileFetching, null, null, false, "dotdot"));
        Assert.Contains("dotdot", e.Message);
        Assert.Contains("refusing data.tar entry './../../etc/evil': '..' segment. The package is malformed or hostile", e.Message);
        AssertPreviousLayoutStillValid();
        Assert.False(File.Exists("/etc/evil"));
    }

    [Fact]
    public async Task UnpackingWhileFetching_GivesTheSameImages_AsUnpackingAfterEveryDownload()
    {
        var early = await _w.BuildAsync(true, _w.Combine("early"), _w.Combine("cache-early"));
        Assert.True(_w.LastBuilder!.UnpackedWhileFetching > 0);
        var after = await _w.BuildAsync(false, _w.Combine("after"), _w.Combine("cache-after"));
        Assert.Equal(0, _w.LastBuilder!.UnpackedWhileFetching);
        Assert.NotEmpty(early.Manifest.Images);
        Assert.Equal(after.Manifest.Images.Select(i => (i.Name, i.Index)), early.Manifest.Images.Select(i => (i.Name, i.Index)));
    }

    [Fact]
    public async Task TamperedDeb_InCacheAndMirror_IsRefused_ButACacheOnlyCorruptionHeals()
    {
        var lockFile = LockFile.Load(_w.LockPath);
        var pkg = lockFile.Image("tool")!.Architectures.Single(a => a.Architecture == "amd64").Packages.Single(p => p.Name == "fake-tool");
        var cached = new HardenImage.Apt.DebCache(_w.Cache).PathFor(pkg.Sha256);

        // Only the cache is damaged: the fetcher notices on read, evicts it and fetches the good copy again.
        FlipByte(cached);
        var healed = await _w.BuildAsync(null, null, force: true);
        Assert.Equal(BuildManifest.Load(Path.Combine(_w.Artifacts, "build.json")).Image("tool")!.Index, healed.Manifest.Image("tool")!.Index);
        _indexBefore = File.ReadAllBytes(Path.Combine(_w.Artifacts, "oci", "index.json"));

        // Cache and mirror damaged: nothing trustworthy is left, so the build stops and names package and URL.
        FlipByte(cached);
        FlipByte(_w.Repo.DebPath("fake-tool"));
        var e = await Assert.ThrowsAsync<HardenException>(() => _w.BuildAsync(null, null, force: true));
        Assert.Contains("fake-tool", e.Message);
        Assert.Contains("tampered", e.Message);
        AssertPreviousLayoutStillValid();
    }

    private static void FlipByte(string path)
    {
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(path, bytes);
    }
}
