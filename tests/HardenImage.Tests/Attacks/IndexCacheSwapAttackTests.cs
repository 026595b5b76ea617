using HardenImage.Apt;
using HardenImage.Common;
using HardenImage.Tests.Fixtures;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// A shared cache's writer (or a concurrent <c>harden cache prune</c>) races the reader of a cached Packages index:
/// the index was hashed by path and parsed by path, so the file could be replaced — or removed — in between. The
/// parse must read exactly the bytes whose hash matched the signed Release.
/// </summary>
[Trait("Category", "Integration")]
public sealed class IndexCacheSwapAttackTests
{
    [Fact]
    public async Task ForgedPackagesIndex_SwappedInAfterTheHashCheck_IsNeverParsed_NorDoesARemovalFailTheRead()
    {
        using var dir = new TempDir("hi-attack-indexswap");
        using var repo = new AptRepositoryFixture();
        repo.Add(new FakePackage("libgood1", "1.0-1").WithFile("/usr/lib/libgood.so.1", "good")).Publish();
        // The forgery: the same index with one package more (what a hand-edited lock would then "prove").
        using var evil = new AptRepositoryFixture();
        evil.Add(new FakePackage("libgood1", "1.0-1").WithFile("/usr/lib/libgood.so.1", "good"),
            new FakePackage("evil", "6.6.6").WithFile("/usr/bin/evil", "evil")).Publish();
        var forged = File.ReadAllBytes(evil.PackagesPath());

        using var http = AptRepositoryClient.CreateHttpClient();
        var cache = new AptIndexCache(dir.Combine("indices"));
        var client = new AptRepositoryClient(http, cache);
        var first = await client.FetchAsync(repo.Source());
        var cached = cache.PathFor(Assert.Single(first.Indices).Sha256);
        var genuine = File.ReadAllBytes(cached);
        File.WriteAllBytes(dir.Combine("genuine"), genuine);
        File.WriteAllBytes(dir.Combine("forged"), forged);

        // The racer: the genuine file, then the forgery, then nothing, each renamed into place (whole files, as an
        // attacker or prune does it), as fast as it can.
        var parsedForged = 0;
        var stray = new List<string>();
        await Race.RunAsync(i =>
        {
            var tmp = cached + ".tmp-race";
            switch (i % 3)
            {
                case 0: File.Copy(dir.Combine("genuine"), tmp, overwrite: true); File.Move(tmp, cached, overwrite: true); break;
                case 1: File.Copy(dir.Combine("forged"), tmp, overwrite: true); File.Move(tmp, cached, overwrite: true); break;
                default: File.Delete(cached); break;
            }
        }, async () =>
        {
            try
            {
                var index = await client.FetchAsync(repo.Source());
                if (index.Packages.Any(p => p.Name == "evil")) parsedForged++;
            }
            catch (HardenException e) when (e.Message.Contains("Run again", StringComparison.Ordinal)) { } // the racer won a download's commit: one clear line
            catch (Exception e) when (e is not HardenException) { stray.Add($"{e.GetType().Name}: {e.Message}"); }
        }, TimeSpan.FromSeconds(15));

        Assert.True(parsedForged == 0, $"a forged index swapped in after the hash check was parsed {parsedForged} times");
        Assert.True(stray.Count == 0, $"{stray.Count} reads failed with no line of harden's: {string.Join(" | ", stray.Distinct().Take(3))}");
    }
}
