using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Tests.Infrastructure;

namespace HardenImage.Tests.Registry;

/// <summary>Shared set-up: clients with fast retries and no ambient docker config, a two-image layout sharing a parent.</summary>
public static class RegistryTestKit
{
    public static readonly RetryOptions FastRetry = new() { MaxRetries = 8, BaseDelay = TimeSpan.FromMilliseconds(20), MaxDelay = TimeSpan.FromSeconds(2) };

    public static IRegistryCredentialProvider NoCredentials { get; } = new CredentialProviderChain([]);

    public static IRegistry Client(string host, IRegistryCredentialProvider? credentials = null, int monolithicLimit = 8 << 20, int chunkSize = 0,
        RetryOptions? retry = null, TimeProvider? clock = null) =>
        RegistryFactory.Create(new RegistryTarget(RegistryKind.Distribution, host, ""), new RegistryClientOptions
        {
            Insecure = true,
            Credentials = credentials ?? NoCredentials,
            Retry = retry ?? FastRetry,
            MonolithicLimit = monolithicLimit,
            ChunkSize = chunkSize,
            Clock = clock,
        });

    /// <summary>
    /// Two images, "base" and "app", for amd64 and arm64; app has base's parent layer plus its own, so pushing both
    /// shares a blob across repositories.
    /// </summary>
    public static (OciLayout Layout, Descriptor Base, Descriptor App) TwoImages(TempDir dir, int ownBytes = 96 * 1024, int parentBytes = 128 * 1024)
    {
        var layout = OciLayout.OpenOrCreate(dir.Combine("oci"));
        var parent = TestImages.WriteLayer(layout, "usr/lib/base.bin", parentBytes, 42);
        var b = TestImages.WriteImage(layout, "base", ["amd64", "arm64"], ownBytes, [parent], seed: 1);
        var a = TestImages.WriteImage(layout, "app", ["amd64", "arm64"], ownBytes, [parent], seed: 2);
        return (layout, b, a);
    }

    /// <summary>Reads every blob of <paramref name="index"/> back from the registry, verifying digests while streaming.</summary>
    public static async Task AssertAllBlobsVerify(IRegistry registry, string repository, OciLayout layout, Descriptor index)
    {
        var fetched = await registry.GetManifestAsync(repository, index.Digest);
        Assert.NotNull(fetched);
        Assert.Equal(index.Digest, fetched!.Digest);
        foreach (var blob in TestImages.BlobsOf(layout, index))
        {
            await using var s = await registry.GetBlobAsync(repository, blob.Digest);
            var n = 0L;
            var buffer = new byte[81920];
            int r;
            while ((r = await s.ReadAsync(buffer)) > 0) n += r;
            Assert.Equal(blob.Size, n);
        }
    }
}
