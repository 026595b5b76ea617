namespace HardenImage.Common.Storage;

/// <summary>
/// Records that a cache file was used, so <c>harden cache prune</c> can tell what nobody used for weeks: the file's
/// modification time is set to now when it is older than <see cref="RefreshAfter"/> (as Go's build cache does). Within
/// the hour nothing is written, so a build that uses the same entry a thousand times costs one stat per use and at most
/// one <c>utimensat</c> per file per hour. A symlink is never followed (the link itself is not touched either: no
/// reader of the cache takes a link). Failing to touch is ignored: a read-only or foreign-owned cache still builds,
/// its entries just look older than they are.
/// </summary>
public static class LastUse
{
    /// <summary>How stale a file's time may be before a use refreshes it.</summary>
    public static readonly TimeSpan RefreshAfter = TimeSpan.FromHours(1);

    /// <summary>Marks <paramref name="path"/> (a regular file, not followed) as used now, if its time is older than an hour.</summary>
    public static void Refresh(string path)
    {
        try
        {
            if (OperatingSystem.IsLinux()) RefreshLinux(path);
            else RefreshByPath(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException) { }
    }

    /// <inheritdoc cref="Refresh(string)"/>
    public static void Refresh(params ReadOnlySpan<string> paths)
    {
        foreach (var p in paths) Refresh(p);
    }

    // Tmds.LibC has no implementation outside Linux: its types stay out of methods other platforms JIT.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static unsafe void RefreshLinux(string path)
    {
        if (NoFollowDirectory.StatPath(path) is not { Kind: EntryKind.File } st || DateTimeOffset.UtcNow - st.LastWrite < RefreshAfter) return;
        var bytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        // Null times: "now", which the file's owner and anyone who may write it can set (a shared cache).
        fixed (byte* p = bytes) Tmds.Linux.LibC.utimensat(Tmds.Linux.LibC.AT_FDCWD, p, null, Tmds.Linux.LibC.AT_SYMLINK_NOFOLLOW);
    }

    private static void RefreshByPath(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.LinkTarget != null || DateTime.UtcNow - info.LastWriteTimeUtc < RefreshAfter) return;
        info.LastWriteTimeUtc = DateTime.UtcNow;
    }
}
