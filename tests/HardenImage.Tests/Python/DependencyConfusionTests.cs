using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Python;

namespace HardenImage.Tests.Python;

/// <summary>
/// Threat S/T (dependency confusion): a package named by one index comes from that index only. The public index
/// publishing a higher version of the private name is never even asked; a pylock.toml (ours edited, or another
/// tool's) that takes it from another index is refused before anything is fetched or installed; and two indexes
/// cannot both claim a name or "*".
/// </summary>
[Trait("Category", "Integration")]
public sealed class DependencyConfusionTests
{
    [Fact]
    public async Task Lock_AsksOnlyTheIndexThatNamesAPackage()
    {
        using var ws = new PythonImageSet();
        // An attacker publishes hiext 99.0 on the public index.
        ws.Public.Add("hiext", new WheelBuilder("hiext", "99.0").File("hiext/__init__.py", "import evil\n"));
        await ws.LockAsync(ws.Write(ws.StandardRequirements));
        Assert.DoesNotContain(ws.Public.Requests, r => r.Contains("hiext", StringComparison.Ordinal));
        Assert.DoesNotContain(ws.Private.Requests, r => r.Contains("certifi", StringComparison.Ordinal));
        Assert.Equal(ws.Private.SimpleUrl, PyLock.Load(ws.PylockPath).Packages.Single(p => p.Name == "hiext").Index);
    }

    [Fact]
    public async Task Pylock_TakingAPrivatePackageFromAnotherIndex_IsRefusedBeforeFetch()
    {
        using var ws = new PythonImageSet();
        var set = ws.Write(ws.StandardRequirements);
        await ws.LockAsync(set);
        File.WriteAllText(ws.PylockPath, File.ReadAllText(ws.PylockPath).Replace($"index = \"{ws.Private.SimpleUrl}\"", $"index = \"{ws.Public.SimpleUrl}\""));
        Directory.Delete(Path.Combine(ws.Cache, "wheels"), recursive: true);
        var requestsBefore = ws.Public.Requests.Count + ws.Private.Requests.Count;
        using var http = new HttpClient();
        var e = await Assert.ThrowsAsync<HardenException>(() => PythonStage.FetchAsync(set, ["app"], ws.Cache, http, PythonImageSet.Environment));
        Assert.Contains($"hiext 1.0 was locked from {ws.Public.SimpleUrl}, but only index 'private' ({ws.Private.SimpleUrl}) may serve it (dependency confusion)", e.Message);
        Assert.Equal(requestsBefore, ws.Public.Requests.Count + ws.Private.Requests.Count);
        Assert.Contains(PythonLocker.Check(set), p => p.Reason.Contains("dependency confusion", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("[hiext]", "[hiext]", "package 'hiext' is named by indexes private and public")]
    [InlineData("[\"*\"]", "[\"*\"]", "more than one index claims \"*\"")]
    public void ImageSet_RefusesTwoIndexesClaimingOnePackage(string privatePackages, string publicPackages, string reason)
    {
        using var ws = new PythonImageSet();
        var indexes = ws.DefaultIndexes.Replace("packages: [hiext]", "packages: " + privatePackages).Replace("packages: [\"*\"]", "packages: " + publicPackages);
        var e = Assert.Throws<HardenException>(() => ws.Write(ws.StandardRequirements, indexes));
        Assert.Contains("app.yaml:", e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void ImageSet_RefusesCredentialsInTheIndexUrl()
    {
        using var ws = new PythonImageSet();
        var indexes = ws.DefaultIndexes.Replace("http://127.0.0.1", "http://user:pw@127.0.0.1");
        var e = Assert.Throws<HardenException>(() => ws.Write(ws.StandardRequirements, indexes));
        Assert.Contains("url carries credentials; remove them and name environment variables in usernameEnv:/passwordEnv: instead", e.Message);
    }

    [Fact]
    public async Task Lock_WithoutTheCredentialVariable_SaysWhichOneToSet()
    {
        using var ws = new PythonImageSet();
        using var http = new HttpClient();
        var set = ws.Write(ws.StandardRequirements);
        var locker = new PythonLocker(new SimpleIndexClient(http, _ => null), http, new WheelCache(ws.Cache));
        var e = await Assert.ThrowsAsync<HardenException>(() => locker.LockAsync(set, set.Images["app"], new Dictionary<string, (int, int)?> { ["amd64"] = (2, 41), ["arm64"] = (2, 41) }, default));
        Assert.Contains("python index 'private' needs credentials: set HI_PRIVATE_USER in the environment (never in a file)", e.Message);
    }
}
