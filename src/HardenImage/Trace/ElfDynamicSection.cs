using System.Buffers.Binary;
using System.Text;

namespace HardenImage.Trace;

/// <summary>What an ELF object's dynamic section says about linking: the sonames it needs and where it looks.</summary>
public sealed record ElfDynamicInfo(IReadOnlyList<string> Needed, string? Soname, IReadOnlyList<string> RunPath);

/// <summary>
/// Reads DT_NEEDED, DT_SONAME and DT_RUNPATH/DT_RPATH from an ELF file (32/64-bit, either byte order): program
/// headers → PT_DYNAMIC → entries; string offsets are mapped through the PT_LOAD segment holding DT_STRTAB.
/// Not an ELF, or no dynamic section (a static binary, a data file): null. A malformed header that points outside
/// the file is treated the same way — the caller only learns less, never reads out of bounds.
/// </summary>
public static class ElfDynamicSection
{
    private const int PtLoad = 1, PtDynamic = 2;
    private const long DtNull = 0, DtNeeded = 1, DtStrtab = 5, DtSoname = 14, DtRpath = 15, DtRunpath = 29;
    private const int MaxHeaderBytes = 1 << 20;

    public static ElfDynamicInfo? Read(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.RandomAccess);
        return Read(f);
    }

    public static ElfDynamicInfo? Read(Stream f)
    {
        var ident = ReadAt(f, 0, 64);
        if (ident is null || ident[0] != 0x7f || ident[1] != (byte)'E' || ident[2] != (byte)'L' || ident[3] != (byte)'F') return null;
        bool is64 = ident[4] == 2;
        bool little = ident[5] == 1;
        if (ident[4] is not (1 or 2) || ident[5] is not (1 or 2)) return null;
        ulong U(byte[] b, int o, int size) => size switch
        {
            2 => little ? BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(o)) : BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(o)),
            4 => little ? BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(o)) : BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(o)),
            _ => little ? BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(o)) : BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(o)),
        };
        int word = is64 ? 8 : 4;
        ulong phoff = is64 ? U(ident, 32, 8) : U(ident, 28, 4);
        int phentsize = (int)U(ident, is64 ? 54 : 42, 2);
        int phnum = (int)U(ident, is64 ? 56 : 44, 2);
        if (phentsize < (is64 ? 56 : 32) || (long)phnum * phentsize > MaxHeaderBytes) return null;
        var ph = ReadAt(f, (long)phoff, phnum * phentsize);
        if (ph is null) return null;

        var loads = new List<(ulong Vaddr, ulong Offset, ulong FileSize)>();
        (ulong Offset, ulong Size)? dynamic = null;
        for (int i = 0; i < phnum; i++)
        {
            int o = i * phentsize;
            var type = (uint)U(ph, o, 4);
            ulong offset = is64 ? U(ph, o + 8, 8) : U(ph, o + 4, 4);
            ulong vaddr = is64 ? U(ph, o + 16, 8) : U(ph, o + 8, 4);
            ulong filesz = is64 ? U(ph, o + 32, 8) : U(ph, o + 16, 4);
            if (type == PtLoad) loads.Add((vaddr, offset, filesz));
            else if (type == PtDynamic) dynamic = (offset, filesz);
        }
        if (dynamic is null || dynamic.Value.Size > MaxHeaderBytes) return null;
        var dyn = ReadAt(f, (long)dynamic.Value.Offset, (int)dynamic.Value.Size);
        if (dyn is null) return null;

        var needed = new List<ulong>();
        var runpath = new List<ulong>();
        ulong? strtab = null, soname = null;
        for (int o = 0; o + 2 * word <= dyn.Length; o += 2 * word)
        {
            long tag = (long)U(dyn, o, word);
            ulong val = U(dyn, o + word, word);
            if (tag == DtNull) break;
            switch (tag)
            {
                case DtNeeded: needed.Add(val); break;
                case DtStrtab: strtab = val; break;
                case DtSoname: soname = val; break;
                case DtRpath or DtRunpath: runpath.Add(val); break;
            }
        }
        if (strtab is null) return null;
        // DT_STRTAB is an address: find the file offset through the segment that maps it.
        var seg = loads.FirstOrDefault(l => strtab.Value >= l.Vaddr && strtab.Value < l.Vaddr + l.FileSize);
        if (seg.FileSize == 0) return null;
        long strOffset = (long)(strtab.Value - seg.Vaddr + seg.Offset);
        string? Str(ulong index) => ReadString(f, strOffset + (long)index);
        return new ElfDynamicInfo(
            needed.Select(Str).Where(s => !string.IsNullOrEmpty(s)).Select(s => s!).ToList(),
            soname is null ? null : Str(soname.Value),
            runpath.Select(Str).Where(s => !string.IsNullOrEmpty(s)).SelectMany(s => s!.Split(':')).ToList());
    }

    private static byte[]? ReadAt(Stream f, long offset, int count)
    {
        if (offset < 0 || count < 0 || offset + count > f.Length) return null;
        var buffer = new byte[count];
        f.Position = offset;
        f.ReadExactly(buffer);
        return buffer;
    }

    private static string? ReadString(Stream f, long offset)
    {
        if (offset < 0 || offset >= f.Length) return null;
        f.Position = offset;
        var bytes = new List<byte>();
        int b;
        while ((b = f.ReadByte()) > 0 && bytes.Count < 4096) bytes.Add((byte)b);
        return Encoding.UTF8.GetString(bytes.ToArray());
    }
}
