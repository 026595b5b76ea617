using HardenImage.Common;
using HardenImage.Common.Storage;

namespace HardenImage.Cache;

/// <summary>An entry prune takes away, why, and the bytes that frees (a file two entries share counts with the last of them).</summary>
public sealed record PlannedRemoval(CacheEntry Entry, string Reason, long FreedBytes);

/// <summary>What prune would remove from an inventory with some options, decided at <see cref="Now"/>.</summary>
public sealed record PrunePlan(CacheInventory Inventory, PruneOptions Options, DateTimeOffset Now, IReadOnlyList<PlannedRemoval> Removals)
{
    /// <summary>Bytes on disk of every file of every entry, each file once.</summary>
    public long TotalBytes => Inventory.Entries.SelectMany(e => e.Files).DistinctBy(f => f.Path).Sum(f => f.Bytes);
    public long FreedBytes => Removals.Sum(r => r.FreedBytes);
}

/// <summary>A file prune meant to remove and could not (permissions, a directory replaced meanwhile), and why.</summary>
public sealed record PruneFailure(string Path, string Error);

/// <summary>What prune did: the entries removed (whole), the bytes freed, what it could not remove and what it kept on a second look.</summary>
public sealed record PruneResult(IReadOnlyList<PlannedRemoval> Removed, long FreedBytes, IReadOnlyList<PruneFailure> Failures, IReadOnlyList<LeftEntry> Kept);

/// <summary>
/// <c>harden cache prune</c>: removes the entries nobody used for a while, then the least recently used ones while
/// the cache is over a size, and the parts of older formats whole (threat D: a cache filling the disk).
/// <para>
/// It cannot be turned against files outside the cache (threat T): it deletes only regular files and symlinks
/// (the link itself) under names harden gives (<see cref="CacheLayout"/>), inside the parts it knows, through
/// directory descriptors opened with O_NOFOLLOW from the root down (<see cref="NoFollowDirectory"/>), then the
/// directories it emptied; a FIFO, socket or device is never opened; the cache key file is never removed, even if
/// it were inside; a directory that holds none of harden's parts is refused whole.
/// </para>
/// <para>
/// Builds running meanwhile: every entry is looked at again just before it goes, and kept when any of its files
/// was used (its time refreshed) or replaced since it was read. A file that still goes from under a build that
/// read its pointer is derived again by that build (a missing pack or file list means "unpack again"; a missing
/// .deb is downloaded and verified again by the next run), never trusted in another form.
/// </para>
/// </summary>
public static class CachePruner
{
    /// <summary>Decides what goes. Nothing is touched.</summary>
    public static PrunePlan Plan(CacheInventory inventory, PruneOptions options, DateTimeOffset now)
    {
        // An age the parser allows (999999d) may reach back before the year 1: then nothing is that old.
        var cutoff = options.UnusedFor >= now - DateTimeOffset.MinValue ? DateTimeOffset.MinValue : now - options.UnusedFor;
        var owners = inventory.Entries.SelectMany(e => e.Files).GroupBy(f => f.Path).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var removals = new List<PlannedRemoval>();
        long Take(CacheEntry e)
        {
            long freed = 0;
            foreach (var f in e.Files)
                if (--owners[f.Path] == 0) freed += f.Bytes;
            return freed;
        }

        var chosen = new HashSet<CacheEntry>(ReferenceEqualityComparer.Instance);
        foreach (var e in inventory.Entries.OrderBy(e => e.LastUse).ThenBy(e => e.Files[0].Path, StringComparer.Ordinal))
        {
            var reason = e.Rule switch
            {
                EntryRule.OldFormat => "an older cache format this version never reads",
                EntryRule.TempFile when now - e.LastUse >= StaleTempFiles.MinimumAge => "left by a killed writer",
                EntryRule.ByLastUse when options.UnusedFor == TimeSpan.Zero || e.LastUse < cutoff => $"unused for {Ago(now - e.LastUse)}",
                _ => null,
            };
            if (reason == null) continue;
            chosen.Add(e);
            removals.Add(new PlannedRemoval(e, reason, Take(e)));
        }
        if (options.MaxBytes is { } max)
        {
            var total = inventory.Entries.SelectMany(e => e.Files).DistinctBy(f => f.Path).Sum(f => f.Bytes) - removals.Sum(r => r.FreedBytes);
            // Least recently used first (ccache's rule); a temp file still being written is not an entry yet.
            foreach (var e in inventory.Entries.Where(e => e.Rule == EntryRule.ByLastUse && !chosen.Contains(e))
                         .OrderBy(e => e.LastUse).ThenBy(e => e.Files[0].Path, StringComparer.Ordinal))
            {
                if (total <= max) break;
                var freed = Take(e);
                total -= freed;
                removals.Add(new PlannedRemoval(e, $"least recently used (last {Ago(now - e.LastUse)} ago) while the cache is over --max-size", freed));
            }
        }
        return new PrunePlan(inventory, options, now, removals);
    }

    /// <summary>
    /// Removes what <paramref name="plan"/> chose. A file that cannot be removed is reported and the rest goes on;
    /// a refused directory (not a cache) throws before anything is removed.
    /// </summary>
    /// <param name="keyFile">The cache key file, never removed; default <see cref="CacheAuthenticationKey.DefaultKeyPath"/>.</param>
    public static PruneResult Execute(PrunePlan plan, string? keyFile = null)
    {
        var inventory = plan.Inventory;
        RefuseIfNotACache(inventory);
        var failures = new List<PruneFailure>();
        var kept = new List<LeftEntry>();
        var removed = new List<PlannedRemoval>();
        if (!inventory.Exists) return new PruneResult(removed, 0, failures, kept);
        using var top = NoFollowDirectory.OpenRoot(inventory.Root)
                        ?? throw new HardenException($"cache directory {inventory.Root} went away while prune read it; nothing was removed.");
        var key = KeyFileIdentity(keyFile ?? CacheAuthenticationKey.DefaultKeyPath());
        using var dirs = new OpenDirectories(top);
        var emptied = new HashSet<string>(StringComparer.Ordinal);
        var owners = inventory.Entries.SelectMany(e => e.Files).GroupBy(f => f.Path).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        long freed = 0;
        NoFollowDirectory? DirOf(string path) => dirs.Of(path);

        foreach (var removal in plan.Removals)
        {
            dirs.Trim();
            var entry = removal.Entry;
            // A second look: used (time refreshed) or replaced since the walk, it stays. A directory on the way that is no
            // longer a directory (swapped for a symlink) is never gone through.
            if (Changed(entry, DirOf, d => IsGone(top, d)) is { } change)
            {
                if (change.Failure) failures.Add(new PruneFailure(change.Path, change.Why));
                else kept.Add(new LeftEntry(change.Path, change.Why));
                continue;
            }
            if (entry.Rule == EntryRule.TempFile && DirOf(entry.Files[0].Path) is { } tempDir && tempDir.IsLocked(Name(entry.Files[0].Path)))
            {
                kept.Add(new LeftEntry(entry.Files[0].Path, "held open by a writer (or not readable by this user, so it cannot be told); kept"));
                continue;
            }
            long entryFreed = 0;
            var ok = true;
            foreach (var file in entry.Files)
            {
                if (--owners[file.Path] > 0) continue; // another entry that stays still names it
                if (key is { } k && file.Stat.Device == k.Device && file.Stat.Inode == k.Inode)
                {
                    kept.Add(new LeftEntry(file.Path, "the cache key file; never removed"));
                    continue;
                }
                // No directory: it is gone with the file (Changed let only that through).
                var rc = DirOf(file.Path)?.Unlink(Name(file.Path)) ?? Enoent;
                if (rc == 0 || rc == Enoent)
                {
                    if (rc == 0) entryFreed += file.Bytes;
                    emptied.Add(Parent(file.Path));
                }
                else
                {
                    failures.Add(new PruneFailure(file.Path, NoFollowDirectory.ErrorText(rc)));
                    ok = false;
                }
            }
            freed += entryFreed;
            if (ok) removed.Add(removal with { FreedBytes = entryFreed });
        }
        RemoveEmptiedDirectories(top, inventory, emptied);
        return new PruneResult(removed, freed, failures, kept);
    }

    /// <summary>The one line for a directory that holds none of harden's parts (someone's home, <c>/</c>): exit 2, nothing removed.</summary>
    public static void RefuseIfNotACache(CacheInventory inventory)
    {
        if (!inventory.IsCache)
            throw new HardenException($"{inventory.Root} holds none of harden's cache directories ({string.Join(", ", CacheLayout.CurrentParts)}): " +
                                      "refusing to prune it, nothing was removed. Point --cache or HARDEN_CACHE at harden's cache.");
    }

    private const int Enoent = 2;

    private sealed record Change(string Path, string Why, bool Failure);

    private static Change? Changed(CacheEntry entry, Func<string, NoFollowDirectory?> dirOf, Func<string, bool> isGone)
    {
        foreach (var file in entry.Files)
        {
            var dir = dirOf(file.Path);
            // Removed with everything in it (a prune running at the same time): gone already, nothing to report.
            if (dir == null && isGone(Parent(file.Path))) continue;
            if (dir == null) return new Change(Parent(file.Path), "is no longer a directory harden made (replaced by a symlink?): nothing in it was removed", true);
            if (dir.Stat(Name(file.Path)) is not { } now) continue; // gone already
            if (now.Inode != file.Stat.Inode || now.Device != file.Stat.Device || now.Kind != file.Stat.Kind)
                return new Change(file.Path, "was replaced while prune ran; kept", false);
            if (now.LastWrite > file.Stat.LastWrite) return new Change(file.Path, "was used while prune ran; kept", false);
        }
        return null;
    }

    /// <summary>
    /// True when '/'-separated <paramref name="dir"/>, or a directory above it, no longer exists (removed meanwhile, say by
    /// a prune running at the same time); false when one is there but is no directory (swapped for a symlink) or when it
    /// opens again. Walked from the root without following anything, as every other look.
    /// </summary>
    private static bool IsGone(NoFollowDirectory top, string dir)
    {
        var current = top.OpenDescendant("");
        try
        {
            foreach (var part in dir.Split('/'))
            {
                if (current?.Stat(part) is not { } st) return current != null;
                if (st.Kind != EntryKind.Directory) return false;
                var next = current.OpenChild(part);
                current.Dispose();
                current = next;
            }
            return false;
        }
        finally
        {
            current?.Dispose();
        }
    }

    /// <summary>
    /// Directories prune emptied, deepest first, except those a build writes into (<see cref="CacheLayout.FixedDirectories"/>);
    /// the directories of an older format go whole, empty ones too.
    /// </summary>
    private static void RemoveEmptiedDirectories(NoFollowDirectory top, CacheInventory inventory, HashSet<string> emptied)
    {
        // Each emptied directory and its ancestors, in one set: testing every directory against every emptied one was
        // quadratic (40,000 planted interpreter directories: 40 s of prune, most of it here).
        var holding = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in emptied)
            for (var d = e; d.Length > 0 && holding.Add(d); d = Parent(d)) { }
        using var dirs = new OpenDirectories(top);
        foreach (var dir in inventory.Directories.Where(d => CacheLayout.OldParts.Contains(d.Split('/')[0]) || holding.Contains(d))
                     .Where(d => !CacheLayout.FixedDirectories.Contains(d)).OrderByDescending(d => d.Count(c => c == '/')))
        {
            dirs.Trim();
            dirs.Of(dir)?.RemoveDirectory(Name(dir)); // ENOTEMPTY: something stays in it (left, kept or written meanwhile)
        }
    }

    /// <summary>The key file's device and inode (the file a symlink there ends at), when it exists.</summary>
    private static (ulong Device, ulong Inode)? KeyFileIdentity(string path)
    {
        try { path = File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? path; }
        catch (IOException) { return null; }
        using var dir = NoFollowDirectory.OpenRoot(Path.GetDirectoryName(path)!);
        return dir?.Stat(Path.GetFileName(path)) is { } st ? (st.Device, st.Inode) : null;
    }

    /// <summary>"45 days", "3 hours", "12 minutes".</summary>
    public static string Ago(TimeSpan t) =>
        t.TotalDays >= 2 ? $"{Math.Floor(t.TotalDays):0} days" : t.TotalHours >= 2 ? $"{Math.Floor(t.TotalHours):0} hours" : $"{Math.Max(0, Math.Floor(t.TotalMinutes)):0} minutes";

    private static string Parent(string path) => CacheLayout.Parent(path);
    private static string Name(string path) => CacheLayout.Name(path);
}
