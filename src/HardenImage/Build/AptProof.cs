using HardenImage.Apt;
using HardenImage.Common;
using HardenImage.Lock;
using HardenImage.Contracts;

namespace HardenImage.Build;

/// <summary>
/// The apt reader with the authenticated parsed-index cache, and the lock proof every stage runs before using the
/// lock; the caller says the proof's notices.
/// </summary>
public static class AptProof
{
    public static AptSuiteIndexReader Reader(HttpClient http, ImageSet set, string cacheRoot, bool allowExpired)
    {
        var indices = new AptIndexCache(Path.Combine(cacheRoot, "indices"));
        var proofs = new IndexProofCache(indices.RootDirectory, CacheAuthenticationKey.Load(cacheRoot));
        return new AptSuiteIndexReader(new AptRepositoryClient(http, indices, proofs: proofs), set.Directory, allowExpired);
    }

    public static async Task<LockProof> ProveAsync(ImageSet set, LockFile lockFile, IReadOnlyCollection<string> selected, string cacheRoot,
        bool allowExpired, bool allowRollback, CancellationToken ct)
    {
        using var http = AptRepositoryClient.CreateHttpClient();
        var proof = await new LockProver(Reader(http, set, cacheRoot, allowExpired))
            .ProveAsync(set, lockFile, selected, new LockProofOptions { AllowRollback = allowRollback }, ct: ct);
        return proof;
    }
}
