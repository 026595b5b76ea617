using HardenImage.Cache;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Tests.Build;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// <c>harden cache prune --unused-for 0 --max-size 0</c> in a loop while builds run from the same cache (a CI job
/// pruning a shared cache): every build gives the images of an undisturbed build or stops with one clear line, and
/// the build after the storm is clean — never another image, a crash, a hang or a cache that poisons the next build.
/// </summary>
[Trait("Category", "Integration")]
public sealed class CachePruneDuringBuildAttackTests : IAsyncLifetime
{
    private readonly ImageSetWorkspace _w = new();
    private List<(string, string)> _clean = null!;

    public async Task InitializeAsync()
    {
        await _w.LockAsync();
        _clean = Digests((await _w.BuildAsync()).Manifest);
    }

    public Task DisposeAsync()
    {
        _w.Dispose();
        return Task.CompletedTask;
    }

    private static List<(string, string)> Digests(BuildManifest m) => m.Images.Select(i => (i.Name, i.Index)).Order().ToList();

    [Fact]
    public async Task PruneOfEverything_InALoop_WhileBuildsRun_GivesTheSameImagesOrOneClearLine_AndTheNextBuildIsClean()
    {
        using var stop = new CancellationTokenSource();
        var pruneFailures = new List<string>();
        var pruner = Task.Run(() =>
        {
            var runs = 0;
            while (!stop.IsCancellationRequested)
            {
                var r = CachePruner.Execute(CachePruner.Plan(CacheInventory.Read(_w.Cache), new PruneOptions(TimeSpan.Zero, 0), DateTimeOffset.UtcNow), _w.Combine("no.key"));
                pruneFailures.AddRange(r.Failures.Select(f => $"{f.Path}: {f.Error}"));
                runs++;
                Thread.Sleep(Random.Shared.Next(0, 400)); // lands anywhere in a build: before, during and after its fetch
            }
            return runs;
        });

        var same = 0;
        var stopped = new List<string>();
        try
        {
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (DateTime.UtcNow < until)
            {
                try
                {
                    await _w.LockAsync().WaitAsync(TimeSpan.FromMinutes(2)); // proves the lock: index data and InRelease files from the cache
                    var built = await _w.BuildAsync(null, null, force: same % 2 == 0).WaitAsync(TimeSpan.FromMinutes(2));
                    Assert.Equal(_clean, Digests(built.Manifest));
                    same++;
                }
                catch (HardenException e)
                {
                    Assert.DoesNotContain('\n', e.Message.Trim());
                    stopped.Add(e.Message);
                }
            }
        }
        finally
        {
            stop.Cancel();
        }
        var runs = await pruner.WaitAsync(TimeSpan.FromMinutes(2));

        Assert.True(runs > 20, $"prune ran only {runs} times");
        Console.WriteLine($"prune runs {runs}, same images {same}, stopped {stopped.Count}: {string.Join(" | ", stopped.Select(m => m[..Math.Min(60, m.Length)]).Distinct())}");
        Assert.True(same > 0, "no build finished while prune ran: " + string.Join(" | ", stopped.Distinct()));
        // Every stop is the documented one: a .deb removed between its fetch and its unpack.
        Assert.All(stopped, m => Assert.Contains("run the build again", m));
        // The storm left nothing that poisons the next build: undisturbed, it gives the same images.
        var after = await _w.BuildAsync(null, null, force: true);
        Assert.Equal(_clean, Digests(after.Manifest));
        Assert.Equal(_clean, Digests((await _w.BuildAsync()).Manifest));
    }
}
