namespace HardenImage.Cache;

/// <summary>One row of <c>harden cache</c>: a part, what it holds, when it was used, and what prune would take from it.</summary>
public sealed record CachePartSummary(
    string Part, bool OldFormat, int Entries, long Bytes, DateTimeOffset? OldestLastUse, DateTimeOffset? NewestLastUse,
    int PruneEntries, long PruneBytes);

/// <summary>The per-part rows of a plan, in a fixed order: the parts this version uses, then the rest.</summary>
public static class CacheSummary
{
    public static IReadOnlyList<CachePartSummary> Of(PrunePlan plan)
    {
        var removals = plan.Removals.GroupBy(r => r.Entry.Part).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var byPart = plan.Inventory.Entries.GroupBy(e => e.Part).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var parts = CacheLayout.CurrentParts
            .Concat(byPart.Keys.Where(p => !CacheLayout.CurrentParts.Contains(p)).Order(StringComparer.Ordinal))
            .ToList();
        return parts.Select(part =>
        {
            var entries = byPart.GetValueOrDefault(part) ?? [];
            var removed = removals.GetValueOrDefault(part) ?? [];
            return new CachePartSummary(part, CacheLayout.OldParts.Contains(part), entries.Count,
                entries.SelectMany(e => e.Files).DistinctBy(f => f.Path).Sum(f => f.Bytes),
                entries.Count == 0 ? null : entries.Min(e => e.LastUse), entries.Count == 0 ? null : entries.Max(e => e.LastUse),
                removed.Count, removed.Sum(r => r.FreedBytes));
        }).ToList();
    }
}
