namespace HardenImage.Common;

/// <summary>
/// Read-merge-write of a shared record file (artifacts/build.json, artifacts/pushed.json) that several processes may
/// update at once (per-image CI jobs on one artifacts directory): an exclusive lock on <c>.FILE.lock</c> serialises
/// the updates, the merge sees the latest content, and the write is temp + rename so a reader never sees half a file
/// and a killed writer leaves the previous file intact (threat: Tampering / Denial of service).
/// </summary>
public static class RecordFile
{
    /// <summary>How long to wait for another process's update before giving up with a clear error.</summary>
    public static TimeSpan LockTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Under the lock: reads <paramref name="path"/> (null when absent), lets <paramref name="merge"/> compute the new
    /// text, and writes it atomically. Returns what was written.
    /// </summary>
    public static string Update(string path, Func<string?, string> merge, TimeProvider? clock = null)
    {
        clock ??= TimeProvider.System;
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        using var held = Acquire(LockPathFor(full), clock);
        var current = File.Exists(full) ? File.ReadAllText(full) : null;
        var next = merge(current);
        AtomicFile.WriteAllText(full, next);
        return next;
    }

    /// <summary>The lock beside a record: <c>DIR/.NAME.lock</c> (hidden, so layout and artifact listings stay clean).</summary>
    public static string LockPathFor(string path) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "." + Path.GetFileName(path) + ".lock");

    private static FileStream Acquire(string lockPath, TimeProvider clock)
    {
        var deadline = clock.GetUtcNow() + LockTimeout;
        while (true)
        {
            try
            {
                // FileShare.None takes an exclusive advisory lock (flock) on Unix; the kernel drops it if we die.
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (clock.GetUtcNow() < deadline)
            {
                Thread.Sleep(25);
            }
            catch (IOException e)
            {
                throw new HardenException($"{lockPath}: another harden process has held this lock for {LockTimeout.TotalSeconds:0} s ({e.Message}). " +
                    "Wait for it to finish, or remove the file if no harden process is running.", 2, e);
            }
        }
    }
}
