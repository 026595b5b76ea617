using System.Formats.Tar;
using System.Text;
using HardenImage.Common;
using HardenImage.Common.Streams;
using HardenImage.Common.Compression;

namespace HardenImage.Deb;

/// <summary>Reader settings.</summary>
public sealed record DebReaderOptions
{
    public static DebReaderOptions Default { get; } = new();

    /// <summary>The xz implementation (liblzma by default, managed fallback).</summary>
    public XzDecoder Xz { get; init; } = XzDecoder.Auto;

    /// <summary>Upper bound on the uncompressed control.tar contents held in memory (Denial of service).</summary>
    public long MaxControlBytes { get; init; } = 64L << 20;

    /// <summary>Shared bound on everything a build decompresses (null: no per-build bound).</summary>
    public UnpackBudget? Build { get; init; }

    /// <summary>
    /// Unpacked data.tar bytes per compressed byte, above a floor of <see cref="RatioFloorBytes"/>: the locked packages
    /// stay under 40x (Installed-Size / .deb size, python3-fsspec); a decompression bomb is thousands.
    /// </summary>
    public long MaxCompressionRatio { get; init; } = 1000;

    public long RatioFloorBytes { get; init; } = 256L << 20;
}

/// <summary>
/// Reads a .deb (deb(5), format 2.0): the control.tar (control paragraph, md5sums, conffiles, maintainer
/// scripts) eagerly, then the data.tar entries one at a time through <see cref="ReadDataEntries"/>. Neither the
/// package nor its data.tar is ever held in memory; the input may be a forward-only stream (an HTTP body).
/// </summary>
/// <remarks>
/// Tampering / Elevation of privilege: every data.tar entry is checked before it is handed out. Refused, each
/// with a <see cref="HardenException"/> naming the package and the path: absolute paths, <c>..</c> segments,
/// character/block devices and fifos, hard links that are absolute, contain <c>..</c> or do not name an earlier
/// regular file of the same package, entries written through one of the package's own symlinks, duplicate paths
/// and tar entry types dpkg-deb never writes (sparse, multi-volume). Symlinks themselves are allowed and handed
/// out; use <see cref="PathSafety"/> across packages. A truncated or corrupt package fails with a clear message,
/// and the compressed data.tar is read to its end so its checksum (gzip CRC, xz/zstd checks) is verified.
/// </remarks>
public sealed class DebPackageReader : IDisposable
{
    private readonly Stream _stream;
    private readonly ArReader _ar;
    private readonly DebReaderOptions _options;
    private ArMember? _dataMember;
    private bool _dataStarted;

    private DebPackageReader(Stream stream, string source, DebReaderOptions options, bool leaveOpen)
    {
        _stream = stream;
        Source = source;
        _options = options;
        _ar = new ArReader(stream, source, leaveOpen);
    }

    /// <summary>Opens the .deb at <paramref name="path"/> and reads its control part.</summary>
    public static DebPackageReader Open(string path, DebReaderOptions? options = null)
    {
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return Open(fs, Path.GetFileName(path), options, leaveOpen: false);
    }

    /// <summary>Reads the control part of the .deb in <paramref name="stream"/> (positioned at its start).</summary>
    /// <param name="source">What to call the package in messages (its file name or URL).</param>
    public static DebPackageReader Open(Stream stream, string source, DebReaderOptions? options = null, bool leaveOpen = false)
    {
        var reader = new DebPackageReader(stream, source, options ?? DebReaderOptions.Default, leaveOpen);
        try
        {
            reader.ReadHead();
            return reader;
        }
        catch
        {
            reader.Dispose();
            throw;
        }
    }

    /// <summary>The name used in messages: the source, plus package and version once known.</summary>
    public string Source { get; }

    /// <summary>Contents of debian-binary, e.g. "2.0".</summary>
    public string FormatVersion { get; private set; } = "";

    public DebCompression ControlCompression { get; private set; }
    public DebCompression DataCompression { get; private set; }

    public DebControl Control { get; private set; } = null!;

    /// <summary>"file.deb (name version)" for messages.</summary>
    public string Label => Control == null ? Source : $"{Source} ({Control.Package} {Control.Version})";

    private void ReadHead()
    {
        var first = _ar.ReadNextMember()
                    ?? throw new HardenException($"{Source}: empty ar archive, not a Debian package.");
        if (first.Name != "debian-binary")
            throw new HardenException($"{Source}: not a Debian package: first member is '{first.Name}', expected 'debian-binary'.");
        if (first.Size > 64)
            throw new HardenException($"{Source}: debian-binary member is {first.Size} bytes; expected '2.0'.");
        var version = new byte[first.Size];
        first.Content.ReadExactly(version);
        FormatVersion = Encoding.ASCII.GetString(version).Trim();
        if (!FormatVersion.StartsWith("2.", StringComparison.Ordinal))
            throw new HardenException($"{Source}: unsupported .deb format version '{UntrustedText.Escape(FormatVersion)}' (only 2.x is supported).");

        var control = NextRequiredMember("control.tar");
        ControlCompression = DebDecompression.FromMemberName(control.Name, "control.tar")
            ?? throw new HardenException($"{Source}: unsupported control member '{control.Name}' (expected control.tar, control.tar.gz, .xz or .zst).");
        Control = ReadControl(control);

        _dataMember = NextRequiredMember("data.tar");
        DataCompression = DebDecompression.FromMemberName(_dataMember.Name, "data.tar")
            ?? throw new HardenException($"{Label}: unsupported data member '{_dataMember.Name}' (expected data.tar, data.tar.gz, .xz, .zst or .bz2).");
    }

    /// <summary>The next member named stem*, skipping members that deb(5) says to ignore (names starting with '_').</summary>
    private ArMember NextRequiredMember(string stem)
    {
        while (true)
        {
            var m = _ar.ReadNextMember()
                    ?? throw new HardenException($"{Label}: truncated or incomplete package: no {stem} member.");
            if (m.Name.StartsWith('_')) continue;
            if (m.Name.StartsWith(stem, StringComparison.Ordinal)) return m;
            throw new HardenException($"{Label}: unexpected member '{m.Name}' where {stem}.* should be (deb(5) fixes the member order).");
        }
    }

    private DebControl ReadControl(ArMember member)
    {
        var what = $"{Source}: {member.Name}";
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        long total = 0;
        // The tar framing of a few small files adds little: twice the content bound is far above any real control.tar.
        using (var decompressed = OpenDecompressed(member, ControlCompression, 2 * _options.MaxControlBytes, "control.tar limit"))
        using (var tar = new TarReader(decompressed, leaveOpen: true))
        {
            while (true)
            {
                var entry = Guard(what, () => tar.GetNextEntry());
                if (entry == null) break;
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
                var name = DebPath.TryNormalise(entry.Name, out _);
                if (string.IsNullOrEmpty(name) || name.Contains('/')) continue;
                total += entry.Length;
                if (total > _options.MaxControlBytes)
                    throw new HardenException($"{what}: control files exceed {_options.MaxControlBytes >> 20} MiB; refusing (hostile or broken package).");
                var bytes = new byte[entry.Length];
                if (entry.DataStream != null) Guard(what, () => { entry.DataStream.ReadExactly(bytes); return 0; });
                files[name] = bytes;
            }
        }

        if (!files.TryGetValue("control", out var controlBytes))
            throw new HardenException($"{what}: no 'control' file in the control archive.");
        Deb822Paragraph fields;
        try
        {
            var paragraphs = Deb822.Parse(Encoding.UTF8.GetString(controlBytes));
            fields = paragraphs.Count > 0 ? paragraphs[0]
                : throw new HardenException($"{what}: the control file is empty.");
        }
        catch (FormatException e)
        {
            throw new HardenException($"{what}: control file is not valid deb822: {e.Message}");
        }
        foreach (var required in new[] { "Package", "Version" })
            if (string.IsNullOrWhiteSpace(fields[required]))
                throw new HardenException($"{what}: control file has no '{required}' field.");

        string? md5Text = files.TryGetValue("md5sums", out var md5Bytes) ? Encoding.UTF8.GetString(md5Bytes) : null;
        var md5 = md5Text == null ? [] : ParseMd5Sums(md5Text, what);
        var conffiles = files.TryGetValue("conffiles", out var confBytes) ? ParseConffiles(Encoding.UTF8.GetString(confBytes)) : [];
        var scripts = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var script in DebControl.ScriptNames)
            if (files.TryGetValue(script, out var text)) scripts[script] = Encoding.UTF8.GetString(text);
        var known = new HashSet<string>(DebControl.ScriptNames) { "control", "md5sums", "conffiles" };
        var others = files.Keys.Where(k => !known.Contains(k)).Order(StringComparer.Ordinal).ToList();
        return new DebControl(fields, md5, md5Text, conffiles, scripts, others);
    }

    private static List<DebMd5Sum> ParseMd5Sums(string text, string what)
    {
        var list = new List<DebMd5Sum>();
        var lineNo = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNo++;
            var line = raw.TrimEnd('\r');
            if (line.Length == 0) continue;
            // "<32 hex><space><space or '*'><path>" as md5sum(1) writes it.
            if (line.Length < 35 || line[32] != ' ' || line[33] is not (' ' or '*'))
                throw new HardenException($"{what}: md5sums line {lineNo} is malformed: '{Short(line)}'.");
            var hash = line[..32];
            foreach (var c in hash)
                if (!char.IsAsciiHexDigit(c))
                    throw new HardenException($"{what}: md5sums line {lineNo} does not start with an MD5 hex digest: '{Short(line)}'.");
            list.Add(new DebMd5Sum(line[34..], hash.ToLowerInvariant()));
        }
        return list;
    }

    private static List<string> ParseConffiles(string text)
    {
        var list = new List<string>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0) continue;
            // Newer dpkg allows flags before the path ("remove-on-upgrade /etc/foo"); the path is the last word
            // that starts with '/'.
            var slash = line.IndexOf(" /", StringComparison.Ordinal);
            list.Add(line[0] == '/' || slash < 0 ? line : line[(slash + 1)..]);
        }
        return list;
    }

    /// <summary>
    /// The data.tar entries in archive order, each checked (see the class remarks). An entry's
    /// <see cref="DebEntry.Content"/> is valid until the enumeration moves on. Can be enumerated once.
    /// The package root entry (<c>./</c>) is not returned.
    /// </summary>
    public IEnumerable<DebEntry> ReadDataEntries()
    {
        if (_dataStarted) throw new InvalidOperationException("The data.tar of a .deb can be read only once.");
        _dataStarted = true;
        return ReadDataEntriesCore(_dataMember!);
    }

    private IEnumerable<DebEntry> ReadDataEntriesCore(ArMember member)
    {
        var what = $"{Label}: {member.Name}";
        var seen = new Dictionary<string, DebEntryType>(StringComparer.Ordinal);
        var ownSymlinks = new PathSafety();
        var (limit, why) = DataLimit(member);
        using var decompressed = OpenDecompressed(member, DataCompression, limit, why);
        using var tar = new TarReader(decompressed, leaveOpen: true);
        var count = 0;
        while (true)
        {
            var entry = Guard(what, () => tar.GetNextEntry());
            if (entry == null) break;
            if (++count > InputLimits.MaxTarEntriesPerPackage)
                throw new HardenException($"{what}: more than {InputLimits.MaxTarEntriesPerPackage} entries, the limit per package (docs/limits.md); refusing it.");
            var checkedEntry = Check(entry, seen, ownSymlinks);
            if (checkedEntry == null) continue;
            yield return checkedEntry;
        }
        // Read to the end of the compressed stream so the decompressor verifies its trailer (CRC / checksum);
        // dpkg-deb pads the tar with zero blocks that TarReader stops before.
        Guard(what, () => { decompressed.CopyTo(Stream.Null); return 0; });
    }

    private DebEntry? Check(TarEntry entry, Dictionary<string, DebEntryType> seen, PathSafety ownSymlinks)
    {
        if (entry.EntryType == TarEntryType.GlobalExtendedAttributes) return null;
        var path = DebPath.TryNormalise(entry.Name, out var problem)
                   ?? throw Refuse(entry.Name, problem!);
        if (path.Length == 0)
        {
            if (entry.EntryType != TarEntryType.Directory) throw Refuse(entry.Name, "the package root is not a directory");
            return null;
        }

        DebEntryType type;
        string? linkTarget = null;
        switch (entry.EntryType)
        {
            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                type = DebEntryType.File;
                break;
            case TarEntryType.Directory:
                type = DebEntryType.Directory;
                break;
            case TarEntryType.SymbolicLink:
                type = DebEntryType.Symlink;
                linkTarget = entry.LinkName;
                if (string.IsNullOrEmpty(linkTarget)) throw Refuse(path, "symlink with an empty target");
                if (linkTarget.Length > InputLimits.MaxPathLength)
                    throw Refuse(path, $"symlink target longer than {InputLimits.MaxPathLength} characters (PATH_MAX)");
                break;
            case TarEntryType.HardLink:
                type = DebEntryType.HardLink;
                linkTarget = DebPath.TryNormalise(entry.LinkName, out var linkProblem);
                if (linkTarget == null)
                    throw Refuse(path, $"hard link to '{entry.LinkName}' ({linkProblem}); a hard link must name a file of the same package");
                if (!seen.TryGetValue(linkTarget, out var targetType))
                    throw Refuse(path, $"hard link to '{linkTarget}', which is not an earlier entry of this package");
                if (targetType != DebEntryType.File)
                    throw Refuse(path, $"hard link to '{linkTarget}', which is a {targetType.ToString().ToLowerInvariant()}, not a regular file");
                break;
            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice:
                throw Refuse(path, "device node (images never ship device nodes; the runtime provides /dev)");
            case TarEntryType.Fifo:
                throw Refuse(path, "fifo (named pipe)");
            default:
                throw Refuse(path, $"unsupported tar entry type {entry.EntryType} (dpkg-deb never writes it)");
        }

        if (seen.ContainsKey(path)) throw Refuse(path, "duplicate entry (a later entry would silently replace an earlier one)");
        var link = ownSymlinks.FindSymlinkOnPath(path);
        if (link != null)
            throw Refuse(path, $"written through the package's own symlink '{link}' -> '{ownSymlinks.Symlinks[link]}'");
        seen[path] = type;
        if (type == DebEntryType.Symlink) ownSymlinks.AddSymlink(path, linkTarget!);

        return new DebEntry(path, type, entry.Mode, entry.Uid, entry.Gid,
            type == DebEntryType.File ? entry.Length : 0, linkTarget, entry.ModificationTime)
        {
            Content = type == DebEntryType.File && entry.DataStream != null ? entry.DataStream : Stream.Null,
        };
    }

    // A hostile path can be a megabyte long: the message quotes its start only.
    private HardenException Refuse(string path, string why)
    {
        var shown = path.Length > 160 ? $"'{path[..160]}…' ({path.Length} characters)" : $"'{path}'";
        return new($"{Label}: refusing data.tar entry {shown}: {why}. The package is malformed or hostile; do not use it.");
    }

    private Stream OpenDecompressed(ArMember member, DebCompression compression, long limit, string why)
    {
        var what = $"{Label}: {member.Name}";
        var raw = DebDecompression.Open(member.Content, compression, what, _options.Xz);
        return new DecompressionLimitStream(new ErrorTranslatingStream(raw, what), limit, what, why, _options.Build);
    }

    /// <summary>
    /// How many bytes the data.tar may decompress to: the hard cap per package, within a ratio of its compressed
    /// size, and within an allowance over the Installed-Size the package declares (docs/limits.md).
    /// </summary>
    private (long Limit, string Why) DataLimit(ArMember member)
    {
        var limit = InputLimits.MaxUnpackedBytesPerPackage;
        var why = $"the hard cap per package is {BoundedFile.Size(limit)}";
        var byRatio = Math.Max(_options.RatioFloorBytes, member.Size > long.MaxValue / _options.MaxCompressionRatio
            ? long.MaxValue : member.Size * _options.MaxCompressionRatio);
        if (byRatio < limit)
        {
            limit = byRatio;
            why = $"{_options.MaxCompressionRatio}x its {member.Size} compressed bytes, at least {BoundedFile.Size(_options.RatioFloorBytes)}";
        }
        if (long.TryParse(Control.Fields["Installed-Size"], System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out var kib) && kib <= InputLimits.MaxUnpackedBytesPerPackage >> 10
            && InputLimits.UnpackedAllowance(kib) < limit)
        {
            limit = InputLimits.UnpackedAllowance(kib);
            why = $"its control file declares Installed-Size: {kib} KiB";
        }
        return (limit, why);
    }

    private static T Guard<T>(string what, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is not HardenException and not OutOfMemoryException)
        {
            throw ErrorTranslatingStream.Translate(e, what);
        }
    }

    private static string Short(string s) => UntrustedText.Escape(s);

    public void Dispose() => _ar.Dispose();
}

/// <summary>
/// Turns the many exception types of decompressors and tar parsing (InvalidDataException, EndOfStreamException,
/// ZstdException, ...) into one <see cref="HardenException"/> that names the package member.
/// </summary>
internal sealed class ErrorTranslatingStream(Stream inner, string what) : ReadOnlyWrapperStream(inner)
{
    public static HardenException Translate(Exception e, string what) => e switch
    {
        EndOfStreamException => new HardenException($"{what}: truncated (the archive ends early). Download the package again.", inner: e),
        _ => new HardenException($"{what}: corrupt or truncated ({e.GetType().Name}: {e.Message}). Download the package again.", inner: e),
    };

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        try
        {
            return Inner.Read(buffer);
        }
        catch (Exception e) when (e is not HardenException and not OutOfMemoryException and not ObjectDisposedException)
        {
            throw Translate(e, what);
        }
    }
}
