using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// The short products of <see cref="MultiplyRequantizeUnpacked"/> in 512-bit vectors, for machines where the dot
/// product is emulated (<see cref="ByteDot"/>: AVX-512 without AVX-VNNI) and the runtime deems 512-bit vectors fast
/// (<see cref="Vector512.IsHardwareAccelerated"/>: not on the Intel cores whose clock drops under them).
/// <para>
/// A 16-column panel of TQ quads is TQ zmm registers ([quad][16 columns][4 bytes], one vector per quad); each row of A
/// runs against it with TQ broadcasts and TQ emulated dot products (vpmaddubsw, vpmaddwd by ones, vpaddd), and its 16
/// sums are requantized in one vector and narrowed by one saturating vpmovusdb / vpmovsdb: about half the instructions
/// of the 256-bit pass (<see cref="StationaryPass"/>) for the same multiplies. On AMD Zen 4, which runs a 512-bit
/// instruction as one operation over two cycles, that is what the short products were short of: their epilogue is
/// about as long as their dot products (K = 16 to 32).
/// </para>
/// </summary>
internal static partial class WideIntGemm
{
    /// <summary>Whether <see cref="MultiplyRequantizeUnpacked"/> takes the 512-bit pass here; settable for tests and A/B comparisons.</summary>
    internal static bool Stationary512 = true;

    /// <summary>
    /// Most quads the 512-bit pass holds in registers (K ≤ 96: 24 zmm of B, an accumulator and a broadcast); rows past
    /// the eighth quad run one at a time. Settable lower (not above 24) for A/B comparisons.
    /// </summary>
    internal static int MaxStationaryQuads512 = 24;

    private struct Q9 : IQuads { public static int Count => 9; }
    private struct Q10 : IQuads { public static int Count => 10; }
    private struct Q11 : IQuads { public static int Count => 11; }
    private struct Q12 : IQuads { public static int Count => 12; }
    private struct Q13 : IQuads { public static int Count => 13; }
    private struct Q14 : IQuads { public static int Count => 14; }
    private struct Q15 : IQuads { public static int Count => 15; }
    private struct Q16 : IQuads { public static int Count => 16; }
    private struct Q17 : IQuads { public static int Count => 17; }
    private struct Q18 : IQuads { public static int Count => 18; }
    private struct Q19 : IQuads { public static int Count => 19; }
    private struct Q20 : IQuads { public static int Count => 20; }
    private struct Q21 : IQuads { public static int Count => 21; }
    private struct Q22 : IQuads { public static int Count => 22; }
    private struct Q23 : IQuads { public static int Count => 23; }
    private struct Q24 : IQuads { public static int Count => 24; }

    /// <summary>True when the 512-bit pass runs: the switch, an emulated dot product and fast 512-bit vectors.</summary>
    internal static bool Uses512 => Stationary512 && !ByteDot.Native && Vector512.IsHardwareAccelerated && Avx512BW.IsSupported && Avx512Vbmi.VL.IsSupported;

    /// <summary>
    /// True when <see cref="MultiplyRequantizeUnpacked"/> takes this product through the 512-bit pass, which can store
    /// rows compacted (<see cref="Epilogue.RowWidth"/>): the stem's phase planes then need no compaction afterwards.
    /// </summary>
    public static bool CompactsRows(int m, int k) => Uses512 && TakesUnpacked(m, k, false);

    /// <summary>Whether the convolutions use <see cref="CompactsRows"/> (else a compaction pass afterwards); a switch for tests and A/B comparisons.</summary>
    internal static bool CompactRows = true;

    /// <summary>
    /// Where the 16 columns from <paramref name="j0"/> go when rows of <paramref name="width"/> keep their first
    /// <paramref name="keep"/>: the output index of the first kept one, how many are kept (of <paramref name="cols"/>),
    /// and the byte permute that moves them, in order, to the front.
    /// </summary>
    private static (int Start, int Count, Vector128<byte> Index) Compaction(int j0, int cols, int width, int keep)
    {
        int r0 = j0 % width, start = j0 / width * keep + Math.Min(r0, keep);
        if (width >= 16)
        {
            // at most one run of dropped columns: [s0, s1) of the panel
            int s0 = Math.Max(keep - r0, 0), s1 = width - r0;
            if (s0 >= cols) return (start, cols, default);
            s1 = Math.Min(s1, cols);
            var iota = Vector128.Create((byte)0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            var shift = Vector128.GreaterThanOrEqual(iota, Vector128.Create((byte)s0)) & Vector128.Create((byte)(s1 - s0));
            return (start, cols - (s1 - s0), iota + shift);
        }
        int count = 0;
        Span<byte> index = stackalloc byte[16];
        index.Clear();
        for (int t = 0; t < cols; t++)
            if ((j0 + t) % width < keep) index[count++] = (byte)t;
        return (start, count, Vector128.Create((ReadOnlySpan<byte>)index));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Dot512<TS>(Vector512<int> acc, Vector512<byte> b, Vector512<byte> a) where TS : struct, ISign
        => TS.AIsUnsigned ? Emulated512(acc, a, b.AsSByte()) : Emulated512(acc, b, a.AsSByte());

    /// <summary>
    /// <see cref="ByteDot.Emulated"/> in 512 bits, written here (and in <c>IntDepthwiseVnni.Dot512</c>) rather than as a
    /// ByteDot overload: the extra inlining level of a call into ByteDot made these passes 15-20% slower (`qconv`, `qdw`
    /// on the Zen 4 guest, 2026-12-07), the JIT running out of inlining budget in the long generic row loops.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Emulated512(Vector512<int> acc, Vector512<byte> u, Vector512<sbyte> s)
        => acc + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u, s), Vector512<short>.One);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Broadcast512(ref byte a, int offset) => Vector512.Create(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref a, offset))).AsByte();

    /// <summary>16 sums requantized as <see cref="Requantized{TC}"/> does and narrowed with saturation to 16 bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> Narrow512<TC>(Vector512<int> acc, float mult, Vector512<int> zp, bool signed) where TC : struct, IClamp
    {
        var f = Avx512F.Multiply(Avx512F.ConvertToVector512Single(acc), Vector512.Create(mult));
        Vector512<int> r;
        if (TC.AddsMagic) r = Avx512F.Add(f, Vector512.Create(QuantMath.Magic)).AsInt32() + zp; // zp holds yZero − MagicBits
        else
        {
            if (TC.Clamps) f = Avx512F.Min(Avx512F.Max(f, Vector512.Create(-Clamp)), Vector512.Create(Clamp));
            r = Avx512F.ConvertToVector512Int32(f) + zp;
        }
        return signed ? Avx512F.ConvertToVector128SByteWithSaturation(r).AsByte()
                      : Avx512F.ConvertToVector128ByteWithSaturation(Avx512F.Max(r, Vector512<int>.Zero).AsUInt32());
    }

    /// <summary>Whether 64 columns at a time are interleaved with 512-bit shuffles (else 16 with 128-bit ones); a switch for A/B comparisons.</summary>
    internal static bool Interleave64 = true;

    /// <summary>
    /// <see cref="Unpacked{TS, TC, TQ}"/> in 512 bits: per 64 columns (then 16), the panels interleaved into quads
    /// (L1), each held in TQ registers while every row of A runs against it, two rows a step.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Unpacked512<TS, TC, TQ>(int m, int n, int k, ReadOnlySpan<byte> ap, ReadOnlySpan<byte> b, ReadOnlySpan<int> rows, in Epilogue e)
        where TS : struct, ISign where TC : struct, IClamp where TQ : struct, IQuads
    {
        int kq = TQ.Count;
        ref byte a0 = ref MemoryMarshal.GetReference(ap);
        ref int init = ref MemoryMarshal.GetReference(e.RowInit);
        ref float mult = ref MemoryMarshal.GetReference(e.RowMult);
        ref byte y0 = ref MemoryMarshal.GetReference(e.Y);
        int ldy = e.Ldy;
        var zp = Vector512.Create(ZeroTerm<TC>(e.YZero));
        bool signed = e.Signed;
        // four panels of [quad][16 columns][4 bytes]
        Span<byte> panelBuf = stackalloc byte[4 * 24 * 64];
        Span<byte> tail = stackalloc byte[96 * 16];
        ref byte panel = ref MemoryMarshal.GetReference(panelBuf);
        int j0 = 0;
        for (; Interleave64 && j0 + 64 <= n; j0 += 64)
        {
            PackPanels64(b, rows, j0, k, ref panel);
            for (int t = 0; t < 4; t++)
                Panel512<TS, TC, TQ>(m, ref a0, ref Unsafe.Add(ref panel, t * kq * 64), ref init, ref mult, ref y0, j0 + 16 * t, ldy, zp, signed, 16, e.RowWidth, e.RowKeep);
        }
        for (; j0 < n; j0 += 16)
        {
            int cols = Math.Min(16, n - j0);
            PackPanel16(b, rows, j0, cols, k, tail, ref panel);
            Panel512<TS, TC, TQ>(m, ref a0, ref panel, ref init, ref mult, ref y0, j0, ldy, zp, signed, cols, e.RowWidth, e.RowKeep);
        }
    }

    /// <summary>
    /// The 16-column panel of B from column <paramref name="j0"/> ([quad][16 columns][4 bytes], rows found at
    /// <paramref name="rows"/>[p]), for <paramref name="cols"/> ≤ 16 real columns: a ragged last panel's rows are first
    /// copied into <paramref name="tail"/> (16 bytes a row, zero padded) so that the 16-byte loads stay inside B.
    /// </summary>
    private static void PackPanel16(ReadOnlySpan<byte> b, ReadOnlySpan<int> rows, int j0, int cols, int k, Span<byte> tail, ref byte panel)
    {
        int kq = FastIntGemm.Quads(k);
        bool ragged = cols < 16;
        if (ragged)
        {
            tail.Slice(0, k * 16).Clear();
            for (int p = 0; p < k; p++) b.Slice(rows[p] + j0, cols).CopyTo(tail.Slice(p * 16));
        }
        ref byte src = ref ragged ? ref MemoryMarshal.GetReference(tail) : ref Unsafe.Add(ref MemoryMarshal.GetReference(b), j0);
        for (int q = 0; q < kq; q++)
        {
            int p = 4 * q;
            var v0 = Vector128.LoadUnsafe(ref src, (nuint)(ragged ? 16 * p : rows[p]));
            var v1 = p + 1 < k ? Vector128.LoadUnsafe(ref src, (nuint)(ragged ? 16 * (p + 1) : rows[p + 1])) : Vector128<byte>.Zero;
            var v2 = p + 2 < k ? Vector128.LoadUnsafe(ref src, (nuint)(ragged ? 16 * (p + 2) : rows[p + 2])) : Vector128<byte>.Zero;
            var v3 = p + 3 < k ? Vector128.LoadUnsafe(ref src, (nuint)(ragged ? 16 * (p + 3) : rows[p + 3])) : Vector128<byte>.Zero;
            Interleave(v0, v1, v2, v3, ref Unsafe.Add(ref panel, q * 64));
        }
    }

    /// <summary>The four 16-column panels of B from column <paramref name="j0"/> (64 real columns), <see cref="Interleave512"/> a quad, each panel kq·64 bytes after the one before.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PackPanels64(ReadOnlySpan<byte> b, ReadOnlySpan<int> rows, int j0, int k, ref byte panel)
    {
        int kq = FastIntGemm.Quads(k);
        ref byte src = ref Unsafe.Add(ref MemoryMarshal.GetReference(b), j0);
        ref int off = ref MemoryMarshal.GetReference(rows); // k offsets, checked by MultiplyRequantizeUnpacked
        for (int q = 0; q < kq; q++)
        {
            int p = 4 * q;
            var v0 = Vector512.LoadUnsafe(ref src, (nuint)Unsafe.Add(ref off, p));
            var v1 = p + 1 < k ? Vector512.LoadUnsafe(ref src, (nuint)Unsafe.Add(ref off, p + 1)) : Vector512<byte>.Zero;
            var v2 = p + 2 < k ? Vector512.LoadUnsafe(ref src, (nuint)Unsafe.Add(ref off, p + 2)) : Vector512<byte>.Zero;
            var v3 = p + 3 < k ? Vector512.LoadUnsafe(ref src, (nuint)Unsafe.Add(ref off, p + 3)) : Vector512<byte>.Zero;
            Interleave512(v0, v1, v2, v3, ref Unsafe.Add(ref panel, q * 64), kq * 64);
        }
    }

    /// <summary>
    /// 64 columns of four rows interleaved into quad cells, written as four 16-column panels <paramref name="panelBytes"/>
    /// apart (cell j of panel t = (v0, v1, v2, v3)[16t + j]): byte and word unpacks within 128-bit lanes leave lane L of
    /// result i holding columns 16L + 4i .. 16L + 4i + 3, and a 4 × 4 transpose of 128-bit lanes puts each panel's
    /// columns together.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Interleave512(Vector512<byte> v0, Vector512<byte> v1, Vector512<byte> v2, Vector512<byte> v3, ref byte d, int panelBytes)
    {
        var lo01 = Avx512BW.UnpackLow(v0, v1).AsInt16();
        var hi01 = Avx512BW.UnpackHigh(v0, v1).AsInt16();
        var lo23 = Avx512BW.UnpackLow(v2, v3).AsInt16();
        var hi23 = Avx512BW.UnpackHigh(v2, v3).AsInt16();
        var x0 = Avx512BW.UnpackLow(lo01, lo23).AsUInt64();  // lane L: columns 16L + 0..3
        var x1 = Avx512BW.UnpackHigh(lo01, lo23).AsUInt64(); // 16L + 4..7
        var x2 = Avx512BW.UnpackLow(hi01, hi23).AsUInt64();  // 16L + 8..11
        var x3 = Avx512BW.UnpackHigh(hi01, hi23).AsUInt64(); // 16L + 12..15
        // lanes (x0.0, x0.2, x1.0, x1.2), (x0.1, x0.3, x1.1, x1.3), then the same for x2, x3
        var t0 = Avx512F.Shuffle4x128(x0, x1, 0b10_00_10_00);
        var t1 = Avx512F.Shuffle4x128(x0, x1, 0b11_01_11_01);
        var t2 = Avx512F.Shuffle4x128(x2, x3, 0b10_00_10_00);
        var t3 = Avx512F.Shuffle4x128(x2, x3, 0b11_01_11_01);
        // panel 0: (x0.0, x1.0, x2.0, x3.0) = (t0.0, t0.2, t2.0, t2.2); panel 2: (t0.1, t0.3, t2.1, t2.3); 1 and 3 from t1, t3
        Avx512F.Shuffle4x128(t0, t2, 0b10_00_10_00).AsByte().StoreUnsafe(ref d);
        Avx512F.Shuffle4x128(t1, t3, 0b10_00_10_00).AsByte().StoreUnsafe(ref d, (nuint)panelBytes);
        Avx512F.Shuffle4x128(t0, t2, 0b11_01_11_01).AsByte().StoreUnsafe(ref d, (nuint)(2 * panelBytes));
        Avx512F.Shuffle4x128(t1, t3, 0b11_01_11_01).AsByte().StoreUnsafe(ref d, (nuint)(3 * panelBytes));
    }

    /// <summary>
    /// Longest K the 512-bit pass takes in chunks (<see cref="UnpackedChunked512"/>), in quads, and the most rows it
    /// takes them for (the partial sums of a panel wait in L1: 64 bytes a row); settable for A/B comparisons.
    /// </summary>
    internal static int ChunkedMaxQuads = 48, ChunkedMaxRows = 64;

    /// <summary>True when the 512-bit pass takes a product of K past 24 quads in chunks.</summary>
    private static bool TakesChunked(int m, int kq) => Uses512 && kq > MaxStationaryQuads512 && kq <= ChunkedMaxQuads && m <= ChunkedMaxRows;

    /// <summary>
    /// <see cref="Unpacked512{TS, TC, TQ}"/> for K past 24 quads with few rows of A (MobileNetV2's projections from 144
    /// and 192 channels onto 24 and 32, which the 4 × 24 tiles run at 80-90 GMAC/s): each panel's quads interleaved once,
    /// then K in two equal chunks, each held in registers while every row runs against it, the first chunk's sums
    /// waiting per row in a small buffer (L1) for the second, which requantizes and stores.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void UnpackedChunked512<TS, TC>(int m, int n, int k, ReadOnlySpan<byte> ap, ReadOnlySpan<byte> b, ReadOnlySpan<int> rows, in Epilogue e)
        where TS : struct, ISign where TC : struct, IClamp
    {
        int kq = FastIntGemm.Quads(k);
        int chunks = (kq + MaxStationaryQuads512 - 1) / MaxStationaryQuads512, size = (kq + chunks - 1) / chunks;
        ref byte a0 = ref MemoryMarshal.GetReference(ap);
        ref int init = ref MemoryMarshal.GetReference(e.RowInit);
        ref float mult = ref MemoryMarshal.GetReference(e.RowMult);
        ref byte y0 = ref MemoryMarshal.GetReference(e.Y);
        int ldy = e.Ldy, width = e.RowWidth, keep = e.RowKeep;
        var zp = Vector512.Create(ZeroTerm<TC>(e.YZero));
        bool signed = e.Signed;
        int blockStep = kq * 16 - 12;
        Span<byte> panelBuf = stackalloc byte[4 * 48 * 64];
        Span<byte> tail = stackalloc byte[192 * 16];
        int* partialRaw = stackalloc int[ChunkedMaxRows * 16 + 16];
        int* partial = (int*)(((nint)partialRaw + 63) & ~(nint)63);
        ref byte panel = ref MemoryMarshal.GetReference(panelBuf);
        int j0 = 0;
        for (; Interleave64 && j0 + 64 <= n; j0 += 64)
        {
            PackPanels64(b, rows, j0, k, ref panel);
            for (int t = 0; t < 4; t++)
                Chunks(m, kq, chunks, size, blockStep, ref a0, ref Unsafe.Add(ref panel, t * kq * 64), ref init, ref mult, ref y0, j0 + 16 * t, 16, ldy, width, keep, zp, signed, partial);
        }
        for (; j0 < n; j0 += 16)
        {
            int cols = Math.Min(16, n - j0);
            PackPanel16(b, rows, j0, cols, k, tail, ref panel);
            Chunks(m, kq, chunks, size, blockStep, ref a0, ref panel, ref init, ref mult, ref y0, j0, cols, ldy, width, keep, zp, signed, partial);
        }

        // one panel: each chunk of quads against every row, the last one storing (compacted when rows are, see Panel512)
        static void Chunks(int m, int kq, int chunks, int size, int blockStep, ref byte a0, ref byte panel, ref int init, ref float mult, ref byte y0,
            int j0, int cols, int ldy, int width, int keep, Vector512<int> zp, bool signed, int* partial)
        {
            int start = j0, count = cols;
            Vector128<byte> index = default;
            bool squeezed = false;
            if (width > 0)
            {
                (start, count, index) = Compaction(j0, cols, width, keep);
                if (count == 0) return;
                squeezed = count < cols;
            }
            ref byte yt = ref Unsafe.Add(ref y0, start);
            for (int ci = 0; ci < chunks; ci++)
            {
                int q0 = ci * size, qn = Math.Min(size, kq - q0);
                int mode = ci == 0 ? First : ci == chunks - 1 ? Last : Middle;
                ref byte ar = ref Unsafe.Add(ref a0, q0 * 16);
                ref byte pc = ref Unsafe.Add(ref panel, q0 * 64);
                switch (qn)
                {
                    case 9: Rows512<TS, TC, Q9>(m, ref ar, ref pc, ref init, ref mult, ref yt, ldy, zp, signed, count, index, squeezed, blockStep, partial, mode); break;
                    case 10: Rows512<TS, TC, Q10>(m, ref ar, ref pc, ref init, ref mult, ref yt, ldy, zp, signed, count, index, squeezed, blockStep, partial, mode); break;
                    case 11: Rows512<TS, TC, Q11>(m, ref ar, ref pc, ref init, ref mult, ref yt, ldy, zp, signed, count, index, squeezed, blockStep, partial, mode); break;
                    case 12: Rows512<TS, TC, Q12>(m, ref ar, ref pc, ref init, ref mult, ref yt, ldy, zp, signed, count, index, squeezed, blockStep, partial, mode); break;
                    case 13: Rows512<TS, TC, Q13>(m, ref ar, ref pc, ref init, ref mult, ref yt, ldy, zp, signed, count, index, squeezed, blockStep, partial, mode); break;
                    case 14: Rows512<TS, TC, Q14>(m, ref ar, ref pc, ref init, ref mult, ref yt, ldy, zp, signed, count, index, squeezed, blockStep, partial, mode); break;
                    case 15: Rows512<TS, TC, Q15>(m, ref ar, ref pc, ref init, ref mult, ref yt, ldy, zp, signed, count, index, squeezed, blockStep, partial, mode); break;
                    case 16: Rows512<TS, TC, Q16>(m, ref ar, ref pc, ref init, ref mult, ref yt, ldy, zp, signed, count, index, squeezed, blockStep, partial, mode); break;
                    case 17: Rows512<TS, TC, Q17>(m, ref ar, ref pc, ref init, ref mult, ref yt, ldy, zp, signed, count, index, squeezed, blockStep, partial, mode); break;
                    case 18: Rows512<TS, TC, Q18>(m, ref ar, ref pc, ref init, ref mult, ref yt, ldy, zp, signed, count, index, squeezed, blockStep, partial, mode); break;
                    case 19: Rows512<TS, TC, Q19>(m, ref ar, ref pc, ref init, ref mult, ref yt, ldy, zp, signed, count, index, squeezed, blockStep, partial, mode); break;
                    case 20: Rows512<TS, TC, Q20>(m, ref ar, ref pc, ref init, ref mult, ref yt, ldy, zp, signed, count, index, squeezed, blockStep, partial, mode); break;
                    case 21: Rows512<TS, TC, Q21>(m, ref ar, ref pc, ref init, ref mult, ref yt, ldy, zp, signed, count, index, squeezed, blockStep, partial, mode); break;
                    case 22: Rows512<TS, TC, Q22>(m, ref ar, ref pc, ref init, ref mult, ref yt, ldy, zp, signed, count, index, squeezed, blockStep, partial, mode); break;
                    case 23: Rows512<TS, TC, Q23>(m, ref ar, ref pc, ref init, ref mult, ref yt, ldy, zp, signed, count, index, squeezed, blockStep, partial, mode); break;
                    case 24: Rows512<TS, TC, Q24>(m, ref ar, ref pc, ref init, ref mult, ref yt, ldy, zp, signed, count, index, squeezed, blockStep, partial, mode); break;
                    default: throw new InvalidOperationException($"a chunk of {qn} quads");
                }
            }
        }
    }

    /// <summary>What a pass of <see cref="Rows512"/> does with its sums: all of K at once, or the first, a middle or the last chunk of K (<see cref="UnpackedChunked512"/>).</summary>
    private const int Whole = 0, First = 1, Middle = 2, Last = 3;

    /// <summary>
    /// One 16-column panel (columns <paramref name="j0"/> on, <paramref name="cols"/> of them real) against every row of
    /// A: stored at j0 of each row, or, with rows of <paramref name="width"/> to compact, its kept columns at their place.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Panel512<TS, TC, TQ>(int m, ref byte a0, ref byte panel, ref int init, ref float mult, ref byte y0, int j0, int ldy,
        Vector512<int> zp, bool signed, int cols, int width, int keep)
        where TS : struct, ISign where TC : struct, IClamp where TQ : struct, IQuads
    {
        if (width == 0)
        {
            Rows512<TS, TC, TQ>(m, ref a0, ref panel, ref init, ref mult, ref Unsafe.Add(ref y0, j0), ldy, zp, signed, cols, default, false);
            return;
        }
        var (start, count, index) = Compaction(j0, cols, width, keep);
        if (count > 0)
            Rows512<TS, TC, TQ>(m, ref a0, ref panel, ref init, ref mult, ref Unsafe.Add(ref y0, start), ldy, zp, signed, count, index, count < cols);
    }

    /// <summary>
    /// Every row of A against one 16-column panel held in TQ registers; <paramref name="cols"/> outputs stored per row,
    /// first moved to the front by <paramref name="squeeze"/> when <paramref name="squeezed"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Rows512<TS, TC, TQ>(int m, ref byte a0, ref byte panel, ref int init, ref float mult, ref byte y, int ldy,
        Vector512<int> zp, bool signed, int cols, Vector128<byte> squeeze, bool squeezed, int blockStep = 0, int* partial = null, int mode = Whole)
        where TS : struct, ISign where TC : struct, IClamp where TQ : struct, IQuads
    {
        if (blockStep == 0) blockStep = TQ.Count * 16 - 12; // from row 3 of a block to row 0 of the next
        var b0 = Vector512.LoadUnsafe(ref panel);
        var b1 = TQ.Count > 1 ? Vector512.LoadUnsafe(ref panel, 64) : default;
        var b2 = TQ.Count > 2 ? Vector512.LoadUnsafe(ref panel, 128) : default;
        var b3 = TQ.Count > 3 ? Vector512.LoadUnsafe(ref panel, 192) : default;
        var b4 = TQ.Count > 4 ? Vector512.LoadUnsafe(ref panel, 256) : default;
        var b5 = TQ.Count > 5 ? Vector512.LoadUnsafe(ref panel, 320) : default;
        var b6 = TQ.Count > 6 ? Vector512.LoadUnsafe(ref panel, 384) : default;
        var b7 = TQ.Count > 7 ? Vector512.LoadUnsafe(ref panel, 448) : default;
        var b8 = TQ.Count > 8 ? Vector512.LoadUnsafe(ref panel, 512) : default;
        var b9 = TQ.Count > 9 ? Vector512.LoadUnsafe(ref panel, 576) : default;
        var b10 = TQ.Count > 10 ? Vector512.LoadUnsafe(ref panel, 640) : default;
        var b11 = TQ.Count > 11 ? Vector512.LoadUnsafe(ref panel, 704) : default;
        var b12 = TQ.Count > 12 ? Vector512.LoadUnsafe(ref panel, 768) : default;
        var b13 = TQ.Count > 13 ? Vector512.LoadUnsafe(ref panel, 832) : default;
        var b14 = TQ.Count > 14 ? Vector512.LoadUnsafe(ref panel, 896) : default;
        var b15 = TQ.Count > 15 ? Vector512.LoadUnsafe(ref panel, 960) : default;
        var b16 = TQ.Count > 16 ? Vector512.LoadUnsafe(ref panel, 1024) : default;
        var b17 = TQ.Count > 17 ? Vector512.LoadUnsafe(ref panel, 1088) : default;
        var b18 = TQ.Count > 18 ? Vector512.LoadUnsafe(ref panel, 1152) : default;
        var b19 = TQ.Count > 19 ? Vector512.LoadUnsafe(ref panel, 1216) : default;
        var b20 = TQ.Count > 20 ? Vector512.LoadUnsafe(ref panel, 1280) : default;
        var b21 = TQ.Count > 21 ? Vector512.LoadUnsafe(ref panel, 1344) : default;
        var b22 = TQ.Count > 22 ? Vector512.LoadUnsafe(ref panel, 1408) : default;
        var b23 = TQ.Count > 23 ? Vector512.LoadUnsafe(ref panel, 1472) : default;
        ref byte ar = ref a0;
        ref byte yr = ref y;
        var keep = Vector128.LessThan(Vector128.Create((byte)0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector128.Create((byte)cols));
        int i = 0;
        for (; TQ.Count <= 8 && mode == Whole && i + 2 <= m; i += 2)
        {
            // row i at ar (its quads 16 bytes apart), row i + 1 four bytes on (i is even, so both are in one block)
            var c = Vector512.Create(Unsafe.Add(ref init, i));
            var d = Vector512.Create(Unsafe.Add(ref init, i + 1));
            c = Dot512<TS>(c, b0, Broadcast512(ref ar, 0)); d = Dot512<TS>(d, b0, Broadcast512(ref ar, 4));
            if (TQ.Count > 1) { c = Dot512<TS>(c, b1, Broadcast512(ref ar, 16)); d = Dot512<TS>(d, b1, Broadcast512(ref ar, 20)); }
            if (TQ.Count > 2) { c = Dot512<TS>(c, b2, Broadcast512(ref ar, 32)); d = Dot512<TS>(d, b2, Broadcast512(ref ar, 36)); }
            if (TQ.Count > 3) { c = Dot512<TS>(c, b3, Broadcast512(ref ar, 48)); d = Dot512<TS>(d, b3, Broadcast512(ref ar, 52)); }
            if (TQ.Count > 4) { c = Dot512<TS>(c, b4, Broadcast512(ref ar, 64)); d = Dot512<TS>(d, b4, Broadcast512(ref ar, 68)); }
            if (TQ.Count > 5) { c = Dot512<TS>(c, b5, Broadcast512(ref ar, 80)); d = Dot512<TS>(d, b5, Broadcast512(ref ar, 84)); }
            if (TQ.Count > 6) { c = Dot512<TS>(c, b6, Broadcast512(ref ar, 96)); d = Dot512<TS>(d, b6, Broadcast512(ref ar, 100)); }
            if (TQ.Count > 7) { c = Dot512<TS>(c, b7, Broadcast512(ref ar, 112)); d = Dot512<TS>(d, b7, Broadcast512(ref ar, 116)); }
            var rc = Narrow512<TC>(c, Unsafe.Add(ref mult, i), zp, signed);
            var rd = Narrow512<TC>(d, Unsafe.Add(ref mult, i + 1), zp, signed);
            if (squeezed)
            {
                rc = Avx512Vbmi.VL.PermuteVar16x8(rc, squeeze);
                rd = Avx512Vbmi.VL.PermuteVar16x8(rd, squeeze);
            }
            if (cols == 16)
            {
                rc.StoreUnsafe(ref yr);
                rd.StoreUnsafe(ref Unsafe.Add(ref yr, ldy));
            }
            else
            {
                fixed (byte* py = &yr)
                {
                    Avx512BW.VL.MaskStore(py, keep, rc);
                    Avx512BW.VL.MaskStore(py + ldy, keep, rd);
                }
            }
            ar = ref Unsafe.Add(ref ar, (i & 3) == 2 ? blockStep + 4 : 8);
            yr = ref Unsafe.Add(ref yr, 2 * ldy);
        }
        for (; i < m; i++)
        {
            // one row at a time: with more than eight quads, two rows' accumulators and broadcasts would not fit beside B
            var c = mode is Whole or First ? Vector512.Create(Unsafe.Add(ref init, i)) : Vector512.Load(partial + 16 * i);
            c = Dot512<TS>(c, b0, Broadcast512(ref ar, 0));
            if (TQ.Count > 1) c = Dot512<TS>(c, b1, Broadcast512(ref ar, 16));
            if (TQ.Count > 2) c = Dot512<TS>(c, b2, Broadcast512(ref ar, 32));
            if (TQ.Count > 3) c = Dot512<TS>(c, b3, Broadcast512(ref ar, 48));
            if (TQ.Count > 4) c = Dot512<TS>(c, b4, Broadcast512(ref ar, 64));
            if (TQ.Count > 5) c = Dot512<TS>(c, b5, Broadcast512(ref ar, 80));
            if (TQ.Count > 6) c = Dot512<TS>(c, b6, Broadcast512(ref ar, 96));
            if (TQ.Count > 7) c = Dot512<TS>(c, b7, Broadcast512(ref ar, 112));
            if (TQ.Count > 8) c = Dot512<TS>(c, b8, Broadcast512(ref ar, 128));
            if (TQ.Count > 9) c = Dot512<TS>(c, b9, Broadcast512(ref ar, 144));
            if (TQ.Count > 10) c = Dot512<TS>(c, b10, Broadcast512(ref ar, 160));
            if (TQ.Count > 11) c = Dot512<TS>(c, b11, Broadcast512(ref ar, 176));
            if (TQ.Count > 12) c = Dot512<TS>(c, b12, Broadcast512(ref ar, 192));
            if (TQ.Count > 13) c = Dot512<TS>(c, b13, Broadcast512(ref ar, 208));
            if (TQ.Count > 14) c = Dot512<TS>(c, b14, Broadcast512(ref ar, 224));
            if (TQ.Count > 15) c = Dot512<TS>(c, b15, Broadcast512(ref ar, 240));
            if (TQ.Count > 16) c = Dot512<TS>(c, b16, Broadcast512(ref ar, 256));
            if (TQ.Count > 17) c = Dot512<TS>(c, b17, Broadcast512(ref ar, 272));
            if (TQ.Count > 18) c = Dot512<TS>(c, b18, Broadcast512(ref ar, 288));
            if (TQ.Count > 19) c = Dot512<TS>(c, b19, Broadcast512(ref ar, 304));
            if (TQ.Count > 20) c = Dot512<TS>(c, b20, Broadcast512(ref ar, 320));
            if (TQ.Count > 21) c = Dot512<TS>(c, b21, Broadcast512(ref ar, 336));
            if (TQ.Count > 22) c = Dot512<TS>(c, b22, Broadcast512(ref ar, 352));
            if (TQ.Count > 23) c = Dot512<TS>(c, b23, Broadcast512(ref ar, 368));
            if (mode is First or Middle)
            {
                Vector512.Store(c, partial + 16 * i);
                ar = ref Unsafe.Add(ref ar, (i & 3) == 3 ? blockStep : 4);
                continue;
            }
            var rc = Narrow512<TC>(c, Unsafe.Add(ref mult, i), zp, signed);
            if (squeezed) rc = Avx512Vbmi.VL.PermuteVar16x8(rc, squeeze);
            if (cols == 16) rc.StoreUnsafe(ref yr);
            else fixed (byte* py = &yr) Avx512BW.VL.MaskStore(py, keep, rc);
            ar = ref Unsafe.Add(ref ar, (i & 3) == 3 ? blockStep : 4);
            yr = ref Unsafe.Add(ref yr, ldy);
        }
    }
}
