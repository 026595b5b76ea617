namespace HardenImage.Common;

/// <summary>
/// Writes files so that a reader never sees half of one: write to a temp file in the same directory, flush, rename.
/// An interrupted run leaves at most a stray <c>.tmp-*</c> file, never a truncated target (threat: Tampering / DoS).
/// </summary>
public static class AtomicFile
{
    /// <param name="durable">False for a cache entry that is verified when read and derived again when it fails
    /// (a sealed pointer, a content-store file): skips the fsync, which costs ~0.5 ms a file, while the rename still
    /// never exposes half a file to a concurrent reader.</param>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes, bool durable = true)
    {
        var tmp = TempPathFor(path);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                fs.Write(bytes);
                if (durable) fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch (IOException e) when (DiskFull.Is(e))
        {
            TryDelete(tmp);
            throw DiskFull.Error(path, e);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    public static void WriteAllText(string path, string text, bool durable = true) =>
        WriteAllBytes(path, new System.Text.UTF8Encoding(false).GetBytes(text), durable);

    /// <summary>Streams into a temp file; <paramref name="write"/> may throw, and then nothing is renamed.</summary>
    public static async Task WriteAsync(string path, Func<Stream, Task> write)
    {
        var tmp = TempPathFor(path);
        try
        {
            await using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                await write(fs);
                await fs.FlushAsync();
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch (IOException e) when (DiskFull.Is(e))
        {
            TryDelete(tmp);
            throw DiskFull.Error(path, e);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    public static string TempPathFor(string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, $".tmp-{Path.GetFileName(path)}-{Guid.NewGuid():N}");
    }

    public static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>
/// A full disk (or exhausted quota) while writing: a clear error that says the previous file is untouched, instead of
/// an IOException with a stack trace (threat: Denial of service; the temp-and-rename write keeps artifacts intact).
/// </summary>
public static class DiskFull
{
    // errno values as .NET reports them in IOException.HResult on Linux: ENOSPC, EDQUOT.
    private const int ENOSPC = 28;
    private const int EDQUOT = 122;

    public static bool Is(IOException e) =>
        e.HResult is ENOSPC or EDQUOT || e.Message.Contains("No space left on device", StringComparison.Ordinal);

    public static HardenException Error(string path, IOException e) =>
        new($"{path}: the disk is full ({e.Message.ReplaceLineEndings(" ")}); nothing was replaced, the previous file is intact. " +
            "Free some space (or point HARDEN_CACHE / --out elsewhere) and run again.", inner: e);
}
