using System.Text.Json;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Deploy;
using HardenImage.Lock;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Build;

/// <summary>One locked and built workspace shared by the read-only checks below.</summary>
public sealed class BuiltWorkspace : IAsyncLifetime
{
    public ImageSetWorkspace Workspace { get; private set; } = null!;
    public LockOutcome Lock { get; private set; } = null!;
    public BuildOutcome Build { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Workspace = new ImageSetWorkspace();
        Lock = await Workspace.LockAsync();
        Build = await Workspace.BuildAsync();
    }

    public Task DisposeAsync()
    {
        Workspace.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>Lock and build against a signed loopback repository, checked by independent readers.</summary>
[Trait("Category", "Integration")]
public sealed class BuildPipelineTests(BuiltWorkspace built) : IClassFixture<BuiltWorkspace>
{
    private ImageSetWorkspace W => built.Workspace;

    [Fact]
    public void Lock_PinsEveryPackageBySha256_AndListsDroppedEdges()
    {
        var lockFile = LockFile.Load(W.LockPath);
        var baseAmd64 = lockFile.Image("base")!.Architectures.Single(a => a.Architecture == "amd64");
        Assert.Equal(["base-files", "ca-certificates", "fake-common", "fake-shell", "fake-su", "libfake1"], baseAmd64.Packages.Select(p => p.Name));
        Assert.All(baseAmd64.Packages, p => Assert.True(Sha256Hex.IsValid(p.Sha256)));
        var lib = baseAmd64.Packages.Single(p => p.Name == "libfake1");
        Assert.Equal(("fake", "1.0-1"), (lib.Source, lib.SourceVersion));
        Assert.Equal(["libfake1"], baseAmd64.Packages.Single(p => p.Name == "fake-common").RequiredBy);
        Assert.Contains(baseAmd64.DroppedDependencies, d => d.Package == "fake-common" && d.Dependency.StartsWith("debconf", StringComparison.Ordinal));
        Assert.Contains(baseAmd64.DroppedDependencies, d => d.Package == "base-files" && d.Dependency == "awk");
        // The child image only adds what the parent lacks.
        var tool = lockFile.Image("tool")!.Architectures.Single(a => a.Architecture == "amd64");
        Assert.Equal(["fake-tool"], tool.Packages.Select(p => p.Name));
        var src = Assert.Single(lockFile.Sources);
        Assert.Equal("fixture/stable", src.Name);
        Assert.Equal(new DateTimeOffset(2025, 5, 17, 0, 0, 0, TimeSpan.Zero), src.Date);
        // Stable, sorted, diff-friendly: writing it again gives the same bytes.
        Assert.Equal(File.ReadAllText(W.LockPath), lockFile.ToJson());
    }

    [Fact]
    public void LockCheck_IsCleanForTheLockItWrote()
    {
        Assert.Empty(ImageLocker.Check(ImageSet.Load(W.ImagesDir), LockFile.Load(W.LockPath)));
    }

    [Fact]
    public void LockCheck_ReportsAStaleLock_AfterAnImageChanges()
    {
        // A copy of the image set with one edited definition, checked against the lock written for the original.
        using var copy = new TempDir("hi-stale");
        foreach (var f in Directory.GetFiles(W.ImagesDir, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(copy.Path, Path.GetRelativePath(W.ImagesDir, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }
        File.AppendAllText(Path.Combine(copy.Path, "tool.yaml"), "\nexclude: [mawk]\n");
        var stale = ImageLocker.Check(ImageSet.Load(copy.Path), LockFile.Load(W.LockPath));
        var only = Assert.Single(stale);
        Assert.Equal("tool", only.Image);
        // The CLI gate: exit 1 and a table naming the image.
        var (code, stdout, _) = HardenImage.Tests.Cli.HelpTests.Harden("lock", "--check", "--images", copy.Path);
        Assert.Equal(1, code);
        Assert.Contains("tool", stdout);
        Assert.Contains("lock is stale", stdout);
    }

    [Fact]
    public void Build_WritesMultiArchIndexPerImage_AndBuildJson()
    {
        var manifest = BuildManifest.Load(Path.Combine(W.Artifacts, "build.json"));
        Assert.Equal(["base", "tool"], manifest.Images.Select(i => i.Name));
        var baseImage = manifest.Image("base")!;
        var tool = manifest.Image("tool")!;
        Assert.Equal(["amd64", "arm64"], baseImage.Architectures.Select(a => a.Architecture));
        // The child's layers are the parent's plus its own: shared blobs.
        foreach (var arch in new[] { "amd64", "arm64" })
        {
            var b = baseImage.Architectures.Single(a => a.Architecture == arch);
            var t = tool.Architectures.Single(a => a.Architecture == arch);
            Assert.Equal(b.Layers.Select(l => l.Digest), t.Layers.Take(b.Layers.Count).Select(l => l.Digest));
            Assert.Equal(b.Layers.Count + 1, t.Layers.Count);
        }
        var layout = OciLayout.Open(Path.Combine(W.Artifacts, "oci"));
        Assert.Equal(baseImage.Index, layout.Resolve("base")!.Digest);
        Assert.Equal(baseImage.Index, layout.Resolve("base:1.0")!.Digest);
        var config = layout.ReadJson<ImageConfig>(baseImage.Architectures[0].Config);
        Assert.Equal("65532:65532", config.Config!.User);
        Assert.Equal("2025-05-17T00:00:00Z", config.Created);
        Assert.Contains("SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", config.Config.Env!);
        var toolManifest = layout.ReadJson<ImageManifest>(tool.Architectures[0].Manifest);
        Assert.Equal(baseImage.Architectures[0].Manifest, toolManifest.Annotations![Annotations.BaseDigest]);
    }

    [Fact]
    public async Task Build_UnchangedLock_DoesNoWork()
    {
        var again = await W.BuildAsync();
        Assert.True(again.UpToDate);
        Assert.Equal(JsonSerializer.Serialize(built.Build.Manifest), JsonSerializer.Serialize(again.Manifest));
    }

    [Fact]
    public void Umoci_UnpacksAHardenedRootfs()
    {
        var umoci = RequiredService.Tool("umoci", "umoci");
        using var dir = new TempDir("hi-umoci");
        var bundle = dir.Combine("bundle");
        // umoci cannot choose a platform from a multi-arch index ("tag is ambiguous"): skopeo selects amd64.
        var skopeo = RequiredService.Tool("skopeo", "skopeo");
        RequiredService.RunOk(skopeo, ["copy", "--override-arch", "amd64", $"oci:{Path.Combine(W.Artifacts, "oci")}:tool", $"oci:{dir.Combine("single")}:tool"]);
        RequiredService.RunOk(umoci, ["unpack", "--image", dir.Combine("single") + ":tool", bundle]);
        var root = Path.Combine(bundle, "rootfs");
        string P(string p) => Path.Combine(root, p);
        // Shells and setuid are gone; merged-/usr shape kept; the package's bin/sh went to usr/bin and was removed.
        Assert.False(File.Exists(P("usr/bin/sh")) || File.Exists(P("usr/bin/bash")));
        Assert.Equal("usr/bin", new FileInfo(P("bin")).LinkTarget);
        Assert.Equal(Convert.ToInt32("755", 8), (int)File.GetUnixFileMode(P("usr/bin/su")));
        // Accounts, home and /tmp.
        Assert.Contains("nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin", File.ReadAllText(P("etc/passwd")));
        Assert.Contains("root:x:0:0:root:/root:/sbin/nologin", File.ReadAllText(P("etc/passwd")));
        Assert.Equal(Convert.ToInt32("1777", 8), (int)File.GetUnixFileMode(P("tmp")));
        Assert.Equal(Convert.ToInt32("700", 8), (int)File.GetUnixFileMode(P("home/nonroot")));
        // Docs gone, copyright kept; scanners' records present for parent and child packages; no dpkg status.
        Assert.False(File.Exists(P("usr/share/doc/base-files/changelog.gz")));
        Assert.False(Directory.Exists(P("usr/share/man")));
        Assert.True(File.Exists(P("usr/share/doc/base-files/copyright")));
        Assert.StartsWith("Package: libfake1\n", File.ReadAllText(P("var/lib/dpkg/status.d/libfake1")));
        Assert.True(File.Exists(P("var/lib/dpkg/status.d/fake-tool")));
        // The fixture packages come from plain dpkg-deb, which writes no md5sums: none is invented.
        Assert.False(File.Exists(P("var/lib/dpkg/status.d/libfake1.md5sums")));
        Assert.False(File.Exists(P("var/lib/dpkg/status")));
        // CA bundle in certificate path order; payload executable.
        Assert.Equal("-----BEGIN CERTIFICATE-----\nQUFB\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nQkJC\n-----END CERTIFICATE-----\n",
            File.ReadAllText(P("etc/ssl/certs/ca-certificates.crt")));
        Assert.True(File.Exists(P("usr/local/bin/whoami")));
        Assert.Equal("tool amd64", File.ReadAllText(P("usr/bin/fake-tool")));
    }

    [Fact]
    public void Skopeo_InspectsTheLayout_AndCopiesItToARealRegistry()
    {
        var skopeo = RequiredService.Tool("skopeo", "skopeo");
        var layout = Path.Combine(W.Artifacts, "oci");
        var raw = RequiredService.RunOk(skopeo, ["inspect", "--raw", $"oci:{layout}:base"]);
        Assert.Contains(MediaTypes.ImageIndex, raw);
        var inspect = JsonDocument.Parse(RequiredService.RunOk(skopeo, ["inspect", "--override-arch", "arm64", $"oci:{layout}:tool"]));
        Assert.Equal("arm64", inspect.RootElement.GetProperty("Architecture").GetString());
        using var registry = RegistryFixture.Start();
        RequiredService.RunOk(skopeo, ["copy", "--all", "--dest-tls-verify=false", $"oci:{layout}:tool", $"docker://{registry.Host}/hardened/tool:1"]);
        var remote = RequiredService.RunOk(skopeo, ["inspect", "--raw", "--tls-verify=false", $"docker://{registry.Host}/hardened/tool:1"]);
        Assert.Equal(File.ReadAllText(Path.Combine(layout, "blobs", "sha256", Digest.Parse(BuildManifest.Load(Path.Combine(W.Artifacts, "build.json")).Image("tool")!.Index).Hex)), remote);
    }

    [Fact]
    public async Task DockerEngine_RunsTheImageAsNonroot_AndHasNoShell()
    {
        using var engine = new DockerEngine(RequiredService.DockerHost());
        var tag = $"hi-test/base:{Guid.NewGuid():N}";
        await engine.LoadAsync(OciLayout.Open(Path.Combine(W.Artifacts, "oci")), "base", "amd64", tag);
        try
        {
            var run = await engine.RunAsync(new ContainerRunSpec { Image = tag, Cmd = ["probe"] });
            Assert.True(run.ExitCode == 0, run.StdErr);
            Assert.Equal("uid=65532 gid=65532 arg=probe", run.StdOut.Trim());
            // The engine must refuse to exec /bin/sh because the file is not there; any other failure (engine down,
            // image not loaded, a shell that runs) is a failure of this test, never a pass.
            var noShell = await Assert.ThrowsAsync<Docker.DotNet.DockerApiException>(() =>
                engine.RunAsync(new ContainerRunSpec { Image = tag, Entrypoint = ["/bin/sh"], Cmd = ["-c", "id"] }));
            Assert.Contains("stat /bin/sh: no such file or directory", noShell.Message);
        }
        finally
        {
            await engine.RemoveImageAsync(tag);
        }
    }
}
