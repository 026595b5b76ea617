using System.Security.Cryptography;
using HardenImage.Common;
using HardenImage.Oci;
using HardenImage.Registry;
using HardenImage.Signing;

namespace HardenImage.FanOut;

/// <summary>What the registry holds for one job's inputs.</summary>
public static class CacheState
{
    /// <summary>A manifest of the right platform under <c>inputs-&lt;hex&gt;</c>, signed by the release key: reused.</summary>
    public const string Hit = "hit";
    /// <summary>No <c>inputs-&lt;hex&gt;</c> tag (or no such repository): build.</summary>
    public const string Miss = "miss";
    /// <summary>Tagged, but no signature at all: rebuild and compare.</summary>
    public const string Unsigned = "unsigned";
    /// <summary>Tagged and signed, but no signature verifies with the release key (another key, a replayed or broken one): rebuild and compare.</summary>
    public const string NotReleaseKey = "not-signed-by-release-key";
    /// <summary>
    /// Tagged and signed by the release key, but the signature does not name these inputs (an older release's manifest
    /// moved under this tag would roll the image back): rebuild and compare.
    /// </summary>
    public const string OtherInputs = "signed-for-other-inputs";
    /// <summary>Tagged, but not an image manifest of this platform: rebuild.</summary>
    public const string WrongContent = "wrong-content";
    /// <summary>No registry or no release key given: every job builds.</summary>
    public const string NotConsulted = "not-consulted";
}

/// <summary>
/// The outcome of a cache lookup. <see cref="Manifest"/> is the tagged manifest when there was one (also when it is
/// not trusted: the job compares its rebuild with it); <see cref="Reason"/> is the line a log shows.
/// </summary>
public sealed record CacheLookupResult(string State, string Reason, Descriptor? Manifest = null, ImageManifest? Document = null, ImageConfig? Config = null)
{
    public bool IsHit => State == CacheState.Hit;
}

/// <summary>
/// The registry as the fan-out's shared cache. A job's manifest is tagged <c>NS/&lt;image&gt;:inputs-&lt;hex&gt;</c>
/// (<see cref="InputsDigest.CacheTag"/>); the fan-in's <c>harden sign</c> signs every platform manifest with the release
/// key. A later job with the same inputs reuses the tagged manifest only when a signature in its cosign
/// <c>.sig</c> verifies with the release key for exactly that digest (<see cref="CosignVerifier"/>): anyone who can
/// push to the registry can move a tag, so an unsigned entry or one signed by another key is never trusted — it is
/// reported and rebuilt, and the rebuild compared with it (threat T/S).
/// </summary>
public sealed class RegistryCache
{
    /// <summary>The cosign signature annotation (payload <c>optional</c>) `harden sign` writes with a fan-out manifest's inputs digest.</summary>
    public const string InputsAnnotation = ImageSetSigner.InputsAnnotation;

    /// <summary>Config blobs are small JSON; anything bigger is not ours.</summary>
    public const long MaxConfigBytes = 4 << 20;

    private readonly IRegistry _registry;
    private readonly ECDsa _releaseKey;

    /// <param name="releaseKey">Public half of the release key (not owned).</param>
    public RegistryCache(IRegistry registry, ECDsa releaseKey)
    {
        _registry = registry;
        _releaseKey = releaseKey;
    }

    public async Task<CacheLookupResult> LookupAsync(string repository, string inputs, string architecture, CancellationToken ct = default)
    {
        var tag = InputsDigest.CacheTag(inputs);
        var found = await _registry.GetManifestAsync(repository, tag, ct);
        if (found == null)
            return new(CacheState.Miss, $"{_registry.Name}/{repository}:{tag}: no cache manifest for these inputs");
        var descriptor = new Descriptor { MediaType = found.MediaType, Digest = found.Digest, Size = found.Bytes.Length };
        ImageManifest document;
        try
        {
            if (found.MediaType != MediaTypes.ImageManifest) throw new HardenException($"media type {found.MediaType}");
            document = OciJson.Deserialize<ImageManifest>(found.Bytes, $"{repository}:{tag}");
        }
        catch (Exception e) when (e is HardenException or System.Text.Json.JsonException)
        {
            return new(CacheState.WrongContent, $"{_registry.Name}/{repository}:{tag} is {found.Digest}, not an OCI image manifest ({e.Message}); rebuilding", descriptor);
        }
        ImageConfig config;
        try
        {
            if (document.Config.Size > MaxConfigBytes) throw new HardenException($"config of {document.Config.Size} bytes");
            config = OciJson.Deserialize<ImageConfig>(await ReadBoundedAsync(repository, document.Config.Digest, MaxConfigBytes, ct), $"{repository}@{document.Config.Digest}");
        }
        catch (Exception e) when (e is HardenException or System.Text.Json.JsonException or IOException)
        {
            return new(CacheState.WrongContent, $"{_registry.Name}/{repository}:{tag} ({found.Digest}): its config is unreadable ({e.Message}); rebuilding", descriptor);
        }
        if (config.Architecture != architecture || config.RootFs.DiffIds.Count != document.Layers.Count)
            return new(CacheState.WrongContent, $"{_registry.Name}/{repository}:{tag} ({found.Digest}) is an image for {config.Architecture} ({document.Layers.Count} layers, {config.RootFs.DiffIds.Count} diff ids), not ours for {architecture}; rebuilding", descriptor);

        var signatures = await new RegistrySignatureStore(_registry, repository)
            .GetAsync(CosignSignatureManifest.SignatureTag(Digest.Parse(found.Digest)), ct);
        if (signatures == null)
            return new(CacheState.Unsigned, $"{_registry.Name}/{repository}:{tag} ({found.Digest}) has no signature; not trusted, rebuilding", descriptor, document, config);
        var verification = new CosignVerifier(_releaseKey).VerifySignatures(signatures, Digest.Parse(found.Digest));
        if (!verification.Verified)
            return new(CacheState.NotReleaseKey, $"{_registry.Name}/{repository}:{tag} ({found.Digest}) is signed, but not by the release key " +
                $"({string.Join("; ", verification.Checks.Select(c => c.Reason).Distinct())}); not trusted, rebuilding", descriptor, document, config);
        // The release key signed this manifest — for which inputs? Without the binding, anyone who can push could move
        // the tag to an older release-signed manifest of the same image (vulnerable packages) and have it reused.
        var named = verification.Checks.Where(c => c.Valid)
            .Select(c => c.Claim?.Optional?.GetValueOrDefault(InputsAnnotation)).ToList();
        if (!named.Contains(inputs))
            return new(CacheState.OtherInputs, $"{_registry.Name}/{repository}:{tag} ({found.Digest}) is signed by the release key, but for " +
                $"{(named.All(n => n == null) ? "no inputs digest" : "other inputs (" + string.Join(", ", named.OfType<string>().Distinct()) + ")")}, not {inputs}; not trusted, rebuilding", descriptor, document, config);
        return new(CacheState.Hit, $"{_registry.Name}/{repository}:{tag} is {found.Digest}, signed by the release key for these inputs", descriptor, document, config);
    }

    /// <summary>A small blob, read to its end (so the digest check runs) but never past <paramref name="max"/> bytes.</summary>
    private async Task<byte[]> ReadBoundedAsync(string repository, string digest, long max, CancellationToken ct)
    {
        await using var s = await _registry.GetBlobAsync(repository, digest, ct);
        using var ms = new MemoryStream();
        var buffer = new byte[81920];
        int n;
        while ((n = await s.ReadAsync(buffer, ct)) > 0)
        {
            if (ms.Length + n > max) throw new HardenException($"blob {digest} is larger than {max} bytes");
            ms.Write(buffer, 0, n);
        }
        return ms.ToArray();
    }
}
