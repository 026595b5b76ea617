using System.Text;
using HardenImage.Common;

namespace HardenImage.Deb;

/// <summary>
/// One member of an <c>ar</c> archive. <see cref="Content"/> reads the member's bytes and is valid until the
/// next <see cref="ArReader.ReadNextMember"/> call.
/// </summary>
public sealed record ArMember(string Name, long Size, DateTimeOffset ModificationTime, int Uid, int Gid, int Mode)
{
    public Stream Content { get; init; } = Stream.Null;
}

/// <summary>
/// Forward-only reader of the common <c>ar</c> format that .deb files use (deb(5)): the global header
/// <c>!&lt;arch&gt;\n</c>, then members of a 60-byte header (name 16, mtime 12, uid 6, gid 6, octal mode 8,
/// decimal size 10, <c>`\n</c>) and their data padded to an even offset. Names may carry the GNU trailing
/// <c>/</c>, the GNU long-name table (<c>//</c> + <c>/offset</c>) or the BSD <c>#1/len</c> form; symbol tables
/// are skipped. Nothing but the current header is held in memory, and the stream need not be seekable.
/// </summary>
/// <remarks>Tampering / Denial of service: every header field is validated, sizes are bounded by the file, and a
/// file that ends inside a member is reported as truncated rather than read as a shorter member.</remarks>
public sealed class ArReader : IDisposable
{
    private const int HeaderSize = 60;
    private const int MaxLongNameTable = 1 << 20;
    private static ReadOnlySpan<byte> GlobalHeader => "!<arch>\n"u8;

    private readonly Stream _stream;
    private readonly string _source;
    private readonly bool _leaveOpen;
    private BoundedReadStream? _current;
    private bool _pendingPadding;
    private bool _started;
    private bool _finished;
    private byte[]? _gnuNames;

    /// <param name="stream">The archive, positioned at its start.</param>
    /// <param name="source">What to call the archive in error messages (a file name).</param>
    public ArReader(Stream stream, string source, bool leaveOpen = false)
    {
        _stream = stream;
        _source = source;
        _leaveOpen = leaveOpen;
    }

    /// <summary>The next member, or null after the last one. Skips what the caller did not read of the previous member.</summary>
    public ArMember? ReadNextMember()
    {
        if (_finished) return null;
        if (!_started)
        {
            Span<byte> magic = stackalloc byte[8];
            var got = ReadFully(magic);
            if (got < 8 || !magic.SequenceEqual(GlobalHeader))
                throw new HardenException($"{_source}: not a Debian package: it does not start with the ar header '!<arch>'.");
            _started = true;
        }

        while (true)
        {
            FinishCurrent();
            Span<byte> header = stackalloc byte[HeaderSize];
            var got = ReadFully(header);
            if (got == 0) { _finished = true; return null; }
            if (got < HeaderSize)
                throw new HardenException($"{_source}: truncated: the file ends inside an ar member header ({got} of {HeaderSize} bytes).");
            if (header[58] != (byte)'`' || header[59] != (byte)'\n')
                throw new HardenException($"{_source}: corrupt ar member header (bad terminator) at a member boundary; the file is damaged or not a .deb.");

            var rawName = Encoding.ASCII.GetString(header[..16]).TrimEnd(' ');
            // deb(5) member names are printable ASCII; a control character would also break our one-line messages.
            if (rawName.Any(char.IsControl))
                throw new HardenException($"{_source}: corrupt ar member header: the name '{UntrustedText.Escape(rawName)}' has control characters; the file is damaged or not a .deb.");
            var mtime = ParseNumber(header.Slice(16, 12), 10, "mtime", rawName);
            var uid = ParseNumber(header.Slice(28, 6), 10, "uid", rawName);
            var gid = ParseNumber(header.Slice(34, 6), 10, "gid", rawName);
            var mode = ParseNumber(header.Slice(40, 8), 8, "mode", rawName);
            var size = ParseNumber(header.Slice(48, 10), 10, "size", rawName);

            _current = new BoundedReadStream(_stream, size, $"{_source}: ar member '{rawName}'");
            _pendingPadding = (size & 1) == 1;

            string name;
            if (rawName == "//")
            {
                // GNU long-name table: names end with "/\n"; members refer to it as "/<offset>".
                if (size > MaxLongNameTable)
                    throw new HardenException($"{_source}: ar long-name table of {size} bytes is implausibly large.");
                _gnuNames = new byte[size];
                _current.ReadExactly(_gnuNames);
                continue;
            }
            if (rawName is "/" or "/SYM64/" or "__.SYMDEF" or "__.SYMDEF SORTED") continue; // symbol tables
            if (rawName.StartsWith("#1/", StringComparison.Ordinal))
            {
                var len = ParseNumber(Encoding.ASCII.GetBytes(rawName[3..]), 10, "BSD name length", rawName);
                if (len > size || len > 4096)
                    throw new HardenException($"{_source}: ar member '{rawName}' has a BSD name longer than the member.");
                var nameBytes = new byte[len];
                _current.ReadExactly(nameBytes);
                name = Encoding.UTF8.GetString(nameBytes).TrimEnd('\0');
                size -= len;
            }
            else if (rawName.Length > 1 && rawName[0] == '/' && char.IsAsciiDigit(rawName[1]))
            {
                name = LongName(rawName);
            }
            else
            {
                name = rawName.EndsWith('/') ? rawName[..^1] : rawName;
            }
            if (name.Length == 0)
                throw new HardenException($"{_source}: ar member with an empty name.");
            if (name.Any(char.IsControl))
                throw new HardenException($"{_source}: ar member name '{UntrustedText.Escape(name)}' has control characters; the file is damaged or not a .deb.");

            return new ArMember(name, size, DateTimeOffset.FromUnixTimeSeconds(mtime), (int)uid, (int)gid, (int)mode)
            {
                Content = _current,
            };
        }
    }

    private string LongName(string rawName)
    {
        if (_gnuNames == null)
            throw new HardenException($"{_source}: ar member '{rawName}' refers to a long-name table that the archive does not have.");
        var offset = ParseNumber(Encoding.ASCII.GetBytes(rawName[1..]), 10, "long-name offset", rawName);
        if (offset >= _gnuNames.Length)
            throw new HardenException($"{_source}: ar member '{rawName}' points past the long-name table.");
        var rest = _gnuNames.AsSpan((int)offset);
        var end = rest.IndexOf((byte)'\n');
        if (end < 0) end = rest.Length;
        var name = Encoding.UTF8.GetString(rest[..end]);
        return name.EndsWith('/') ? name[..^1] : name;
    }

    private void FinishCurrent()
    {
        if (_current == null) return;
        _current.SkipRest();
        _current = null;
        if (_pendingPadding)
        {
            _pendingPadding = false;
            Span<byte> pad = stackalloc byte[1];
            // A missing pad byte after the last member is tolerated (some writers omit it); the next header read
            // then sees a clean end of file.
            ReadFully(pad);
        }
    }

    private int ReadFully(Span<byte> buffer)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = _stream.Read(buffer[total..]);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    private long ParseNumber(ReadOnlySpan<byte> field, int radix, string what, string member)
    {
        long value = 0;
        var digits = 0;
        var i = 0;
        while (i < field.Length && field[i] == ' ') i++;
        for (; i < field.Length && field[i] != ' '; i++)
        {
            var d = field[i] - '0';
            if (d < 0 || d >= radix)
                throw new HardenException($"{_source}: corrupt ar header of member '{member}': {what} field " +
                                          $"'{Encoding.ASCII.GetString(field).Trim()}' is not a number.");
            value = checked(value * radix + d);
            digits++;
        }
        for (; i < field.Length; i++)
            if (field[i] != ' ')
                throw new HardenException($"{_source}: corrupt ar header of member '{member}': {what} field has text after the number.");
        // Empty numeric fields occur for uid/gid in some writers; size must be present.
        if (digits == 0 && what == "size")
            throw new HardenException($"{_source}: corrupt ar header of member '{member}': empty size field.");
        return value;
    }

    public void Dispose()
    {
        if (!_leaveOpen) _stream.Dispose();
    }
}
