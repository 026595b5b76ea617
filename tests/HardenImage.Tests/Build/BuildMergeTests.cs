using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Oci;
using HardenImage.Tests.Fixtures;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Build;

/// <summary>
/// The signed fixture repository plus the packages that meet in one image path: symlinks an earlier package (or the
/// parent image) placed and a later package writes through, identical and near-identical files, a directory a later
/// package turns into a symlink or file, declared winners. Some .debs are rewritten as a hostile maintainer would
/// ship them (no directory entry above a file, a directory with other permissions). Built once; each test adds an
/// image of its own.
/// </summary>
public sealed class BuildMergeWorkspace : IAsyncLifetime
{
    public ImageSetWorkspace W { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        W = new ImageSetWorkspace();
        var exe = (UnixFileMode)Convert.ToInt32("755", 8);
        W.Repo.Add(
            // Package order is by name: plug-link is merged before plug-writer and plug-dir.
            new FakePackage("plug-link", "1.0", "all").WithSymlink("/usr/lib/plugins", "/etc"),
            new FakePackage("plug-writer", "1.0", "all").WithFile("/usr/share/plug-writer/placeholder", "rewritten below"),
            new FakePackage("plug-dir", "1.0", "all").WithFile("/usr/lib/plugins/evil.so", "code"),
            new FakePackage("alias-links", "1.0", "all").WithSymlink("/lib64", "/usr/lib64").WithSymlink("/sbin", "usr/sbin")
                .WithFile("/usr/share/alias-links/readme", "ships the merged-/usr links, as base-files does"),
            new FakePackage("same-a", "1.0", "all").WithFile("/usr/share/same/notice.txt", "identical bytes", exe).WithSymlink("/usr/share/same/current", "notice.txt"),
            new FakePackage("same-b", "1.0", "all").WithFile("/usr/share/same/notice.txt", "identical bytes", exe).WithSymlink("/usr/share/same/current", "notice.txt"),
            new FakePackage("setuid-twin", "1.0", "all").WithFile("/usr/share/same/notice.txt", "identical bytes", (UnixFileMode)Convert.ToInt32("4755", 8)),
            new FakePackage("twin-link", "1.0", "all").WithSymlink("/usr/share/same/current", "/etc/shadow"),
            new FakePackage("shape-dir", "1.0", "all").WithFile("/usr/share/shape/inner.txt", "inside the directory"),
            new FakePackage("shape-file", "1.0", "all").WithFile("/usr/share/shape", "a file where a directory is"),
            new FakePackage("shape-link", "1.0", "all").WithSymlink("/usr/share/shape", "/etc"),
            new FakePackage("flat-a", "1.0", "all").WithFile("/usr/share/flat", "a file"),
            new FakePackage("flat-b", "1.0", "all").WithFile("/usr/share/flat/inner.txt", "a directory where a file is"),
            new FakePackage("swap-link", "1.0", "all").WithSymlink("/usr/share/swap/tool", "tool.real"),
            new FakePackage("swap-tool", "1.0", "all").WithFile("/usr/share/swap/tool", "the tool itself", exe),
            new FakePackage("dm-a", "1.0", "all").WithFile("/usr/share/dm/placeholder", "rewritten below"),
            new FakePackage("dm-b", "1.0", "all").WithFile("/usr/share/dm/placeholder", "rewritten below"),
            // Three packages at one path; the declared winner comes last in name order.
            new FakePackage("tri-a", "1.0", "all").WithFile("/usr/share/tri.txt", "from a"),
            new FakePackage("tri-b", "1.0", "all").WithFile("/usr/share/tri.txt", "from b"),
            new FakePackage("tri-c", "1.0", "all").WithFile("/usr/share/tri.txt", "from c"),
            // A declared winner turns a symlink into a file; a later package ships entries below that file.
            new FakePackage("under-link", "1.0", "all").WithSymlink("/usr/share/under", "elsewhere"),
            new FakePackage("under-mfile", "1.0", "all").WithFile("/usr/share/under", "a file now"),
            new FakePackage("under-zchild", "1.0", "all").WithFile("/usr/share/under/child.txt", "below a file"),
            new FakePackage("owner-twin", "1.0", "all").WithFile("/usr/share/owner-twin/placeholder", "rewritten below"));
        W.Repo.Publish();
        // plug-writer ships the file without the directory entries above it (dpkg-deb always writes them; a
        // hostile .deb need not): only the merge's own symlink check stands between it and /etc.
        RewriteData("plug-writer", DirectoryEntry("./"), DirectoryEntry("./usr/"), DirectoryEntry("./usr/lib/"), FileEntry("./usr/lib/plugins/passwd", "root::0:0::/:/bin/sh", "644"));
        RewriteData("dm-a", DirectoryEntry("./"), DirectoryEntry("./usr/"), DirectoryEntry("./usr/share/"), DirectoryEntry("./usr/share/dm/", "755"), FileEntry("./usr/share/dm/a.txt", "a", "644"));
        // same-a's bytes and mode, but owned by uid 1000: identical on content, not on who owns it.
        RewriteData("owner-twin", DirectoryEntry("./"), DirectoryEntry("./usr/"), DirectoryEntry("./usr/share/"), DirectoryEntry("./usr/share/same/"), FileEntry("./usr/share/same/notice.txt", "identical bytes", "755", uid: 1000));
        RewriteData("dm-b", DirectoryEntry("./"), DirectoryEntry("./usr/"), DirectoryEntry("./usr/share/"), DirectoryEntry("./usr/share/dm/", "700"), FileEntry("./usr/share/dm/b.txt", "b", "644"));
        W.Repo.Publish();
        Directory.CreateDirectory(Path.Combine(W.ImagesDir, "payload", "plugins"));
        File.WriteAllText(Path.Combine(W.ImagesDir, "payload", "plugins", "site.so"), "the image author's plugin");
        await W.LockAsync();
        await W.BuildAsync();
    }

    public Task DisposeAsync()
    {
        W.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Replaces the data.tar of a published .deb (control part unchanged) with the given entries.</summary>
    private void RewriteData(string package, params TarEntry[] entries)
    {
        var deb = W.Repo.DebPath(package);
        var work = W.Combine("craft", package);
        Directory.CreateDirectory(work);
        RequiredService.RunOk("/bin/sh", ["-c", $"set -e; cd '{work}'; ar x '{deb}'; rm -f data.tar.*"]);
        using (var file = File.Create(Path.Combine(work, "data.tar.gz")))
        using (var gz = new GZipStream(file, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gz, TarEntryFormat.Gnu))
            foreach (var e in entries) tar.WriteEntry(e);
        RequiredService.RunOk("/bin/sh", ["-c", $"set -e; cd '{work}'; rm -f '{deb}'; ar rc '{deb}' debian-binary control.tar.* data.tar.gz"]);
    }

    private static TarEntry DirectoryEntry(string name, string mode = "755") =>
        new GnuTarEntry(TarEntryType.Directory, name) { Mode = (UnixFileMode)Convert.ToInt32(mode, 8) };

    private static TarEntry FileEntry(string name, string content, string mode, int uid = 0) =>
        new GnuTarEntry(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)Convert.ToInt32(mode, 8), Uid = uid, DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)) };
}

/// <summary>
/// How the build merges package entries into one image tree (Build/ImageBuilder.Merge and Place), through real .debs
/// in the signed fixture repository: no entry is written through a symlink an earlier package or the parent image
/// placed (threat T); the merged-/usr links stay ours; byte-identical re-shipped files are one file, while the same
/// bytes with another mode, or another symlink target, are a conflict; a directory stays a directory and keeps the
/// metadata of the package that shipped it first; <c>conflicts:</c> puts the named package's content in the layer
/// and refuses a name that ships neither. Each refusal names image, package and path, and leaves the previous
/// artifacts as they were.
/// </summary>
[Trait("Category", "Integration")]
public sealed class BuildMergeTests(BuildMergeWorkspace fixture) : IClassFixture<BuildMergeWorkspace>
{
    private ImageSetWorkspace W => fixture.W;

    private void RootImage(string name, string packages, string extra = "") =>
        W.WriteImage(name, $"name: {name}\nsources: [fixture]\narchitectures: [amd64]\npackages: [{packages}]\n{extra}");

    private async Task BuildsAsync(params string[] images)
    {
        await W.LockAsync(false, images);
        await W.BuildAsync(null, null, false, images);
    }

    /// <summary>The build of <paramref name="images"/> fails; index.json and build.json are unchanged and the layout verifies.</summary>
    private async Task<HardenException> RefusedAsync(params string[] images)
    {
        await W.LockAsync(false, images);
        var index = File.ReadAllBytes(Path.Combine(W.Artifacts, "oci", "index.json"));
        var buildJson = File.ReadAllBytes(Path.Combine(W.Artifacts, "build.json"));
        var e = await Assert.ThrowsAsync<HardenException>(() => W.BuildAsync(null, null, false, images));
        Assert.Equal(index, File.ReadAllBytes(Path.Combine(W.Artifacts, "oci", "index.json")));
        Assert.Equal(buildJson, File.ReadAllBytes(Path.Combine(W.Artifacts, "build.json")));
        var layout = OciLayout.Open(Path.Combine(W.Artifacts, "oci"));
        foreach (var tag in new[] { "base", "tool" })
            Assert.Empty(new OciLayoutReader(layout).Verify(tag));
        Assert.Empty(Directory.GetFiles(Path.Combine(W.Artifacts, "oci", "blobs", "sha256"), ".tmp-*"));
        return e;
    }

    /// <summary>An image's own layer (amd64): path → (entry type, mode, symlink target, file text).</summary>
    private Dictionary<string, (TarEntryType Type, int Mode, string LinkName, string? Text)> OwnLayer(string image)
    {
        var built = BuildManifest.Load(Path.Combine(W.Artifacts, "build.json")).Image(image)!;
        var layer = built.Architectures.Single(a => a.Architecture == "amd64").Layers[^1];
        using var blob = OciLayout.Open(Path.Combine(W.Artifacts, "oci")).OpenBlob(layer.Digest);
        using var gz = new GZipStream(blob, CompressionMode.Decompress);
        using var tar = new TarReader(gz);
        var entries = new Dictionary<string, (TarEntryType, int, string, string?)>(StringComparer.Ordinal);
        while (tar.GetNextEntry(copyData: true) is { } e)
        {
            string? text = null;
            if (e.DataStream != null) using (var r = new StreamReader(e.DataStream)) text = r.ReadToEnd();
            entries[e.Name.TrimStart('.', '/').TrimEnd('/')] = (e.EntryType, (int)e.Mode, e.LinkName, text);
        }
        return entries;
    }

    private static int Octal(string mode) => Convert.ToInt32(mode, 8);

    [Fact]
    public async Task FileWrittenThroughASymlinkOfAnEarlierPackage_IsRefused_EvenWithoutADirectoryEntry()
    {
        RootImage("through-earlier", "plug-link, plug-writer");
        var e = await RefusedAsync("through-earlier");
        Assert.Equal("image through-earlier: package plug-writer: entry 'usr/lib/plugins/passwd' would be written through the symlink " +
                     "'usr/lib/plugins' -> '/etc'. Refusing: a package must not place files behind a symlink (it could land anywhere in the image). " +
                     "Remove the package from the image or report it to its maintainer.", e.Message);
    }

    [Fact]
    public async Task FileWrittenThroughASymlinkOfTheParentImage_IsRefused()
    {
        RootImage("links", "plug-link");
        W.WriteImage("through-parent", "name: through-parent\nfrom: links\npackages: [plug-writer]\n");
        await BuildsAsync("links");
        var link = OwnLayer("links")["usr/lib/plugins"];
        Assert.Equal((TarEntryType.SymbolicLink, "/etc"), (link.Type, link.LinkName));
        var e = await RefusedAsync("links", "through-parent");
        Assert.StartsWith("image through-parent: package plug-writer: entry 'usr/lib/plugins/passwd' would be written through the symlink 'usr/lib/plugins' -> '/etc'.", e.Message);
    }

    [Fact]
    public async Task DirectoryShippedWhereTheParentImageHasASymlink_IsRefused_NamingTheLinksOwner()
    {
        RootImage("links2", "plug-link");
        W.WriteImage("dir-on-links", "name: dir-on-links\nfrom: links2\npackages: [plug-dir]\n");
        await BuildsAsync("links2");
        var e = await RefusedAsync("links2", "dir-on-links");
        Assert.Equal("image dir-on-links: package plug-dir ships /usr/lib/plugins/, which would be written through the symlink /usr/lib/plugins → /etc (from plug-link); refusing it.", e.Message);
    }

    [Fact]
    public async Task MergedUsrLinksShippedByAPackage_StayTheBuildsOwn_AndTheRestOfThePackageIsMerged()
    {
        // base-files ships bin -> usr/bin and friends (relative or absolute); the build places its own links first.
        RootImage("aliases", "alias-links");
        await BuildsAsync("aliases");
        var layer = OwnLayer("aliases");
        Assert.Equal((TarEntryType.SymbolicLink, "usr/lib64"), (layer["lib64"].Type, layer["lib64"].LinkName));
        Assert.Equal((TarEntryType.SymbolicLink, "usr/sbin"), (layer["sbin"].Type, layer["sbin"].LinkName));
        Assert.Equal("ships the merged-/usr links, as base-files does", layer["usr/share/alias-links/readme"].Text);
    }

    [Fact]
    public async Task ByteIdenticalFilesAndSymlinksFromTwoPackages_AreOneEntry()
    {
        // dpkg would want Replaces: (it refuses a file in two packages unless they are Multi-Arch: same instances of
        // one package); here identical bytes, mode and target make the result the same whichever package is kept.
        RootImage("twins", "same-a, same-b");
        await BuildsAsync("twins");
        var layer = OwnLayer("twins");
        Assert.Equal((TarEntryType.RegularFile, Octal("755"), "identical bytes"), (layer["usr/share/same/notice.txt"].Type, layer["usr/share/same/notice.txt"].Mode, layer["usr/share/same/notice.txt"].Text));
        Assert.Equal((TarEntryType.SymbolicLink, "notice.txt"), (layer["usr/share/same/current"].Type, layer["usr/share/same/current"].LinkName));
    }

    [Fact]
    public async Task SameBytesReshippedWithTheSetuidBit_IsAConflict()
    {
        RootImage("setuid-twin", "same-a, setuid-twin");
        var e = await RefusedAsync("setuid-twin");
        Assert.StartsWith("image setuid-twin: packages same-a and setuid-twin both ship /usr/share/same/notice.txt with different content. " +
                          "Declare which one wins in setuid-twin.yaml under conflicts: (\"/usr/share/same/notice.txt\": setuid-twin), or exclude one.", e.Message);
    }

    [Fact]
    public async Task SameSymlinkWithAnotherTarget_IsAConflict()
    {
        RootImage("link-twin", "same-a, twin-link");
        var e = await RefusedAsync("link-twin");
        Assert.StartsWith("image link-twin: packages same-a and twin-link both ship /usr/share/same/current with different content.", e.Message);
    }

    [Fact]
    public async Task DirectoryReplacedByASymlink_IsRefused_EvenWhenDeclaredTheWinner()
    {
        // Declared or not: shape-dir's inner.txt would sit behind the symlink, and land in /etc on extraction.
        const string expected = "image {0}: package shape-link ships /usr/share/shape as a symlink, but /usr/share/shape is a directory (from shape-dir); " +
                                "a directory is never replaced, not even under conflicts: (what is under it would end up behind a symlink or under a file). Exclude one of the two packages.";
        RootImage("dir-to-link", "shape-dir, shape-link");
        Assert.Equal(string.Format(expected, "dir-to-link"), (await RefusedAsync("dir-to-link")).Message);
        RootImage("dir-to-link-declared", "shape-dir, shape-link", "conflicts:\n  /usr/share/shape: shape-link\n");
        Assert.Equal(string.Format(expected, "dir-to-link-declared"), (await RefusedAsync("dir-to-link-declared")).Message);
    }

    [Fact]
    public async Task DirectoryReplacedByAFile_IsRefused()
    {
        RootImage("dir-to-file", "shape-dir, shape-file");
        var e = await RefusedAsync("dir-to-file");
        Assert.StartsWith("image dir-to-file: package shape-file ships /usr/share/shape as a file, but /usr/share/shape is a directory (from shape-dir);", e.Message);
    }

    [Fact]
    public async Task FileReplacedByADirectory_IsAConflict()
    {
        RootImage("file-to-dir", "flat-a, flat-b");
        var e = await RefusedAsync("file-to-dir");
        Assert.StartsWith("image file-to-dir: packages flat-a and flat-b both ship /usr/share/flat with different content.", e.Message);
    }

    [Fact]
    public async Task SymlinkReplacedByAFile_IsAConflict_UntilDeclared_ThenTheLayerHasTheFile()
    {
        RootImage("link-to-file", "swap-link, swap-tool");
        var e = await RefusedAsync("link-to-file");
        Assert.StartsWith("image link-to-file: packages swap-link and swap-tool both ship /usr/share/swap/tool with different content.", e.Message);

        RootImage("link-to-file", "swap-link, swap-tool", "conflicts:\n  /usr/share/swap/tool: swap-tool\n");
        await BuildsAsync("link-to-file");
        var tool = OwnLayer("link-to-file")["usr/share/swap/tool"];
        Assert.Equal((TarEntryType.RegularFile, Octal("755"), "the tool itself"), (tool.Type, tool.Mode, tool.Text));
    }

    [Fact]
    public async Task LaterPackageShippingAnExistingDirectory_DoesNotChangeItsMode()
    {
        // As dpkg does: an existing directory is kept as it is (a 0700 from dm-b would lock dm-a's files away).
        RootImage("dir-modes", "dm-a, dm-b");
        await BuildsAsync("dir-modes");
        var layer = OwnLayer("dir-modes");
        Assert.Equal((TarEntryType.Directory, Octal("755")), (layer["usr/share/dm"].Type, layer["usr/share/dm"].Mode));
        Assert.Equal("a", layer["usr/share/dm/a.txt"].Text);
        Assert.Equal("b", layer["usr/share/dm/b.txt"].Text);
    }

    [Fact]
    public async Task PayloadDirectoryReplacingAPackageSymlink_HoldsThePayloadInside()
    {
        // The image author's files: replace plug-link's symlink with a real directory; nothing goes to /etc.
        RootImage("payload-over-link", "plug-link", "files:\n  - source: payload/plugins\n    target: /usr/lib/plugins\n    mode: \"0644\"\n");
        await BuildsAsync("payload-over-link");
        var layer = OwnLayer("payload-over-link");
        Assert.Equal(TarEntryType.Directory, layer["usr/lib/plugins"].Type);
        Assert.Equal("the image author's plugin", layer["usr/lib/plugins/site.so"].Text);
        Assert.Equal(["usr/lib/plugins/site.so"], layer.Keys.Where(k => k.EndsWith("site.so", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task ConflictsNamingTheLaterPackage_PutsItsContentInTheLayer()
    {
        RootImage("b-wins", "conflict-a, conflict-b", "conflicts:\n  /usr/share/conflict.txt: conflict-b\n");
        await BuildsAsync("b-wins");
        Assert.Equal("from b", OwnLayer("b-wins")["usr/share/conflict.txt"].Text);
    }

    [Fact]
    public async Task ConflictsNamingTheEarlierPackage_WithoutLeadingSlash_KeepsItsContent()
    {
        RootImage("a-wins", "conflict-a, conflict-b", "conflicts:\n  usr/share/conflict.txt: conflict-a\n");
        await BuildsAsync("a-wins");
        Assert.Equal("from a", OwnLayer("a-wins")["usr/share/conflict.txt"].Text);
    }

    [Fact]
    public async Task ConflictsNamingAPackageThatShipsNeither_IsRefused()
    {
        // same-a is in the image, but does not ship the path: a typo or a stale entry, not a decision.
        RootImage("nobody-wins", "conflict-a, conflict-b, same-a", "conflicts:\n  /usr/share/conflict.txt: same-a\n");
        var e = await RefusedAsync("nobody-wins");
        Assert.Equal(Path.Combine(W.ImagesDir, "nobody-wins.yaml") +
                     ": conflicts: /usr/share/conflict.txt names 'same-a', but it is shipped by conflict-a and conflict-b.", e.Message);
    }
    [Fact]
    public async Task SameBytesAndModeOfAnotherOwner_IsAConflict_NotMergedSilently()
    {
        RootImage("owner-twin", "same-a, owner-twin");
        var e = await RefusedAsync("owner-twin");
        Assert.StartsWith("image owner-twin: packages owner-twin and same-a both ship /usr/share/same/notice.txt with different content.", e.Message);
    }

    [Fact]
    public async Task ThreePackagesAtOnePath_TheWinnerLastInNameOrder_Wins()
    {
        RootImage("c-wins", "tri-a, tri-b, tri-c", "conflicts:\n  /usr/share/tri.txt: tri-c\n");
        await BuildsAsync("c-wins");
        Assert.Equal("from c", OwnLayer("c-wins")["usr/share/tri.txt"].Text);
    }

    [Fact]
    public async Task ThreePackagesAtOnePath_AWinnerThatShipsNeither_NamesAllThree()
    {
        RootImage("tri-nobody", "tri-a, tri-b, tri-c, same-a", "conflicts:\n  /usr/share/tri.txt: same-a\n");
        var e = await RefusedAsync("tri-nobody");
        Assert.Equal(Path.Combine(W.ImagesDir, "tri-nobody.yaml") +
                     ": conflicts: /usr/share/tri.txt names 'same-a', but it is shipped by tri-a, tri-b and tri-c.", e.Message);
    }

    [Fact]
    public async Task EntryBelowAFileThatReplacedASymlink_IsRefused()
    {
        RootImage("under-file", "under-link, under-mfile, under-zchild", "conflicts:\n  /usr/share/under: under-mfile\n");
        var e = await RefusedAsync("under-file");
        Assert.Equal("image under-file: package under-zchild: /usr/share/under/child.txt would be placed under /usr/share/under, which is a file (from under-mfile); refusing it.", e.Message);
    }

    [Fact]
    public async Task PayloadBelowAPackageFile_IsRefused()
    {
        RootImage("payload-under-file", "flat-a", "files:\n  - source: payload/plugins\n    target: /usr/share/flat/plugins\n    mode: \"0644\"\n");
        var e = await RefusedAsync("payload-under-file");
        Assert.Matches("payload-under-file.yaml:[0-9]+: /usr/share/flat/plugins would be placed under /usr/share/flat, which is a file \\(from flat-a\\); refusing it.$", e.Message);
    }
}
