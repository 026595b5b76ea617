using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Text;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Deb;
using HardenImage.Lock;
using HardenImage.Oci;
using HardenImage.Python;
using HardenImage.Tests.Python;
using HardenImage.Tests.Registry;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// Audit of issue 18 (threats T, D, I, E): a lock, an index page or a wheel written by someone else — small files —
/// must end in one clear refusal (a HardenException naming the file and what is wrong), never a crash, a hang, a
/// leaked credential or a file outside what the wheel may write.
/// </summary>
public sealed class PythonHostileInputAttackTests
{
    private const string Sha = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    private static string Lock(string package) =>
        $"lock-version = '1.0'\ncreated-by = 'x'\n[[packages]]\nname = 'p'\nversion = '1.0'\nindex = 'https://x/simple/'\n{package}\n";

    private static string Wheel(string extra) =>
        $"wheels = [ {{ name = 'p-1.0-py3-none-any.whl', url = 'https://x/p-1.0-py3-none-any.whl', hashes = {{ sha256 = '{Sha}' }}{extra} }} ]";

    // Every value of the wrong type or out of range is a one-line error naming the lock and the package, not an
    // InvalidCastException/FormatException/OverflowException stack trace.
    [Theory]
    [InlineData("size = 'big'", "size")]
    [InlineData("size = 1e300", "size")]
    [InlineData("size = -1", "size")]
    [InlineData("size = { a = 1 }", "size")]
    [InlineData("size = inf", "size")]
    public void Pylock_WheelSizeOfTheWrongTypeOrRange_IsOneLineError(string size, string field)
    {
        var e = Assert.Throws<HardenException>(() => PyLock.Parse(Lock(Wheel(", " + size)), "images/python/pylock.toml"));
        Assert.Contains("images/python/pylock.toml: packages[0] (p)", e.Message);
        Assert.Contains(field, e.Message);
    }

    [Theory]
    [InlineData("lock-version = '1.0'\nlock-version = '1.0'\n", "not valid TOML")]
    [InlineData("lock-version = '1.0'\nsize = 99999999999999999999999\n", "not valid TOML")]
    [InlineData("lock-version = 1.0\n", "lock-version")]
    [InlineData("lock-version = '1.0'\npackages = 'x'\n", "packages")]
    [InlineData("lock-version = '1.0'\n[[packages]]\nname = 5\n", "has no name")]
    [InlineData("lock-version = '1.0'\n[[packages]]\nname = 'p'\nversion = 1.0\nindex = 'https://x/simple/'\nwheels = [ { url = 'https://x/p-1.0-py3-none-any.whl', hashes = { sha256 = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' } } ]\n", "PEP 440 version")]
    [InlineData("lock-version = '1.0'\n[[packages]]\nname = 'p'\nversion = '1.0'\nindex = 'https://x/simple/'\nwheels = 'p.whl'\n", "wheels must be an array of tables")]
    [InlineData("lock-version = '1.0'\n[[packages]]\nname = 'p'\nversion = '1.0'\nindex = 'https://x/simple/'\nwheels = [ { url = 'https://x/p-1.0-py3-none-any.whl', hashes = 'sha256:aa' } ]\n", "sha256")]
    [InlineData("lock-version = '1.0'\n[[packages]]\nname = 'p'\nversion = '1.0'\nindex = 'https://x/simple/'\nmarker = 5\nwheels = [ { url = 'https://x/p-1.0-py3-none-any.whl', hashes = { sha256 = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' } } ]\n", "marker")]
    public void Pylock_DuplicateKeysHugeNumbersAndWrongTypes_AreOneLineErrors(string text, string reason)
    {
        var e = Assert.Throws<HardenException>(() => PyLock.Parse(text, "images/python/pylock.toml"));
        Assert.StartsWith("images/python/pylock.toml", e.Message);
        Assert.Contains(reason, e.Message);
    }

    // A wheel file name is a name, not a path: a lock naming '../../x.whl' must not reach any file system call.
    [Theory]
    [InlineData("../../../etc/p-1.0-py3-none-any.whl")]
    [InlineData("/tmp/p-1.0-py3-none-any.whl")]
    public void Pylock_WheelNameThatIsAPath_IsRefused(string name)
    {
        var text = Lock($"wheels = [ {{ name = '{name}', url = 'https://x/p-1.0-py3-none-any.whl', hashes = {{ sha256 = '{Sha}' }} }} ]");
        var e = Assert.Throws<HardenException>(() => PyLock.Parse(text, "pylock.toml"));
        Assert.Contains("is not a wheel file name", e.Message);
    }

    // Deep nesting: the TOML and marker parsers recurse; a lock within the size limit must not overflow the stack
    // (a StackOverflowException ends the process, no handler runs).
    [Theory]
    [InlineData(400)]
    [InlineData(200_000)]
    public void Pylock_DeeplyNestedArrays_AreRefused_NotAStackOverflow(int depth)
    {
        var text = "lock-version = '1.0'\nx = " + new string('[', depth) + new string(']', depth) + "\n";
        var outcome = RunOnSmallStack(() => PyLock.Parse(text, "pylock.toml"));
        Assert.True(outcome is null or HardenException, $"{outcome?.GetType().Name}: {outcome?.Message}");
    }

    [Theory]
    [InlineData(400)]
    [InlineData(200_000)]
    public void Pylock_DeeplyNestedMarker_IsRefused_NotAStackOverflow(int depth)
    {
        var marker = new string('(', depth) + "python_version > '3'" + new string(')', depth);
        var outcome = RunOnSmallStack(() => EnvironmentMarker.Evaluate(marker, EnvironmentMarker.EnvironmentFor("3.13", "amd64"), "pylock.toml: p"));
        Assert.True(outcome is null or HardenException, $"{outcome?.GetType().Name}: {outcome?.Message}");
    }

    /// <summary>Runs on a 1 MiB stack (the size of a thread-pool thread's), returning what it threw.</summary>
    private static Exception? RunOnSmallStack(Action action)
    {
        Exception? thrown = null;
        var t = new Thread(() => { try { action(); } catch (Exception e) { thrown = e; } }, 1 << 20);
        t.Start();
        Assert.True(t.Join(TimeSpan.FromSeconds(30)), "did not finish in 30 s");
        return thrown;
    }

    // A PEP 503 page is untrusted input up to 32 MiB: parsing it must be linear, not a regex that backtracks over
    // the rest of the page at every '<a ' (a few hundred KB would take hours).
    [Theory]
    [InlineData("<a ")]
    [InlineData("<base href=\"x\" <a href=\"")]
    [InlineData("<a href=x>")]
    public async Task IndexPage_HostileHtml_IsParsedInLinearTime(string unit)
    {
        var html = new StringBuilder().Insert(0, unit, (1 << 20) / unit.Length).ToString();
        var sw = Stopwatch.StartNew();
        var parse = Task.Run(() => SimpleIndexClient.ParseHtml(html, new Uri("http://127.0.0.1/simple/p/")));
        var first = await Task.WhenAny(parse, Task.Delay(TimeSpan.FromSeconds(20)));
        Assert.True(first == parse, $"a 1 MiB hostile page was still being parsed after {sw.Elapsed}");
    }

    [Fact]
    public void IndexPage_StillReadsTheHashYankedAndRequiresPython_OfAnOrdinaryPage()
    {
        var html = """
            <!DOCTYPE html><html><head><base href="https://files.example/"></head><body>
            <a href="p/p-1.0-py3-none-any.whl#sha256=ABCDEF" data-requires-python="&gt;=3.8" data-yanked="">p-1.0-py3-none-any.whl</a><br/>
            <a href='p/p-1.1-py3-none-any.whl#sha256=abc'>p-1.1-py3-none-any.whl</a>
            </body></html>
            """;
        var files = SimpleIndexClient.ParseHtml(html, new Uri("https://index.example/simple/p/"));
        Assert.Equal(2, files.Count);
        Assert.Equal(new IndexFile("p-1.0-py3-none-any.whl", "https://files.example/p/p-1.0-py3-none-any.whl", "abcdef", true, ">=3.8"), files[0]);
        Assert.Equal(new IndexFile("p-1.1-py3-none-any.whl", "https://files.example/p/p-1.1-py3-none-any.whl", "abc", false, null), files[1]);
    }

    // An index that redirects its project page (or a file) to another host must not carry the index's credentials
    // there: the other host would receive the private index's token.
    [Trait("Category", "Integration")]
    [Fact]
    public async Task IndexRedirectToAnotherHost_DoesNotCarryTheCredentials()
    {
        var seenByOther = new List<string?>();
        using var other = new LoopbackHttpServer(async ctx =>
        {
            lock (seenByOther) seenByOther.Add(ctx.Header("Authorization"));
            await ctx.RespondAsync(200, "<a href=\"p-1.0-py3-none-any.whl#sha256=aa\">p-1.0-py3-none-any.whl</a>"u8.ToArray(), "text/html");
        });
        using var index = new LoopbackHttpServer(ctx =>
            ctx.RespondAsync(302, headers: [("Location", $"http://localhost:{other.Port}/simple/p/")]));
        var def = new PythonIndexDefinition
        {
            Name = "private", Url = $"http://{index.Authority}/simple/", Packages = ["p"], UsernameEnv = "U", PasswordEnv = "P",
        };
        using var http = PythonStage.CreateHttpClient();
        var client = new SimpleIndexClient(http, n => n == "U" ? "user" : "token-for-the-private-index-only");
        var files = await client.ProjectFilesAsync(def, "p", CancellationToken.None);
        Assert.Single(files);
        Assert.Equal([null], seenByOther);
    }

    // A lock entry from the private index whose wheel URL names another host (absolute URLs are allowed: PyPI serves
    // files from another host): the bytes are pinned, and the private index's credentials must not travel there.
    [Trait("Category", "Integration")]
    [Fact]
    public async Task LockedWheelUrlOnAnotherHost_IsFetchedWithoutTheIndexCredentials()
    {
        using var ws = new PythonImageSet();
        var set = ws.Write(ws.StandardRequirements);
        await ws.LockAsync(set);
        var seen = new List<string?>();
        var served = ws.HiExt["amd64"].Build();
        using var other = new LoopbackHttpServer(async ctx =>
        {
            lock (seen) seen.Add(ctx.Header("Authorization"));
            await ctx.RespondAsync(200, ctx.Path.Contains("x86_64", StringComparison.Ordinal) ? served : ws.HiExt["arm64"].Build(), "application/octet-stream");
        });
        var privateFiles = ws.Private.SimpleUrl.Replace("/simple/", "/files/");
        File.WriteAllText(ws.PylockPath, File.ReadAllText(ws.PylockPath).Replace(privateFiles, $"http://{other.Authority}/elsewhere/", StringComparison.Ordinal));
        using var http = PythonStage.CreateHttpClient();
        using var fresh = new HardenImage.Tests.Infrastructure.TempDir("hi-wheels-fresh");
        await PythonStage.FetchAsync(set, ["app"], fresh.Path, http, PythonImageSet.Environment);
        Assert.NotEmpty(seen);
        Assert.All(seen, Assert.Null);
    }

    // --- Hostile wheels: locked by their own (hostile) hash, so only the installer stands between them and the image.

    private static async Task<Exception> InstallRefused(byte[] wheelBytes, string fileName = "evil-1.0-py3-none-any.whl", string extra = "")
    {
        using var ws = new PythonImageSet();
        ws.Public.Add(new IndexedFile("evil", fileName, wheelBytes));
        var set = ws.Write($"evil==1.0 --hash=sha256:{WheelBuilder.Sha256(wheelBytes)}\n", extra: extra);
        await ws.LockAsync(set);
        var tree = new FsTree();
        var e = Record.Exception(() => WheelInstallTests.Install(ws, set, "amd64", tree));
        Assert.NotNull(e);
        Assert.DoesNotContain(tree.Nodes, n => n.Type == FsNodeType.File);
        return e;
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Wheel_TwoZipEntriesWithOneName_IsRefused()
    {
        var w = new WheelBuilder("evil", "1.0").File("evil/__init__.py", "ok\n");
        w.RawEntries.Add(("evil/__init__.py", "import os; os.system('id')\n"u8.ToArray(), 0x81A4));
        var e = await InstallRefused(w.Build());
        Assert.IsType<HardenException>(e);
        Assert.Contains("'evil/__init__.py' appears twice", e.Message);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Wheel_TwoZipEntriesThatNormaliseToOneName_IsRefused()
    {
        var w = new WheelBuilder("evil", "1.0").File("evil/__init__.py", "ok\n");
        w.RawEntries.Add(("evil/./__init__.py", "import os\n"u8.ToArray(), 0x81A4));
        var e = await InstallRefused(w.Build());
        Assert.IsType<HardenException>(e);
        Assert.Contains("appears twice", e.Message);
    }

    // A deflate stream that does not decode (or decodes to other bytes than its CRC) is a refused wheel, one line.
    [Trait("Category", "Integration")]
    [Fact]
    public async Task Wheel_CorruptDeflateStream_IsOneClearRefusal_NotAStackTrace()
    {
        var w = new WheelBuilder("evil", "1.0").File("evil/__init__.py", new string('x', 1 << 16) + string.Concat(Enumerable.Range(0, 4000).Select(i => i.ToString())));
        var bytes = w.Build();
        var name = "evil/__init__.py"u8.ToArray();
        var at = bytes.AsSpan().IndexOf(name); // the first local file header's name; its data follows
        for (var i = at + name.Length + 40; i < at + name.Length + 200; i++) bytes[i] ^= 0x5A;
        var e = await InstallRefused(bytes);
        Assert.IsType<HardenException>(e);
        Assert.Contains("evil-1.0-py3-none-any.whl", e.Message);
    }

    // Zip bomb across entries: each entry inflates only to what it declares, but the declared sizes themselves
    // are the attacker's; their sum is bounded before anything is unpacked (the layer is built in the cache).
    [Trait("Category", "Integration")]
    [Fact]
    public async Task Wheel_EntriesDeclaringMoreThanThePackageLimitInTotal_AreRefusedBeforeUnpacking()
    {
        var w = new WheelBuilder("evil", "1.0");
        for (var i = 0; i < 3; i++) w.File($"evil/part{i}.bin", new byte[1024]);
        var bytes = w.Build();
        // Central directory: uncompressed size at offset 24 of each 46-byte header (signature PK\1\2).
        var patched = 0;
        for (var i = 0; i + 4 < bytes.Length; i++)
        {
            if (bytes[i] != 0x50 || bytes[i + 1] != 0x4B || bytes[i + 2] != 1 || bytes[i + 3] != 2) continue;
            var nameLength = BitConverter.ToUInt16(bytes, i + 28);
            if (!Encoding.UTF8.GetString(bytes, i + 46, nameLength).StartsWith("evil/part", StringComparison.Ordinal)) continue;
            BitConverter.GetBytes(0xF0000000u).CopyTo(bytes, i + 24);
            patched++;
        }
        Assert.Equal(3, patched);
        using (var zip = new ZipArchive(new MemoryStream(bytes)))
            Assert.All(zip.Entries.Where(x => x.FullName.StartsWith("evil/part", StringComparison.Ordinal)), x => Assert.Equal(0xF0000000L, x.Length));
        var e = await InstallRefused(bytes);
        Assert.IsType<HardenException>(e);
        Assert.Contains("its entries declare", e.Message);
        Assert.Contains("(a zip bomb); refused", e.Message);
    }

    // .data/scripts and console scripts land in /usr/local/bin, which comes before /usr/bin on PATH: a wheel
    // shipping "python3", "sh" or "apt" would run instead of the image's own command for every caller.
    [Trait("Category", "Integration")]
    [Theory]
    [InlineData("evil-1.0.data/scripts/python3", null)]
    [InlineData(null, "python3")]
    [InlineData("evil-1.0.data/data/sbin/ldconfig", null)]
    public async Task Wheel_ScriptShadowingACommandOfTheImage_IsRefused(string? scriptEntry, string? consoleScript)
    {
        using var ws = new PythonImageSet();
        var w = new WheelBuilder("evil", "1.0").File("evil/__init__.py", "def main(): pass\n");
        if (scriptEntry != null) w.File(scriptEntry, "#!python\nimport os\n", exec: true);
        if (consoleScript != null) w.ConsoleScript(consoleScript, "evil:main");
        var tree = new FsTree();
        foreach (var cmd in new[] { "usr/bin/python3", "usr/sbin/ldconfig" })
            tree.Set(new FsNode { Path = cmd, Type = FsNodeType.File, Mode = 0b111_101_101, Size = 1, ContentSha256 = Sha, Owner = "deb:python3" });
        var e = await Assert.ThrowsAsync<HardenException>(() => WheelInstallTests.LockAndInstall(ws, w, tree: tree));
        Assert.Contains("shadows", e.Message);
        Assert.Contains("deb:python3", e.Message);
        Assert.Null(tree.Get("usr/local/bin/python3"));
        Assert.Null(tree.Get("usr/local/sbin/ldconfig"));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Wheel_ScriptShadowingACommand_DeclaredInConflicts_IsInstalled()
    {
        using var ws = new PythonImageSet();
        var w = new WheelBuilder("evil", "1.0").File("evil/__init__.py", "def main(): pass\n").ConsoleScript("python3", "evil:main");
        var tree = new FsTree();
        tree.Set(new FsNode { Path = "usr/bin/python3", Type = FsNodeType.File, Mode = 0b111_101_101, Size = 1, ContentSha256 = Sha, Owner = "deb:python3" });
        await WheelInstallTests.LockAndInstall(ws, w, tree: tree, extra: "conflicts: {\"/usr/local/bin/python3\": pypi:evil}");
        Assert.NotNull(tree.Get("usr/local/bin/python3"));
    }

    // inference-cuda sets LD_LIBRARY_PATH=/usr/local/cuda/lib64: a .data/data/ file there (libc.so.6, libcuda.so.1) is
    // loaded by every dynamically linked program of an image built on it, before Debian's own libraries.
    [Trait("Category", "Integration")]
    [Fact]
    public async Task Wheel_LibraryInADirectoryOfTheImagesLdLibraryPath_IsRefused()
    {
        using var ws = new PythonImageSet();
        var w = new WheelBuilder("evil", "1.0").File("evil/__init__.py", "ok\n")
            .File("evil-1.0.data/data/cuda/lib64/libc.so.6", "\u007fELF planted libc");
        var tree = new FsTree();
        var e = await Assert.ThrowsAsync<HardenException>(() => WheelInstallTests.LockAndInstall(ws, w, tree: tree, extra: "env: {LD_LIBRARY_PATH: /usr/local/cuda/lib64}"));
        Assert.Contains("installs /usr/local/cuda/lib64/libc.so.6 into /usr/local/cuda/lib64, which the image's LD_LIBRARY_PATH puts before the system libraries", e.Message);
        Assert.Null(tree.Get("usr/local/cuda/lib64/libc.so.6"));

        // The same wheel in an image without that LD_LIBRARY_PATH installs (the directory is nothing special there).
        using var plain = new PythonImageSet();
        Assert.NotNull((await WheelInstallTests.LockAndInstall(plain, w)).Get("usr/local/cuda/lib64/libc.so.6"));
    }

    // Debian's site.py reads .pth files in every dist-packages directory on sys.path, not only the one sitePackages
    // names: with sitePackages moved, a .data/data/ file can still reach /usr/local/lib/python3.13/dist-packages.
    [Trait("Category", "Integration")]
    [Fact]
    public async Task Wheel_StartupHookInAnotherDebianSiteDirectory_IsRefused()
    {
        using var ws = new PythonImageSet();
        var w = new WheelBuilder("evil", "1.0").File("evil/__init__.py", "ok\n")
            .File("evil-1.0.data/data/lib/python3.13/dist-packages/zzz.pth", "import os; os.system('id')\n");
        var set = ws.Write(PythonImageSet.Requirement("evil", "1.0", w), extra: "");
        File.WriteAllText(Path.Combine(ws.ImagesDir, "app.yaml"),
            File.ReadAllText(Path.Combine(ws.ImagesDir, "app.yaml")).Replace("  lock: python/pylock.app.toml", "  lock: python/pylock.app.toml\n  sitePackages: /usr/lib/python3/dist-packages"));
        ws.Public.Add("evil", w);
        set = ImageSet.Load(ws.ImagesDir);
        await ws.LockAsync(set);
        var tree = new FsTree();
        var e = Assert.Throws<HardenException>(() => WheelInstallTests.Install(ws, set, "amd64", tree));
        Assert.Contains("usr/local/lib/python3.13/dist-packages/zzz.pth", e.Message);
        Assert.Contains(".pth", e.Message);
        Assert.Null(tree.Get("usr/local/lib/python3.13/dist-packages/zzz.pth"));
    }
}

/// <summary>Hostile index pages served by a loopback server (audit of issue 18): answered with one refusal, nothing fetched.</summary>
[Trait("Category", "Integration")]
public sealed class HostileIndexPageAttackTests
{
    private static readonly string Pinned = new('a', 64);

    private static async Task<Exception?> Lock(string contentType, string body)
    {
        using var server = new LoopbackHttpServer(ctx => ctx.RespondAsync(200, Encoding.UTF8.GetBytes(body), contentType));
        using var ws = new PythonImageSet();
        var set = ws.Write($"p==1.0 --hash=sha256:{Pinned}\n", $"""
                - name: hostile
                  url: http://{server.Authority}/simple/
                  packages: ["*"]
            """);
        var e = await Record.ExceptionAsync(() => ws.LockAsync(set));
        Assert.False(File.Exists(ws.PylockPath));
        return e;
    }

    // An index that links the pinned file to file:///… (or claims the pinned hash for it): refused as not http(s),
    // never handed to HttpClient (NotSupportedException) or read from the builder's disk.
    [Theory]
    [InlineData("file:///etc/hostname")]
    [InlineData("ftp://127.0.0.1/p-1.0-py3-none-any.whl")]
    public async Task IndexLinkingTheWheelToAnotherScheme_IsRefused(string url)
    {
        var e = await Lock("text/html", $"<a href=\"{url}#sha256={Pinned}\">p-1.0-py3-none-any.whl</a>");
        Assert.IsType<HardenException>(e);
        Assert.Contains("is not http(s); refused", e!.Message);
    }

    [Theory]
    [InlineData("{\"files\":[{\"filename\":null,\"url\":\"x\"}]}")]
    [InlineData("{\"files\":[{\"filename\":\"p-1.0-py3-none-any.whl\",\"url\":null}]}")]
    [InlineData("{\"files\":[{\"filename\":5,\"url\":\"x\"}]}")]
    [InlineData("{\"files\":[{\"filename\":\"p-1.0-py3-none-any.whl\",\"url\":\"x\",\"hashes\":[1]}]}")]
    [InlineData("{\"files\":{}}")]
    public async Task Pep691PageWithWrongTypes_IsOneRefusal(string json)
    {
        var e = await Lock("application/vnd.pypi.simple.v1+json", json);
        Assert.IsType<HardenException>(e);
        Assert.Contains("/simple/p/", e!.Message); // names the page
    }
}
