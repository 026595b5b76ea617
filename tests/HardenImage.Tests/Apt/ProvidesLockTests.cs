using HardenImage.Apt;
using HardenImage.Build;
using HardenImage.Common;
using HardenImage.Contracts;
using HardenImage.Lock;
using HardenImage.Tests.Build;
using HardenImage.Tests.Fixtures;

namespace HardenImage.Tests.Apt;

/// <summary>provides: through the whole lock path: a parent's declaration reaches its child, and the proof counts it.</summary>
[Trait("Category", "Integration")]
public class ProvidesLockTests
{
    private static ImageSetWorkspace Workspace(string pyProvides)
    {
        var ws = new ImageSetWorkspace();
        ws.Repo.Add(
            new FakePackage("pyx3.13-minimal", "3.13.5-2", "all"),
            new FakePackage("pyx", "3.13.5-1", "all").WithMultiArch("allowed").WithProvides("pyx-supported-min (= 3.13)")
                .WithDepends("pyx3.13-minimal, fake-common"),
            new FakePackage("pyx-backport", "1.0-1", "all").WithDepends("pyx:any"),
            new FakePackage("app-lib", "1.0-1", "all").WithDepends("pyx-backport | pyx-supported-min (>= 3.11), pyx:any")).Publish();
        ws.WriteImage("py", $"name: py\nfrom: base\npackages: [pyx3.13-minimal]\n{pyProvides}");
        ws.WriteImage("app", "name: app\nfrom: py\npackages: [app-lib]\n");
        return ws;
    }

    private static IEnumerable<string> Names(LockOutcome o, string image) =>
        o.Lock.Image(image)!.Architectures.Single(a => a.Architecture == "amd64").Packages.Select(p => p.Name);

    [Fact]
    public async Task ParentsProvides_MeetTheChildsAlternatives_AndTheLockIsProven()
    {
        using var ws = Workspace("provides:\n  - pyx (= 3.13.5-1)\n  - pyx-supported-min (= 3.13)\n");
        var outcome = await ws.LockAsync();
        Assert.Equal(["app-lib"], Names(outcome, "app")); // neither the backport nor pyx itself
        Assert.DoesNotContain("pyx", Names(outcome, "py"));
    }

    [Fact]
    public async Task ProvidesRemovedAfterLocking_TheProofRefusesTheLock_NamingTheUnmetDependency()
    {
        using var ws = Workspace("provides:\n  - pyx (= 3.13.5-1)\n  - pyx-supported-min (= 3.13)\n");
        await ws.LockAsync();
        var before = File.ReadAllText(ws.LockPath);
        ws.WriteImage("py", "name: py\nfrom: base\npackages: [pyx3.13-minimal]\n");

        var set = ImageSet.Load(ws.ImagesDir);
        using var http = AptRepositoryClient.CreateHttpClient();
        var reader = new AptSuiteIndexReader(new AptRepositoryClient(http, new AptIndexCache(Path.Combine(ws.Cache, "indices"))), set.Directory);
        var e = await Assert.ThrowsAsync<HardenException>(() =>
            new LockProver(reader).ProveAsync(set, LockFile.Load(ws.LockPath), null, new LockProofOptions(), null, CancellationToken.None));

        Assert.Contains("image 'app' (amd64): app-lib depends on 'pyx:any', which nothing in the lock provides", e.Message);
        Assert.Equal(before, File.ReadAllText(ws.LockPath));
    }

    [Fact]
    public async Task ProvidesWithAVersionTheIndexDoesNotHave_LockRefuses_AndLeavesTheLockAsItWas()
    {
        using var ws = Workspace("provides:\n  - pyx (= 3.13.5-1)\n  - pyx-supported-min (= 3.13)\n");
        await ws.LockAsync();
        var before = File.ReadAllText(ws.LockPath);
        ws.WriteImage("py", "name: py\nfrom: base\npackages: [pyx3.13-minimal]\nprovides: [\"pyx (= 3.99.0-1)\"]\n");

        var e = await Assert.ThrowsAsync<HardenException>(() => ws.LockAsync());

        Assert.Contains("py.yaml", e.Message);
        Assert.Contains("provides: 'pyx (= 3.99.0-1)' — no package in", e.Message);
        Assert.Contains("the index has 3.13.5-1", e.Message);
        Assert.Equal(before, File.ReadAllText(ws.LockPath));
    }
}
