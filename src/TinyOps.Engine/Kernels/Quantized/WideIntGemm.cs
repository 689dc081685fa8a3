using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// Integer GEMM with fused requantization for machines with AVX-512 (the wide path of <see cref="FastIntGemm"/>,
/// <see cref="IntGemmPath.AvxVnniWide"/>; vpdpbusd where AVX-VNNI is present, else its emulation, which the callers
/// take only for weights it serves exactly, see <see cref="ByteDot"/>):
/// y[i, j] = requantize(Σ_k (A[i, k] − za[i]) · (B[k, j] − zb) + bias[i], mult[i]), bit-identical to
/// <see cref="QuantMath.Requantize"/> on the reference sums.
/// <para>
/// Register tile: <see cref="MR"/> = 4 rows of A × up to 3 ymm vectors of B (24 columns), 12 int32 accumulators
/// (sized when the JIT was thought to reach only ymm0-15 with vpdpbusd; on AVX512-VNNI machines it encodes it with EVEX
/// and uses ymm16-31 too, seen in JitDisasm on 2026-12-07). Each step of k handles a quad of four k:
/// three loads of B, four broadcasts of one row's four bytes of A, 12 vpdpbusd. Accumulators start at the row constant
/// bias[i] − zb·Σ_k A'[i, k] (+ K·za[i]·zb), so the zero points cost nothing per element when A's zero point is 0;
/// otherwise za[i]·(Σ_k B[k, j] − K·zb) is subtracted per column in the epilogue. All int32 arithmetic wraps, as in
/// the reference.
/// </para>
/// <para>
/// Requantization as <see cref="IntRequantize"/>: 8 sums of a row at a time (ymm only: on Intel cores a 512-bit instruction among the vpdpbusd closes port 1's vector unit and halves their throughput) are converted to float, multiplied by
/// mult[i], rounded half to even, offset by the zero point and narrowed with saturation. The rounding (checked per
/// call from K, the row constants and the multipliers, <see cref="ScaledSumsRange"/>): when no scaled sum can reach
/// 2²¹, the addition of 1.5·2²³ (<see cref="Magic"/>: it may run on port 5, where vcvtps2dq competes with vpdpbusd for
/// ports 0 and 1; int8 MobileNetV2 0.7% faster with the depthwise layers' same change kept); else vcvtps2dq under the
/// default rounding mode, the scaled sums clamped to ±2³⁰ first only when they could reach it.
/// </para>
/// <para>
/// Packed A is <see cref="FastIntGemm.PackA"/>'s layout: [block][quad][4 rows][4 bytes].
/// Packed B (<see cref="PackB"/>): panels of 24 columns (the last one 8 or 16 wide, zero padded),
/// [panel][quad][column][4 bytes]. The operand that vpdpbusd reads as unsigned is chosen by <c>aUnsigned</c> as in
/// <see cref="FastIntGemm"/>.
/// </para>
/// </summary>
/// <remarks>
/// [SkipLocalsInit]: otherwise every <see cref="Tile"/> call zeroed its locals in the prologue with 512-bit stores, and
/// 512-bit instructions among the vpdpbusd close port 1's vector unit (MobileNetV2 int8 10-25% slower, alternating
/// builds). Every stack buffer here is written before it is read.
/// </remarks>
[SkipLocalsInit]
internal static partial class WideIntGemm
{
    public const int MR = FastIntGemm.MR;
    public const int NR = 24;

    /// <summary>True when this machine has the instructions of the wide path.</summary>
    public static bool HardwareSupported => ByteDot.WideHardware;

    public static int PackedBSize(int k, int n) => (n + 7) / 8 * 8 * FastIntGemm.Quads(k) * 4;

    /// <summary>
    /// Packs B (k × n, row stride ldb) into panels of 24 columns (<see cref="PackedBSize"/> bytes). When
    /// <paramref name="colSums"/> is not empty, it receives Σ_k B[k, j] (signed when <paramref name="signed"/>).
    /// </summary>
    public static void PackB(ReadOnlySpan<byte> b, int k, int n, int ldb, bool signed, Span<byte> dst, Span<int> colSums)
        => Pack(b, default, ldb, k, n, signed, dst, colSums);

    /// <summary>As <see cref="PackB"/> for rows that start at <paramref name="rowOffsets"/>[p] of <paramref name="src"/> (see <see cref="IntPhasePlanes"/>).</summary>
    public static void PackRows(ReadOnlySpan<byte> src, ReadOnlySpan<int> rowOffsets, int k, int n, bool signed, Span<byte> dst, Span<int> colSums)
        => Pack(src, rowOffsets, 0, k, n, signed, dst, colSums);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Pack(ReadOnlySpan<byte> b, ReadOnlySpan<int> rowOffsets, int ldb, int k, int n, bool signed, Span<byte> dst, Span<int> colSums)
    {
        int kq = FastIntGemm.Quads(k);
        ref byte s0 = ref MemoryMarshal.GetReference(b);
        ref byte d0 = ref MemoryMarshal.GetReference(dst);
        bool table = !rowOffsets.IsEmpty;
        for (int q = 0; q < kq; q++)
        {
            int p = q * 4, valid4 = Math.Min(4, k - p);
            // the quad's four rows; missing rows (k not a multiple of 4) read row 0 and are zeroed below
            int o0 = table ? rowOffsets[p] : p * ldb;
            int o1 = valid4 > 1 ? (table ? rowOffsets[p + 1] : (p + 1) * ldb) : o0;
            int o2 = valid4 > 2 ? (table ? rowOffsets[p + 2] : (p + 2) * ldb) : o0;
            int o3 = valid4 > 3 ? (table ? rowOffsets[p + 3] : (p + 3) * ldb) : o0;
            var keep1 = valid4 > 1 ? Vector128<byte>.AllBitsSet : Vector128<byte>.Zero;
            var keep2 = valid4 > 2 ? Vector128<byte>.AllBitsSet : Vector128<byte>.Zero;
            var keep3 = valid4 > 3 ? Vector128<byte>.AllBitsSet : Vector128<byte>.Zero;
            ref byte r0 = ref Unsafe.Add(ref s0, o0);
            ref byte r1 = ref Unsafe.Add(ref s0, o1);
            ref byte r2 = ref Unsafe.Add(ref s0, o2);
            ref byte r3 = ref Unsafe.Add(ref s0, o3);
            for (int j0 = 0; j0 < n; j0 += NR)
            {
                int width = Math.Min(NR, (n - j0 + 7) & ~7);
                ref byte panel = ref Unsafe.Add(ref d0, j0 * kq * 4 + q * width * 4);
                int c0 = 0;
                // 16 columns: 16-byte rows, two rounds of unpacks give 64 bytes
                for (; c0 + 16 <= width && j0 + c0 + 16 <= n; c0 += 16)
                {
                    int j = j0 + c0;
                    var v0 = Vector128.LoadUnsafe(ref r0, (nuint)j);
                    var v1 = Vector128.LoadUnsafe(ref r1, (nuint)j) & keep1;
                    var v2 = Vector128.LoadUnsafe(ref r2, (nuint)j) & keep2;
                    var v3 = Vector128.LoadUnsafe(ref r3, (nuint)j) & keep3;
                    Interleave(v0, v1, v2, v3, ref Unsafe.Add(ref panel, c0 * 4));
                }
                for (; c0 < width; c0 += 8)
                {
                    int j = j0 + c0, valid = Math.Min(8, n - j);
                    ref byte d = ref Unsafe.Add(ref panel, c0 * 4);
                    if (valid == 8)
                    {
                        var v0 = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref r0, j))).AsByte();
                        var v1 = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref r1, j))).AsByte() & keep1;
                        var v2 = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref r2, j))).AsByte() & keep2;
                        var v3 = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref r3, j))).AsByte() & keep3;
                        var t01 = Sse2.UnpackLow(v0, v1).AsInt16();
                        var t23 = Sse2.UnpackLow(v2, v3).AsInt16();
                        Sse2.UnpackLow(t01, t23).AsByte().StoreUnsafe(ref d);
                        Sse2.UnpackHigh(t01, t23).AsByte().StoreUnsafe(ref d, 16);
                        continue;
                    }
                    for (int c = 0; c < 8; c++)
                    {
                        bool ok = c < valid;
                        Unsafe.Add(ref d, c * 4) = ok ? Unsafe.Add(ref r0, j + c) : (byte)0;
                        Unsafe.Add(ref d, c * 4 + 1) = ok && valid4 > 1 ? Unsafe.Add(ref r1, j + c) : (byte)0;
                        Unsafe.Add(ref d, c * 4 + 2) = ok && valid4 > 2 ? Unsafe.Add(ref r2, j + c) : (byte)0;
                        Unsafe.Add(ref d, c * 4 + 3) = ok && valid4 > 3 ? Unsafe.Add(ref r3, j + c) : (byte)0;
                    }
                }
            }
        }
        if (colSums.IsEmpty) return;
        colSums.Slice(0, n).Clear();
        for (int p = 0; p < k; p++)
        {
            var row = b.Slice(table ? rowOffsets[p] : p * ldb, n);
            if (signed) for (int j = 0; j < n; j++) colSums[j] += (sbyte)row[j];
            else for (int j = 0; j < n; j++) colSums[j] += row[j];
        }
    }

    /// <summary>
    /// Writes 16 cells of four bytes: cell j = (v0[j], v1[j], v2[j], v3[j]), the quad layout of the
    /// packed B here and of <see cref="IntDirectConv"/>'s planes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Interleave(Vector128<byte> v0, Vector128<byte> v1, Vector128<byte> v2, Vector128<byte> v3, ref byte d)
    {
        var lo01 = Sse2.UnpackLow(v0, v1).AsInt16();
        var hi01 = Sse2.UnpackHigh(v0, v1).AsInt16();
        var lo23 = Sse2.UnpackLow(v2, v3).AsInt16();
        var hi23 = Sse2.UnpackHigh(v2, v3).AsInt16();
        Sse2.UnpackLow(lo01, lo23).AsByte().StoreUnsafe(ref d);
        Sse2.UnpackHigh(lo01, lo23).AsByte().StoreUnsafe(ref d, 16);
        Sse2.UnpackLow(hi01, hi23).AsByte().StoreUnsafe(ref d, 32);
        Sse2.UnpackHigh(hi01, hi23).AsByte().StoreUnsafe(ref d, 48);
    }

    /// <summary>What the epilogue needs: per-row constants and multipliers, the output and its zero point.</summary>
    internal readonly ref struct Epilogue
    {
        public readonly ReadOnlySpan<int> RowInit;   // bias − zb·rowSum (+ K·za·zb), per row
        public readonly ReadOnlySpan<float> RowMult;
        public readonly ReadOnlySpan<int> RowZa;      // empty when every za is 0
        public readonly ReadOnlySpan<int> ColAdj;     // Σ_k B[k, j] − K·zb, used with RowZa
        public readonly int YZero;
        public readonly bool Signed;
        public readonly Span<byte> Y;
        public readonly int Ldy;

        /// <summary>
        /// With the 512-bit unpacked pass only (<see cref="CompactsRows"/>): the product's columns are rows of this many
        /// (phase planes' <see cref="IntPhasePlanes.Width"/>) of which the first <see cref="RowKeep"/> are outputs; those
        /// are stored straight to their places in Y (row i at i·Ldy + r·RowKeep + c) instead of a later compaction. 0: no.
        /// </summary>
        public int RowWidth { get; init; }

        /// <summary>Columns kept of each row of <see cref="RowWidth"/>.</summary>
        public int RowKeep { get; init; }

        public Epilogue(ReadOnlySpan<int> rowInit, ReadOnlySpan<float> rowMult, ReadOnlySpan<int> rowZa, ReadOnlySpan<int> colAdj,
            int yZero, bool signed, Span<byte> y, int ldy)
        {
            RowInit = rowInit; RowMult = rowMult; RowZa = rowZa; ColAdj = colAdj; YZero = yZero; Signed = signed; Y = y; Ldy = ldy;
        }
    }

    /// <summary>
    /// Multiplies packed A (m × k) by packed B (k × n) and requantizes into the epilogue's output. The caller has
    /// checked <see cref="HardwareSupported"/> and that every multiplier is finite.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyRequantize(int m, int n, int k, ReadOnlySpan<byte> ap, bool aUnsigned, ReadOnlySpan<byte> bp, in Epilogue e)
    {
        if (m == 0 || n == 0) return;
        // can a scaled sum leave ±2³⁰? |sum| ≤ 4·kq·255·255 + |row constant| (wrapped to int32 at most 2³¹)
        Dispatch(m, n, k, ap, aUnsigned, new PanelSource(bp), e);
    }

    /// <summary>Whether callers hand B over as it is (<see cref="MultiplyRequantizePanels"/>) rather than packed whole; a switch for A/B comparisons.</summary>
    internal static bool PackPanels = true;

    /// <summary>Bytes of the panel buffer <see cref="MultiplyRequantizePanels"/> needs for depth k: one 24-column panel.</summary>
    public static int PanelBytes(int k) => NR * FastIntGemm.Quads(k) * 4;

    /// <summary>
    /// As <see cref="MultiplyRequantize"/> for B as it is: k rows of n bytes, row p at p·ldb, or at
    /// <paramref name="rowOffsets"/>[p] when given (see <see cref="PackRows"/>). Each 24-column panel is packed into
    /// <paramref name="panelBuffer"/> (<see cref="PanelBytes"/>, small enough to stay in L1) just before every row block
    /// runs against it, instead of packing all of B first (a pass through memory as large as B, whose bytes are then
    /// read back from L2: most of the cost when A has few rows, e.g. MobileNetV2's projections onto 16-32 channels at
    /// 56 × 56 and 112 × 112); short 1 × 1 products go to <see cref="MultiplyRequantizeUnpacked"/>. Every za must be 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyRequantizePanels(int m, int n, int k, ReadOnlySpan<byte> ap, bool aUnsigned, ReadOnlySpan<byte> b,
        ReadOnlySpan<int> rowOffsets, int ldb, Span<byte> panelBuffer, in Epilogue e)
    {
        if (e.RowZa.Length > 0) throw new ArgumentException("B packed panel by panel needs every za 0 (the column sums are not computed)");
        if (m == 0 || n == 0) return;
        if (TakesUnpacked(m, k, false))
        {
            MultiplyRequantizeUnpacked(m, n, k, ap, aUnsigned, b, rowOffsets, ldb, e);
            return;
        }
        if (e.RowWidth > 0) throw new ArgumentException("rows compacted as they are stored need the 512-bit unpacked pass");
        if (panelBuffer.Length < PanelBytes(k)) throw new ArgumentException($"the panel buffer needs {PanelBytes(k)} bytes, it has {panelBuffer.Length}");
        if (!rowOffsets.IsEmpty && rowOffsets.Length < k) throw new ArgumentException($"{k} rows need {k} offsets, got {rowOffsets.Length}");
        Dispatch(m, n, k, ap, aUnsigned, new PanelSource(b, rowOffsets, ldb, k, panelBuffer), e);
    }

    private static void Dispatch(int m, int n, int k, ReadOnlySpan<byte> ap, bool aUnsigned, in PanelSource src, in Epilogue e)
    {
        int kq = FastIntGemm.Quads(k);
        var range = ScaledSumsRange(kq, e.RowInit.Slice(0, m), e.RowMult, e.RowZa.Length > 0);
        if (aUnsigned)
        {
            if (range == SumRange.Magic) Run<AUnsigned, Magic>(m, n, kq, ap, src, e);
            else if (range == SumRange.InRange) Run<AUnsigned, InRange>(m, n, kq, ap, src, e);
            else Run<AUnsigned, Clamped>(m, n, kq, ap, src, e);
        }
        else
        {
            if (range == SumRange.Magic) Run<ASigned, Magic>(m, n, kq, ap, src, e);
            else if (range == SumRange.InRange) Run<ASigned, InRange>(m, n, kq, ap, src, e);
            else Run<ASigned, Clamped>(m, n, kq, ap, src, e);
        }
    }

    /// <summary>
    /// Where a product's B panels come from: all of B packed beforehand (<see cref="PackB"/>), or B as it is, each panel
    /// packed into a small buffer when it is reached.
    /// </summary>
    private readonly ref struct PanelSource
    {
        private readonly ReadOnlySpan<byte> _packed, _raw;
        private readonly ReadOnlySpan<int> _rowOffsets;
        private readonly int _ldb, _k;
        private readonly Span<byte> _buffer;

        public PanelSource(ReadOnlySpan<byte> packed) { _packed = packed; }

        public PanelSource(ReadOnlySpan<byte> raw, ReadOnlySpan<int> rowOffsets, int ldb, int k, Span<byte> buffer)
        {
            _raw = raw; _rowOffsets = rowOffsets; _ldb = ldb; _k = k; _buffer = buffer;
        }

        /// <summary>The panel of columns j0 .. j0 + cols − 1 (cols ≤ 24), [quad][width][4 bytes].</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public ref byte Panel(int j0, int cols, int kq)
        {
            if (_buffer.IsEmpty) return ref Unsafe.Add(ref MemoryMarshal.GetReference(_packed), j0 * kq * 4);
            if (cols == NR && _rowOffsets.IsEmpty) FullPanel(ref Unsafe.Add(ref MemoryMarshal.GetReference(_raw), j0), _ldb, _k, kq, ref MemoryMarshal.GetReference(_buffer));
            else if (_rowOffsets.IsEmpty && RaggedPanels) RaggedPanel(_raw.Slice(j0), _ldb, _k, kq, cols, _buffer);
            else Pack(_raw.Slice(j0), _rowOffsets, _ldb, _k, cols, false, _buffer, default);
            return ref MemoryMarshal.GetReference(_buffer);
        }
    }

    /// <summary>Whether a product's last, narrower panel is packed by <see cref="RaggedPanel"/> rather than <see cref="Pack"/>'s byte loop; a switch for A/B comparisons.</summary>
    internal static bool RaggedPanels = true;

    /// <summary>
    /// The last panel of B when it is narrower than 24 columns (the 49th column of a 7 × 7 plane, the last 4 of 14 × 14),
    /// in <see cref="Pack"/>'s layout for its width (8, 16 or 24, zero padded): per quad, masked 16-byte loads of the
    /// four rows (nothing is read past a row's <paramref name="cols"/> bytes) and the same interleaving as
    /// <see cref="FullPanel"/>, instead of a byte at a time (2% of MobileNetV2 int8, its deep 7 × 7 layers having 240 quads).
    /// </summary>
    private static unsafe void RaggedPanel(ReadOnlySpan<byte> b, int ldb, int k, int kq, int cols, Span<byte> dst)
    {
        int width = (cols + 7) & ~7;
        var loMask = Vector128.LessThan(Iota16, Vector128.Create((byte)Math.Min(cols, 16)));
        var hiMask = Vector128.LessThan(Iota16, Vector128.Create((byte)Math.Max(cols - 16, 0)));
        fixed (byte* s0 = b, d0 = dst)
        {
            for (int q = 0; q < kq; q++)
            {
                int p = 4 * q;
                byte* r0 = s0 + (long)p * ldb;
                byte* d = d0 + q * width * 4;
                var v0 = Avx512BW.VL.MaskLoad(r0, loMask, Vector128<byte>.Zero);
                var v1 = p + 1 < k ? Avx512BW.VL.MaskLoad(r0 + ldb, loMask, Vector128<byte>.Zero) : default;
                var v2 = p + 2 < k ? Avx512BW.VL.MaskLoad(r0 + 2 * ldb, loMask, Vector128<byte>.Zero) : default;
                var v3 = p + 3 < k ? Avx512BW.VL.MaskLoad(r0 + 3 * ldb, loMask, Vector128<byte>.Zero) : default;
                if (width >= 16) Interleave(v0, v1, v2, v3, ref *d);
                else
                {
                    var t01 = Sse2.UnpackLow(v0, v1).AsInt16();
                    var t23 = Sse2.UnpackLow(v2, v3).AsInt16();
                    Sse2.UnpackLow(t01, t23).AsByte().Store(d);
                    Sse2.UnpackHigh(t01, t23).AsByte().Store(d + 16);
                }
                if (width == NR)
                {
                    var w0 = Avx512BW.VL.MaskLoad(r0 + 16, hiMask, Vector128<byte>.Zero);
                    var w1 = p + 1 < k ? Avx512BW.VL.MaskLoad(r0 + ldb + 16, hiMask, Vector128<byte>.Zero) : default;
                    var w2 = p + 2 < k ? Avx512BW.VL.MaskLoad(r0 + 2 * ldb + 16, hiMask, Vector128<byte>.Zero) : default;
                    var w3 = p + 3 < k ? Avx512BW.VL.MaskLoad(r0 + 3 * ldb + 16, hiMask, Vector128<byte>.Zero) : default;
                    var t01 = Sse2.UnpackLow(w0, w1).AsInt16();
                    var t23 = Sse2.UnpackLow(w2, w3).AsInt16();
                    Sse2.UnpackLow(t01, t23).AsByte().Store(d + 64);
                    Sse2.UnpackHigh(t01, t23).AsByte().Store(d + 80);
                }
            }
        }
    }

    private static readonly Vector128<byte> Iota16 = Vector128.Create((byte)0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

    /// <summary>
    /// One full 24-column panel of B (rows ldb apart, k of them) in <see cref="Pack"/>'s layout: per quad, 16 columns
    /// from four 16-byte rows and 8 from four 8-byte rows; rows past k are zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FullPanel(ref byte src, int ldb, int k, int kq, ref byte dst)
    {
        for (int q = 0; q < kq; q++)
        {
            int p = 4 * q;
            ref byte r0 = ref Unsafe.Add(ref src, p * ldb);
            ref byte d = ref Unsafe.Add(ref dst, q * NR * 4);
            Vector128<byte> v0 = Vector128.LoadUnsafe(ref r0), v1, v2, v3;
            Vector128<byte> w0 = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref r0, 16))).AsByte(), w1, w2, w3;
            if (p + 4 <= k)
            {
                v1 = Vector128.LoadUnsafe(ref r0, (nuint)ldb);
                v2 = Vector128.LoadUnsafe(ref r0, (nuint)(2 * ldb));
                v3 = Vector128.LoadUnsafe(ref r0, (nuint)(3 * ldb));
                w1 = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref r0, ldb + 16))).AsByte();
                w2 = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref r0, 2 * ldb + 16))).AsByte();
                w3 = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref r0, 3 * ldb + 16))).AsByte();
            }
            else
            {
                v1 = p + 1 < k ? Vector128.LoadUnsafe(ref r0, (nuint)ldb) : default;
                v2 = p + 2 < k ? Vector128.LoadUnsafe(ref r0, (nuint)(2 * ldb)) : default;
                v3 = default;
                w1 = p + 1 < k ? Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref r0, ldb + 16))).AsByte() : default;
                w2 = p + 2 < k ? Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref r0, 2 * ldb + 16))).AsByte() : default;
                w3 = default;
            }
            Interleave(v0, v1, v2, v3, ref d);
            var t01 = Sse2.UnpackLow(w0, w1).AsInt16();
            var t23 = Sse2.UnpackLow(w2, w3).AsInt16();
            Sse2.UnpackLow(t01, t23).AsByte().StoreUnsafe(ref d, 64);
            Sse2.UnpackHigh(t01, t23).AsByte().StoreUnsafe(ref d, 80);
        }
    }

    /// <summary>
    /// True when no scaled sum of these rows can reach ±2²⁹, so the conversion to int32 needs no clamp:
    /// |sum| ≤ 4·kq·255·255 + |row constant| (any za ≠ 0: up to 2³¹ after wrapping).
    /// </summary>
    internal static bool ScaledSumsInRange(int kq, ReadOnlySpan<int> rowInit, ReadOnlySpan<float> rowMult, bool anyZa) =>
        ScaledSumsRange(kq, rowInit, rowMult, anyZa) != SumRange.Clamped;

    /// <summary>As <see cref="ScaledSumsInRange"/>, telling also whether the sums stay within the <see cref="Magic"/> rounding's range.</summary>
    internal static SumRange ScaledSumsRange(int kq, ReadOnlySpan<int> rowInit, ReadOnlySpan<float> rowMult, bool anyZa)
    {
        if (rowInit.IsEmpty) return UseMagic ? SumRange.Magic : SumRange.InRange;
        // first one bound for every row, from the largest constant and the largest multiplier (two vector passes: the
        // row loop below cost about 10 µs a MobileNetV2 inference), then row by row only when that bound is too loose
        double largestInit = Math.Abs((double)System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(rowInit));
        double largestMult = Math.Abs((double)System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(rowMult.Slice(0, rowInit.Length)));
        double all = SumBound(kq, largestInit, anyZa) * largestMult;
        if (all < QuantMath.MagicLimit && UseMagic) return SumRange.Magic;
        if (all < 1 << 29) return SumRange.InRange;
        for (int i = 0; i < rowInit.Length; i++)
            if (SumBound(kq, Math.Abs((double)rowInit[i]), anyZa) * Math.Abs((double)rowMult[i]) >= 1 << 29) return SumRange.Clamped;
        return SumRange.InRange;

        // the largest |sum| a row can reach from an accumulator start of magnitude init (a zero-point term: anything)
        static double SumBound(int kq, double init, bool anyZa) => anyZa ? 2147483648.0 : Math.Min(2147483648.0, 4.0 * kq * 65025 + init);
    }

    private interface ISign { static abstract bool AIsUnsigned { get; } }
    private struct AUnsigned : ISign { public static bool AIsUnsigned => true; }
    private struct ASigned : ISign { public static bool AIsUnsigned => false; }
    /// <summary>How far a product's scaled sums (sum · multiplier) can reach, which decides how they are rounded.</summary>
    internal enum SumRange
    {
        /// <summary>Below <see cref="QuantMath.MagicLimit"/>: rounded by adding <see cref="QuantMath.Magic"/> (<see cref="Magic"/>).</summary>
        Magic,
        /// <summary>Below 2²⁹: converted with vcvtps2dq as they are.</summary>
        InRange,
        /// <summary>Anything: clamped to ±2³⁰ before the conversion.</summary>
        Clamped,
    }

    /// <summary>A/B switch for the <see cref="Magic"/> rounding (benchmarks only).</summary>
    internal static bool UseMagic = true;

    /// <summary>How the scaled sums are rounded to int32: clamped to ±2³⁰ first or not, or by the magic-number addition.</summary>
    internal interface IClamp { static abstract bool Clamps { get; } static abstract bool AddsMagic { get; } }
    internal struct InRange : IClamp { public static bool Clamps => false; public static bool AddsMagic => false; }
    internal struct Clamped : IClamp { public static bool Clamps => true; public static bool AddsMagic => false; }

    /// <summary>
    /// Scaled sums below <see cref="QuantMath.MagicLimit"/>: rounded by adding <see cref="QuantMath.Magic"/> (see there),
    /// the bits' offset folded into the zero point (<see cref="ZeroTerm{TC}"/>).
    /// </summary>
    internal struct Magic : IClamp { public static bool Clamps => false; public static bool AddsMagic => true; }

    /// <summary>The int32 the requantization adds to the rounded scaled sum: the y zero point, less the magic bits under <see cref="Magic"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int ZeroTerm<TC>(int yZero) where TC : struct, IClamp => TC.AddsMagic ? yZero - QuantMath.MagicBits : yZero;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run<TS, TC>(int m, int n, int kq, ReadOnlySpan<byte> ap, in PanelSource src, in Epilogue e)
        where TS : struct, ISign where TC : struct, IClamp
    {
        if (StationaryB && m >= 2 * MR && e.RowZa.IsEmpty && kq <= MaxStationaryQuads)
        {
            switch (kq)
            {
                case 7: Stationary<TS, TC, Q7>(m, n, ap, src, e); return;
                case 8: Stationary<TS, TC, Q8>(m, n, ap, src, e); return;
                case 1: Stationary<TS, TC, Q1>(m, n, ap, src, e); return;
                case 2: Stationary<TS, TC, Q2>(m, n, ap, src, e); return;
                case 3: Stationary<TS, TC, Q3>(m, n, ap, src, e); return;
                case 4: Stationary<TS, TC, Q4>(m, n, ap, src, e); return;
                case 5: Stationary<TS, TC, Q5>(m, n, ap, src, e); return;
                case 6: Stationary<TS, TC, Q6>(m, n, ap, src, e); return;
            }
        }
        int blocks = (m + MR - 1) / MR;
        ref byte a0 = ref MemoryMarshal.GetReference(ap);
        for (int j0 = 0; j0 < n; j0 += NR)
        {
            int cols = Math.Min(NR, n - j0);
            ref byte panel = ref src.Panel(j0, cols, kq);
            int first = 0;
            if (cols <= 4 && OneColumnByChannels && m >= 8 && e.RowZa.IsEmpty)
            {
                // one to four columns left (a 7 × 7 plane's 49th, a 14 × 14 plane's last 4): eight rows a vector, the
                // rows past a multiple of 8 through the tiles
                first = (m & ~7) / MR;
                switch (cols)
                {
                    case 1: OneColumn<TS, TC>(m & ~7, kq, ref a0, ref panel, j0, e); break;
                    case 2: FewColumns<TS, TC, C2>(m & ~7, kq, ref a0, ref panel, j0, e); break;
                    case 3: FewColumns<TS, TC, C3>(m & ~7, kq, ref a0, ref panel, j0, e); break;
                    default: FewColumns<TS, TC, C4>(m & ~7, kq, ref a0, ref panel, j0, e); break;
                }
            }
            for (int bl = first; bl < blocks; bl++)
            {
                int i0 = bl * MR;
                ref byte ablock = ref Unsafe.Add(ref a0, i0 * kq * 4);
                int rows = Math.Min(MR, m - i0);
                if (rows == 1) // a single row (a matrix-vector product): skip the three padding rows of the block
                {
                    if (cols > 16) Tile<TS, TC, V3, R1>(ref ablock, ref panel, kq, i0, 1, j0, cols, e);
                    else if (cols > 8) Tile<TS, TC, V2, R1>(ref ablock, ref panel, kq, i0, 1, j0, cols, e);
                    else Tile<TS, TC, V1, R1>(ref ablock, ref panel, kq, i0, 1, j0, cols, e);
                }
                else if (cols > 16) Tile<TS, TC, V3, R4>(ref ablock, ref panel, kq, i0, rows, j0, cols, e);
                else if (cols > 8) Tile<TS, TC, V2, R4>(ref ablock, ref panel, kq, i0, rows, j0, cols, e);
                else Tile<TS, TC, V1, R4>(ref ablock, ref panel, kq, i0, rows, j0, cols, e);
            }
        }
    }

    /// <summary>Whether a last panel of one to four columns runs through <see cref="OneColumn"/> or <see cref="FewColumns"/>; a switch for tests and A/B comparisons.</summary>
    internal static bool OneColumnByChannels = true;

    /// <summary>
    /// Column j of rows 0 .. m − 1 (m a multiple of 8) when it is the only column of its panel: the roles turn around,
    /// vpdpbusd's eight lanes are eight rows (two packed blocks' 16-byte quads joined) and the column's quad is
    /// broadcast, so each instruction does eight useful outputs instead of the one of eight a one-vector tile does.
    /// Four groups of eight rows at a time, then single groups; the epilogue requantizes the eight rows with their own
    /// multipliers and stores one byte per row. Bit-identical to the tiles (the same int32 sums and requantization).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OneColumn<TS, TC>(int m, int kq, ref byte a0, ref byte panel, int j, in Epilogue e)
        where TS : struct, ISign where TC : struct, IClamp
    {
        ref int init = ref MemoryMarshal.GetReference(e.RowInit);
        ref float mult = ref MemoryMarshal.GetReference(e.RowMult);
        ref byte y = ref Unsafe.Add(ref MemoryMarshal.GetReference(e.Y), j);
        int ldy = e.Ldy;
        var zp = Vector256.Create(ZeroTerm<TC>(e.YZero));
        bool signed = e.Signed;
        int blockBytes = kq * 16; // one packed block of four rows
        int g = 0;
        for (; g + 32 <= m; g += 32)
        {
            ref byte ab = ref Unsafe.Add(ref a0, g * kq * 4);
            var c0 = Vector256.LoadUnsafe(ref init, (nuint)g);
            var c1 = Vector256.LoadUnsafe(ref init, (nuint)(g + 8));
            var c2 = Vector256.LoadUnsafe(ref init, (nuint)(g + 16));
            var c3 = Vector256.LoadUnsafe(ref init, (nuint)(g + 24));
            for (int q = 0; q < kq; q++)
            {
                var x = Broadcast(ref panel, q * 32);
                int o = q * 16;
                c0 = Dot<TS>(c0, x, Rows8(ref ab, o, blockBytes));
                c1 = Dot<TS>(c1, x, Rows8(ref ab, o + 2 * blockBytes, blockBytes));
                c2 = Dot<TS>(c2, x, Rows8(ref ab, o + 4 * blockBytes, blockBytes));
                c3 = Dot<TS>(c3, x, Rows8(ref ab, o + 6 * blockBytes, blockBytes));
            }
            Scatter8<TC>(c0, ref Unsafe.Add(ref mult, g), zp, signed, ref Unsafe.Add(ref y, g * ldy), ldy);
            Scatter8<TC>(c1, ref Unsafe.Add(ref mult, g + 8), zp, signed, ref Unsafe.Add(ref y, (g + 8) * ldy), ldy);
            Scatter8<TC>(c2, ref Unsafe.Add(ref mult, g + 16), zp, signed, ref Unsafe.Add(ref y, (g + 16) * ldy), ldy);
            Scatter8<TC>(c3, ref Unsafe.Add(ref mult, g + 24), zp, signed, ref Unsafe.Add(ref y, (g + 24) * ldy), ldy);
        }
        for (; g < m; g += 8)
        {
            ref byte ab = ref Unsafe.Add(ref a0, g * kq * 4);
            var c0 = Vector256.LoadUnsafe(ref init, (nuint)g);
            for (int q = 0; q < kq; q++)
                c0 = Dot<TS>(c0, Broadcast(ref panel, q * 32), Rows8(ref ab, q * 16, blockBytes));
            Scatter8<TC>(c0, ref Unsafe.Add(ref mult, g), zp, signed, ref Unsafe.Add(ref y, g * ldy), ldy);
        }
    }

    private interface IColumns { static abstract int Count { get; } }
    private struct C2 : IColumns { public static int Count => 2; }
    private struct C3 : IColumns { public static int Count => 3; }
    private struct C4 : IColumns { public static int Count => 4; }

    /// <summary>
    /// As <see cref="OneColumn"/> for a last panel of two to four columns (TN): sixteen rows a step, each column's quad
    /// broadcast once for both groups of eight, so an instruction does eight useful outputs instead of the TN of eight
    /// of a one-vector tile.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FewColumns<TS, TC, TN>(int m, int kq, ref byte a0, ref byte panel, int j, in Epilogue e)
        where TS : struct, ISign where TC : struct, IClamp where TN : struct, IColumns
    {
        ref int init = ref MemoryMarshal.GetReference(e.RowInit);
        ref float mult = ref MemoryMarshal.GetReference(e.RowMult);
        ref byte y = ref Unsafe.Add(ref MemoryMarshal.GetReference(e.Y), j);
        int ldy = e.Ldy;
        var zp = Vector256.Create(ZeroTerm<TC>(e.YZero));
        bool signed = e.Signed;
        int blockBytes = kq * 16;
        for (int g = 0; g < m; g += 16)
        {
            bool two = g + 16 <= m; // else the last eight rows alone
            ref byte ab = ref Unsafe.Add(ref a0, g * kq * 4);
            var i0 = Vector256.LoadUnsafe(ref init, (nuint)g);
            var i1 = two ? Vector256.LoadUnsafe(ref init, (nuint)(g + 8)) : default;
            Vector256<int> c00 = i0, c01 = i0, c02 = i0, c03 = i0, c10 = i1, c11 = i1, c12 = i1, c13 = i1;
            for (int q = 0; q < kq; q++)
            {
                int o = q * 16;
                var w0 = Rows8(ref ab, o, blockBytes);
                var w1 = two ? Rows8(ref ab, o + 2 * blockBytes, blockBytes) : default;
                var x = Broadcast(ref panel, q * 32);
                c00 = Dot<TS>(c00, x, w0); if (two) c10 = Dot<TS>(c10, x, w1);
                x = Broadcast(ref panel, q * 32 + 4);
                c01 = Dot<TS>(c01, x, w0); if (two) c11 = Dot<TS>(c11, x, w1);
                if (TN.Count > 2) { x = Broadcast(ref panel, q * 32 + 8); c02 = Dot<TS>(c02, x, w0); if (two) c12 = Dot<TS>(c12, x, w1); }
                if (TN.Count > 3) { x = Broadcast(ref panel, q * 32 + 12); c03 = Dot<TS>(c03, x, w0); if (two) c13 = Dot<TS>(c13, x, w1); }
            }
            ref byte yg = ref Unsafe.Add(ref y, g * ldy);
            ref float mg = ref Unsafe.Add(ref mult, g);
            Scatter8<TC>(c00, ref mg, zp, signed, ref yg, ldy);
            Scatter8<TC>(c01, ref mg, zp, signed, ref Unsafe.Add(ref yg, 1), ldy);
            if (TN.Count > 2) Scatter8<TC>(c02, ref mg, zp, signed, ref Unsafe.Add(ref yg, 2), ldy);
            if (TN.Count > 3) Scatter8<TC>(c03, ref mg, zp, signed, ref Unsafe.Add(ref yg, 3), ldy);
            if (!two) break;
            ref byte yh = ref Unsafe.Add(ref yg, 8 * ldy);
            ref float mh = ref Unsafe.Add(ref mg, 8);
            Scatter8<TC>(c10, ref mh, zp, signed, ref yh, ldy);
            Scatter8<TC>(c11, ref mh, zp, signed, ref Unsafe.Add(ref yh, 1), ldy);
            if (TN.Count > 2) Scatter8<TC>(c12, ref mh, zp, signed, ref Unsafe.Add(ref yh, 2), ldy);
            if (TN.Count > 3) Scatter8<TC>(c13, ref mh, zp, signed, ref Unsafe.Add(ref yh, 3), ldy);
        }
    }

    /// <summary>The 16-byte quads at <paramref name="offset"/> of two consecutive packed blocks: eight rows' four bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Rows8(ref byte a, int offset, int blockBytes) =>
        Vector256.Create(Vector128.LoadUnsafe(ref a, (nuint)offset), Vector128.LoadUnsafe(ref a, (nuint)(offset + blockBytes)));

    /// <summary>Eight rows' sums of one column requantized with their own multipliers, one byte per row (rows ldy apart).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scatter8<TC>(Vector256<int> acc, ref float mult, Vector256<int> zp, bool signed, ref byte y, int ldy) where TC : struct, IClamp
    {
        var r = Requantized<TC>(acc, Vector256.LoadUnsafe(ref mult), zp);
        ulong bytes = signed ? Avx512F.VL.ConvertToVector128SByteWithSaturation(r).AsUInt64().ToScalar()
                             : Avx512F.VL.ConvertToVector128ByteWithSaturation(Avx2.Max(r, Vector256<int>.Zero).AsUInt32()).AsUInt64().ToScalar();
        for (int i = 0; i < 8; i++, bytes >>= 8) Unsafe.Add(ref y, i * ldy) = (byte)bytes;
    }

    /// <summary>
    /// Whether short products (at most <see cref="MaxStationaryQuads"/> quads) keep each B panel in registers and run every row of A against it
    /// (<see cref="Stationary"/>); a switch for tests and A/B comparisons.
    /// </summary>
    internal static bool StationaryB = true;

    private interface IQuads { static abstract int Count { get; } }
    private struct Q1 : IQuads { public static int Count => 1; }
    private struct Q2 : IQuads { public static int Count => 2; }
    private struct Q3 : IQuads { public static int Count => 3; }
    private struct Q4 : IQuads { public static int Count => 4; }
    private struct Q5 : IQuads { public static int Count => 5; }
    private struct Q6 : IQuads { public static int Count => 6; }
    private struct Q7 : IQuads { public static int Count => 7; }
    private struct Q8 : IQuads { public static int Count => 8; }

    /// <summary>Most quads <see cref="Stationary"/> takes (quads past the sixth are read from the panel for every row); settable for A/B comparisons.</summary>
    internal static int MaxStationaryQuads = 8;

    /// <summary>
    /// A short product (TQ quads, K ≤ 32: MobileNetV2's stem and expansions over 16-32 channels) with B held in registers:
    /// per panel, the first 16 columns' TQ × 2 vectors are loaded once and every row of A runs against them (TQ
    /// broadcasts, 2·TQ vpdpbusd, then that row's 16 outputs requantized and stored), then the last 8 columns the same
    /// way. The 4 × 24 tile would need 16 registers for accumulators and operands, which the JIT only meets by keeping
    /// accumulators in memory; here a row needs at most 2·6 + 3. Bit-identical to the tiles (int32 sums, the same
    /// requantization).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Stationary<TS, TC, TQ>(int m, int n, ReadOnlySpan<byte> ap, in PanelSource src, in Epilogue e)
        where TS : struct, ISign where TC : struct, IClamp where TQ : struct, IQuads
    {
        int kq = TQ.Count;
        ref byte a0 = ref MemoryMarshal.GetReference(ap);
        ref int init = ref MemoryMarshal.GetReference(e.RowInit);
        ref float mult = ref MemoryMarshal.GetReference(e.RowMult);
        ref byte y0 = ref MemoryMarshal.GetReference(e.Y);
        int ldy = e.Ldy;
        var zp = Vector128.Create(ZeroTerm<TC>(e.YZero));
        bool signed = e.Signed;
        for (int j0 = 0; j0 < n; j0 += NR)
        {
            int cols = Math.Min(NR, n - j0);
            int width = Math.Min(NR, (n - j0 + 7) & ~7);
            ref byte panel = ref src.Panel(j0, cols, kq);
            int qs = width * 4; // bytes from one quad of the panel to the next
            // columns 0-15 (or 0-7 of a narrow last panel)
            if (width >= 16)
                StationaryPass<TS, TC, TQ, V2>(m, ref a0, ref panel, qs, ref init, ref mult, ref Unsafe.Add(ref y0, j0), ldy, Math.Min(16, cols), zp, signed, cols >= 16);
            else
                StationaryPass<TS, TC, TQ, V1>(m, ref a0, ref panel, qs, ref init, ref mult, ref Unsafe.Add(ref y0, j0), ldy, cols, zp, signed, false);
            if (width > 16)
                StationaryPass<TS, TC, TQ, V1>(m, ref a0, ref Unsafe.Add(ref panel, 64), qs, ref init, ref mult, ref Unsafe.Add(ref y0, j0 + 16), ldy, cols - 16, zp, signed, false);
        }
    }

    /// <summary>
    /// Whether <see cref="MultiplyRequantizeUnpacked"/> may take B as it is (the caller then skips <see cref="PackB"/>);
    /// a switch for tests and A/B comparisons.
    /// </summary>
    internal static bool UnpackedB = true;

    /// <summary>
    /// True when <see cref="MultiplyRequantizeUnpacked"/> runs this product: a short one (at most
    /// <see cref="MaxStationaryQuads"/> quads) with B held in registers, at least two row blocks, every za 0.
    /// </summary>
    public static bool TakesUnpacked(int m, int k, bool anyZa) =>
        UnpackedB && StationaryB && !anyZa && m >= 2 * MR && k > 0 && (FastIntGemm.Quads(k) <= UnpackedQuads || TakesChunked(m, FastIntGemm.Quads(k)));

    /// <summary>Most quads <see cref="MultiplyRequantizeUnpacked"/> takes: <see cref="MaxStationaryQuads"/>, or <see cref="MaxStationaryQuads512"/> with the 512-bit pass.</summary>
    private static int UnpackedQuads => Uses512 ? MaxStationaryQuads512 : MaxStationaryQuads;

    /// <summary>
    /// As <see cref="MultiplyRequantize"/> for B as it is (k × n, row p at p·<paramref name="ldb"/> or at
    /// <paramref name="rowOffsets"/>[p] when given: the input of a 1 × 1 convolution, the stem's phase planes), when
    /// <see cref="TakesUnpacked"/>: each 16-column panel is interleaved into quads in a
    /// stack buffer (L1) just before every row of A runs against it, instead of packing all of B first (a pass
    /// through memory as large as the input: 400 KB for MobileNetV2's 32-channel 112 × 112 layer).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyRequantizeUnpacked(int m, int n, int k, ReadOnlySpan<byte> ap, bool aUnsigned, ReadOnlySpan<byte> b,
        ReadOnlySpan<int> rowOffsets, int ldb, in Epilogue e)
    {
        if (e.RowWidth > 0 && !CompactsRows(m, k)) throw new ArgumentException("rows compacted as they are stored need the 512-bit unpacked pass");
        if (e.RowWidth > 0 && (e.RowKeep <= 0 || e.RowKeep > e.RowWidth || n % e.RowWidth != 0)) throw new ArgumentException($"{n} columns are not whole rows of {e.RowWidth} keeping {e.RowKeep}");
        if (!TakesUnpacked(m, k, e.RowZa.Length > 0)) throw new ArgumentException($"an unpacked B needs m >= {2 * MR}, k up to {4 * UnpackedQuads} and zero A zero points (m = {m}, k = {k})");
        if (n == 0) return;
        if (!rowOffsets.IsEmpty && rowOffsets.Length < k) throw new ArgumentException($"{k} rows need {k} offsets, got {rowOffsets.Length}");
        // where each row starts (the quads past k read nothing)
        Span<int> rows = stackalloc int[4 * Math.Max(MaxStationaryQuads, Math.Max(MaxStationaryQuads512, ChunkedMaxQuads))];
        for (int p = 0; p < k; p++)
        {
            rows[p] = rowOffsets.IsEmpty ? p * ldb : rowOffsets[p];
            if (rows[p] < 0 || rows[p] > b.Length - n) throw new ArgumentException($"row {p} of B ({n} bytes at {rows[p]}) is outside its {b.Length} bytes");
        }
        int kq = FastIntGemm.Quads(k);
        var range = ScaledSumsRange(kq, e.RowInit.Slice(0, m), e.RowMult, false);
        if (aUnsigned)
        {
            if (range == SumRange.Magic) Unpacked<AUnsigned, Magic>(m, n, k, ap, b, rows, e);
            else if (range == SumRange.InRange) Unpacked<AUnsigned, InRange>(m, n, k, ap, b, rows, e);
            else Unpacked<AUnsigned, Clamped>(m, n, k, ap, b, rows, e);
        }
        else
        {
            if (range == SumRange.Magic) Unpacked<ASigned, Magic>(m, n, k, ap, b, rows, e);
            else if (range == SumRange.InRange) Unpacked<ASigned, InRange>(m, n, k, ap, b, rows, e);
            else Unpacked<ASigned, Clamped>(m, n, k, ap, b, rows, e);
        }
    }

    private static void Unpacked<TS, TC>(int m, int n, int k, ReadOnlySpan<byte> ap, ReadOnlySpan<byte> b, ReadOnlySpan<int> rows, in Epilogue e)
        where TS : struct, ISign where TC : struct, IClamp
    {
        switch (FastIntGemm.Quads(k))
        {
            case 1: Unpacked<TS, TC, Q1>(m, n, k, ap, b, rows, e); return;
            case 2: Unpacked<TS, TC, Q2>(m, n, k, ap, b, rows, e); return;
            case 3: Unpacked<TS, TC, Q3>(m, n, k, ap, b, rows, e); return;
            case 4: Unpacked<TS, TC, Q4>(m, n, k, ap, b, rows, e); return;
            case 5: Unpacked<TS, TC, Q5>(m, n, k, ap, b, rows, e); return;
            case 6: Unpacked<TS, TC, Q6>(m, n, k, ap, b, rows, e); return;
            case 7: Unpacked<TS, TC, Q7>(m, n, k, ap, b, rows, e); return;
            case 8: Unpacked<TS, TC, Q8>(m, n, k, ap, b, rows, e); return;
            case 9: Unpacked512<TS, TC, Q9>(m, n, k, ap, b, rows, e); return;
            case 10: Unpacked512<TS, TC, Q10>(m, n, k, ap, b, rows, e); return;
            case 11: Unpacked512<TS, TC, Q11>(m, n, k, ap, b, rows, e); return;
            case 12: Unpacked512<TS, TC, Q12>(m, n, k, ap, b, rows, e); return;
            case 13: Unpacked512<TS, TC, Q13>(m, n, k, ap, b, rows, e); return;
            case 14: Unpacked512<TS, TC, Q14>(m, n, k, ap, b, rows, e); return;
            case 15: Unpacked512<TS, TC, Q15>(m, n, k, ap, b, rows, e); return;
            case 16: Unpacked512<TS, TC, Q16>(m, n, k, ap, b, rows, e); return;
            case 17: Unpacked512<TS, TC, Q17>(m, n, k, ap, b, rows, e); return;
            case 18: Unpacked512<TS, TC, Q18>(m, n, k, ap, b, rows, e); return;
            case 19: Unpacked512<TS, TC, Q19>(m, n, k, ap, b, rows, e); return;
            case 20: Unpacked512<TS, TC, Q20>(m, n, k, ap, b, rows, e); return;
            case 21: Unpacked512<TS, TC, Q21>(m, n, k, ap, b, rows, e); return;
            case 22: Unpacked512<TS, TC, Q22>(m, n, k, ap, b, rows, e); return;
            case 23: Unpacked512<TS, TC, Q23>(m, n, k, ap, b, rows, e); return;
            case 24: Unpacked512<TS, TC, Q24>(m, n, k, ap, b, rows, e); return;
            default:
                if (!TakesChunked(m, FastIntGemm.Quads(k))) throw new ArgumentException($"an unpacked B takes at most {4 * UnpackedQuads} rows, got {k}");
                UnpackedChunked512<TS, TC>(m, n, k, ap, b, rows, e);
                return;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Unpacked<TS, TC, TQ>(int m, int n, int k, ReadOnlySpan<byte> ap, ReadOnlySpan<byte> b, ReadOnlySpan<int> rows, in Epilogue e)
        where TS : struct, ISign where TC : struct, IClamp where TQ : struct, IQuads
    {
        if (Uses512)
        {
            Unpacked512<TS, TC, TQ>(m, n, k, ap, b, rows, e);
            return;
        }
        int kq = TQ.Count;
        ref byte a0 = ref MemoryMarshal.GetReference(ap);
        ref byte s0 = ref MemoryMarshal.GetReference(b);
        ref int init = ref MemoryMarshal.GetReference(e.RowInit);
        ref float mult = ref MemoryMarshal.GetReference(e.RowMult);
        ref byte y0 = ref MemoryMarshal.GetReference(e.Y);
        int ldy = e.Ldy;
        var zp = Vector128.Create(ZeroTerm<TC>(e.YZero));
        bool signed = e.Signed;
        // one panel: [quad][16 columns][4 bytes]; the ragged last panel's rows are copied into `tail` first
        Span<byte> panelBuf = stackalloc byte[2 * 8 * 64];
        Span<byte> tail = stackalloc byte[32 * 16];
        ref byte panel = ref MemoryMarshal.GetReference(panelBuf);
        ref byte panelB = ref Unsafe.Add(ref panel, 8 * 64);
        for (int j0 = 0; j0 < n; j0 += 16)
        {
            int cols = Math.Min(16, n - j0);
            scoped ref byte src = ref Unsafe.Add(ref s0, j0);
            scoped ref int off = ref MemoryMarshal.GetReference(rows);
            if (n - j0 >= 32 && Split32)
            {
                // 32 columns: one round of 256-bit unpacks makes two panels, columns {0-7, 16-23} and {8-15, 24-31}
                // (half the shuffles of two 16-column rounds); their rows are stored 8 bytes at a time where they belong
                for (int q = 0; q < kq; q++)
                {
                    int p = 4 * q;
                    var v0 = Vector256.LoadUnsafe(ref src, (nuint)Unsafe.Add(ref off, p));
                    var v1 = p + 1 < k ? Vector256.LoadUnsafe(ref src, (nuint)Unsafe.Add(ref off, p + 1)) : Vector256<byte>.Zero;
                    var v2 = p + 2 < k ? Vector256.LoadUnsafe(ref src, (nuint)Unsafe.Add(ref off, p + 2)) : Vector256<byte>.Zero;
                    var v3 = p + 3 < k ? Vector256.LoadUnsafe(ref src, (nuint)Unsafe.Add(ref off, p + 3)) : Vector256<byte>.Zero;
                    var lo01 = Avx2.UnpackLow(v0, v1).AsInt16();
                    var hi01 = Avx2.UnpackHigh(v0, v1).AsInt16();
                    var lo23 = Avx2.UnpackLow(v2, v3).AsInt16();
                    var hi23 = Avx2.UnpackHigh(v2, v3).AsInt16();
                    Avx2.UnpackLow(lo01, lo23).AsByte().StoreUnsafe(ref panel, (nuint)(q * 64));        // columns 0-3, 16-19
                    Avx2.UnpackHigh(lo01, lo23).AsByte().StoreUnsafe(ref panel, (nuint)(q * 64 + 32));  // 4-7, 20-23
                    Avx2.UnpackLow(hi01, hi23).AsByte().StoreUnsafe(ref panelB, (nuint)(q * 64));       // 8-11, 24-27
                    Avx2.UnpackHigh(hi01, hi23).AsByte().StoreUnsafe(ref panelB, (nuint)(q * 64 + 32)); // 12-15, 28-31
                }
                ref byte yp = ref Unsafe.Add(ref y0, j0);
                if (signed)
                {
                    StationaryPass<TS, TC, TQ, V2>(m, ref a0, ref panel, 64, ref init, ref mult, ref yp, ldy, 16, zp, true, true, true);
                    StationaryPass<TS, TC, TQ, V2>(m, ref a0, ref panelB, 64, ref init, ref mult, ref Unsafe.Add(ref yp, 8), ldy, 16, zp, true, true, true);
                }
                else
                {
                    StationaryPass<TS, TC, TQ, V2>(m, ref a0, ref panel, 64, ref init, ref mult, ref yp, ldy, 16, zp, false, true, true);
                    StationaryPass<TS, TC, TQ, V2>(m, ref a0, ref panelB, 64, ref init, ref mult, ref Unsafe.Add(ref yp, 8), ldy, 16, zp, false, true, true);
                }
                j0 += 16;
                continue;
            }
            PackPanel16(b, rows, j0, cols, k, tail, ref panel);
            ref byte yj = ref Unsafe.Add(ref y0, j0);
            if (cols < 16) StationaryPass<TS, TC, TQ, V2>(m, ref a0, ref panel, 64, ref init, ref mult, ref yj, ldy, cols, zp, signed, false);
            else if (signed) StationaryPass<TS, TC, TQ, V2>(m, ref a0, ref panel, 64, ref init, ref mult, ref yj, ldy, 16, zp, true, true);
            else StationaryPass<TS, TC, TQ, V2>(m, ref a0, ref panel, 64, ref init, ref mult, ref yj, ldy, 16, zp, false, true);
        }
    }

    /// <summary>Whether <see cref="StationaryPass"/> runs two rows a step on full 16-column passes; a switch for tests and A/B comparisons.</summary>
    internal static bool PairRows = true;

    /// <summary>
    /// Every row of A against TV vectors of B columns (one or two), held in registers; <paramref name="cols"/> of them are
    /// stored (all 16 when <paramref name="full"/>). Callers pass constant <paramref name="signed"/> and
    /// <paramref name="full"/> where they can, so that the inlined copies carry no test of either per row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StationaryPass<TS, TC, TQ, TV>(int m, ref byte a0, ref byte panel, int qs, ref int init, ref float mult, ref byte y, int ldy,
        int cols, Vector128<int> zp, bool signed, bool full, bool split = false)
        where TS : struct, ISign where TC : struct, IClamp where TQ : struct, IQuads where TV : struct, IVectors
    {
        int kq = TQ.Count;
        bool two = TV.Count > 1;
        var b00 = Vector256.LoadUnsafe(ref panel); var b01 = two ? Vector256.LoadUnsafe(ref panel, 32) : default;
        var b10 = TQ.Count > 1 ? Vector256.LoadUnsafe(ref panel, (nuint)qs) : default;
        var b11 = TQ.Count > 1 && two ? Vector256.LoadUnsafe(ref panel, (nuint)qs + 32) : default;
        var b20 = TQ.Count > 2 ? Vector256.LoadUnsafe(ref panel, (nuint)(2 * qs)) : default;
        var b21 = TQ.Count > 2 && two ? Vector256.LoadUnsafe(ref panel, (nuint)(2 * qs) + 32) : default;
        var b30 = TQ.Count > 3 ? Vector256.LoadUnsafe(ref panel, (nuint)(3 * qs)) : default;
        var b31 = TQ.Count > 3 && two ? Vector256.LoadUnsafe(ref panel, (nuint)(3 * qs) + 32) : default;
        var b40 = TQ.Count > 4 ? Vector256.LoadUnsafe(ref panel, (nuint)(4 * qs)) : default;
        var b41 = TQ.Count > 4 && two ? Vector256.LoadUnsafe(ref panel, (nuint)(4 * qs) + 32) : default;
        var b50 = TQ.Count > 5 ? Vector256.LoadUnsafe(ref panel, (nuint)(5 * qs)) : default;
        var b51 = TQ.Count > 5 && two ? Vector256.LoadUnsafe(ref panel, (nuint)(5 * qs) + 32) : default;
        // row i of packed A: block i / 4, quad q at q·16, the row's 4 bytes at (i % 4)·4; the pointers advance row by
        // row (an address computed per row was a tenth of the loop's instructions)
        ref byte ar = ref a0;
        ref byte yr = ref y;
        var zp8 = Vector256.Create(zp, zp);
        int blockStep = kq * 16 - 12; // from row 3 of a block to row 0 of the next
        int i = 0;
        if (two && full && PairRows)
        {
            // two rows a step: four accumulator chains instead of two, so that vpdpbusd's latency is hidden within the
            // step rather than left to the out-of-order window across rows
            for (; i + 2 <= m; i += 2)
            {
                var c0 = Vector256.Create(Unsafe.Add(ref init, i));
                var c1 = c0;
                var d0 = Vector256.Create(Unsafe.Add(ref init, i + 1));
                var d1 = d0;
                var a = Broadcast(ref ar, 0); var e = Broadcast(ref ar, 4);
                c0 = Dot<TS>(c0, b00, a); c1 = Dot<TS>(c1, b01, a); d0 = Dot<TS>(d0, b00, e); d1 = Dot<TS>(d1, b01, e);
                if (TQ.Count > 1) { a = Broadcast(ref ar, 16); e = Broadcast(ref ar, 20); c0 = Dot<TS>(c0, b10, a); c1 = Dot<TS>(c1, b11, a); d0 = Dot<TS>(d0, b10, e); d1 = Dot<TS>(d1, b11, e); }
                if (TQ.Count > 2) { a = Broadcast(ref ar, 32); e = Broadcast(ref ar, 36); c0 = Dot<TS>(c0, b20, a); c1 = Dot<TS>(c1, b21, a); d0 = Dot<TS>(d0, b20, e); d1 = Dot<TS>(d1, b21, e); }
                if (TQ.Count > 3) { a = Broadcast(ref ar, 48); e = Broadcast(ref ar, 52); c0 = Dot<TS>(c0, b30, a); c1 = Dot<TS>(c1, b31, a); d0 = Dot<TS>(d0, b30, e); d1 = Dot<TS>(d1, b31, e); }
                if (TQ.Count > 4) { a = Broadcast(ref ar, 64); e = Broadcast(ref ar, 68); c0 = Dot<TS>(c0, b40, a); c1 = Dot<TS>(c1, b41, a); d0 = Dot<TS>(d0, b40, e); d1 = Dot<TS>(d1, b41, e); }
                if (TQ.Count > 5) { a = Broadcast(ref ar, 80); e = Broadcast(ref ar, 84); c0 = Dot<TS>(c0, b50, a); c1 = Dot<TS>(c1, b51, a); d0 = Dot<TS>(d0, b50, e); d1 = Dot<TS>(d1, b51, e); }
                if (TQ.Count > 6)
                {
                    var p0 = Vector256.LoadUnsafe(ref panel, (nuint)(6 * qs));
                    var p1 = Vector256.LoadUnsafe(ref panel, (nuint)(6 * qs) + 32);
                    a = Broadcast(ref ar, 96); e = Broadcast(ref ar, 100);
                    c0 = Dot<TS>(c0, p0, a); c1 = Dot<TS>(c1, p1, a); d0 = Dot<TS>(d0, p0, e); d1 = Dot<TS>(d1, p1, e);
                }
                if (TQ.Count > 7)
                {
                    var p0 = Vector256.LoadUnsafe(ref panel, (nuint)(7 * qs));
                    var p1 = Vector256.LoadUnsafe(ref panel, (nuint)(7 * qs) + 32);
                    a = Broadcast(ref ar, 112); e = Broadcast(ref ar, 116);
                    c0 = Dot<TS>(c0, p0, a); c1 = Dot<TS>(c1, p1, a); d0 = Dot<TS>(d0, p0, e); d1 = Dot<TS>(d1, p1, e);
                }
                if (split)
                {
                    Emit16Split<TC>(c0, c1, Unsafe.Add(ref mult, i), zp8, signed, ref yr);
                    Emit16Split<TC>(d0, d1, Unsafe.Add(ref mult, i + 1), zp8, signed, ref Unsafe.Add(ref yr, ldy));
                }
                else
                {
                    Emit16<TC>(c0, c1, Unsafe.Add(ref mult, i), zp8, signed, ref yr);
                    Emit16<TC>(d0, d1, Unsafe.Add(ref mult, i + 1), zp8, signed, ref Unsafe.Add(ref yr, ldy));
                }
                ar = ref Unsafe.Add(ref ar, (i & 3) == 2 ? blockStep + 4 : 8);
                yr = ref Unsafe.Add(ref yr, 2 * ldy);
            }
        }
        for (; i < m; i++)
        {
            var c0 = Vector256.Create(Unsafe.Add(ref init, i));
            var c1 = c0;
            var a = Broadcast(ref ar, 0);
            c0 = Dot<TS>(c0, b00, a); if (two) c1 = Dot<TS>(c1, b01, a);
            if (TQ.Count > 1) { a = Broadcast(ref ar, 16); c0 = Dot<TS>(c0, b10, a); if (two) c1 = Dot<TS>(c1, b11, a); }
            if (TQ.Count > 2) { a = Broadcast(ref ar, 32); c0 = Dot<TS>(c0, b20, a); if (two) c1 = Dot<TS>(c1, b21, a); }
            if (TQ.Count > 3) { a = Broadcast(ref ar, 48); c0 = Dot<TS>(c0, b30, a); if (two) c1 = Dot<TS>(c1, b31, a); }
            if (TQ.Count > 4) { a = Broadcast(ref ar, 64); c0 = Dot<TS>(c0, b40, a); if (two) c1 = Dot<TS>(c1, b41, a); }
            if (TQ.Count > 5) { a = Broadcast(ref ar, 80); c0 = Dot<TS>(c0, b50, a); if (two) c1 = Dot<TS>(c1, b51, a); }
            // quads past the sixth: too many registers to hold, read from the panel (L1) for every row
            if (TQ.Count > 6)
            {
                a = Broadcast(ref ar, 96);
                c0 = Dot<TS>(c0, Vector256.LoadUnsafe(ref panel, (nuint)(6 * qs)), a);
                if (two) c1 = Dot<TS>(c1, Vector256.LoadUnsafe(ref panel, (nuint)(6 * qs) + 32), a);
            }
            if (TQ.Count > 7)
            {
                a = Broadcast(ref ar, 112);
                c0 = Dot<TS>(c0, Vector256.LoadUnsafe(ref panel, (nuint)(7 * qs)), a);
                if (two) c1 = Dot<TS>(c1, Vector256.LoadUnsafe(ref panel, (nuint)(7 * qs) + 32), a);
            }
            float mu = Unsafe.Add(ref mult, i);
            if (two && full && split) Emit16Split<TC>(c0, c1, mu, zp8, signed, ref yr);
            else if (two && full) Emit16<TC>(c0, c1, mu, zp8, signed, ref yr);
            else
            {
                Emit8<TC>(c0, mu, zp, signed, ref yr, cols);
                if (two && cols > 8) Emit8<TC>(c1, mu, zp, signed, ref Unsafe.Add(ref yr, 8), cols - 8);
            }
            ar = ref Unsafe.Add(ref ar, (i & 3) == 3 ? blockStep : 4);
            yr = ref Unsafe.Add(ref yr, ldy);
        }
    }

    /// <summary>
    /// As <see cref="Emit16{TC}"/> for a panel of columns {0-3, 16-19} (v0) and {4-7, 20-23} (v1) relative to
    /// <paramref name="dst"/> (see the 32-column step of <see cref="Unpacked{TS, TC, TQ}"/>): columns 0-7 go to dst,
    /// 16-23 to dst + 16, each as 8 bytes; no permute.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Emit16Split<TC>(Vector256<int> v0, Vector256<int> v1, float mult, Vector256<int> z, bool signed, ref byte dst)
        where TC : struct, IClamp
    {
        var b = Narrow16<TC>(v0, v1, mult, z, signed).AsUInt64();
        Unsafe.WriteUnaligned(ref dst, b.GetElement(0));
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, 16), b.GetElement(2));
    }

    /// <summary>Whether <see cref="Unpacked{TS, TC, TQ}"/> builds two 16-column panels from one round of 256-bit unpacks; a switch for A/B comparisons.</summary>
    internal static bool Split32 = true;

    /// <summary>16 sums requantized as <see cref="Emit24{TC}"/> does, narrowed together and stored as 16 bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Emit16<TC>(Vector256<int> v0, Vector256<int> v1, float mult, Vector256<int> z, bool signed, ref byte dst)
        where TC : struct, IClamp
    {
        // dwords: v0[0-3] v1[0-3] v0[0-3] v1[0-3] | v0[4-7] v1[4-7] ...
        var b = Narrow16<TC>(v0, v1, mult, z, signed).AsInt32();
        Avx2.PermuteVar8x32(b, Vector256.Create(0, 4, 1, 5, 0, 4, 1, 5)).AsByte().GetLower().StoreUnsafe(ref dst);
    }

    /// <summary>
    /// Two vectors of sums requantized and narrowed with saturating packs (int32 → int16 → uint8/int8), each 128-bit lane
    /// holding v0's four bytes then v1's four, twice: the shared part of <see cref="Emit16{TC}"/> and <see cref="Emit16Split{TC}"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Narrow16<TC>(Vector256<int> v0, Vector256<int> v1, float mult, Vector256<int> z, bool signed)
        where TC : struct, IClamp
    {
        var m = Vector256.Create(mult);
        var w = Avx2.PackSignedSaturate(Requantized<TC>(v0, m, z), Requantized<TC>(v1, m, z)); // words: v0[0-3] v1[0-3] | v0[4-7] v1[4-7]
        return signed ? Avx2.PackSignedSaturate(w, w).AsByte() : Avx2.PackUnsignedSaturate(w, w);
    }

    /// <summary>
    /// As <see cref="MultiplyRequantize"/> for one row of A read as it is (k a multiple of 4, no packing, no conversion:
    /// the caller checked that A and B differ in signedness, <paramref name="aUnsigned"/> tells which is unsigned).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyRowRequantize(int n, int k, ReadOnlySpan<byte> a, bool aUnsigned, ReadOnlySpan<byte> bp, in Epilogue e)
    {
        if (n == 0) return;
        if ((k & 3) != 0 || a.Length < k) throw new ArgumentException($"one unpacked row needs k a multiple of 4 and {k} bytes, got k = {k} and {a.Length} bytes");
        int kq = k >> 2;
        var range = ScaledSumsRange(kq, e.RowInit.Slice(0, 1), e.RowMult, e.RowZa.Length > 0);
        if (aUnsigned)
        {
            if (range == SumRange.Magic) RunRow<AUnsigned, Magic>(n, kq, a, bp, e);
            else if (range == SumRange.InRange) RunRow<AUnsigned, InRange>(n, kq, a, bp, e);
            else RunRow<AUnsigned, Clamped>(n, kq, a, bp, e);
        }
        else
        {
            if (range == SumRange.Magic) RunRow<ASigned, Magic>(n, kq, a, bp, e);
            else if (range == SumRange.InRange) RunRow<ASigned, InRange>(n, kq, a, bp, e);
            else RunRow<ASigned, Clamped>(n, kq, a, bp, e);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunRow<TS, TC>(int n, int kq, ReadOnlySpan<byte> a, ReadOnlySpan<byte> bp, in Epilogue e)
        where TS : struct, ISign where TC : struct, IClamp
    {
        ref byte b0 = ref MemoryMarshal.GetReference(bp);
        for (int j0 = 0; j0 < n; j0 += NR)
        {
            int cols = Math.Min(NR, n - j0);
            ref byte panel = ref Unsafe.Add(ref b0, j0 * kq * 4);
            ref byte row = ref MemoryMarshal.GetReference(a);
            if (cols > 16) Tile<TS, TC, V3, R1Raw>(ref row, ref panel, kq, 0, 1, j0, cols, e);
            else if (cols > 8) Tile<TS, TC, V2, R1Raw>(ref row, ref panel, kq, 0, 1, j0, cols, e);
            else Tile<TS, TC, V1, R1Raw>(ref row, ref panel, kq, 0, 1, j0, cols, e);
        }
    }

    private interface IVectors { static abstract int Count { get; } }
    private struct V1 : IVectors { public static int Count => 1; }
    private struct V2 : IVectors { public static int Count => 2; }
    private struct V3 : IVectors { public static int Count => 3; }
    /// <summary>Rows of a tile: all four of a packed block, the first one of a packed block, or one unpacked row (A's quads 4 bytes apart).</summary>
    private interface IRows { static abstract bool All { get; } static abstract int AStep { get; } }
    private struct R1 : IRows { public static bool All => false; public static int AStep => MR * 4; }
    private struct R4 : IRows { public static bool All => true; public static int AStep => MR * 4; }
    private struct R1Raw : IRows { public static bool All => false; public static int AStep => 4; }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot<TS>(Vector256<int> acc, Vector256<byte> b, Vector256<byte> a) where TS : struct, ISign
        => TS.AIsUnsigned ? ByteDot.Add(acc, a, b.AsSByte()) : ByteDot.Add(acc, b, a.AsSByte());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Broadcast(ref byte a, int offset) => Vector256.Create(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref a, offset))).AsByte();

    /// <summary>Whether tiles prefetch the next row block's packed weights; a switch for A/B comparisons.</summary>
    internal static bool PrefetchA = true;

    /// <summary>Whether one-vector tiles of four rows run three accumulator sets (see <see cref="Dots"/>); a switch for A/B comparisons.</summary>
    internal static bool SplitNarrow = true;

    /// <summary>
    /// The multiply-adds of a tile, in a method of their own: with the epilogue in the same method the JIT kept the
    /// twelve accumulators in memory across the loop (a store and a reload per vpdpbusd), halving the loop's speed.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Dots<TS, TV, TR>(ref byte ap, ref byte bp, int kq, ref int init, int last, out Acc acc)
        where TS : struct, ISign where TV : struct, IVectors where TR : struct, IRows
        => DotsInline<TS, TV, TR>(ref ap, ref bp, kq, ref init, last, out acc);

    /// <summary>
    /// Fewest quads for which a tile calls <see cref="Dots"/> rather than inlining the same loop: a short product (K
    /// below 32: MobileNetV2's expansions over 16 and 24 channels) pays more for the call and the accumulators' trip
    /// through memory than for the spills (measured 7% on the 16-channel layer alone, 3.5% on the model); settable for
    /// A/B comparisons.
    /// </summary>
    internal static int MinSeparateQuads = 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void DotsInline<TS, TV, TR>(ref byte ap, ref byte bp, int kq, ref int init, int last, out Acc acc)
        where TS : struct, ISign where TV : struct, IVectors where TR : struct, IRows
    {
        var c00 = Vector256.Create(init); var c01 = c00; var c02 = c00;
        var c10 = Vector256.Create(Unsafe.Add(ref init, Math.Min(1, last))); var c11 = c10; var c12 = c10;
        var c20 = Vector256.Create(Unsafe.Add(ref init, Math.Min(2, last))); var c21 = c20; var c22 = c20;
        var c30 = Vector256.Create(Unsafe.Add(ref init, Math.Min(3, last))); var c31 = c30; var c32 = c30;
        int aStep = TR.AStep;
        int bStep = TV.Count * 32;
        int q = 0;
        if (!TR.All)
        {
            // one row: four quads a step into four sets of accumulators, so the dependency chains are a quarter as
            // long (a matrix-vector product is otherwise bound by vpdpbusd's latency); int32 sums wrap, so the
            // order of addition does not change the result
            c10 = c11 = c12 = c20 = c21 = c22 = c30 = c31 = c32 = Vector256<int>.Zero;
            for (; q + 4 <= kq; q += 4)
            {
                var a = Broadcast(ref ap, 0);
                c00 = Dot<TS>(c00, Vector256.LoadUnsafe(ref bp), a);
                if (TV.Count > 1) c01 = Dot<TS>(c01, Vector256.LoadUnsafe(ref bp, 32), a);
                if (TV.Count > 2) c02 = Dot<TS>(c02, Vector256.LoadUnsafe(ref bp, 64), a);
                a = Broadcast(ref ap, aStep);
                c10 = Dot<TS>(c10, Vector256.LoadUnsafe(ref bp, (nuint)bStep), a);
                if (TV.Count > 1) c11 = Dot<TS>(c11, Vector256.LoadUnsafe(ref bp, (nuint)bStep + 32), a);
                if (TV.Count > 2) c12 = Dot<TS>(c12, Vector256.LoadUnsafe(ref bp, (nuint)bStep + 64), a);
                a = Broadcast(ref ap, 2 * aStep);
                c20 = Dot<TS>(c20, Vector256.LoadUnsafe(ref bp, (nuint)(2 * bStep)), a);
                if (TV.Count > 1) c21 = Dot<TS>(c21, Vector256.LoadUnsafe(ref bp, (nuint)(2 * bStep) + 32), a);
                if (TV.Count > 2) c22 = Dot<TS>(c22, Vector256.LoadUnsafe(ref bp, (nuint)(2 * bStep) + 64), a);
                a = Broadcast(ref ap, 3 * aStep);
                c30 = Dot<TS>(c30, Vector256.LoadUnsafe(ref bp, (nuint)(3 * bStep)), a);
                if (TV.Count > 1) c31 = Dot<TS>(c31, Vector256.LoadUnsafe(ref bp, (nuint)(3 * bStep) + 32), a);
                if (TV.Count > 2) c32 = Dot<TS>(c32, Vector256.LoadUnsafe(ref bp, (nuint)(3 * bStep) + 64), a);
                ap = ref Unsafe.Add(ref ap, 4 * aStep);
                bp = ref Unsafe.Add(ref bp, 4 * bStep);
            }
            c00 += c10 + c20 + c30;
            c01 += c11 + c21 + c31;
            c02 += c12 + c22 + c32;
        }
        // with all four rows of a packed block, the next block's weights (16·kq bytes on) are fetched ahead, a line
        // every four quads: they come from L3 on the first panel, where the hardware prefetcher lagged
        bool fetch = TR.All && PrefetchA;
        if (TR.All && TV.Count == 1 && SplitNarrow)
        {
            // one 8-column vector a row (a panel's ragged end, e.g. the 49th column of a 7 x 7 plane): four chains
            // alone would wait on vpdpbusd's latency, so three quads a step go into three sets of accumulators (the
            // registers of the columns this tile does not have), summed at the end; int32 sums wrap, so the order of
            // addition does not change the result
            c01 = c02 = c11 = c12 = c21 = c22 = c31 = c32 = Vector256<int>.Zero;
            for (; q + 3 <= kq; q += 3)
            {
                if (fetch) Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref ap, 16 * kq)));
                var b0 = Vector256.LoadUnsafe(ref bp);
                var b1 = Vector256.LoadUnsafe(ref bp, (nuint)bStep);
                var b2 = Vector256.LoadUnsafe(ref bp, (nuint)(2 * bStep));
                c00 = Dot<TS>(c00, b0, Broadcast(ref ap, 0));
                c10 = Dot<TS>(c10, b0, Broadcast(ref ap, 4));
                c20 = Dot<TS>(c20, b0, Broadcast(ref ap, 8));
                c30 = Dot<TS>(c30, b0, Broadcast(ref ap, 12));
                c01 = Dot<TS>(c01, b1, Broadcast(ref ap, aStep));
                c11 = Dot<TS>(c11, b1, Broadcast(ref ap, aStep + 4));
                c21 = Dot<TS>(c21, b1, Broadcast(ref ap, aStep + 8));
                c31 = Dot<TS>(c31, b1, Broadcast(ref ap, aStep + 12));
                c02 = Dot<TS>(c02, b2, Broadcast(ref ap, 2 * aStep));
                c12 = Dot<TS>(c12, b2, Broadcast(ref ap, 2 * aStep + 4));
                c22 = Dot<TS>(c22, b2, Broadcast(ref ap, 2 * aStep + 8));
                c32 = Dot<TS>(c32, b2, Broadcast(ref ap, 2 * aStep + 12));
                ap = ref Unsafe.Add(ref ap, 3 * aStep);
                bp = ref Unsafe.Add(ref bp, 3 * bStep);
            }
            c00 += c01 + c02; c10 += c11 + c12; c20 += c21 + c22; c30 += c31 + c32;
        }
        for (; q < kq; q++)
        {
            if (fetch && (q & 3) == 0) Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref ap, 16 * kq)));
            var b0 = Vector256.LoadUnsafe(ref bp);
            var b1 = TV.Count > 1 ? Vector256.LoadUnsafe(ref bp, 32) : default;
            var b2 = TV.Count > 2 ? Vector256.LoadUnsafe(ref bp, 64) : default;
            var a = Broadcast(ref ap, 0);
            c00 = Dot<TS>(c00, b0, a); if (TV.Count > 1) c01 = Dot<TS>(c01, b1, a); if (TV.Count > 2) c02 = Dot<TS>(c02, b2, a);
            if (TR.All)
            {
                a = Broadcast(ref ap, 4);
                c10 = Dot<TS>(c10, b0, a); if (TV.Count > 1) c11 = Dot<TS>(c11, b1, a); if (TV.Count > 2) c12 = Dot<TS>(c12, b2, a);
                a = Broadcast(ref ap, 8);
                c20 = Dot<TS>(c20, b0, a); if (TV.Count > 1) c21 = Dot<TS>(c21, b1, a); if (TV.Count > 2) c22 = Dot<TS>(c22, b2, a);
                a = Broadcast(ref ap, 12);
                c30 = Dot<TS>(c30, b0, a); if (TV.Count > 1) c31 = Dot<TS>(c31, b1, a); if (TV.Count > 2) c32 = Dot<TS>(c32, b2, a);
            }
            ap = ref Unsafe.Add(ref ap, aStep);
            bp = ref Unsafe.Add(ref bp, bStep);
        }
        acc.C00 = c00; acc.C01 = c01; acc.C02 = c02;
        acc.C10 = c10; acc.C11 = c11; acc.C12 = c12;
        acc.C20 = c20; acc.C21 = c21; acc.C22 = c22;
        acc.C30 = c30; acc.C31 = c31; acc.C32 = c32;
    }

    /// <summary>The twelve accumulators of a 4 × 24 tile (rows 0-3, column vectors 0-2).</summary>
    private struct Acc
    {
        public Vector256<int> C00, C01, C02, C10, C11, C12, C20, C21, C22, C30, C31, C32;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TS, TC, TV, TR>(ref byte ap, ref byte bp, int kq, int i0, int rows, int j0, int cols, in Epilogue e)
        where TS : struct, ISign where TC : struct, IClamp where TV : struct, IVectors where TR : struct, IRows
    {
        ref int init = ref Unsafe.Add(ref MemoryMarshal.GetReference(e.RowInit), i0);
        int last = e.RowInit.Length - 1 - i0; // rows past m start from any value: they are never stored
        Acc acc;
        if (kq >= MinSeparateQuads) Dots<TS, TV, TR>(ref ap, ref bp, kq, ref init, last, out acc);
        else DotsInline<TS, TV, TR>(ref ap, ref bp, kq, ref init, last, out acc);
        var (c00, c01, c02) = (acc.C00, acc.C01, acc.C02);
        var (c10, c11, c12) = (acc.C10, acc.C11, acc.C12);
        var (c20, c21, c22) = (acc.C20, acc.C21, acc.C22);
        var (c30, c31, c32) = (acc.C30, acc.C31, acc.C32);
        // the epilogue's parameters, read once per tile (through `e` every access would be a reload)
        int ldy = e.Ldy;
        ref byte y = ref Unsafe.Add(ref MemoryMarshal.GetReference(e.Y), i0 * ldy + j0);
        ref float mult = ref Unsafe.Add(ref MemoryMarshal.GetReference(e.RowMult), i0);
        var zp = Vector128.Create(ZeroTerm<TC>(e.YZero));
        bool signed = e.Signed, hasZa = e.RowZa.Length > 0;
        if (TR.All && TV.Count == 3 && rows == MR && cols == NR && !hasZa && Pack24 && FullTileStore)
        {
            // the common tile, 4 full rows of 24: no per-row tests, the zero-point vector built once
            var z = Vector256.Create(ZeroTerm<TC>(e.YZero));
            if (signed)
            {
                Emit24<TC>(c00, c01, c02, mult, z, true, ref y);
                Emit24<TC>(c10, c11, c12, Unsafe.Add(ref mult, 1), z, true, ref Unsafe.Add(ref y, ldy));
                Emit24<TC>(c20, c21, c22, Unsafe.Add(ref mult, 2), z, true, ref Unsafe.Add(ref y, 2 * ldy));
                Emit24<TC>(c30, c31, c32, Unsafe.Add(ref mult, 3), z, true, ref Unsafe.Add(ref y, 3 * ldy));
            }
            else
            {
                Emit24<TC>(c00, c01, c02, mult, z, false, ref y);
                Emit24<TC>(c10, c11, c12, Unsafe.Add(ref mult, 1), z, false, ref Unsafe.Add(ref y, ldy));
                Emit24<TC>(c20, c21, c22, Unsafe.Add(ref mult, 2), z, false, ref Unsafe.Add(ref y, 2 * ldy));
                Emit24<TC>(c30, c31, c32, Unsafe.Add(ref mult, 3), z, false, ref Unsafe.Add(ref y, 3 * ldy));
            }
            return;
        }
        ref int za = ref hasZa ? ref Unsafe.Add(ref MemoryMarshal.GetReference(e.RowZa), i0) : ref Unsafe.NullRef<int>();
        ref int adj = ref hasZa ? ref Unsafe.Add(ref MemoryMarshal.GetReference(e.ColAdj), j0) : ref Unsafe.NullRef<int>();
        StoreRow<TC, TV>(c00, c01, c02, mult, ref y, cols, zp, signed, hasZa ? za : 0, ref adj);
        if (!TR.All) return;
        if (rows > 1) StoreRow<TC, TV>(c10, c11, c12, Unsafe.Add(ref mult, 1), ref Unsafe.Add(ref y, ldy), cols, zp, signed, hasZa ? Unsafe.Add(ref za, 1) : 0, ref adj);
        if (rows > 2) StoreRow<TC, TV>(c20, c21, c22, Unsafe.Add(ref mult, 2), ref Unsafe.Add(ref y, 2 * ldy), cols, zp, signed, hasZa ? Unsafe.Add(ref za, 2) : 0, ref adj);
        if (rows > 3) StoreRow<TC, TV>(c30, c31, c32, Unsafe.Add(ref mult, 3), ref Unsafe.Add(ref y, 3 * ldy), cols, zp, signed, hasZa ? Unsafe.Add(ref za, 3) : 0, ref adj);
    }

    /// <summary>Requantizes one row of a tile into y (za ≠ 0: minus za·(Σ_k B − K·zb) per column first, from adj).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow<TC, TV>(Vector256<int> v0, Vector256<int> v1, Vector256<int> v2, float mult, ref byte y, int cols,
        Vector128<int> zp, bool signed, int za, ref int adj)
        where TC : struct, IClamp where TV : struct, IVectors
    {
        if (za != 0)
        {
            var z = Vector256.Create(za);
            v0 -= z * Vector256.LoadUnsafe(ref adj);
            if (TV.Count > 1) v1 -= z * Vector256.LoadUnsafe(ref adj, 8);
            if (TV.Count > 2) v2 -= z * Vector256.LoadUnsafe(ref adj, 16);
        }
        // ymm only: on Intel cores 512-bit instructions among the vpdpbusd close port 1's vector unit and halve their throughput
        if (TV.Count == 3 && cols >= 24 && Pack24)
        {
            Emit24<TC>(v0, v1, v2, mult, Vector256.Create(zp, zp), signed, ref y);
            return;
        }
        Emit8<TC>(v0, mult, zp, signed, ref y, cols);
        if (TV.Count > 1) Emit8<TC>(v1, mult, zp, signed, ref Unsafe.Add(ref y, 8), cols - 8);
        if (TV.Count > 2) Emit8<TC>(v2, mult, zp, signed, ref Unsafe.Add(ref y, 16), cols - 16);
    }

    /// <summary>Clamp for scaled sums that might leave int32 (<see cref="Clamped"/>'s case): any such value saturates.</summary>
    private const float Clamp = 1 << 30;

    /// <summary>Writes the first <paramref name="valid"/> (below 8) bytes of <paramref name="bytes"/>, in pieces of 4, 2 and 1, never past dst + valid.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteTail(ulong bytes, ref byte dst, int valid)
    {
        int o = 0;
        if ((valid & 4) != 0) { Unsafe.WriteUnaligned(ref dst, (uint)bytes); bytes >>= 32; o = 4; }
        if ((valid & 2) != 0) { Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, o), (ushort)bytes); bytes >>= 16; o += 2; }
        if ((valid & 1) != 0) Unsafe.Add(ref dst, o) = (byte)bytes;
    }

    /// <summary>Whether a tile of four full 24-column rows stores through its own branch-free copy of the epilogue; a switch for A/B comparisons.</summary>
    internal static bool FullTileStore = true;

    /// <summary>Whether full 24-column rows are requantized through <see cref="Emit24{TC}"/>; a switch for tests and A/B comparisons.</summary>
    internal static bool Pack24 = true;

    /// <summary>
    /// The 24 sums of a full tile row requantized as <see cref="Emit8{TC}"/> does, but narrowed together: two saturating
    /// packs (int32 → int16 → uint8/int8, the same saturation as clamping to the output type), one dword permute to undo
    /// the packs' lane interleaving and two stores, instead of a narrowing move, a move to a general register and a store
    /// per 8 (the epilogue is most of the work when K is small, e.g. MobileNetV2's expansions over 16 channels).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Emit24<TC>(Vector256<int> v0, Vector256<int> v1, Vector256<int> v2, float mult, Vector256<int> z, bool signed, ref byte dst)
        where TC : struct, IClamp
    {
        var m = Vector256.Create(mult);
        var r0 = Requantized<TC>(v0, m, z);
        var r1 = Requantized<TC>(v1, m, z);
        var r2 = Requantized<TC>(v2, m, z);
        var w01 = Avx2.PackSignedSaturate(r0, r1); // words: r0[0-3] r1[0-3] | r0[4-7] r1[4-7]
        var w22 = Avx2.PackSignedSaturate(r2, r2); // words: r2[0-3] r2[0-3] | r2[4-7] r2[4-7]
        var b = signed ? Avx2.PackSignedSaturate(w01, w22).AsInt32() : Avx2.PackUnsignedSaturate(w01, w22).AsInt32();
        // dwords of 4 bytes: r0[0-3] r1[0-3] r2[0-3] r2[0-3] | r0[4-7] r1[4-7] r2[4-7] r2[4-7]
        var o = Avx2.PermuteVar8x32(b, Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).AsByte();
        o.GetLower().StoreUnsafe(ref dst);
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, 16), o.GetUpper().AsUInt64().ToScalar());
    }

    /// <summary>round(acc · mult) + zero point in int32 (the scaled sum clamped to ±2³⁰ first when it could leave int32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Requantized<TC>(Vector256<int> acc, Vector256<float> mult, Vector256<int> zp) where TC : struct, IClamp
    {
        var f = Avx.Multiply(Avx.ConvertToVector256Single(acc), mult);
        if (TC.AddsMagic) return Avx.Add(f, Vector256.Create(QuantMath.Magic)).AsInt32() + zp; // zp holds yZero − MagicBits
        if (TC.Clamps) f = Avx.Min(Avx.Max(f, Vector256.Create(-Clamp)), Vector256.Create(Clamp));
        return Avx.ConvertToVector256Int32(f) + zp;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Emit8<TC>(Vector256<int> acc, float mult, Vector128<int> zp4, bool signed, ref byte dst, int valid) where TC : struct, IClamp
    {
        var r = Requantized<TC>(acc, Vector256.Create(mult), Vector256.Create(zp4, zp4));
        ulong bytes = signed ? Avx512F.VL.ConvertToVector128SByteWithSaturation(r).AsUInt64().ToScalar()
                             : Avx512F.VL.ConvertToVector128ByteWithSaturation(Avx2.Max(r, Vector256<int>.Zero).AsUInt32()).AsUInt64().ToScalar();
        if (valid >= 8) Unsafe.WriteUnaligned(ref dst, bytes);
        else WriteTail(bytes, ref dst, valid);
    }
}
