using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Lock;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Build;

/// <summary>A workspace built once; each test adds a hostile image "leak" and removes it again.</summary>
public sealed class PayloadEscapeWorkspace : IAsyncLifetime
{
    public ImageSetWorkspace W { get; private set; } = null!;
    /// <summary>A host file outside the image set, standing in for /etc/shadow or a CI signing key.</summary>
    public string HostSecret { get; private set; } = "";

    public async Task InitializeAsync()
    {
        W = new ImageSetWorkspace();
        HostSecret = W.Combine("host", "signing.key");
        Directory.CreateDirectory(Path.GetDirectoryName(HostSecret)!);
        File.WriteAllText(HostSecret, "-----BEGIN PRIVATE KEY----- host secret");
        await W.LockAsync();
        await W.BuildAsync();
    }

    public Task DisposeAsync()
    {
        W.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>
/// Payload (<c>files:</c>) comes only from inside the image-set directory (threat I): traversal, absolute paths,
/// symlinked files and directories, hard links to host files and FIFOs are refused when the image set is loaded,
/// with file:line and the reason, and the previous artifacts stay as they were.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PayloadEscapeTests(PayloadEscapeWorkspace fixture) : IClassFixture<PayloadEscapeWorkspace>
{
    private ImageSetWorkspace W => fixture.W;

    private async Task<HardenException> LoadRefuses(string source, string target = "/opt/leak")
    {
        var yaml = $"name: leak\nfrom: base\nfiles:\n  - source: {source}\n    target: {target}\n";
        W.WriteImage("leak", yaml);
        var index = File.ReadAllBytes(Path.Combine(W.Artifacts, "oci", "index.json"));
        var buildJson = File.ReadAllBytes(Path.Combine(W.Artifacts, "build.json"));
        try
        {
            // Generous bound, not a timing assertion: a FIFO that is opened blocks forever.
            var e = await Assert.ThrowsAsync<HardenException>(() => Task.Run(() => W.BuildAsync(null, null, false, "leak")).WaitAsync(TimeSpan.FromMinutes(2)));
            Assert.StartsWith(Path.Combine(W.ImagesDir, "leak.yaml") + ":4: files: source", e.Message);
            Assert.DoesNotContain("host secret", e.Message);
            Assert.Equal(index, File.ReadAllBytes(Path.Combine(W.Artifacts, "oci", "index.json")));
            Assert.Equal(buildJson, File.ReadAllBytes(Path.Combine(W.Artifacts, "build.json")));
            Assert.Empty(new OciLayoutReader(OciLayout.Open(Path.Combine(W.Artifacts, "oci"))).Verify("base"));
            return e;
        }
        finally
        {
            File.Delete(Path.Combine(W.ImagesDir, "leak.yaml"));
        }
    }

    [Fact]
    public async Task Payload_DotDotTraversal_IsRefused()
    {
        var rel = Path.GetRelativePath(W.ImagesDir, fixture.HostSecret);
        Assert.StartsWith("../", rel);
        var e = await LoadRefuses(rel);
        Assert.Contains("contains a '..' segment", e.Message);
        // Also when the '..' is hidden in the middle of an otherwise inside path.
        e = await LoadRefuses("payload/../../host/signing.key");
        Assert.Contains("contains a '..' segment", e.Message);
    }

    [Fact]
    public async Task Payload_AbsolutePath_IsRefused()
    {
        var e = await LoadRefuses(fixture.HostSecret);
        Assert.Contains("is an absolute path", e.Message);
        e = await LoadRefuses("~/.ssh/id_ed25519");
        Assert.Contains("is an absolute path", e.Message);
    }

    [Fact]
    public async Task Payload_TheWholeImageSet_IsRefused()
    {
        // "." would ship sources.yaml, the lock and keys/.
        var e = await LoadRefuses("./");
        Assert.Contains("names the image-set directory itself", e.Message);
    }

    [Fact]
    public async Task Payload_SymlinkedDirectoryUnderImages_IsRefused()
    {
        var link = Path.Combine(W.ImagesDir, "vendored");
        Directory.CreateSymbolicLink(link, Path.GetDirectoryName(fixture.HostSecret)!);
        try
        {
            var e = await LoadRefuses("vendored/signing.key");
            Assert.Contains("goes through 'vendored', which is a symlink", e.Message);
            e = await LoadRefuses("vendored");
            Assert.Contains("has 'vendored', which is a symlink", e.Message);
        }
        finally { File.Delete(link); }
    }

    [Fact]
    public async Task Payload_SymlinkedFile_InsideAPayloadDirectory_IsRefused()
    {
        var dir = Path.Combine(W.ImagesDir, "app");
        Directory.CreateDirectory(Path.Combine(dir, "conf"));
        File.WriteAllText(Path.Combine(dir, "main.py"), "print('hi')\n");
        File.CreateSymbolicLink(Path.Combine(dir, "conf", "key.pem"), fixture.HostSecret);
        try
        {
            var e = await LoadRefuses("app");
            Assert.Contains("has 'app/conf/key.pem', which is a symlink", e.Message);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public async Task Payload_HardLinkToAHostFile_IsRefused()
    {
        var linked = Path.Combine(W.ImagesDir, "payload", "innocent.txt");
        RequiredService.RunOk("ln", [fixture.HostSecret, linked]);
        try
        {
            var e = await LoadRefuses("payload/innocent.txt");
            Assert.Contains("has 'payload/innocent.txt', which has 2 hard links", e.Message);
        }
        finally { File.Delete(linked); }
    }

    [Fact]
    public async Task Payload_Fifo_IsRefusedWithoutHanging()
    {
        var fifo = Path.Combine(W.ImagesDir, "payload", "pipe");
        RequiredService.RunOk("mkfifo", [fifo]);
        try
        {
            var e = await LoadRefuses("payload/pipe");
            Assert.Contains("has 'payload/pipe', which is a FIFO, not a regular file", e.Message);
        }
        finally { File.Delete(fifo); }
    }

    [Fact]
    public async Task Payload_MissingSource_IsAClearError()
    {
        var e = await LoadRefuses("payload/nope");
        Assert.Contains("does not exist (no 'payload/nope' in", e.Message);
    }

    [Fact]
    public async Task Payload_TargetThroughAPackageSymlink_IsRefused()
    {
        // evil-link ships /usr/lib/evil -> /etc: a payload aimed below it would land in /etc.
        W.WriteImage("leak", "name: leak\nfrom: base\npackages: [evil-link]\nfiles:\n  - source: payload/whoami\n    target: /usr/lib/evil/passwd\n");
        try
        {
            await W.LockAsync(false, "leak");
            var e = await Assert.ThrowsAsync<HardenException>(() => W.BuildAsync(null, null, false, "leak"));
            Assert.Contains("leak.yaml:5: files: target /usr/lib/evil/passwd: entry 'usr/lib/evil/passwd' would be written through the symlink 'usr/lib/evil'", e.Message);
        }
        finally
        {
            File.Delete(Path.Combine(W.ImagesDir, "leak.yaml"));
            await W.LockAsync();
        }
    }
}

/// <summary>
/// The check and the open cannot be split by a swap (threat I, TOCTOU): a file replaced by a symlink or by another
/// file between the reader's lstat and its open is refused, never followed.
/// </summary>
public sealed class PayloadSwapTests : IDisposable
{
    private readonly TempDir _dir = new("hi-payload-swap");

    public PayloadSwapTests()
    {
        Directory.CreateDirectory(_dir.Combine("images", "app"));
        File.WriteAllText(_dir.Combine("images", "app", "config.txt"), "harmless");
        File.WriteAllText(_dir.Combine("signing.key"), "host secret");
    }

    public void Dispose() => _dir.Dispose();

    private HardenException OpenWithSwap(Action<string> swap)
    {
        var reader = new PayloadReader(_dir.Combine("images")) { BetweenCheckAndOpen = swap };
        var item = new PayloadReader(_dir.Combine("images")).List("app/config.txt", "app.yaml:7").Single();
        return Assert.Throws<HardenException>(() => reader.OpenFile(item, "app.yaml:7", "app/config.txt").Dispose());
    }

    [Fact]
    public void Payload_SwappedForASymlinkAfterTheCheck_IsRefusedNotFollowed()
    {
        var e = OpenWithSwap(path => { File.Delete(path); File.CreateSymbolicLink(path, _dir.Combine("signing.key")); });
        Assert.StartsWith("app.yaml:7: files: source 'app/config.txt' has 'app/config.txt', which cannot be opened", e.Message);
        Assert.DoesNotContain("host secret", e.Message);
    }

    [Fact]
    public void Payload_ReplacedByAnotherFileAfterTheCheck_IsRefused()
    {
        var e = OpenWithSwap(path =>
        {
            var other = path + ".new";
            File.WriteAllText(other, "swapped in");
            File.Move(other, path, overwrite: true);
        });
        Assert.Contains("has 'app/config.txt', which was replaced while it was being read", e.Message);
    }
}
