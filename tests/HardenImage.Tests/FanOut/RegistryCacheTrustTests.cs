using System.Text.Json.Nodes;
using HardenImage.FanOut;
using HardenImage.Oci;
using HardenImage.Signing;

namespace HardenImage.Tests.FanOut;

/// <summary>
/// Issue 13 §3, the trust boundary: a cache entry counts only when its manifest is signed by the release key. An
/// unsigned entry, one signed by another key, a release signature replayed from another digest and a forged
/// manifest under the inputs tag are each reported and rebuilt; a rebuild that differs fails the job showing both
/// digests. Each test has its own registry namespace.
/// </summary>
[Collection(FanOutCollection.Name)]
[Trait("Category", "Integration")]
public sealed class RegistryCacheTrustTests(FanOutKit kit)
{
    private FanOutKit.Result Job(string ns, string machine, string outDir) =>
        kit.Harden(machine, "job", "--images", kit.Workspace.ImagesDir, "--image", "base", "--platform", "linux/amd64",
            "--registry", kit.RegistryFor(ns), "--key", kit.ReleaseKey.PublicKeyPath, "--out", outDir);

    [Fact]
    public async Task CacheEntry_UnsignedOrSignedByAnotherKey_IsReportedAndRebuilt_OnlyTheReleaseKeyMakesAHit()
    {
        const string ns = "trust";
        var first = kit.Dir("trust", "0");
        var miss = Job(ns, "trust0", first);
        Assert.True(miss.Code == 0, miss.Output);
        var built = FanOutKit.Record(first);
        Assert.Equal(CacheState.Miss, built.Cache);
        Assert.Contains("no cache manifest for these inputs", miss.StdOut);

        // Pushed by a job, never signed: not trusted, rebuilt, and the rebuild compared with it.
        var second = kit.Dir("trust", "1");
        var unsigned = Job(ns, "trust1", second);
        Assert.True(unsigned.Code == 0, unsigned.Output);
        var r1 = FanOutKit.Record(second);
        Assert.Equal((CacheState.Unsigned, built.Manifest.Manifest), (r1.Cache, r1.Manifest.Manifest));
        Assert.Contains("has no signature; not trusted, rebuilding; the rebuild is the same manifest", r1.CacheReason);
        Assert.True(Directory.Exists(Path.Combine(second, "oci")), "an unsigned entry is rebuilt");
        Assert.Equal(0, r1.UploadedBlobs);

        // Signed, but by another key: not trusted either.
        await kit.SignAsync(kit.OtherKey, $"{ns}/base", built.Manifest.Manifest);
        var third = kit.Dir("trust", "2");
        var other = Job(ns, "trust2", third);
        Assert.True(other.Code == 0, other.Output);
        var r2 = FanOutKit.Record(third);
        Assert.Equal(CacheState.NotReleaseKey, r2.Cache);
        Assert.Contains("signature does not verify with the given public key", r2.CacheReason);
        Assert.True(Directory.Exists(Path.Combine(third, "oci")), "another key's signature is rebuilt over");

        // The release key's signature, but naming no inputs (or others): an older release's manifest moved under this
        // tag would look exactly like this — a rollback, not a hit.
        await kit.SignAsync(kit.ReleaseKey, $"{ns}/base", built.Manifest.Manifest);
        await kit.SignAsync(kit.ReleaseKey, $"{ns}/base", built.Manifest.Manifest, new string('0', 64));
        var rollback = kit.Dir("trust", "2b");
        var old = Job(ns, "trust2b", rollback);
        Assert.True(old.Code == 0, old.Output);
        var r2b = FanOutKit.Record(rollback);
        Assert.Equal(CacheState.OtherInputs, r2b.Cache);
        Assert.Contains($"is signed by the release key, but for other inputs ({new string('0', 64)}), not {built.Inputs}; not trusted, rebuilding", r2b.CacheReason);
        Assert.True(Directory.Exists(Path.Combine(rollback, "oci")), "a release signature for other inputs is rebuilt over");

        // The release key's signature for these inputs: a hit, nothing built or uploaded.
        await kit.SignAsync(kit.ReleaseKey, $"{ns}/base", built.Manifest.Manifest, built.Inputs);
        var fourth = kit.Dir("trust", "3");
        var hit = Job(ns, "trust3", fourth);
        Assert.True(hit.Code == 0, hit.Output);
        var r3 = FanOutKit.Record(fourth);
        Assert.Equal((CacheState.Hit, built.Manifest.Manifest, 0), (r3.Cache, r3.Manifest.Manifest, r3.UploadedBlobs));
        Assert.Equal(built.Manifest.Layers, r3.Manifest.Layers);
        Assert.False(Directory.Exists(Path.Combine(fourth, "oci")));
    }

    [Fact]
    public async Task CacheEntry_ForgedManifestUnderTheInputsTag_FailsTheJobShowingBothDigests_AndTheTagNamesTheRebuild()
    {
        const string ns = "forge";
        var first = kit.Dir("forge", "0");
        Assert.Equal(0, Job(ns, "forge0", first).Code);
        var honest = FanOutKit.Record(first);
        var tag = InputsDigest.CacheTag(honest.Inputs);

        // An attacker with push access re-tags the inputs to a manifest of their own (same layers, one more
        // annotation: it would pass any structural check) and signs it with their key.
        var registry = kit.Client();
        var original = (await registry.GetManifestAsync($"{ns}/base", honest.Manifest.Manifest))!;
        var node = JsonNode.Parse(original.Bytes)!;
        node["annotations"]!["org.example.backdoor"] = "yes";
        var forgedBytes = System.Text.Encoding.UTF8.GetBytes(node.ToJsonString());
        var forged = await registry.PutManifestAsync($"{ns}/base", tag, forgedBytes, MediaTypes.ImageManifest);
        await kit.SignAsync(kit.OtherKey, $"{ns}/base", forged);

        var run = Job(ns, "forge1", kit.Dir("forge", "1"));
        Assert.Equal(1, run.Code);
        Assert.Contains($"same inputs, different manifests: {kit.RegistryFor(ns).Split('/')[0]}/{ns}/base:{tag} was {forged} ({CacheState.NotReleaseKey})", run.StdErr);
        Assert.Contains($"is {honest.Manifest.Manifest}. Either the build is not deterministic or the cache entry was forged", run.StdErr);
        Assert.DoesNotContain("   at ", run.StdErr);
        // The rebuild is what the tag names now; the forged manifest never became a record of a hit.
        Assert.Equal(honest.Manifest.Manifest, (await registry.ResolveManifestAsync($"{ns}/base", tag))!.Digest);
        Assert.Equal(CacheState.NotReleaseKey, FanOutKit.Record(kit.Dir("forge", "1")).Cache);
    }

    [Fact]
    public async Task CacheEntry_ReleaseSignatureReplayedOntoAnotherManifest_IsNotAHit()
    {
        const string ns = "replay";
        var first = kit.Dir("replay", "0");
        Assert.Equal(0, Job(ns, "replay0", first).Code);
        var honest = FanOutKit.Record(first);
        var tag = InputsDigest.CacheTag(honest.Inputs);
        await kit.SignAsync(kit.ReleaseKey, $"{ns}/base", honest.Manifest.Manifest, honest.Inputs);

        // The release key's real .sig of the honest manifest, copied to the .sig tag of a forged one.
        var registry = kit.Client();
        var node = JsonNode.Parse((await registry.GetManifestAsync($"{ns}/base", honest.Manifest.Manifest))!.Bytes)!;
        node["annotations"]!["org.example.backdoor"] = "yes";
        var forged = await registry.PutManifestAsync($"{ns}/base", tag, System.Text.Encoding.UTF8.GetBytes(node.ToJsonString()), MediaTypes.ImageManifest);
        var sig = (await registry.GetManifestAsync($"{ns}/base", CosignSignatureManifest.SignatureTag(Digest.Parse(honest.Manifest.Manifest))))!;
        await registry.PutManifestAsync($"{ns}/base", CosignSignatureManifest.SignatureTag(Digest.Parse(forged)), sig.Bytes, sig.MediaType);

        var run = Job(ns, "replay1", kit.Dir("replay", "1"));
        Assert.Equal(1, run.Code);
        Assert.Contains($"signature is for {honest.Manifest.Manifest}, not for the image {forged}", run.StdOut);
        Assert.Contains($"was {forged} ({CacheState.NotReleaseKey})", run.StdErr);
    }

    [Fact]
    public async Task CacheEntry_OfAnotherPlatform_IsWrongContent_AndRebuilt()
    {
        const string ns = "wrongplatform";
        var first = kit.Dir("wrongplatform", "0");
        Assert.Equal(0, Job(ns, "wp0", first).Code);
        var amd = FanOutKit.Record(first);
        // Re-tag the amd64 inputs to the arm64 manifest of the same image.
        var arm = kit.Harden("wp1", "job", "--images", kit.Workspace.ImagesDir, "--image", "base", "--platform", "linux/arm64",
            "--registry", kit.RegistryFor(ns), "--key", kit.ReleaseKey.PublicKeyPath, "--out", kit.Dir("wrongplatform", "1"));
        Assert.Equal(0, arm.Code);
        var armRecord = FanOutKit.Record(kit.Dir("wrongplatform", "1"));
        var registry = kit.Client();
        var armManifest = (await registry.GetManifestAsync($"{ns}/base", armRecord.Manifest.Manifest))!;
        await registry.PutManifestAsync($"{ns}/base", InputsDigest.CacheTag(amd.Inputs), armManifest.Bytes, armManifest.MediaType);

        var run = Job(ns, "wp2", kit.Dir("wrongplatform", "2"));
        Assert.Equal(1, run.Code);
        Assert.Contains("is an image for arm64 (", run.StdOut);
        Assert.Contains("not ours for amd64; rebuilding", run.StdOut);
        Assert.Contains($"was {armRecord.Manifest.Manifest} ({CacheState.WrongContent})", run.StdErr);
    }
}
