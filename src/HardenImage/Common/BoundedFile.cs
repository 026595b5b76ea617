namespace HardenImage.Common;

/// <summary>
/// Reads whole input files with a size bound that holds on the bytes actually read, not on what the file system
/// reports: a keyring that is <c>/dev/zero</c> (length 0, endless) or a file that grows while we read stops at the
/// bound with a clear error instead of exhausting memory (threat: Denial of service).
/// </summary>
public static class BoundedFile
{
    /// <param name="what">What the file is, for the message ("lock file", "keyring").</param>
    public static byte[] ReadAllBytes(string path, long maxBytes, string what)
    {
        FileStream fs;
        try
        {
            fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        }
        catch (FileNotFoundException) { throw new HardenException($"{path}: {what} not found."); }
        catch (DirectoryNotFoundException) { throw new HardenException($"{path}: {what} not found."); }
        catch (UnauthorizedAccessException) { throw new HardenException($"{path}: {what} is not readable (permission denied)."); }
        catch (IOException e) { throw new HardenException($"{path}: cannot read the {what}: {e.Message}"); }
        using (fs)
        {
            var declared = fs.CanSeek ? fs.Length : 0;
            if (declared > maxBytes) throw TooLarge(path, what, maxBytes);
            var buffer = new MemoryStream(declared > 0 ? (int)declared : 1 << 16);
            var chunk = new byte[1 << 16];
            try
            {
                while (true)
                {
                    var n = fs.Read(chunk, 0, (int)Math.Min(chunk.Length, maxBytes + 1 - buffer.Length));
                    if (n == 0) break;
                    buffer.Write(chunk, 0, n);
                    if (buffer.Length > maxBytes) throw TooLarge(path, what, maxBytes);
                }
            }
            catch (IOException e) { throw new HardenException($"{path}: cannot read the {what}: {e.Message}"); }
            return buffer.ToArray();
        }
    }

    public static HardenException TooLarge(string path, string what, long maxBytes) =>
        new($"{path}: the {what} is larger than {Size(maxBytes)}, the limit for it (docs/limits.md); refusing it as hostile or corrupt.");

    /// <summary>"4 MiB", "512 KiB", "300 bytes".</summary>
    public static string Size(long bytes) =>
        bytes >= 1L << 30 && bytes % (1L << 30) == 0 ? $"{bytes >> 30} GiB"
        : bytes >= 1L << 20 && bytes % (1L << 20) == 0 ? $"{bytes >> 20} MiB"
        : bytes >= 1L << 10 && bytes % (1L << 10) == 0 ? $"{bytes >> 10} KiB"
        : $"{bytes} bytes";
}
