using System.Security.Cryptography;
using HardenImage.FanOut;
using HardenImage.Tests.FanOut;

namespace HardenImage.Tests.Attacks;

/// <summary>
/// Threat T/S (review of the fanout branch): the registry cache trusts <c>inputs-&lt;hex&gt;</c> when the manifest it
/// names carries a release-key signature — but that signature is over the manifest digest only, not over the inputs
/// it was built from. Anyone who can push can point the tag for tomorrow's inputs (a Debian security update, computable
/// from the public commit) at yesterday's legitimately signed manifest: the job reports a hit, and the fan-in releases
/// and re-signs the old, vulnerable image (a rollback/freeze). Fixed: the release signature's simple-signing "optional"
/// carries dev.hardenimage.inputs, and RegistryCache.LookupAsync requires it to name the tag's inputs.
/// </summary>
[Collection(FanOutCollection.Name)]
[Trait("Category", "Integration")]
public sealed class FanOutCacheReplayAttackTests(FanOutKit kit)
{
    [Fact]
    public async Task CacheHit_SignedManifestOfOtherInputs_RetaggedUnderNewInputs_IsNotAHit()
    {
        const string ns = "rollback";
        var dir = kit.Dir("rollback", "0");
        kit.Ok("rollback0", "job", "--images", kit.Workspace.ImagesDir, "--image", "base", "--platform", "linux/amd64",
            "--registry", kit.RegistryFor(ns), "--key", kit.ReleaseKey.PublicKeyPath, "--out", dir);
        var old = FanOutKit.Record(dir);
        await kit.SignAsync(kit.ReleaseKey, $"{ns}/base", old.Manifest.Manifest, old.Inputs); // the fan-in signed yesterday's release, for its inputs

        // Tomorrow's inputs differ (a security update in the lock); the attacker pre-tags them to yesterday's manifest.
        var tomorrow = Convert.ToHexStringLower(SHA256.HashData("tomorrow's lock"u8));
        Assert.NotEqual(old.Inputs, tomorrow);
        var registry = kit.Client();
        var bytes = (await registry.GetManifestAsync($"{ns}/base", old.Manifest.Manifest))!;
        await registry.PutManifestAsync($"{ns}/base", InputsDigest.CacheTag(tomorrow), bytes.Bytes, bytes.MediaType);

        using var releaseKey = ECDsa.Create();
        releaseKey.ImportFromPem(File.ReadAllText(kit.ReleaseKey.PublicKeyPath));
        var lookup = await new RegistryCache(registry, releaseKey).LookupAsync($"{ns}/base", tomorrow, "amd64");
        Assert.False(lookup.IsHit, $"a release signature made for inputs {old.Inputs[..12]}… was accepted for inputs {tomorrow[..12]}…: {lookup.Reason}");
        Assert.Contains(old.Inputs[..12], lookup.Reason);
    }
}
