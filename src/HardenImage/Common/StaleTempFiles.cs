using System.Text.RegularExpressions;

namespace HardenImage.Common;

/// <summary>
/// Removes the temp files an interrupted run left behind (a killed push, build or download), so they do not grow
/// for ever (threat: Denial of service by a full disk). Three conditions, all required:
/// <list type="number">
/// <item>our own name only: <see cref="AtomicFile"/>'s <c>.tmp-&lt;name&gt;-&lt;32 hex&gt;</c>, nothing else in the directory;</item>
/// <item>no process holds it: every writer keeps its temp open with <see cref="FileShare.None"/>, which .NET takes as
/// an advisory <c>flock(LOCK_EX)</c> on Unix (a sharing lock on Windows); we try the same lock without waiting and
/// leave the file alone when it is taken — a live writer in this or another process, never a dead one (the kernel
/// drops the lock of a killed process);</item>
/// <item>not written to for <see cref="MinimumAge"/>: closes the instant between a writer creating its file and
/// locking it, and protects writers on file systems where the lock is not shared (NFS without locks).</item>
/// </list>
/// </summary>
public static partial class StaleTempFiles
{
    public static readonly TimeSpan MinimumAge = TimeSpan.FromMinutes(1);

    /// <summary>Deletes stale temp files directly in <paramref name="directory"/>; returns how many. Never throws for a file it cannot remove.</summary>
    public static int Clean(string directory, TimeProvider? time = null, TimeSpan? minimumAge = null)
    {
        if (!Directory.Exists(directory)) return 0;
        var now = (time ?? TimeProvider.System).GetUtcNow().UtcDateTime;
        var age = minimumAge ?? MinimumAge;
        var removed = 0;
        foreach (var path in Directory.EnumerateFiles(directory, ".tmp-*"))
        {
            if (!IsTempName(Path.GetFileName(path))) continue;
            try
            {
                if (now - File.GetLastWriteTimeUtc(path) < age) continue;
                // Held with the writers' own lock: the file cannot be opened so while a live process has it.
                using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
                    File.Delete(path);
                removed++;
            }
            catch (IOException)
            {
                // Held by a live writer (sharing violation), or gone meanwhile: not ours to remove now.
            }
            catch (UnauthorizedAccessException)
            {
                // Another user's file in a shared cache: leave it.
            }
        }
        return removed;
    }

    /// <summary><see cref="AtomicFile"/>'s temp name, <c>.tmp-&lt;name&gt;-&lt;32 hex&gt;</c>: ours, and nothing else is.</summary>
    public static bool IsTempName(string fileName) => OurTempName().IsMatch(fileName);

    [GeneratedRegex(@"^\.tmp-.+-[0-9a-f]{32}$")]
    private static partial Regex OurTempName();
}
