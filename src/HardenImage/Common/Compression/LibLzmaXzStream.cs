using System.Runtime.InteropServices;
using HardenImage.Common;
using HardenImage.Common.Streams;

namespace HardenImage.Common.Compression;

/// <summary>
/// xz decompression through the system's liblzma (xz-utils, <c>liblzma.so.5</c>), the library dpkg itself uses.
/// Read-only and forward-only. See <see cref="XzDecompression"/> for why this is the default decoder.
/// </summary>
/// <remarks>
/// Written without <c>unsafe</c>: the <c>lzma_stream</c> struct lives in unmanaged memory (liblzma keeps pointers
/// into it between calls) and the buffers are pinned arrays, so the GC never moves what liblzma points at.
/// Denial of service: the decoder runs with a memory limit; an xz header demanding more is rejected.
/// </remarks>
internal sealed class LibLzmaXzStream : ReadOnlyStream
{
    private const string Library = "liblzma.so.5";

    // lzma_stream field offsets on LP64 (x86_64, aarch64): next_in 0, avail_in 8, total_in 16, next_out 24,
    // avail_out 32, total_out 40, allocator 48, internal 56, 4 reserved pointers, 2 uint64, 2 size_t, 2 enums.
    private const int StreamStructSize = 136;
    private const int OffNextIn = 0, OffAvailIn = 8, OffTotalIn = 16, OffNextOut = 24, OffAvailOut = 32, OffTotalOut = 40;

    private const int LzmaOk = 0, LzmaStreamEnd = 1, LzmaMemError = 5, LzmaMemlimitError = 6, LzmaFormatError = 7,
        LzmaOptionsError = 8, LzmaDataError = 9, LzmaBufError = 10;
    private const int LzmaRun = 0, LzmaFinish = 3;
    private const uint LzmaConcatenated = 0x08;

    /// <summary>xz -9 needs 65 MiB to decode; 512 MiB leaves room for any sane archive and stops a hostile header.</summary>
    private const ulong MemoryLimit = 512UL << 20;

    private readonly Stream _inner;
    private readonly string _what;
    private readonly bool _leaveOpen;
    private readonly byte[] _in = GC.AllocateArray<byte>(1 << 16, pinned: true);
    private readonly byte[] _out = GC.AllocateArray<byte>(1 << 16, pinned: true);
    private readonly IntPtr _inPtr;
    private readonly IntPtr _outPtr;
    private IntPtr _strm;
    private int _outStart, _outEnd;
    private bool _inputEnded, _streamEnded;

    [DllImport(Library)] private static extern int lzma_stream_decoder(IntPtr strm, ulong memlimit, uint flags);
    [DllImport(Library)] private static extern int lzma_code(IntPtr strm, int action);
    [DllImport(Library)] private static extern void lzma_end(IntPtr strm);

    /// <summary>True when liblzma.so.5 can be loaded on this machine (and the process is 64-bit, as the offsets assume).</summary>
    public static bool IsAvailable { get; } =
        Environment.Is64BitProcess && NativeLibrary.TryLoad(Library, typeof(LibLzmaXzStream).Assembly, null, out _);

    public LibLzmaXzStream(Stream inner, string what, bool leaveOpen = false)
    {
        _inner = inner;
        _what = what;
        _leaveOpen = leaveOpen;
        _inPtr = Marshal.UnsafeAddrOfPinnedArrayElement(_in, 0);
        _outPtr = Marshal.UnsafeAddrOfPinnedArrayElement(_out, 0);
        _strm = Marshal.AllocHGlobal(StreamStructSize);
        for (var i = 0; i < StreamStructSize; i += 8) Marshal.WriteInt64(_strm, i, 0); // LZMA_STREAM_INIT
        var ret = lzma_stream_decoder(_strm, MemoryLimit, LzmaConcatenated);
        if (ret != LzmaOk)
        {
            Marshal.FreeHGlobal(_strm);
            _strm = IntPtr.Zero;
            throw Fail(ret);
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_strm == IntPtr.Zero, this);
        if (buffer.Length == 0) return 0;
        while (_outStart == _outEnd)
        {
            if (_streamEnded) return 0;
            Decode();
        }
        var n = Math.Min(buffer.Length, _outEnd - _outStart);
        _out.AsSpan(_outStart, n).CopyTo(buffer);
        _outStart += n;
        return n;
    }

    private void Decode()
    {
        if (Marshal.ReadInt64(_strm, OffAvailIn) == 0 && !_inputEnded)
        {
            var got = _inner.Read(_in, 0, _in.Length);
            if (got == 0) _inputEnded = true;
            Marshal.WriteIntPtr(_strm, OffNextIn, _inPtr);
            Marshal.WriteInt64(_strm, OffAvailIn, got);
        }
        Marshal.WriteIntPtr(_strm, OffNextOut, _outPtr);
        Marshal.WriteInt64(_strm, OffAvailOut, _out.Length);
        var ret = lzma_code(_strm, _inputEnded ? LzmaFinish : LzmaRun);
        _outStart = 0;
        _outEnd = _out.Length - (int)Marshal.ReadInt64(_strm, OffAvailOut);
        if (ret == LzmaStreamEnd) { _streamEnded = true; return; }
        if (ret == LzmaOk) return;
        if (ret == LzmaBufError && _inputEnded && _outEnd == 0)
            throw new HardenException($"{_what}: xz data is truncated (the compressed stream ends early).");
        throw Fail(ret);
    }

    private HardenException Fail(int ret) => ret switch
    {
        LzmaMemError => new HardenException($"{_what}: liblzma ran out of memory."),
        LzmaMemlimitError => new HardenException($"{_what}: xz data needs more than {MemoryLimit >> 20} MiB to decode; refusing (hostile or unusual archive)."),
        LzmaFormatError => new HardenException($"{_what}: not xz data (bad xz header)."),
        LzmaOptionsError => new HardenException($"{_what}: xz data uses unsupported options."),
        LzmaDataError => new HardenException($"{_what}: xz data is corrupt (integrity check failed)."),
        LzmaBufError => new HardenException($"{_what}: xz data is truncated."),
        _ => new HardenException($"{_what}: liblzma failed with code {ret}."),
    };

    /// <summary>Compressed bytes consumed so far (lzma_stream.total_in).</summary>
    public long TotalIn => _strm == IntPtr.Zero ? 0 : Marshal.ReadInt64(_strm, OffTotalIn);

    /// <summary>Uncompressed bytes produced so far (lzma_stream.total_out).</summary>
    public long TotalOut => _strm == IntPtr.Zero ? 0 : Marshal.ReadInt64(_strm, OffTotalOut);


    protected override void Dispose(bool disposing)
    {
        if (_strm != IntPtr.Zero)
        {
            lzma_end(_strm);
            Marshal.FreeHGlobal(_strm);
            _strm = IntPtr.Zero;
        }
        if (disposing && !_leaveOpen) _inner.Dispose();
        base.Dispose(disposing);
    }

    ~LibLzmaXzStream() => Dispose(false);
}
