using HardenImage.Build;
using HardenImage.Contracts;
using HardenImage.FanOut;
using HardenImage.Oci;

namespace HardenImage.Tests.FanOut;

/// <summary>
/// Issue 13 §2–3: the plan's jobs as separate processes (own cache, cache key and artifacts each), in parallel,
/// against one real docker-registry, give bit for bit the digests of a one-machine build of the same lock; after
/// the fan-in is pushed and signed, a second run of the unchanged set is all verified hits with zero blobs uploaded.
/// </summary>
[Collection(FanOutCollection.Name)]
[Trait("Category", "Integration")]
public sealed class FanOutBitForBitTests(FanOutKit kit)
{
    [Fact]
    public void FanOut_ParallelJobs_MatchOneMachineBuild_BitForBit_AndUnchangedRerunIsAllVerifiedHits()
    {
        var images = kit.Workspace.ImagesDir;
        const string ns = "bitforbit";
        var registry = kit.RegistryFor(ns);

        // One machine, one process, the whole set.
        var one = kit.Dir("one");
        kit.Ok("one", "build", "--images", images, "--out", one);
        var oneBuild = BuildManifest.Load(Path.Combine(one, "build.json"));

        // The plan against a registry without any cache manifest: every entry changed, a miss.
        var planPath = kit.Dir("bitforbit-plan.json");
        var planned = kit.Ok("planner", "plan", "--images", images, "--registry", registry, "--key", kit.ReleaseKey.PublicKeyPath, "--out", planPath);
        var plan = FanOutKit.Plan(planned.StdOut);
        Assert.Equal(["base linux/amd64", "base linux/arm64/v8", "tool linux/amd64", "tool linux/arm64/v8"], plan.Jobs.Select(e => $"{e.Image} {e.Platform}"));
        Assert.All(plan.Jobs, e => Assert.Equal((true, CacheState.Miss), (e.Changed, e.Cache)));
        Assert.Equal(["ubuntu-latest", "ubuntu-24.04-arm", "ubuntu-latest", "ubuntu-24.04-arm"], plan.Jobs.Select(e => e.Runner));
        Assert.Equal(plan.ToJson(), File.ReadAllText(planPath));

        // Fan-out: four processes at once, separate caches and artifacts, one registry.
        var jobs = kit.Dir("bitforbit-jobs");
        var runs = kit.RunJobsInParallel(planPath, ns, jobs, "job", plan.Jobs.Count);
        Assert.All(runs, r => Assert.True(r.Code == 0, r.Output));
        var records = Enumerable.Range(0, plan.Jobs.Count).Select(i => FanOutKit.Record(Path.Combine(jobs, i.ToString()))).ToList();
        Assert.All(records, r => Assert.Equal(CacheState.Miss, r.Cache));
        Assert.True(records.Sum(r => r.UploadedBlobs) > 0);

        // Each job's manifest is the one-machine build's manifest for that platform.
        foreach (var r in records)
            Assert.Equal(oneBuild.Image(r.Image)!.Architectures.Single(a => a.Architecture == r.Manifest.Architecture).Manifest, r.Manifest.Manifest);

        // Fan-in from the jobs' directories: the indexes are the one-machine build's, bit for bit.
        var fan = kit.Dir("bitforbit-fanin");
        kit.Ok("fanin", ["fanin", "--images", images, "--plan", planPath, "--registry", registry, "--out", fan,
            .. Enumerable.Range(0, plan.Jobs.Count).Select(i => Path.Combine(jobs, i.ToString()))]);
        AssertSameImages(one, fan, oneBuild);

        // Push the indexes (every blob is already there) and sign with the release key, as the fan-in job does.
        var push = kit.Ok("fanin", "push", "--registry", registry, "--layout", Path.Combine(fan, "oci"), "--artifacts", fan, "--output", "json");
        using (var pushed = System.Text.Json.JsonDocument.Parse(push.StdOut))
            Assert.All(pushed.RootElement.GetProperty("images").EnumerateArray(), i => Assert.Equal(0, i.GetProperty("uploadedBytes").GetInt64()));
        kit.Ok("fanin", "sign", "--artifacts", fan, "--images", images, "--key", kit.ReleaseKey.PrivateKeyPath);

        // Second run of the unchanged set: the plan says nothing changed, every job is a verified hit, nothing uploaded.
        var again = FanOutKit.Plan(kit.Ok("planner", "plan", "--images", images, "--registry", registry, "--key", kit.ReleaseKey.PublicKeyPath, "--out", planPath).StdOut);
        Assert.All(again.Jobs, e => Assert.Equal((false, CacheState.Hit), (e.Changed, e.Cache)));
        Assert.Equal(plan.Jobs.Select(e => e.Inputs), again.Jobs.Select(e => e.Inputs));
        var jobs2 = kit.Dir("bitforbit-jobs2");
        var reruns = kit.RunJobsInParallel(planPath, ns, jobs2, "rerun", again.Jobs.Count);
        Assert.All(reruns, r => Assert.True(r.Code == 0, r.Output));
        var hits = Enumerable.Range(0, again.Jobs.Count).Select(i => FanOutKit.Record(Path.Combine(jobs2, i.ToString()))).ToList();
        Assert.All(hits, h => Assert.Equal((CacheState.Hit, 0, 0L), (h.Cache, h.UploadedBlobs, h.UploadedBytes)));
        Assert.All(Enumerable.Range(0, again.Jobs.Count), i => Assert.False(Directory.Exists(Path.Combine(jobs2, i.ToString(), "oci")), "a hit builds nothing"));

        // A fan-in of hits reads the blobs back from the registry and still writes the same indexes.
        var fan2 = kit.Dir("bitforbit-fanin2");
        var assembled = kit.Ok("fanin2", ["fanin", "--images", images, "--plan", planPath, "--registry", registry, "--out", fan2,
            .. Enumerable.Range(0, again.Jobs.Count).Select(i => Path.Combine(jobs2, i.ToString()))]);
        Assert.Contains("0 blobs from job directories", assembled.StdOut);
        AssertSameImages(one, fan2, oneBuild);

        // fanin --push (what the rendered CI runs): manifests and configs only are read back, the indexes go
        // straight to the registry, pushed.json names the one-machine digests, and they verify with the release key.
        var fan3 = kit.Dir("bitforbit-fanin3");
        var pushed3 = kit.Ok("fanin3", ["fanin", "--images", images, "--plan", planPath, "--registry", registry, "--push", "--out", fan3,
            .. Enumerable.Range(0, again.Jobs.Count).Select(i => Path.Combine(jobs2, i.ToString()))]);
        Assert.Contains($"0 blobs from job directories, {2 * again.Jobs.Count} (", pushed3.StdOut); // a manifest and a config per entry, no layer
        AssertSameImages(one, fan3, oneBuild, withLayers: false);
        var pushedFile = PushedFile.TryLoad(Path.Combine(fan3, "pushed.json"))!;
        Assert.Equal(oneBuild.Images.Select(i => (i.Name, i.Index)), pushedFile.Images.Select(kv => (kv.Key, kv.Value.Index)));
        foreach (var (_, image) in pushedFile.Images)
            kit.Ok("verifier", "verify", image.Reference!, "--key", kit.ReleaseKey.PublicKeyPath);
    }

    private static void AssertSameImages(string one, string fan, BuildManifest oneBuild, bool withLayers = true)
    {
        var fanBuild = BuildManifest.Load(Path.Combine(fan, "build.json"));
        var oneLayout = OciLayout.Open(Path.Combine(one, "oci"));
        var fanLayout = OciLayout.Open(Path.Combine(fan, "oci"));
        Assert.Equal(oneBuild.Images.Select(i => i.Name), fanBuild.Images.Select(i => i.Name));
        foreach (var expected in oneBuild.Images)
        {
            var actual = fanBuild.Image(expected.Name)!;
            Assert.Equal(expected.Index, actual.Index);
            Assert.Equal(oneLayout.ReadBlob(expected.Index), fanLayout.ReadBlob(actual.Index));
            Assert.Equal(fanLayout.Resolve(expected.Name)!.Digest, expected.Index);
            Assert.Equal(expected.Architectures.Select(a => (a.Platform, a.Manifest, a.Config, a.ManifestSize)),
                actual.Architectures.Select(a => (a.Platform, a.Manifest, a.Config, a.ManifestSize)));
            Assert.Equal(expected.Architectures.SelectMany(a => a.Layers), actual.Architectures.SelectMany(a => a.Layers));
            foreach (var a in actual.Architectures)
                foreach (var d in (withLayers ? a.Layers.Select(l => l.Digest) : []).Append(a.Config).Append(a.Manifest))
                    Assert.True(fanLayout.VerifyBlob(d), $"{expected.Name} {a.Platform}: blob {d} missing or damaged in the fan-in layout");
        }
    }
}
