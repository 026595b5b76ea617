using System.Text;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Deb;
using HardenImage.Lock;
using HardenImage.Oci;
using HardenImage.Python;

namespace HardenImage.Tests.Python;

/// <summary>Installing locked wheels into a layer tree: where files go, what the installer writes, what it refuses.</summary>
[Trait("Category", "Integration")]
public sealed class WheelInstallTests
{
    /// <summary>Locks <paramref name="wheel"/> as the image's only requirement and installs it for <paramref name="arch"/>.</summary>
    internal static async Task<FsTree> LockAndInstall(PythonImageSet ws, WheelBuilder wheel, string arch = "amd64", FsTree? tree = null, string extra = "")
    {
        if (!ws.Public.Has(wheel.FileName)) ws.Public.Add(wheel.FileName.Split('-')[0], wheel);
        var set = ws.Write(PythonImageSet.Requirement(wheel.FileName.Split('-')[0], wheel.FileName.Split('-')[1], wheel), extra: extra);
        await ws.LockAsync(set);
        return Install(ws, set, arch, tree);
    }

    internal static FsTree Install(PythonImageSet ws, ImageSet set, string arch, FsTree? tree = null)
    {
        tree ??= new FsTree();
        var symlinks = new PathSafety(tree.Lower.Values.Concat(tree.Nodes).Where(n => n.Type == FsNodeType.Symlink).Select(n => KeyValuePair.Create(n.Path, n.LinkTarget ?? "")));
        new WheelInstaller(new ContentStore(ws.Cache), new WheelCache(ws.Cache))
            .Install(set, set.Images["app"], arch, (2, 41), tree, symlinks, n => { tree.Set(n); if (n.Type == FsNodeType.Symlink) symlinks.AddSymlink(n.Path, n.LinkTarget!); });
        return tree;
    }

    internal static string Text(PythonImageSet ws, FsTree tree, string path) =>
        Encoding.UTF8.GetString(new ContentStore(ws.Cache).ReadVerified(tree.Get(path)!.ContentSha256!));

    [Fact]
    public async Task Install_PlacesFilesInDistPackages_WritesInstallerRecordAndScripts()
    {
        using var ws = new PythonImageSet();
        var set = ws.Write(ws.StandardRequirements);
        await ws.LockAsync(set);
        using var http = new HttpClient();
        var tree = Install(ws, set, "arm64");
        const string site = "usr/local/lib/python3.13/dist-packages";
        Assert.Equal("def where():\n    return '/etc/ssl/certs/ca-certificates.crt'\n", Text(ws, tree, $"{site}/certifi/core.py"));
        Assert.Equal("hardenimage\n", Text(ws, tree, $"{site}/certifi-2023.5.7.dist-info/INSTALLER"));
        // The RECORD lists what was installed (paths relative to site-packages, scripts as ../../../bin/...), hashed.
        var record = Text(ws, tree, $"{site}/certifi-2023.5.7.dist-info/RECORD");
        Assert.Contains("certifi/core.py,sha256=", record);
        Assert.Contains("../../../bin/certifi-where,sha256=", record);
        Assert.Contains("certifi-2023.5.7.dist-info/INSTALLER,sha256=", record);
        Assert.EndsWith("certifi-2023.5.7.dist-info/RECORD,,\n", record);
        // Console scripts: Python files run by the image's interpreter, no shell; #!python scripts point at it too.
        var script = tree.Get("usr/local/bin/certifi-where")!;
        Assert.Equal(0b111_101_101, script.Mode);
        Assert.StartsWith("#!/usr/bin/python3\n", Text(ws, tree, "usr/local/bin/certifi-where"));
        Assert.Contains("from certifi.cli import main", Text(ws, tree, "usr/local/bin/certifi-where"));
        Assert.Equal("#!/usr/bin/python3\nimport certifi\nprint(certifi.where())\n", Text(ws, tree, "usr/local/bin/hi-where"));
        Assert.Equal("#!/usr/bin/python3\nprint('isolated')\n", Text(ws, tree, "usr/local/bin/hi-where3"));
        // The compiled extension of this architecture only.
        Assert.NotNull(tree.Get($"{site}/hiext/_native.cpython-313-aarch64-linux-gnu.so"));
        Assert.Null(tree.Get($"{site}/hiext/_native.cpython-313-x86_64-linux-gnu.so"));
        Assert.Contains($"sha256={WheelBuilder.Sha256(ws.HiExt["arm64"].Build())}", Text(ws, tree, $"{site}/hiext-1.0.dist-info/{WheelInstaller.ProvenanceFile}"));
        Assert.All(tree.Nodes.Where(n => n.Type == FsNodeType.File), n => Assert.StartsWith("pypi:", n.Owner));
    }

    [Fact]
    public async Task Install_WithoutTheWheelInTheCache_SaysToFetch()
    {
        using var ws = new PythonImageSet();
        var set = ws.Write(ws.StandardRequirements);
        await ws.LockAsync(set);
        Directory.Delete(Path.Combine(ws.Cache, "wheels"), recursive: true);
        var e = Assert.Throws<HardenException>(() => Install(ws, set, "amd64"));
        Assert.Contains("is not in the cache", e.Message);
        Assert.Contains("Run 'harden fetch'", e.Message);
    }
}

/// <summary>Threat T: a wheel whose RECORD does not vouch for exactly its files is refused, naming the file.</summary>
[Trait("Category", "Integration")]
public sealed class RecordMismatchTests
{
    [Fact]
    public async Task Install_RefusesAFileNotListedInRecord()
    {
        using var ws = new PythonImageSet();
        var w = new WheelBuilder("hirec", "1.0").File("hirec/__init__.py", "ok\n").File("hirec/backdoor.py", "evil\n");
        w.Unrecorded.Add("hirec/backdoor.py");
        var e = await Assert.ThrowsAsync<HardenException>(() => WheelInstallTests.LockAndInstall(ws, w));
        Assert.Contains("wheel hirec-1.0-py3-none-any.whl: 'hirec/backdoor.py' is not listed in RECORD (RECORD mismatch", e.Message);
    }

    [Fact]
    public async Task Install_RefusesAFileWhoseHashDiffersFromRecord()
    {
        using var ws = new PythonImageSet();
        var w = new WheelBuilder("hirec", "1.0").File("hirec/__init__.py", "ok\n");
        w.RecordHashOverride["hirec/__init__.py"] = "sha256=" + WheelInstaller.UrlSafe(new string('0', 64));
        var e = await Assert.ThrowsAsync<HardenException>(() => WheelInstallTests.LockAndInstall(ws, w));
        Assert.Contains("'hirec/__init__.py' does not match RECORD", e.Message);
        Assert.Contains("the wheel was altered; refused", e.Message);
    }

    [Fact]
    public async Task Install_RefusesARecordListingAMissingFile()
    {
        using var ws = new PythonImageSet();
        var w = new WheelBuilder("hirec", "1.0").File("hirec/__init__.py", "ok\n");
        w.ExtraRecordRows.Add("hirec/gone.py,sha256=" + WheelInstaller.UrlSafe(new string('1', 64)) + ",3");
        var e = await Assert.ThrowsAsync<HardenException>(() => WheelInstallTests.LockAndInstall(ws, w));
        Assert.Contains("RECORD lists 'hirec/gone.py', which the wheel does not contain (RECORD mismatch)", e.Message);
    }

    [Fact]
    public async Task Install_RefusesAWheelWhoseMetadataNamesAnotherPackage()
    {
        using var ws = new PythonImageSet();
        var w = new WheelBuilder("hirec", "1.0") { MetadataName = "numpy" }.File("hirec/__init__.py", "ok\n");
        var e = await Assert.ThrowsAsync<HardenException>(() => WheelInstallTests.LockAndInstall(ws, w));
        Assert.Contains("METADATA says numpy 1.0, but the lock pins hirec 1.0; scanners would see another package", e.Message);
    }

    [Fact]
    public async Task Install_RefusesMd5HashesInRecord()
    {
        using var ws = new PythonImageSet();
        var w = new WheelBuilder("hirec", "1.0").File("hirec/__init__.py", "ok\n");
        w.RecordHashOverride["hirec/__init__.py"] = "md5=AAAAAAAAAAAAAAAAAAAAAA";
        var e = await Assert.ThrowsAsync<HardenException>(() => WheelInstallTests.LockAndInstall(ws, w));
        Assert.Contains("only sha256 is accepted", e.Message);
    }
}

/// <summary>Threat T/E: a wheel writes only inside its install scheme: no '..', no absolute names, no symlinks, nothing through a symlink.</summary>
[Trait("Category", "Integration")]
public sealed class WheelPathTraversalTests
{
    [Theory]
    [InlineData("../../../../etc/cron.d/evil", "'..' segment")]
    [InlineData("/etc/passwd", "absolute path")]
    [InlineData("hitrav-1.0.data/scripts/../../../../etc/evil", "'..' segment")]
    [InlineData("hitrav\\..\\..\\evil.py", "has a backslash")]
    public async Task Install_RefusesEntriesThatLeaveTheScheme(string entry, string reason)
    {
        using var ws = new PythonImageSet();
        var w = new WheelBuilder("hitrav", "1.0").File("hitrav/__init__.py", "ok\n");
        w.RawEntries.Add((entry, Encoding.UTF8.GetBytes("* * * * * root sh\n"), 0x81A4));
        var e = await Assert.ThrowsAsync<HardenException>(() => WheelInstallTests.LockAndInstall(ws, w));
        Assert.Contains("wheel hitrav-1.0-py3-none-any.whl: entry", e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public async Task Install_RefusesASymlinkEntry()
    {
        using var ws = new PythonImageSet();
        var w = new WheelBuilder("hitrav", "1.0").File("hitrav/__init__.py", "ok\n");
        w.RawEntries.Add(("hitrav/link", Encoding.UTF8.GetBytes("/etc/shadow"), 0xA1FF));
        var e = await Assert.ThrowsAsync<HardenException>(() => WheelInstallTests.LockAndInstall(ws, w));
        Assert.Contains("entry 'hitrav/link' is not a regular file (symlink or special file); refused", e.Message);
    }

    [Fact]
    public async Task Install_RefusesWritingThroughASymlinkFromAPackage()
    {
        using var ws = new PythonImageSet();
        // A Debian package below made dist-packages/hitrav a symlink to /etc.
        var lower = new Dictionary<string, FsNode>(StringComparer.Ordinal)
        {
            ["usr/local/lib/python3.13/dist-packages/hitrav"] = new() { Path = "usr/local/lib/python3.13/dist-packages/hitrav", Type = FsNodeType.Symlink, LinkTarget = "/etc", Mode = 511, Owner = "evil-link" },
        };
        var w = new WheelBuilder("hitrav", "1.0").File("hitrav/passwd", "root::0:0::/:/bin/sh\n");
        var e = await Assert.ThrowsAsync<HardenException>(() => WheelInstallTests.LockAndInstall(ws, w, tree: new FsTree(lower)));
        Assert.Contains("hitrav", e.Message);
        Assert.Contains("symlink", e.Message);
    }
}
