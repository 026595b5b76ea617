using System.Text;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Python;

namespace HardenImage.Tests.Python;

/// <summary>
/// Issue 18 item 1, "a lock made by uv or pip works, and ours works for them", checked against what the other tools'
/// source does (audit): pip's pylock writer (src/pip/_internal/utils/pylock.py, pip lock) gives each package name,
/// version and wheels with name, url and hashes — and no packages.index, which PEP 751 makes optional; pypa/packaging's
/// reader (packaging.pylock, what pip reads with) requires lock-version, created-by and a packages array, even empty.
/// </summary>
public sealed class PipLockInteropTests
{
    private static string FileUrl(PythonIndexServer index, WheelBuilder w) => index.SimpleUrl.Replace("/simple/", "/files/") + w.FileName;

    /// <summary>A pylock.toml in the form pip lock writes it (tomli_w: sub-tables for wheels and hashes, no index).</summary>
    private static string PipStyleLock(params (string Name, string Version, string Url, WheelBuilder Wheel)[] packages)
    {
        var sb = new StringBuilder("lock-version = \"1.0\"\ncreated-by = \"pip\"\n");
        foreach (var (name, version, url, wheel) in packages)
            sb.Append($"\n[[packages]]\nname = \"{name}\"\nversion = \"{version}\"\n\n[[packages.wheels]]\nname = \"{wheel.FileName}\"\nurl = \"{url}\"\n\n")
              .Append($"[packages.wheels.hashes]\nsha256 = \"{WheelBuilder.Sha256(wheel.Build())}\"\n");
        return sb.ToString();
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task PipLock_WithoutPackageIndex_IsRead_CheckedAndInstalled()
    {
        using var ws = new PythonImageSet();
        var set = ws.Write(ws.StandardRequirements);
        await ws.LockAsync(set); // fills the wheel cache
        File.WriteAllText(ws.PylockPath, PipStyleLock(
            ("certifi", "2023.5.7", FileUrl(ws.Public, ws.Certifi), ws.Certifi),
            ("hiext", "1.0", FileUrl(ws.Private, ws.HiExt["amd64"]), ws.HiExt["amd64"])));

        var pylock = PyLock.Load(ws.PylockPath);
        Assert.All(pylock.Packages, p => Assert.Null(p.Index));
        pylock.CheckIndexes(set.Images["app"].Python!, ws.PylockPath);
        var tree = WheelInstallTests.Install(ws, set, "amd64");
        const string site = "usr/local/lib/python3.13/dist-packages";
        Assert.NotNull(tree.Get($"{site}/hiext/_native.cpython-313-x86_64-linux-gnu.so"));
        Assert.Contains("index=(the lock names none)", WheelInstallTests.Text(ws, tree, $"{site}/certifi-2023.5.7.dist-info/{WheelInstaller.ProvenanceFile}"));
    }

    // Without packages.index the wheel URL is what is left to judge: a name only the private index may serve, locked
    // from another host, is dependency confusion all the same.
    [Trait("Category", "Integration")]
    [Fact]
    public async Task PipLock_PrivatePackageWheelFromAnotherHost_IsRefused_DependencyConfusion()
    {
        using var ws = new PythonImageSet();
        var set = ws.Write(ws.StandardRequirements);
        await ws.LockAsync(set);
        File.WriteAllText(ws.PylockPath, PipStyleLock(
            ("hiext", "1.0", FileUrl(ws.Public, ws.HiExt["amd64"]), ws.HiExt["amd64"])));
        var tree = new FsTree();
        var e = Assert.Throws<HardenException>(() => WheelInstallTests.Install(ws, set, "amd64", tree));
        Assert.Contains($"hiext 1.0: wheel {ws.HiExt["amd64"].FileName} is at http://127.0.0.1", e.Message);
        Assert.Contains("only index 'private'", e.Message);
        Assert.Contains("dependency confusion", e.Message);
        Assert.Empty(tree.Nodes);
    }

    [Fact]
    public void OurLock_WithNothingLocked_StillHasThePackagesArrayPep751Requires()
    {
        var text = new PyLock { RequiresPython = "==3.13.*" }.ToToml();
        Assert.Contains("\npackages = []\n", text);
        Assert.Contains("\ncreated-by = \"hardenimage\"\n", text);
        Assert.Empty(PyLock.Parse(text, "pylock.toml").Packages);
    }
}
