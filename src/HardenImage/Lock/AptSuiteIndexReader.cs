using System.Security.Cryptography;
using System.Text;
using HardenImage.Apt;

namespace HardenImage.Lock;

/// <summary>
/// Reads a source's suite through <see cref="AptRepositoryClient"/> (signature, Release, index hashes all
/// verified there). A flat repository whose URL names the architecture (NVIDIA) is one repository per
/// architecture: each is verified on its own, and the lock records a digest over their InRelease digests.
/// </summary>
public sealed class AptSuiteIndexReader(AptRepositoryClient client, string imagesDirectory, bool allowExpired = false) : ISuiteIndexReader
{
    public async Task<SuiteIndex> ReadAsync(SourceDefinition source, string suite, IReadOnlyList<string> architectures, CancellationToken ct)
    {
        if (source.Flat && source.Url.Contains("{arch}", StringComparison.Ordinal))
        {
            var perArch = await Task.WhenAll(architectures.Select(arch => client.FetchAsync(AptSourceFor(source, suite, arch), ct)));
            var combined = CombinedDigest(architectures, perArch.Select(i => i.InReleaseSha256));
            return new SuiteIndex
            {
                Source = source.Name, Suite = suite, Url = source.Url, InReleaseSha256 = combined,
                Date = perArch.Max(i => i.Date), ValidUntil = perArch.Min(i => i.ValidUntil),
                Packages = architectures.Zip(perArch).ToDictionary(x => x.First,
                    x => ForArchitecture(x.Second.Packages, x.First),
                    StringComparer.Ordinal),
                Notices = perArch.SelectMany(i => i.Notices).ToList(),
            };
        }
        var index = await client.FetchAsync(AptSourceFor(source, suite, architectures), ct);
        return new SuiteIndex
        {
            Source = source.Name, Suite = suite, Url = source.Url, InReleaseSha256 = index.InReleaseSha256,
            Date = index.Date, ValidUntil = index.ValidUntil,
            Packages = architectures.ToDictionary(a => a,
                a => ForArchitecture(index.Packages, a),
                StringComparer.Ordinal),
            Notices = index.Notices,
        };
    }

    public async Task<SuiteProof> ProveAsync(SourceDefinition source, string suite, IReadOnlyList<string> architectures,
        string? pinnedInReleaseSha256, IReadOnlySet<string>? names, CancellationToken ct)
    {
        Func<string, bool>? keep = names == null ? null : names.Contains;
        if (source.Flat && source.Url.Contains("{arch}", StringComparison.Ordinal))
        {
            // One repository per architecture; the lock holds a digest over their digests, so the pin is checked as a whole.
            var perArch = await Task.WhenAll(architectures.Select(arch => client.ProveAsync(AptSourceFor(source, suite, arch), null, ct, keep)));
            var combined = CombinedDigest(architectures, perArch.Select(p => p.InReleaseSha256));
            return new SuiteProof
            {
                Source = source.Name, Suite = suite, InReleaseSha256 = combined, Date = perArch.Max(p => p.Date),
                Pinned = combined == pinnedInReleaseSha256,
                Packages = architectures.Zip(perArch).ToDictionary(x => x.First,
                    x => (source.UrlFor(x.First), x.Second.Packages.GetValueOrDefault(x.First) ?? []), StringComparer.Ordinal),
                Notices = perArch.SelectMany(p => p.Notices).ToList(),
            };
        }
        var proof = await client.ProveAsync(AptSourceFor(source, suite, architectures), pinnedInReleaseSha256, ct, keep);
        return new SuiteProof
        {
            Source = source.Name, Suite = suite, InReleaseSha256 = proof.InReleaseSha256, Date = proof.Date, Pinned = proof.Pinned,
            Packages = architectures.ToDictionary(a => a, a => (source.UrlFor(a), proof.Packages.GetValueOrDefault(a) ?? []), StringComparer.Ordinal),
            Notices = proof.Notices,
        };
    }

    /// <summary>One repository per architecture (a flat source whose URL names {arch}).</summary>
    private AptSource AptSourceFor(SourceDefinition source, string suite, string arch) => new()
    {
        Name = $"{source.Name}/{suite}", BaseUrl = source.UrlFor(arch), Suite = suite.EndsWith('/') ? suite : suite + "/",
        Components = source.Components, Architectures = [arch], KeyringPaths = [Path.Combine(imagesDirectory, source.Keyring)], AllowExpiredRelease = allowExpired,
    };

    /// <summary>One repository for all architectures.</summary>
    private AptSource AptSourceFor(SourceDefinition source, string suite, IReadOnlyList<string> architectures) => new()
    {
        Name = $"{source.Name}/{suite}", BaseUrl = source.Url, Suite = source.Flat && !suite.EndsWith('/') ? suite + "/" : suite,
        Components = source.Components, Architectures = architectures, KeyringPaths = [Path.Combine(imagesDirectory, source.Keyring)], AllowExpiredRelease = allowExpired,
    };

    /// <summary>What the lock pins for per-architecture repositories: a digest over each one's InRelease digest.</summary>
    private static string CombinedDigest(IReadOnlyList<string> architectures, IEnumerable<string> inReleaseSha256s) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", architectures.Zip(inReleaseSha256s, (a, d) => $"{a} {d}")))));

    /// <summary>Architecture-specific packages plus <c>all</c> ones (listed in every binary-&lt;arch&gt; index: once each).</summary>
    private static IReadOnlyList<BinaryPackage> ForArchitecture(IReadOnlyList<BinaryPackage> packages, string arch) =>
        packages.Where(p => p.Architecture == arch || p.Architecture == "all").DistinctBy(p => (p.Name, p.Version, p.Sha256)).ToList();
}
