using HardenImage.Lock;

namespace HardenImage.Build;

/// <summary>Which images can be built here: those whose sources are reachable (the CLI says what it skips).</summary>
public static class Selection
{
    /// <summary>
    /// With explicit --image names, exactly those. Without, every image except those that declare
    /// requiresNetwork (their repositories are outside the default network) and, when the stage reads payload
    /// (<paramref name="readsPayload"/>: fetch, build, plan — not lock), those that declare requiresPublish (their
    /// payload is a publish the default pipeline does not run); both are listed as skipped.
    /// </summary>
    public static IReadOnlyCollection<string> Buildable(ImageSet set, string[] requested, out List<(string Image, string Why)> skipped, bool readsPayload = true)
    {
        skipped = new();
        if (requested.Length > 0) return requested;
        var result = new List<string>();
        var includeAll = Environment.GetEnvironmentVariable("HARDEN_INCLUDE_ALL") == "1";
        foreach (var image in set.InBuildOrder())
        {
            var chain = set.Ancestors(image).Prepend(image).ToList();
            var blocked = chain.FirstOrDefault(i => i.RequiresNetwork != null);
            var unpublished = readsPayload ? chain.FirstOrDefault(i => i.RequiresPublish != null) : null;
            if (blocked != null && !includeAll)
                skipped.Add((image.Name, $"needs {blocked.RequiresNetwork}; build it with --image {image.Name} where that is reachable"));
            else if (unpublished != null)
                skipped.Add((image.Name, $"its payload is a build output the default pipeline does not make; run {unpublished.RequiresPublish}, or publish and build it with --image {image.Name}"));
            else result.Add(image.Name);
        }
        return result;
    }
}
