using System.Text.Json.Nodes;
using HardenImage.Build;
using HardenImage.Contracts;

namespace HardenImage.Signing;

/// <summary>
/// The SLSA v1 provenance predicate <c>harden sign</c> attests for an image: which image went to which registry and
/// repository, and every .deb the lock resolved for it and for its parents (by URL and SHA-256).
/// </summary>
public static class Provenance
{
    public const string BuildType = "https://github.com/hardenimage/harden/build/v1";
    public const string BuilderId = "https://github.com/hardenimage/harden";

    /// <param name="lockFile">The image set's lock; null when there is none (then no resolved dependencies).</param>
    public static JsonNode ForImage(string image, string registry, string repository, LockFile? lockFile)
    {
        var deps = new List<ResolvedDependency>();
        if (lockFile != null)
        {
            var names = new HashSet<string> { image };
            for (var i = lockFile.Image(image); i?.From != null; i = lockFile.Image(i.From)) names.Add(i.From);
            foreach (var li in lockFile.Images.Where(i => names.Contains(i.Name)))
                foreach (var p in li.Architectures.SelectMany(a => a.Packages).DistinctBy(p => p.Sha256))
                    deps.Add(new ResolvedDependency(p.Url, p.Sha256, $"{p.Name}@{p.Version}?arch={p.Architecture}"));
        }
        return Predicates.SlsaProvenance(new SlsaProvenanceInput
        {
            BuildType = BuildType,
            BuilderId = BuilderId,
            ExternalParameters = new JsonObject { ["image"] = image, ["registry"] = registry, ["repository"] = repository },
            ResolvedDependencies = deps,
        });
    }
}
