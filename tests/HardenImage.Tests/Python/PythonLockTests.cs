using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Lock;
using HardenImage.Python;
using Tomlyn;
using Tomlyn.Model;

namespace HardenImage.Tests.Python;

/// <summary>Our resolution: hash-pinned requirements → PEP 751 pylock.toml, against PEP 503 and PEP 691 indexes.</summary>
public sealed class PythonLockTests
{
    [Trait("Category", "Integration")]
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Lock_WritesPylockToml_OneBestWheelPerArchitecture_FromHtmlOrJsonIndexes(bool json)
    {
        using var ws = new PythonImageSet();
        ws.Public.Json = json; ws.Private.Json = json;
        var set = ws.Write(ws.StandardRequirements);
        var report = await ws.LockAsync(set);

        Assert.True(report.Written);
        Assert.Equal(["+ pypi:certifi 2023.5.7", "+ pypi:hiext 1.0"], report.Changes);
        // An independent TOML reader sees a PEP 751 lock: version, packages with index and hashed wheels.
        var root = TomlSerializer.Deserialize<TomlTable>(File.ReadAllText(ws.PylockPath))!;
        Assert.Equal("1.0", root["lock-version"]);
        var packages = (TomlTableArray)root["packages"];
        Assert.Equal(["certifi", "hiext"], packages.Select(p => (string)p["name"]));
        var hiext = packages.Single(p => (string)p["name"] == "hiext");
        Assert.Equal(ws.Private.SimpleUrl, hiext["index"]);
        var wheels = ((TomlArray)hiext["wheels"]).Cast<TomlTable>().ToList();
        // x86_64 for amd64, aarch64 for arm64; the musllinux build is never chosen for a glibc image.
        Assert.Equal([ws.HiExt["arm64"].FileName, ws.HiExt["amd64"].FileName], wheels.Select(w => (string)w["name"]));
        Assert.All(wheels, w => Assert.True(Sha256Hex.IsValid((string)((TomlTable)w["hashes"])["sha256"])));
        // Our own reader agrees, and writing it again gives the same bytes.
        var pylock = PyLock.Load(ws.PylockPath);
        Assert.Equal(File.ReadAllText(ws.PylockPath), pylock.ToToml());
        // Locking again changes nothing.
        var again = await ws.LockAsync(ws.Write(ws.StandardRequirements));
        Assert.False(again.Written);
        Assert.Empty(again.Changes);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Lock_SendsCredentialsFromTheNamedEnvironmentVariables_OnlyToTheirIndex()
    {
        using var ws = new PythonImageSet();
        await ws.LockAsync(ws.Write(ws.StandardRequirements));
        Assert.All(ws.Private.AuthorizationHeaders, h => Assert.StartsWith("Basic ", h));
        Assert.All(ws.Public.AuthorizationHeaders, Assert.Null);
        // The secret's value is in no file the lock wrote.
        Assert.DoesNotContain(PythonImageSet.PrivateToken, File.ReadAllText(ws.PylockPath));
        Assert.DoesNotContain(PythonImageSet.PrivateToken, File.ReadAllText(Path.Combine(ws.ImagesDir, "app.yaml")));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Lock_ReportsVersionChangesLikeDebianOnes()
    {
        using var ws = new PythonImageSet();
        await ws.LockAsync(ws.Write(ws.StandardRequirements));
        var older = new WheelBuilder("certifi", "2022.12.7").File("certifi/__init__.py", "old\n");
        ws.Public.Add("certifi", older);
        var report = await ws.LockAsync(ws.Write(PythonImageSet.Requirement("certifi", "2022.12.7", older)));
        Assert.Equal(["↓ pypi:certifi 2023.5.7 → 2022.12.7", "- pypi:hiext 1.0"], report.Changes);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task LockCheck_SeesRequirementsChangedSinceThePylockWasWritten()
    {
        using var ws = new PythonImageSet();
        var set = ws.Write(ws.StandardRequirements);
        await ws.LockAsync(set);
        Assert.Empty(PythonLocker.Check(set));
        File.AppendAllText(ws.RequirementsPath, "# a comment changes the file\n");
        var stale = Assert.Single(PythonLocker.Check(ImageSet.Load(ws.ImagesDir)));
        Assert.Contains("requirements.txt changed since python/pylock.app.toml was written", stale.Reason);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Lock_MarkersAreEvaluatedPerArchitecture()
    {
        using var ws = new PythonImageSet();
        var req = ws.StandardRequirements.Replace("hiext==1.0 \\", "hiext==1.0 ; platform_machine == \"x86_64\" \\");
        await ws.LockAsync(ws.Write(req));
        var hiext = PyLock.Load(ws.PylockPath).Packages.Single(p => p.Name == "hiext");
        Assert.Equal("platform_machine == \"x86_64\"", hiext.Marker);
        Assert.Equal([ws.HiExt["amd64"].FileName], hiext.Wheels.Select(w => w.Name));
    }

    [Fact]
    public void PyLock_ReadsALockWrittenByAnotherTool()
    {
        // The shape of PEP 751's own example (as uv writes it): inline wheel tables, upload-time, extra keys.
        var text = """
            lock-version = '1.0'
            environments = ["sys_platform == 'linux'"]
            requires-python = '>=3.12'
            created-by = 'uv'

            [[packages]]
            name = 'attrs'
            version = '25.1.0'
            index = 'https://pypi.org/simple/'
            requires-python = '>=3.8'

            [[packages.wheels]]
            name = 'attrs-25.1.0-py3-none-any.whl'
            upload-time = 2025-01-25T11:30:10.164985+00:00
            url = 'https://files.pythonhosted.org/packages/fc/30/d4986a882011f9df997a55e6becd864812ccfcd821d64aac8570ee39f719/attrs-25.1.0-py3-none-any.whl'
            size = 63152
            hashes = {sha256 = 'c75a69e28a550a7e93789579c22aa26b0f5b83b75dc4e08fe092980051e1090a'}

            [tool.uv]
            note = "tools may add tables"
            """;
        var lockFile = PyLock.Parse(text, "pylock.toml");
        var attrs = Assert.Single(lockFile.Packages);
        Assert.Equal(("attrs", "25.1.0", 63152L), (attrs.Name, attrs.Version, attrs.Wheels[0].Size!.Value));
        Assert.Equal("c75a69e28a550a7e93789579c22aa26b0f5b83b75dc4e08fe092980051e1090a", attrs.Wheels[0].Sha256);
    }

    [Theory]
    [InlineData("version = '1.0'\nindex = 'https://x/simple/'\nsdist = { name = 'p-1.0.tar.gz', url = 'https://x/p-1.0.tar.gz', hashes = { sha256 = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' } }", "only an sdist")]
    [InlineData("version = '1.0'\nvcs = { type = 'git', url = 'https://x/p.git', commit-id = 'abc' }", "vcs source")]
    [InlineData("version = '1.0'\nindex = 'https://x/simple/'\nwheels = [ { name = 'p-1.0-py3-none-any.whl', url = 'https://x/p-1.0-py3-none-any.whl' } ]", "no sha256 hash")]
    [InlineData("version = '1.0'\nindex = 'https://x/simple/'\nwheels = [ { name = 'q-1.0-py3-none-any.whl', url = 'https://x/q.whl', hashes = { sha256 = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' } } ]", "is not p 1.0")]
    public void PyLock_RefusesWhatWouldRunCodeOrIsNotPinned(string package, string reason)
    {
        var e = Assert.Throws<HardenException>(() => PyLock.Parse($"lock-version = '1.0'\n[[packages]]\nname = 'p'\n{package}\n", "images/python/pylock.toml"));
        Assert.Contains("images/python/pylock.toml: packages[0] (p)", e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Theory]
    [InlineData("certifi>=2023 --hash=sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", "is not pinned as name==version")]
    [InlineData("certifi==2023.5.7\n", "has no --hash=sha256")]
    [InlineData("--index-url https://evil.example/simple\n", "indexes come from the image's python: indexes:")]
    [InlineData("-e ./src\n", "is not accepted here")]
    public void Requirements_RefuseUnpinnedUnhashedAndIndexOptions(string text, string reason)
    {
        var e = Assert.Throws<HardenException>(() => HashedRequirements.Parse(text, "requirements.txt"));
        Assert.StartsWith("requirements.txt:1: ", e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task Requirements_ThatAreASymlinkToAHostFile_AreRefused_WithoutEchoingIt()
    {
        using var ws = new PythonImageSet();
        var set = ws.Write(ws.StandardRequirements);
        var secret = Path.Combine(Path.GetDirectoryName(ws.ImagesDir)!, "host-secret");
        File.WriteAllText(secret, "root:$6$secrethash:19000:0:99999:7:::\n");
        File.Delete(ws.RequirementsPath);
        File.CreateSymbolicLink(ws.RequirementsPath, secret);
        var e = await Assert.ThrowsAsync<HardenException>(() => ws.LockAsync(set));
        Assert.Contains("requirements.txt: is a symlink", e.Message);
        Assert.DoesNotContain("secrethash", e.Message);
    }

    [Fact]
    public void Requirements_ReadPipCompileOutput_WithContinuationsCommentsAndMarkers()
    {
        var text = """
            # This file is autogenerated by pip-compile with Python 3.13
            certifi==2023.5.7 \
                --hash=sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \
                --hash=sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
                # via requests
            Tomli==2.0.1 ; python_version < "3.11" --hash=sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc
            """;
        var reqs = HashedRequirements.Parse(text, "r.txt");
        Assert.Equal(2, reqs.Count);
        Assert.Equal(2, reqs[0].Sha256.Count);
        Assert.Equal(("tomli", "python_version < \"3.11\""), (reqs[1].NormalizedName, reqs[1].Marker));
    }
}
