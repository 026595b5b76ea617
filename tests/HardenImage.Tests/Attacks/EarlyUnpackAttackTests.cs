using HardenImage.Apt;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Lock;
using HardenImage.Tests.Build;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// Unpacks started while the .debs download (ImageBuilder.StartUnpacking) must never outlive the build: whatever
/// BuildAsync ends with — up to date, an error, a result — every one of them has ended first (else the command
/// exits with an unpack half-written into the cache, or racing a later step).
/// </summary>
[Trait("Category", "Integration")]
public sealed class EarlyUnpackAttackTests : IAsyncLifetime
{
    private readonly ImageSetWorkspace _w = new();

    public async Task InitializeAsync()
    {
        await _w.LockAsync();
        await _w.BuildAsync();
    }

    public Task DisposeAsync()
    {
        _w.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>A new builder with one unpack started whose locator is slow (a large .deb still being read).</summary>
    private (ImageBuilder Builder, DebLocator Debs) BuilderWithASlowEarlyUnpack()
    {
        var set = ImageSet.Load(_w.ImagesDir);
        var lockFile = LockFile.Load(_w.LockPath);
        var builder = new ImageBuilder(set, lockFile, new BuildOptions { ArtifactsDir = _w.Artifacts, CacheRoot = _w.Cache, CacheKey = _w.CacheKey });
        var cache = new DebCache(_w.Cache);
        var sha = lockFile.Image("base")!.Architectures.First().Packages.First().Sha256;
        builder.StartUnpacking(sha, p => { Thread.Sleep(1500); return cache.PathFor(p.Sha256); }, default);
        return (builder, p => cache.PathFor(p.Sha256));
    }

    [Fact]
    public async Task UpToDateBuild_WaitsForTheUnpacksStartedWhileFetching_BeforeItReturns()
    {
        var (builder, debs) = BuilderWithASlowEarlyUnpack();
        var outcome = await builder.BuildAsync(debs);
        Assert.True(outcome.UpToDate);
        Assert.Equal(1, builder.UnpackedWhileFetching);
    }

    [Fact]
    public async Task ImageChangedDuringTheDownloads_FailsOnlyAfterTheUnpacksStartedWhileFetching_HaveEnded()
    {
        var (builder, debs) = BuilderWithASlowEarlyUnpack();
        File.AppendAllText(Path.Combine(_w.ImagesDir, "tool.yaml"), "# edited while the .debs downloaded\n");
        var e = await Assert.ThrowsAsync<HardenException>(() => builder.BuildAsync(debs));
        Assert.Contains("changed since it was locked", e.Message);
        Assert.Equal(1, builder.UnpackedWhileFetching);
    }

    [Fact]
    public async Task CtrlC_WhileAnEarlyUnpackFails_IsReportedAsCancelled_NotAsThatUnpacksError()
    {
        var set = ImageSet.Load(_w.ImagesDir);
        var lockFile = LockFile.Load(_w.LockPath);
        var builder = new ImageBuilder(set, lockFile, new BuildOptions { ArtifactsDir = _w.Artifacts, CacheRoot = _w.Cache, CacheKey = _w.CacheKey });
        var sha = lockFile.Image("base")!.Architectures.First().Packages.First().Sha256;
        builder.StartUnpacking(sha, _ => { Thread.Sleep(300); throw new HardenException("an unpack failed meanwhile"); }, default);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => builder.BuildAsync(p => new DebCache(_w.Cache).PathFor(p.Sha256), null, cancelled.Token));
    }
}
