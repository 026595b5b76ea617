using System.Text;

namespace HardenImage.Oci;

/// <summary>The type flags we write (POSIX ustar / pax).</summary>
internal enum TarTypeFlag : byte
{
    Regular = (byte)'0',
    HardLink = (byte)'1',
    SymLink = (byte)'2',
    Directory = (byte)'5',
    PaxExtended = (byte)'x',
}

/// <summary>One header as we want it on disk, before encoding.</summary>
internal sealed record TarHeader(string Name, TarTypeFlag Type, int Mode, long Uid, long Gid, long Size, long MTime, string LinkName);

/// <summary>
/// Encodes ustar headers by hand, adding a pax extended header only when a field cannot be held by ustar (long or
/// non-ASCII names, uid/gid or size beyond the octal fields). We do not use System.Formats.Tar's writer because its
/// pax entries add atime/ctime/mtime records and its GNU form adds fields that vary by machine; here every byte
/// is a function of the entry and the epoch.
/// </summary>
internal static class TarHeaderWriter
{
    public const int BlockSize = 512;
    private const long MaxOctal7 = 0x1FFFFF;        // 07777777: uid, gid, mode
    private const long MaxOctal11 = 0x1FFFFFFFF;    // 077777777777: size (8 GiB - 1), mtime

    /// <summary>Writes the header block(s) for <paramref name="h"/>; returns true when a pax header was needed.</summary>
    public static bool Write(Stream output, TarHeader h)
    {
        var pax = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (!IsAscii(h.Name) || !TrySplitName(h.Name, out var ustarName, out var ustarPrefix))
        {
            pax["path"] = h.Name;
            ustarName = AsciiFallback(h.Name, 100);
            ustarPrefix = "";
        }

        var ustarLink = h.LinkName;
        if (!IsAscii(h.LinkName) || h.LinkName.Length > 100)
        {
            pax["linkpath"] = h.LinkName;
            ustarLink = AsciiFallback(h.LinkName, 100);
        }
        if (h.Uid > MaxOctal7 || h.Uid < 0) pax["uid"] = h.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (h.Gid > MaxOctal7 || h.Gid < 0) pax["gid"] = h.Gid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (h.Size > MaxOctal11) pax["size"] = h.Size.ToString(System.Globalization.CultureInfo.InvariantCulture);

        if (pax.Count > 0)
        {
            var records = EncodePaxRecords(pax);
            // A fixed name (no pid, unlike GNU tar's "%d/PaxHeaders.%p/%f") keeps the bytes reproducible.
            var paxName = "PaxHeaders/" + AsciiFallback(LastComponent(h.Name), 89);
            WriteBlock(output, new TarHeader(paxName, TarTypeFlag.PaxExtended, 0b110_100_100, 0, 0, records.Length, h.MTime, ""),
                paxName, "", "");
            output.Write(records);
            WritePadding(output, records.Length);
        }

        var main = h with
        {
            Uid = pax.ContainsKey("uid") ? 0 : h.Uid,
            Gid = pax.ContainsKey("gid") ? 0 : h.Gid,
            Size = pax.ContainsKey("size") ? 0 : h.Size,
        };
        WriteBlock(output, main, ustarName, ustarPrefix, ustarLink);
        return pax.Count > 0;
    }

    public static void WritePadding(Stream output, long dataLength)
    {
        var rem = (int)(dataLength % BlockSize);
        if (rem != 0) output.Write(ZeroBlocks, 0, BlockSize - rem);
    }

    /// <summary>The end-of-archive marker: two zero blocks.</summary>
    public static void WriteEnd(Stream output) => output.Write(ZeroBlocks);

    // Never written to: a shared source of zero bytes for padding.
    private static readonly byte[] ZeroBlocks = new byte[BlockSize * 2];

    private static void WriteBlock(Stream output, TarHeader h, string name, string prefix, string link)
    {
        var b = new byte[BlockSize];
        PutString(b, 0, 100, name);
        PutOctal(b, 100, 8, h.Mode & 0xFFF);
        PutOctal(b, 108, 8, h.Uid);
        PutOctal(b, 116, 8, h.Gid);
        PutOctal(b, 124, 12, h.Size);
        PutOctal(b, 136, 12, h.MTime);
        b[156] = (byte)h.Type;
        PutString(b, 157, 100, link);
        "ustar\0"u8.CopyTo(b.AsSpan(257));
        "00"u8.CopyTo(b.AsSpan(263));
        // uname (265) and gname (297) stay empty: ownership is numeric only.
        PutOctal(b, 329, 8, 0);
        PutOctal(b, 337, 8, 0);
        PutString(b, 345, 155, prefix);
        // Checksum: sum of all bytes with the checksum field read as spaces; 6 octal digits, NUL, space.
        for (var i = 148; i < 156; i++) b[i] = (byte)' ';
        long sum = 0;
        foreach (var x in b) sum += x;
        var chk = Convert.ToString(sum, 8).PadLeft(6, '0');
        Encoding.ASCII.GetBytes(chk, b.AsSpan(148));
        b[154] = 0;
        b[155] = (byte)' ';
        output.Write(b);
    }

    /// <summary>ustar holds a name up to 100 bytes, or prefix (≤155) + "/" + name (≤100) split at a slash.</summary>
    internal static bool TrySplitName(string path, out string name, out string prefix)
    {
        prefix = "";
        name = path;
        if (path.Length <= 100) return true;
        // Directories end in "/": the split must leave a non-empty name part, so search before the trailing slash.
        var searchEnd = path.EndsWith('/') ? path.Length - 2 : path.Length - 1;
        for (var i = Math.Min(searchEnd, 155); i > 0; i--)
        {
            if (path[i] != '/') continue;
            var n = path[(i + 1)..];
            if (n.Length > 100) break; // a shorter prefix only makes the name longer
            if (n.Length == 0) continue;
            prefix = path[..i];
            name = n;
            return true;
        }
        name = "";
        return false;
    }

    private static byte[] EncodePaxRecords(SortedDictionary<string, string> records)
    {
        using var ms = new MemoryStream();
        foreach (var (key, value) in records)
        {
            // "%d %s=%s\n" where %d counts the whole record including its own digits.
            var body = Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(value) + 3; // ' ', '=', '\n'
            var len = body + 1;
            while (len.ToString(System.Globalization.CultureInfo.InvariantCulture).Length + body != len) len++;
            ms.Write(Encoding.UTF8.GetBytes($"{len} {key}={value}\n"));
        }
        return ms.ToArray();
    }

    private static void PutString(byte[] b, int offset, int size, string s)
    {
        var bytes = Encoding.ASCII.GetBytes(s);
        if (bytes.Length > size) throw new InvalidOperationException($"tar field overflow: '{s}' > {size} bytes");
        bytes.CopyTo(b, offset);
    }

    private static void PutOctal(byte[] b, int offset, int size, long value)
    {
        var digits = Convert.ToString(value, 8).PadLeft(size - 1, '0');
        if (digits.Length > size - 1) throw new InvalidOperationException($"tar numeric field overflow: {value}");
        Encoding.ASCII.GetBytes(digits, b.AsSpan(offset));
        b[offset + size - 1] = 0;
    }

    private static bool IsAscii(string s)
    {
        foreach (var c in s) if (c is < (char)0x20 or > (char)0x7e) return false;
        return true;
    }

    private static string AsciiFallback(string s, int max)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var c in s) if (c is >= (char)0x20 and <= (char)0x7e) sb.Append(c);
        var r = sb.ToString();
        return r.Length <= max ? r : r[^max..];
    }

    private static string LastComponent(string name)
    {
        var trimmed = name.TrimEnd('/');
        var i = trimmed.LastIndexOf('/');
        return i < 0 ? trimmed : trimmed[(i + 1)..];
    }
}
