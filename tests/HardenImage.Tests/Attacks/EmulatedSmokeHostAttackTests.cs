using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using HardenImage.Common;
using HardenImage.Deploy;
using HardenImage.Oci;
using HardenImage.Tests.Smoke;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// Threat T/E (review of the cuda branch): emulated smoke runs as root and prepares the image's unpacked root on the
/// host before the chroot: it writes empty files at dev/null… and /.hi-emulator to bind over, and runs
/// <c>mkdir -p</c> + <c>mount --bind</c> at the mount targets. A hostile layout that ships one of those names as a
/// symlink to a host path (dev/null -> /etc/shadow) had the preparation truncate the host file; a mount target that
/// passes a symlink had mkdir create host directories. Both are refused before anything is written on the host.
/// </summary>
public sealed class EmulatedSmokeHostAttackTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hi-emu-attack-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (OciLayoutReader Reader, ResolvedManifest Image) Image(params TarEntry[] entries) =>
        HostileArm64Image.Write(Path.Combine(_dir, "layout"), entries);

    private string Victim()
    {
        var victim = Path.Combine(_dir, "host-secret");
        File.WriteAllText(victim, "root:$y$j9T$not-yours\n");
        return victim;
    }

    [Theory]
    [InlineData("dev/null")]
    [InlineData("dev/urandom")]
    [InlineData(".hi-emulator")]
    public async Task EmulatedSmoke_ImageSymlinkAtABindTarget_IsRefused_AndTheHostFileIsNotTruncated(string name)
    {
        var victim = Victim();
        var (reader, image) = Image(
            new PaxTarEntry(TarEntryType.Directory, "dev") { Mode = (UnixFileMode)Convert.ToInt32("755", 8) },
            new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = victim });
        using var runtime = new EmulatedSmokeRuntime("arm64", "/usr/bin/qemu-aarch64-static", Directory.CreateDirectory(Path.Combine(_dir, "work")).FullName);
        var e = await Assert.ThrowsAsync<HardenException>(() => runtime.LoadAsync(reader, image, "hostile", "arm64", "t", CancellationToken.None));
        Assert.Contains($"/{name} is a symlink in the image; an emulated run binds a host file over it, so the image is refused", e.Message);
        Assert.Equal("root:$y$j9T$not-yours\n", File.ReadAllText(victim));
    }

    [Fact]
    public async Task EmulatedSmoke_MountTargetThroughAnImageSymlink_IsRefused_BeforeAnyHostMkdir()
    {
        var hostDir = Path.Combine(_dir, "host-etc");
        var (reader, image) = Image(new PaxTarEntry(TarEntryType.SymbolicLink, "models") { LinkName = hostDir });
        using var runtime = new EmulatedSmokeRuntime("arm64", "/usr/bin/qemu-aarch64-static", Directory.CreateDirectory(Path.Combine(_dir, "work")).FullName);
        await runtime.LoadAsync(reader, image, "hostile", "arm64", "t", CancellationToken.None);
        var spec = new ContainerRunSpec { Image = "t", ReadOnlyMounts = new Dictionary<string, string> { [_dir] = "/models/tiny" } };
        var e = Assert.Throws<HardenException>(() => runtime.CommandLine(spec));
        Assert.Contains("mount target '/models/tiny' passes the symlink /models in the image", e.Message);
        Assert.False(Directory.Exists(hostDir));
    }
}
