using System.Text;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Lock;
using HardenImage.Oci;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Build;

/// <summary>
/// The byte-code transform (issue 14 item 1), against Debian's real CPython 3.13 served by a signed fixture
/// repository: what is compiled, that amd64 and arm64 get the same bytes from the amd64 interpreter alone, that
/// the bytes are reproducible and cached, that no build path leaks into code objects, that a stale .pyc is never
/// run (checked hash-based), and that a module that does not compile stops the build unless the image allows it.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ByteCodeTests(ByteCodeRepository repository) : IClassFixture<ByteCodeRepository>, IDisposable
{
    private const string Tag = "cpython-313";
    private const string GoodPyc = "usr/lib/python3/dist-packages/good/__pycache__/mod." + Tag + ".pyc";
    private readonly ByteCodeImages _w = new(repository);

    public void Dispose() => _w.Dispose();

    [Fact]
    public async Task Pyc_IsCheckedHashBased_ForStdlibPackagesAndPayload_NotForPrivateDirectories()
    {
        var (outcome, _) = await _w.BuildAsync();
        var app = _w.OwnLayer("app", "amd64");
        var python = _w.OwnLayer("python", "amd64");
        foreach (var pyc in new[] { GoodPyc, "usr/lib/python3/dist-packages/good/__pycache__/__init__." + Tag + ".pyc", "app/__pycache__/server." + Tag + ".pyc",
                     "usr/lib/python3/dist-packages/good/__pycache__/linked." + Tag + ".pyc" })
        {
            Assert.True(app.ContainsKey(pyc), pyc);
            // PEP 552 flags word: bit 0 hash-based, bit 1 check_source.
            Assert.Equal(new byte[] { 3, 0, 0, 0 }, app[pyc].Content[4..8]);
        }
        Assert.Equal(new byte[] { 3, 0, 0, 0 }, python["usr/lib/python3.13/__pycache__/os." + Tag + ".pyc"].Content[4..8]);
        // Debian leaves a package's private directories alone (py3compile -p compiles the public ones).
        Assert.DoesNotContain(app.Keys, k => k.StartsWith("usr/share/good/__pycache__", StringComparison.Ordinal));
        // Readable like its source, writable by no one; the symlinked sitecustomize.py gets its .pyc at the link.
        Assert.Equal((UnixFileMode)Convert.ToInt32("444", 8), app[GoodPyc].Mode);
        var report = outcome.Report.Single(r => r is { Image: "app", Architecture: "amd64" }).Hardening;
        Assert.Contains(report, a => a is { Transform: "byte-code", Action: "generated", Path: "usr/lib/python3/dist-packages/good/__pycache__" });
    }

    [Fact]
    public async Task Pyc_IsTheSameInAmd64AndArm64Layers_CompiledByTheAmd64InterpreterWithoutEmulation()
    {
        await _w.BuildAsync();
        foreach (var image in new[] { "python", "app" })
        {
            var amd64 = _w.OwnLayer(image, "amd64").Where(kv => kv.Key.EndsWith(".pyc", StringComparison.Ordinal)).ToDictionary();
            var arm64 = _w.OwnLayer(image, "arm64");
            Assert.NotEmpty(amd64);
            foreach (var (path, entry) in amd64)
            {
                Assert.True(arm64.ContainsKey(path), $"{image} arm64 lacks {path}");
                Assert.True(entry.Content.AsSpan().SequenceEqual(arm64[path].Content), $"{image}: {path} differs between amd64 and arm64");
            }
            Assert.Equal(amd64.Count, arm64.Count(kv => kv.Key.EndsWith(".pyc", StringComparison.Ordinal)));
        }
        // The arm64 interpreter in the fixture is a stand-in text file: had the build run it, it would have failed.
        Assert.Equal(ByteCodeRepository.StandIn, Encoding.UTF8.GetString(_w.OwnLayer("python", "arm64")["usr/bin/python3.13"].Content));
    }

    [Fact]
    public async Task Build_WithByteCode_IsReproducible_AcrossDirectoriesAndFreshCompiles_AndAWarmCacheCompilesNothing()
    {
        var (first, firstBuilder) = await _w.BuildAsync();
        var (second, secondBuilder) = await _w.BuildAsync(_w.Combine("elsewhere", "artifacts"), _w.Combine("elsewhere", "cache"));
        // Both compiled (different caches, different temporary directories) and agree bit for bit.
        Assert.True(firstBuilder.ByteCodeCompilers.Sum(c => c.CompiledCount) > 100);
        Assert.Equal(firstBuilder.ByteCodeCompilers.Sum(c => c.CompiledCount), secondBuilder.ByteCodeCompilers.Sum(c => c.CompiledCount));
        Assert.Equal(first.Manifest.Images.Select(i => (i.Name, i.Index)), second.Manifest.Images.Select(i => (i.Name, i.Index)));

        var (warm, warmBuilder) = await _w.BuildAsync(force: true);
        Assert.False(warm.UpToDate);
        Assert.Equal(0, warmBuilder.ByteCodeCompilers.Sum(c => c.CompiledCount));
        Assert.Equal(first.Manifest.Images.Select(i => (i.Name, i.Index)), warm.Manifest.Images.Select(i => (i.Name, i.Index)));
    }

    [Fact]
    public async Task Pyc_DependsOnlyOnItsFile_NotOnWhatTheSameCompilerCompiledBefore()
    {
        const string b = "usr/lib/python3/dist-packages/twins/__pycache__/b." + Tag + ".pyc";
        _w.WriteImage("twins", "name: twins\nfrom: python\npackages: [python3-twins]\n");
        await _w.BuildAsync();
        var afterItsTwin = _w.OwnLayer("twins", "amd64")[b].Content;

        File.Delete(Path.Combine(_w.ImagesDir, "twins.yaml"));
        _w.WriteImage("twin", "name: twin\nfrom: python\npackages: [python3-twin-b]\n");
        var alone = _w.Combine("alone");
        var (_, builder) = await _w.BuildAsync(Path.Combine(alone, "artifacts"), Path.Combine(alone, "cache"));
        Assert.True(builder.ByteCodeCompilers.Sum(c => c.CompiledCount) > 0); // compiled afresh, not from the first cache
        Assert.Equal(afterItsTwin, _w.OwnLayer("twin", "amd64", Path.Combine(alone, "artifacts"))[b].Content);
    }

    [Fact]
    public async Task Pyc_OfTheWholeStandardLibrary_IsTheSame_WhenOneProcessCompilesItInReverseOrder()
    {
        // The build compiles many modules in one interpreter (a slice per core). Compiled again by one process in
        // the opposite order, after other modules interned their strings, every .pyc must come out byte-identical.
        await _w.BuildAsync();
        using var root = new TempDir("hi-bytecode-root");
        _w.Unpack("python", root.Path);
        using var job = new TempDir("hi-bytecode-order");
        // Under usr/ only: /lib is merged-/usr's symlink to usr/lib, and the .pyc name their sources as /usr/lib/….
        var shipped = Directory.EnumerateFiles(Path.Combine(root.Path, "usr"), "*." + Tag + ".pyc", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        Assert.True(shipped.Count > 250, $"only {shipped.Count} .pyc in the python image");
        var files = shipped.AsEnumerable().Reverse().Select((pyc, n) =>
        {
            var dir = Path.GetDirectoryName(Path.GetDirectoryName(pyc)!)!;
            var source = Path.Combine(dir, Path.GetFileName(pyc)[..^(Tag.Length + 5)] + ".py");
            return (Source: source, ImagePath: "/" + Path.GetRelativePath(root.Path, source));
        }).ToList();
        // The driver's protocol: the sources one after another in one file, each named by offset, length and image path.
        var request = new List<object[]>();
        using (var sources = File.Create(job.Combine("sources.bin")))
            foreach (var f in files)
            {
                var offset = sources.Position;
                sources.Write(File.ReadAllBytes(f.Source));
                request.Add([offset, sources.Position - offset, f.ImagePath]);
            }
        File.WriteAllText(job.Combine("driver.py"), HardenImage.Build.Hardening.PythonByteCodeCompiler.Driver);
        File.WriteAllText(job.Combine("request.json"), System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object>
            { ["checked"] = true, ["sources"] = job.Combine("sources.bin"), ["out"] = job.Combine("out.bin"), ["files"] = request }));
        var (code, stdout, stderr) = ByteCodeImages.RunPython(root.Path, new Dictionary<string, string> { ["PYTHONHASHSEED"] = "0" },
            "-S", "-B", "-X", "utf8", "-W", "ignore", job.Combine("driver.py"), job.Combine("request.json"));
        Assert.True(code == 0, stderr);
        var answer = System.Text.Json.JsonDocument.Parse(stdout).RootElement;
        Assert.Empty(answer.GetProperty("Errors").EnumerateObject());
        var sizes = answer.GetProperty("Sizes").EnumerateArray().Select(e => e.GetInt32()).ToList();
        var output = File.ReadAllBytes(job.Combine("out.bin"));
        Assert.Equal(output.Length, sizes.Sum());
        var offsets = sizes.Select((_, n) => sizes.Take(n).Sum()).ToList();
        var differing = files.Where((f, n) => !output.AsSpan(offsets[n], sizes[n]).SequenceEqual(File.ReadAllBytes(shipped[^(n + 1)]))).Select(f => f.ImagePath).ToList();
        Assert.True(differing.Count == 0, $"{differing.Count} of {files.Count} differ, e.g. {string.Join(", ", differing.Take(5))}");
    }

    [Fact]
    public async Task ForgedByteCodeCacheEntry_IsCompiledAgain_NotTrusted()
    {
        var (first, _) = await _w.BuildAsync();
        // Point every cached .pyc at the first one's bytes (each index keeps its old seal, which no longer matches).
        var entries = 0;
        foreach (var index in Indexes())
        {
            var lines = File.ReadAllLines(index);
            var other = lines[0].Split(' ');
            File.WriteAllLines(index, lines.Select(l => l.StartsWith("seal ", StringComparison.Ordinal) ? l
                : string.Join(' ', l.Split(' ')[0], other[1], other[2], other[3], other[4])));
            entries += lines.Length - 1;
        }
        Assert.True(entries > 100);
        var (again, builder) = await _w.BuildAsync(force: true);
        Assert.Equal(entries, builder.ByteCodeCompilers.Sum(c => c.CompiledCount));
        Assert.Equal(first.Manifest.Images.Select(i => (i.Name, i.Index)), again.Manifest.Images.Select(i => (i.Name, i.Index)));
    }

    /// <summary>The sealed indexes of compiled byte-code (one per compile) in the cache.</summary>
    private string[] Indexes() => Directory.GetFiles(Path.Combine(_w.Cache, "bytecode-v2"), "*.index", SearchOption.AllDirectories);

    /// <summary>The .pyc pack each index names.</summary>
    private string[] Packs() => Indexes().SelectMany(File.ReadAllLines).Where(l => !l.StartsWith("seal ", StringComparison.Ordinal))
        .Select(l => l.Split(' ')[2]).Distinct().Select(p => Path.Combine(_w.Cache, "content", "sha256", p)).ToArray();

    [Theory]
    [InlineData("empty")]
    [InlineData("cut")]
    [InlineData("flipped")]
    [InlineData("gone")]
    public async Task TornPycInTheCache_AfterACrash_IsCompiledAgain_AndTheImageIsTheSame(string how)
    {
        // Cache files are written without an fsync: after a power loss the pack of compiled .pyc may be empty, cut
        // short or hold other bytes while its sealed index survived. The build must notice, compile again and ship
        // the same bytes.
        var (first, _) = await _w.BuildAsync();
        foreach (var pack in Packs())
        {
            var bytes = File.ReadAllBytes(pack);
            switch (how)
            {
                case "empty": File.WriteAllBytes(pack, []); break;
                case "cut": File.WriteAllBytes(pack, bytes[..(bytes.Length / 2)]); break;
                case "flipped": bytes[bytes.Length / 2] ^= 0x40; File.WriteAllBytes(pack, bytes); break;
                default: File.Delete(pack); break;
            }
        }
        var (again, builder) = await _w.BuildAsync(force: true);
        Assert.True(builder.ByteCodeCompilers.Sum(c => c.CompiledCount) >= 1);
        Assert.Equal(first.Manifest.Images.Select(i => (i.Name, i.Index)), again.Manifest.Images.Select(i => (i.Name, i.Index)));
        // And the build after that finds its .pyc in the cache again.
        var (third, warm) = await _w.BuildAsync(force: true);
        Assert.Equal(0, warm.ByteCodeCompilers.Sum(c => c.CompiledCount));
        Assert.Equal(first.Manifest.Images.Select(i => (i.Name, i.Index)), third.Manifest.Images.Select(i => (i.Name, i.Index)));
    }

    [Fact]
    public async Task CodeObjects_NameTheImagePath_NeverTheBuildsTemporaryDirectory()
    {
        await _w.BuildAsync();
        foreach (var (path, entry) in _w.OwnLayer("app", "amd64").Concat(_w.OwnLayer("python", "amd64")).Where(kv => kv.Key.EndsWith(".pyc", StringComparison.Ordinal)))
        {
            var text = Encoding.Latin1.GetString(entry.Content);
            Assert.DoesNotContain("hi-bytecode-", text); // the interpreter's tree and the job directory
            Assert.DoesNotContain(_w.Cache, text);
        }
        // Read back by the interpreter itself: every code object, nested ones included, names the file as the image has it.
        using var root = new TempDir("hi-bytecode-root");
        _w.Unpack("app", root.Path);
        const string script = "import marshal, sys\n" +
                              "def walk(c):\n    yield c.co_filename\n    for k in c.co_consts:\n        if hasattr(k, 'co_filename'): yield from walk(k)\n" +
                              "print(sorted(set(walk(marshal.loads(open(sys.argv[1], 'rb').read()[16:])))))";
        var (code, stdout, stderr) = ByteCodeImages.RunPython(root.Path, null, "-c", script, Path.Combine(root.Path, GoodPyc));
        Assert.True(code == 0, stderr);
        Assert.Equal("['/usr/lib/python3/dist-packages/good/mod.py']", stdout.Trim());
    }

    [Fact]
    public async Task StalePyc_WhoseSourceChanged_IsNotRun_TheInterpreterCompilesTheSourceInstead()
    {
        await _w.BuildAsync();
        using var root = new TempDir("hi-bytecode-root");
        _w.Unpack("app", root.Path);
        string[] Import(params string[] flags) =>
            [.. flags, "-v", "-c", "import good.mod; print(good.mod.ANSWER)"];
        var source = Path.Combine(root.Path, "usr/lib/python3/dist-packages/good/mod.py");
        var pyc = Path.Combine(root.Path, GoodPyc);

        // As built: the .pyc is used (loaded, not compiled from source).
        var (code, stdout, stderr) = ByteCodeImages.RunPython(root.Path, null, Import());
        Assert.True(code == 0, stderr);
        Assert.Equal("packaged", stdout.Trim());
        Assert.Contains($"code object from '{pyc}'", stderr);

        // The source is replaced after the build (a child layer, a mounted file): the checked .pyc no longer
        // matches its hash, so the interpreter compiles the new source and never runs the stale code.
        File.WriteAllText(source, "ANSWER = 'replaced'\n");
        (code, stdout, stderr) = ByteCodeImages.RunPython(root.Path, null, Import());
        Assert.True(code == 0, stderr);
        Assert.Equal("replaced", stdout.Trim());
        Assert.Contains($"code object from {source}", stderr);

        // What unchecked would have meant (why the transform does not use it): the same file, told not to check,
        // runs the stale code.
        (code, stdout, stderr) = ByteCodeImages.RunPython(root.Path, null, Import("--check-hash-based-pycs", "never"));
        Assert.True(code == 0, stderr);
        Assert.Equal("packaged", stdout.Trim());
    }

    private void AssertArtifactsUnchanged(byte[] indexBefore, byte[] buildBefore)
    {
        Assert.Equal(indexBefore, File.ReadAllBytes(Path.Combine(_w.Artifacts, "oci", "index.json")));
        Assert.Equal(buildBefore, File.ReadAllBytes(Path.Combine(_w.Artifacts, "build.json")));
        Assert.Empty(new OciLayoutReader(OciLayout.Open(Path.Combine(_w.Artifacts, "oci"))).Verify("app"));
        Assert.Empty(Directory.GetFiles(Path.Combine(_w.Artifacts, "oci", "blobs", "sha256"), ".tmp-*"));
    }

    [Fact]
    public async Task SyntaxError_StopsTheBuild_NamingFileAndPackage_AndThePreviousArtifactsStay()
    {
        await _w.BuildAsync();
        var index = File.ReadAllBytes(Path.Combine(_w.Artifacts, "oci", "index.json"));
        var build = File.ReadAllBytes(Path.Combine(_w.Artifacts, "build.json"));
        _w.WriteImage("broken", "name: broken\nfrom: python\npackages: [python3-broken]\n");

        var e = await Assert.ThrowsAsync<HardenException>(() => _w.BuildAsync());
        Assert.Contains("/usr/lib/python3/dist-packages/broken/py2only.py (from python3-broken): SyntaxError", e.Message);
        Assert.Contains("broken.yaml", e.Message);
        Assert.Contains("allow: {byteCodeErrors: {<package>: [<path>]}}", e.Message);
        Assert.DoesNotContain("ok.py", e.Message); // only the file that fails is named
        Assert.DoesNotContain('\n', e.Message);
        AssertArtifactsUnchanged(index, build);
    }

    [Fact]
    public async Task SyntaxError_InAChild_WhileItsParentsLayersAreStillBeingWritten_FailsWithThatError_AndLeavesNoTempBlob()
    {
        // A parent's layer is written while its child is still assembling: the child's failure must be the error
        // reported, and every write already started must end (and clean up) before the build returns.
        _w.WriteImage("broken", "name: broken\nfrom: python\npackages: [python3-broken]\n");

        var e = await Assert.ThrowsAsync<HardenException>(() => _w.BuildAsync());
        Assert.Contains("py2only.py (from python3-broken): SyntaxError", e.Message);
        var blobs = Path.Combine(_w.Artifacts, "oci", "blobs", "sha256");
        if (Directory.Exists(blobs)) Assert.Empty(Directory.GetFiles(blobs, ".tmp-*"));
        Assert.False(File.Exists(Path.Combine(_w.Artifacts, "build.json")));
    }

    [Fact]
    public async Task DeepCode_IsCompiled_AndCodeTooDeepForTheCompiler_IsReportedForItsFile_NotACrash()
    {
        // Hostile or unusual modules: 400 nested lambdas compile (the driver's walk of nested code must not give
        // up first); a 100,000-term sum makes CPython's compiler raise RecursionError, which names that file only
        // and can be allowed like a syntax error, while the other modules of the same interpreter are compiled.
        _w.WriteImage("deep", "name: deep\nfrom: python\npackages: [python3-deep]\n");
        var e = await Assert.ThrowsAsync<HardenException>(() => _w.BuildAsync());
        Assert.Contains("/usr/lib/python3/dist-packages/deep/toodeep.py (from python3-deep): RecursionError", e.Message);
        Assert.DoesNotContain("__init__.py", e.Message);
        Assert.DoesNotContain('\n', e.Message);

        _w.WriteImage("deep", """
            name: deep
            from: python
            packages: [python3-deep]
            allow:
              byteCodeErrors:
                python3-deep: [/usr/lib/python3/dist-packages/deep/toodeep.py]
            """);
        await _w.BuildAsync();
        var layer = _w.OwnLayer("deep", "amd64");
        Assert.Contains("usr/lib/python3/dist-packages/deep/__pycache__/__init__." + Tag + ".pyc", layer.Keys);
        Assert.Contains("usr/lib/python3/dist-packages/deep/__pycache__/fine." + Tag + ".pyc", layer.Keys);
        Assert.DoesNotContain("usr/lib/python3/dist-packages/deep/__pycache__/toodeep." + Tag + ".pyc", layer.Keys);
    }

    [Fact]
    public async Task SyntaxError_AllowedForItsPackage_ShipsThatSourceWithoutPyc_AndCoversNoOtherPackage()
    {
        _w.WriteImage("broken", """
            name: broken
            from: python
            packages: [python3-broken]
            allow:
              byteCodeErrors:
                python3-broken: [usr/lib/python3/dist-packages/broken/py2only.py]
            """);
        var (outcome, _) = await _w.BuildAsync();
        var layer = _w.OwnLayer("broken", "amd64");
        Assert.Contains("usr/lib/python3/dist-packages/broken/py2only.py", layer.Keys);
        Assert.DoesNotContain("usr/lib/python3/dist-packages/broken/__pycache__/py2only." + Tag + ".pyc", layer.Keys);
        Assert.Contains("usr/lib/python3/dist-packages/broken/__pycache__/ok." + Tag + ".pyc", layer.Keys);
        Assert.Contains(outcome.Report.Single(r => r is { Image: "broken", Architecture: "amd64" }).Hardening,
            a => a is { Transform: "byte-code", Action: "skipped", Path: "usr/lib/python3/dist-packages/broken/py2only.py" } && a.Detail.Contains("SyntaxError", StringComparison.Ordinal));

        // The allowance names one package's file: another package's broken module still stops the build.
        var index = File.ReadAllBytes(Path.Combine(_w.Artifacts, "oci", "index.json"));
        var build = File.ReadAllBytes(Path.Combine(_w.Artifacts, "build.json"));
        _w.WriteImage("broken", """
            name: broken
            from: python
            packages: [python3-broken, python3-broken-too]
            allow:
              byteCodeErrors:
                python3-broken: ["usr/lib/python3/dist-packages/**"]
            """);
        var e = await Assert.ThrowsAsync<HardenException>(() => _w.BuildAsync());
        Assert.Contains("1 Python module(s)", e.Message);
        Assert.Contains("/usr/lib/python3/dist-packages/brokentoo/bad.py (from python3-broken-too)", e.Message);
        AssertArtifactsUnchanged(index, build);
    }

    [Fact]
    public async Task NoByteCode_Allowance_ShipsNoPyc_AndSaysSo()
    {
        _w.WriteImage("app", """
            name: app
            from: python
            packages: [python3-good]
            allow: {noByteCode: true}
            """);
        var (outcome, _) = await _w.BuildAsync();
        Assert.DoesNotContain(_w.OwnLayer("app", "amd64").Keys, k => k.Contains("__pycache__", StringComparison.Ordinal));
        Assert.Contains(outcome.Report.Single(r => r is { Image: "app", Architecture: "amd64" }).Hardening, a => a is { Transform: "byte-code", Action: "skipped" });
        Assert.Contains("os." + Tag + ".pyc", string.Join(" ", _w.OwnLayer("python", "amd64").Keys)); // the parent still has its own
    }

    [Fact]
    public void ByteCodeErrors_NotAListOfPaths_IsRefusedNamingFileAndLine()
    {
        _w.WriteImage("app", "name: app\nfrom: python\nallow:\n  byteCodeErrors:\n    python3-broken: usr/lib/python3/x.py\n");
        var e = Assert.Throws<HardenException>(() => ImageSet.Load(_w.ImagesDir));
        Assert.Contains("app.yaml:5:", e.Message);
        Assert.Contains("byteCodeErrors: python3-broken must list the image paths", e.Message);
    }
}
