using System.Formats.Tar;
using System.IO.Compression;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Oci;
using HardenImage.Tests.Fixtures;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Build;

/// <summary>
/// Hardening by what a file is, through real .debs in the signed fixture repository (threat E): a shell under
/// usr/libexec, a renamed busybox (a real ELF carrying BusyBox's identity), a 2777 directory and package files
/// owned by the runtime user 65532 are each found and fixed; and the merged-/usr rule production now shares with
/// Deb/PathSafety (libo32, alias replacement) holds.
/// </summary>
[Trait("Category", "Integration")]
public sealed class HardeningByIdentityTests : IAsyncLifetime
{
    private readonly ImageSetWorkspace _w = new();

    public async Task InitializeAsync()
    {
        var busybox = _w.Combine("bb");
        Directory.CreateDirectory(busybox);
        File.WriteAllText(Path.Combine(busybox, "bb.c"),
            "#include <stdio.h>\nint main(void){puts(\"BusyBox v1.36.1 (Debian 1:1.36.1-9) multi-call binary.\");return 0;}\n");
        RequiredService.RunOk(RequiredService.Tool("gcc", "gcc"), ["-Os", "-o", Path.Combine(busybox, "bb"), Path.Combine(busybox, "bb.c")]);
        _w.Repo.Add(
            new FakePackage("sneaky-shell", "1.0", "all")
                .WithFile("/usr/libexec/sneaky/sh", "#!fake-shell\n", (UnixFileMode)Convert.ToInt32("755", 8))
                .WithFile("/usr/lib/sneaky/helper", File.ReadAllBytes(Path.Combine(busybox, "bb")), (UnixFileMode)Convert.ToInt32("755", 8))
                .WithFile("/usr/lib/sneaky/data.txt", "kept"),
            new FakePackage("perm-tricks", "1.0", "all").WithFile("/usr/share/perm-tricks/placeholder", "rewritten below"),
            new FakePackage("libo32-user", "1.0", "all").WithFile("/libo32/libx.so", "o32 library"),
            new FakePackage("alias-clobber", "1.0", "all").WithSymlink("/lib", "/tmp"));
        _w.Repo.Publish();
        // perm-tricks as a hostile maintainer would ship it: a 2777 directory and files owned by 65532.
        var deb = _w.Repo.DebPath("perm-tricks");
        var work = _w.Combine("craft");
        Directory.CreateDirectory(work);
        RequiredService.RunOk("/bin/sh", ["-c", $"""
            set -e
            cd '{work}'
            ar x '{deb}'
            rm -f data.tar.*
            python3 - <<'PY'
            import io, tarfile
            t = tarfile.open('data.tar.gz', 'w:gz', format=tarfile.GNU_FORMAT)
            def d(name, mode, uid=0):
                i = tarfile.TarInfo(name); i.type = tarfile.DIRTYPE; i.mode = mode; i.uid = i.gid = uid; t.addfile(i)
            def f(name, data, mode, uid):
                i = tarfile.TarInfo(name); i.size = len(data); i.mode = mode; i.uid = i.gid = uid; t.addfile(i, io.BytesIO(data))
            d('./', 0o755); d('./usr/', 0o755); d('./usr/share/', 0o755)
            d('./usr/share/perm-tricks/', 0o2777)
            f('./usr/share/perm-tricks/placeholder', b'owned by the runtime user', 0o644, 65532)
            d('./usr/lib/', 0o755); d('./usr/lib/perm-tricks/', 0o755, 65532)
            f('./usr/lib/perm-tricks/plugin.so', b'code the workload could rewrite', 0o755, 65532)
            t.close()
            PY
            rm -f '{deb}'
            ar rc '{deb}' debian-binary control.tar.* data.tar.gz
            """]);
        _w.Repo.Publish();
        _w.WriteImage("hostile", "name: hostile\nfrom: base\npackages: [sneaky-shell, perm-tricks, libo32-user]\n");
        await _w.LockAsync();
        await _w.BuildAsync();
    }

    public Task DisposeAsync()
    {
        _w.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>The hostile image's own layer (amd64), entry by entry.</summary>
    private Dictionary<string, TarEntry> OwnLayer()
    {
        var built = BuildManifest.Load(Path.Combine(_w.Artifacts, "build.json")).Image("hostile")!;
        var layer = built.Architectures.Single(a => a.Architecture == "amd64").Layers[^1];
        using var blob = OciLayout.Open(Path.Combine(_w.Artifacts, "oci")).OpenBlob(layer.Digest);
        using var gz = new GZipStream(blob, CompressionMode.Decompress);
        using var tar = new TarReader(gz);
        var entries = new Dictionary<string, TarEntry>(StringComparer.Ordinal);
        while (tar.GetNextEntry(copyData: false) is { } e) entries[e.Name.TrimStart('.', '/').TrimEnd('/')] = e;
        return entries;
    }

    private async Task<BuildOutcome> Rebuilt() => await _w.BuildAsync(null, null, force: true, "hostile");

    [Fact]
    public async Task ShellUnderUsrLibexec_AndRenamedBusybox_AreRemoved()
    {
        var layer = OwnLayer();
        Assert.DoesNotContain("usr/libexec/sneaky/sh", layer.Keys);
        Assert.DoesNotContain("usr/lib/sneaky/helper", layer.Keys);
        Assert.Contains("usr/lib/sneaky/data.txt", layer.Keys);
        var actions = (await Rebuilt()).Report.Single(r => r.Image == "hostile" && r.Architecture == "amd64").Hardening;
        Assert.Contains(actions, a => a is { Transform: "no-shells", Action: "removed", Path: "usr/libexec/sneaky/sh" } && a.Detail.StartsWith("named 'sh'", StringComparison.Ordinal));
        Assert.Contains(actions, a => a is { Transform: "no-shells", Action: "removed", Path: "usr/lib/sneaky/helper" }
                                      && a.Detail == "a BusyBox multi-call binary (by content); from sneaky-shell");
    }

    [Fact]
    public void SetgidDirectory2777_EndsWithoutSetgidOrWorldWrite()
    {
        var dir = OwnLayer()["usr/share/perm-tricks"];
        Assert.Equal(TarEntryType.Directory, dir.EntryType);
        Assert.Equal(Convert.ToInt32("775", 8), (int)dir.Mode);
        Assert.Equal((UnixFileMode)0, dir.Mode & (UnixFileMode.SetGroup | UnixFileMode.SetUser));
    }

    [Fact]
    public async Task PackageFilesOwnedByTheRuntimeUser_AreChownedToRoot()
    {
        var layer = OwnLayer();
        foreach (var path in new[] { "usr/share/perm-tricks/placeholder", "usr/lib/perm-tricks", "usr/lib/perm-tricks/plugin.so" })
            Assert.Equal((0, 0), (layer[path].Uid, layer[path].Gid));
        var actions = (await Rebuilt()).Report.Single(r => r.Image == "hostile" && r.Architecture == "amd64").Hardening;
        Assert.Contains(actions, a => a is { Transform: "root-owned", Path: "usr/lib/perm-tricks/plugin.so" } && a.Detail.StartsWith("owner 65532:65532 → 0:0", StringComparison.Ordinal));
    }

    [Fact]
    public void Libo32Alias_IsCanonicalisedUnderUsr_ByTheSharedMergedUsrRule()
    {
        var layer = OwnLayer();
        Assert.Contains("usr/libo32/libx.so", layer.Keys);
        Assert.DoesNotContain("libo32/libx.so", layer.Keys);
    }

    [Fact]
    public async Task PackageReplacingAMergedUsrAlias_IsRefused_AndTheLayoutStaysIntact()
    {
        var index = File.ReadAllBytes(Path.Combine(_w.Artifacts, "oci", "index.json"));
        _w.WriteImage("clobber", "name: clobber\nfrom: base\npackages: [alias-clobber]\n");
        await _w.LockAsync(false, "clobber");
        var e = await Assert.ThrowsAsync<HardenException>(() => _w.BuildAsync(null, null, false, "clobber"));
        Assert.Contains("image clobber: package alias-clobber: refusing entry 'lib' (symlink -> '/tmp'): on a merged-/usr system 'lib' must be the symlink to usr/lib", e.Message);
        Assert.Equal(index, File.ReadAllBytes(Path.Combine(_w.Artifacts, "oci", "index.json")));
        Assert.Empty(new OciLayoutReader(OciLayout.Open(Path.Combine(_w.Artifacts, "oci"))).Verify("hostile"));
    }
}
