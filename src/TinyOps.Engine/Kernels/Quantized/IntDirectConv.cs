using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// 2-D QLinearConv with stride 1 and dilation 1, uint8 input, int8 weights with zero points 0, on machines with
/// AVX-512 (the wide path; without AVX-VNNI only for weights the emulated dot product serves exactly, checked by the
/// caller with <see cref="ByteDot.PairsFit(ReadOnlySpan{byte})"/> on the packed weights): no im2col matrix, no packed B
/// and no compaction afterwards.
/// <para>
/// The input is copied once per image into "quad planes" whose cells are the four bytes vpdpbusd multiplies per int32
/// lane, in rows of <see cref="Pitch"/> cells (a multiple of 8, at least the padded width OW + kw − 1) over the
/// padded height OH + kh − 1; padding holds the input zero point. With output position p = oy·Pitch + ox, tap quad q
/// reads the cell at <c>offset[q] + p</c>, so eight consecutive positions are 32 contiguous bytes, loaded straight into
/// a register. Two cell layouts:
/// </para>
/// <list type="bullet">
/// <item>channel quads (C a multiple of 4): plane cq, cell = channels 4cq..4cq+3 at one pixel; quad (cq, ky, kx) at
/// offset cq·PlaneCells + ky·Pitch + kx; every multiply does useful work.</item>
/// <item>column quads (kw ≤ 4, any C): plane c, cell = the padded pixels x..x+3 of one row; quad (c, ky) at
/// offset c·PlaneCells + ky·Pitch, the weights of kx ≥ kw are 0 (3×3: 3 of 4 multiplies do useful work).</item>
/// </list>
/// <para>
/// Register tile as <see cref="WideIntGemm"/>: 4 output channels × 24 positions (3 ymm); accumulators start at
/// bias − x_zero·Σw, which makes the zero point free; requantization is <see cref="WideIntGemm.Emit8{TC}"/>, each
/// 8-position vector written straight to its output row (the vector lies in one row because the pitch is a multiple
/// of 8; positions ox ≥ OW are dropped). Bit-identical to the reference.
/// </para>
/// <para>
/// <see cref="RunPooled"/> also applies a 2 × 2, stride 2 MaxPool (floor mode) before requantizing: a tile is two
/// channels × two output rows × 16 columns (8 accumulators), the row pairs and then the column pairs are reduced with
/// integer maxima, and only the pooled sums are requantized. Requantization is monotonic for a positive multiplier
/// (the caller checks), so this is bit-identical to pooling the requantized bytes.
/// </para>
/// </summary>
internal static class IntDirectConv
{
    public const int MR = 4;
    private const int NR = 24;

    /// <summary>True for the geometries and types this kernel serves (the weight zero points are checked by the caller).</summary>
    public static bool Supports(ConvGeometry g, bool xSigned, bool wSigned) =>
        WideIntGemm.HardwareSupported && !xSigned && wSigned && g.SpatialRank == 2 && g.Group == 1 && !g.IsPointwise
        && g.Strides[0] == 1 && g.Strides[1] == 1 && g.Dilations[0] == 1 && g.Dilations[1] == 1
        && (g.InChannels % 4 == 0 || g.KDims[1] <= 4);

    private static bool ChannelQuads(ConvGeometry g) => g.InChannels % 4 == 0;

    /// <summary>Cells per plane row: OW + kw − 1 rounded up to a multiple of 16 (the pooled tiles take 16 columns at a time).</summary>
    public static int Pitch(ConvGeometry g) => (g.OutDims[1] + g.KDims[1] - 1 + 15) & ~15;

    private static int PaddedRows(ConvGeometry g) => g.OutDims[0] + g.KDims[0] - 1;

    /// <summary>Cells of one plane: the padded rows, one row of slack for the last taps' reads and 16 cells for the copy's overshoot.</summary>
    private static int PlaneCells(ConvGeometry g) => (PaddedRows(g) + 1) * Pitch(g) + 16;

    private static int Planes(ConvGeometry g) => ChannelQuads(g) ? g.InChannels / 4 : g.InChannels;

    /// <summary>Quads of k (the depth of the product in units of four bytes).</summary>
    public static int Quads(ConvGeometry g) => ChannelQuads(g) ? g.InChannels / 4 * g.KernelSize : g.InChannels * g.KDims[0];

    /// <summary>Scratch bytes of the quad planes of one image.</summary>
    public static int PlanesBytes(ConvGeometry g) => Planes(g) * PlaneCells(g) * 4;

    /// <summary>Bytes of the packed weights: [block of 4 output channels][quad][channel][4 bytes].</summary>
    public static int PackedBytes(ConvGeometry g) => (g.OutChannels + MR - 1) / MR * MR * Quads(g) * 4;

    /// <summary>
    /// Packs int8 weights [M, C, kh, kw] in the quad order of <see cref="Offsets"/>; <paramref name="rowSums"/>[m]
    /// receives Σ w[m].
    /// </summary>
    public static void PackWeights(ConvGeometry g, ReadOnlySpan<byte> w, Span<byte> packed, Span<int> rowSums)
    {
        int m0 = g.OutChannels, c0 = g.InChannels, kh = g.KDims[0], kw = g.KDims[1], kq = Quads(g);
        int ks = kh * kw, perChannel = c0 * ks;
        bool channels = ChannelQuads(g);
        packed.Slice(0, PackedBytes(g)).Clear();
        for (int m = 0; m < m0; m++)
        {
            int block = m / MR, r = m % MR, sum = 0;
            for (int q = 0; q < kq; q++)
            {
                int dst = ((block * kq + q) * MR + r) * 4;
                for (int j = 0; j < 4; j++)
                {
                    int src;
                    if (channels)
                    {
                        int cq = q / ks, tap = q % ks;
                        src = m * perChannel + (cq * 4 + j) * ks + tap;
                    }
                    else
                    {
                        if (j >= kw) continue;
                        int c = q / kh, ky = q % kh;
                        src = m * perChannel + c * ks + ky * kw + j;
                    }
                    packed[dst + j] = w[src];
                    sum += (sbyte)w[src];
                }
            }
            rowSums[m] = sum;
        }
    }

    /// <summary>The cell offset of each quad in the planes (see the class summary).</summary>
    public static void Offsets(ConvGeometry g, Span<int> offsets)
    {
        int kh = g.KDims[0], kw = g.KDims[1], pitch = Pitch(g), cells = PlaneCells(g);
        if (ChannelQuads(g))
        {
            int q = 0;
            for (int cq = 0; cq < g.InChannels / 4; cq++)
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++)
                        offsets[q++] = cq * cells + ky * pitch + kx;
        }
        else
        {
            for (int c = 0; c < g.InChannels; c++)
                for (int ky = 0; ky < kh; ky++)
                    offsets[c * kh + ky] = c * cells + ky * pitch;
        }
    }

    /// <summary>Copies one image x [C, H, W] into its quad planes (<see cref="PlanesBytes"/> bytes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BuildPlanes(ConvGeometry g, ReadOnlySpan<byte> x, byte xZero, Span<byte> planes)
    {
        int h = g.InDims[0], w = g.InDims[1], pt = g.PadBegin[0], pl = g.PadBegin[1];
        int pitch = Pitch(g), cells = PlaneCells(g), plane = h * w;
        uint zq = xZero * 0x01010101u;
        var all = MemoryMarshal.Cast<byte, uint>(planes);
        ref byte x0 = ref MemoryMarshal.GetReference(x);
        if (ChannelQuads(g))
        {
            for (int cq = 0; cq < g.InChannels / 4; cq++)
            {
                var cellsOf = all.Slice(cq * cells, cells);
                ref byte d0 = ref Unsafe.As<uint, byte>(ref MemoryMarshal.GetReference(cellsOf));
                // cells are written in order; a row's copy may overshoot into later cells, which are written after it
                cellsOf.Slice(0, pt * pitch + pl).Fill(zq);
                for (int iy = 0; iy < h; iy++)
                {
                    int start = (pt + iy) * pitch + pl;
                    int s0 = (cq * 4 * h + iy) * w;
                    int ix = 0;
                    for (; ix < w && s0 + 3 * plane + ix + 16 <= x.Length; ix += 16)
                    {
                        int s = s0 + ix;
                        WideIntGemm.Interleave(Vector128.LoadUnsafe(ref x0, (nuint)s), Vector128.LoadUnsafe(ref x0, (nuint)(s + plane)),
                            Vector128.LoadUnsafe(ref x0, (nuint)(s + 2 * plane)), Vector128.LoadUnsafe(ref x0, (nuint)(s + 3 * plane)),
                            ref Unsafe.Add(ref d0, (start + ix) * 4));
                    }
                    for (; ix < w; ix++)
                    {
                        int s = s0 + ix;
                        cellsOf[start + ix] = x[s] | (uint)x[s + plane] << 8 | (uint)x[s + 2 * plane] << 16 | (uint)x[s + 3 * plane] << 24;
                    }
                    // right padding of this row and left padding of the next
                    cellsOf.Slice(start + w, pitch - w).Fill(zq);
                }
                cellsOf.Slice((pt + h) * pitch + pl).Fill(zq);
            }
            return;
        }
        // column quads: each data row through a padded copy, cell s = (row[s], row[s+1], row[s+2], row[s+3])
        Span<byte> row = stackalloc byte[pitch + 3 + 16];
        ref byte r0 = ref MemoryMarshal.GetReference(row);
        row.Fill(xZero);
        for (int c = 0; c < g.InChannels; c++)
        {
            var cellsOf = all.Slice(c * cells, cells);
            ref byte d0 = ref Unsafe.As<uint, byte>(ref MemoryMarshal.GetReference(cellsOf));
            cellsOf.Slice(0, pt * pitch).Fill(zq);
            for (int iy = 0; iy < h; iy++)
            {
                x.Slice((c * h + iy) * w, w).CopyTo(row.Slice(pl));
                int start = (pt + iy) * pitch;
                for (int s = 0; s < pitch; s += 16)
                    WideIntGemm.Interleave(Vector128.LoadUnsafe(ref r0, (nuint)s), Vector128.LoadUnsafe(ref r0, (nuint)(s + 1)),
                        Vector128.LoadUnsafe(ref r0, (nuint)(s + 2)), Vector128.LoadUnsafe(ref r0, (nuint)(s + 3)),
                        ref Unsafe.Add(ref d0, (start + s) * 4));
            }
            cellsOf.Slice((pt + h) * pitch).Fill(zq);
        }
    }

    /// <summary>
    /// How far the scaled sums of these weights' accumulator starts and multipliers reach, which decides how they are
    /// rounded (<see cref="WideIntGemm.ScaledSumsRange"/>): fixed with the constants, so computed once when they are
    /// prepared and passed to <see cref="Run"/> and <see cref="RunPooled"/>.
    /// </summary>
    public static WideIntGemm.SumRange Range(ConvGeometry g, ReadOnlySpan<int> rowInit, ReadOnlySpan<float> mult) =>
        WideIntGemm.ScaledSumsRange(Quads(g), rowInit, mult, false);

    /// <summary>
    /// Multiplies and requantizes one image: y [M, OH, OW] from the planes, the packed weights, the accumulator
    /// starts (bias − x_zero·Σw) and the multipliers; all multipliers are finite (checked by the caller).
    /// <paramref name="range"/>: <see cref="Range"/> of these constants.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(ConvGeometry g, ReadOnlySpan<byte> planes, ReadOnlySpan<int> offsets, ReadOnlySpan<byte> packed,
        ReadOnlySpan<int> rowInit, ReadOnlySpan<float> mult, WideIntGemm.SumRange range, int yZero, bool ySigned, Span<byte> y)
    {
        if (range == WideIntGemm.SumRange.Magic) Run<WideIntGemm.Magic>(g, planes, offsets, packed, rowInit, mult, yZero, ySigned, y);
        else if (range == WideIntGemm.SumRange.InRange) Run<WideIntGemm.InRange>(g, planes, offsets, packed, rowInit, mult, yZero, ySigned, y);
        else Run<WideIntGemm.Clamped>(g, planes, offsets, packed, rowInit, mult, yZero, ySigned, y);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run<TC>(ConvGeometry g, ReadOnlySpan<byte> planes, ReadOnlySpan<int> offsets, ReadOnlySpan<byte> packed,
        ReadOnlySpan<int> rowInit, ReadOnlySpan<float> mult, int yZero, bool ySigned, Span<byte> y) where TC : struct, WideIntGemm.IClamp
    {
        var o = new Output(y, Pitch(g), g.OutDims[1], g.OutDims[0] * g.OutDims[1], yZero, ySigned);
        int kq = Quads(g), m0 = g.OutChannels, positions = g.OutDims[0] * o.Pitch;
        int blocks = (m0 + MR - 1) / MR;
        ref byte a0 = ref MemoryMarshal.GetReference(packed);
        ref byte p0 = ref MemoryMarshal.GetReference(planes);
        ref int off = ref MemoryMarshal.GetReference(offsets);
        ref int init = ref MemoryMarshal.GetReference(rowInit);
        ref float mu = ref MemoryMarshal.GetReference(mult);
        int pitch = o.Pitch, width = o.Width;
        // the output row and column of position p, stepped along with p (no division per tile)
        int oy = 0, ox = 0;
        for (int p = 0; p < positions; p += NR)
        {
            int cols = Math.Min(NR, positions - p);
            // where each 8-position vector goes: its output row and first column (pitch is a multiple of 8, so a vector never straddles rows)
            int oy1 = oy, ox1 = ox + 8;
            if (ox1 >= pitch) { ox1 -= pitch; oy1++; }
            int oy2 = oy1, ox2 = ox1 + 8;
            if (ox2 >= pitch) { ox2 -= pitch; oy2++; }
            var d = new Dest(oy * width + ox, oy1 * width + ox1, oy2 * width + ox2, width - ox, width - ox1, width - ox2);
            for (int bl = 0; bl < blocks; bl++)
            {
                int i0 = bl * MR, rows = Math.Min(MR, m0 - i0);
                ref byte a = ref Unsafe.Add(ref a0, i0 * kq * 4);
                if (cols > 16) Tile<TC, V3>(ref a, ref p0, ref off, kq, p, ref Unsafe.Add(ref init, i0), ref Unsafe.Add(ref mu, i0), i0, rows, o, d);
                else if (cols > 8) Tile<TC, V2>(ref a, ref p0, ref off, kq, p, ref Unsafe.Add(ref init, i0), ref Unsafe.Add(ref mu, i0), i0, rows, o, d);
                else Tile<TC, V1>(ref a, ref p0, ref off, kq, p, ref Unsafe.Add(ref init, i0), ref Unsafe.Add(ref mu, i0), i0, rows, o, d);
            }
            oy = oy2; ox = ox2 + 8;
            if (ox >= pitch) { ox -= pitch; oy++; }
        }
    }

    /// <summary>
    /// As <see cref="Run"/>, then a 2 × 2 MaxPool with stride 2 (floor mode): y is [M, OH / 2, OW / 2]. Every
    /// multiplier is finite and above 0 (checked by the caller: requantization must be monotonic).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunPooled(ConvGeometry g, ReadOnlySpan<byte> planes, ReadOnlySpan<int> offsets, ReadOnlySpan<byte> packed,
        ReadOnlySpan<int> rowInit, ReadOnlySpan<float> mult, WideIntGemm.SumRange range, int yZero, bool ySigned, Span<byte> y, PairPlan? pairs = null)
    {
        LastRunPaired = pairs is not null && !ByteDot.Native && UsePairs;
        if (!LastRunPaired) pairs = null;
        if (range == WideIntGemm.SumRange.Magic) RunPooled<WideIntGemm.Magic>(g, planes, offsets, packed, pairs, rowInit, mult, yZero, ySigned, y);
        else if (range == WideIntGemm.SumRange.InRange) RunPooled<WideIntGemm.InRange>(g, planes, offsets, packed, pairs, rowInit, mult, yZero, ySigned, y);
        else RunPooled<WideIntGemm.Clamped>(g, planes, offsets, packed, pairs, rowInit, mult, yZero, ySigned, y);
    }

    /// <remarks>
    /// By a <see cref="PairPlan"/> (<paramref name="plan"/> not null) channel pairs are the outer loop, so that the
    /// tiles that follow each other have the same number of quad pairs (a trip count the branch predictor learns; with
    /// channel pairs innermost the loops' exits were mispredicted every tile and the pairs were slower than single quads).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunPooled<TC>(ConvGeometry g, ReadOnlySpan<byte> planes, ReadOnlySpan<int> offsets, ReadOnlySpan<byte> packed, PairPlan? plan,
        ReadOnlySpan<int> rowInit, ReadOnlySpan<float> mult, int yZero, bool ySigned, Span<byte> y) where TC : struct, WideIntGemm.IClamp
    {
        int kq = Quads(g), m0 = g.OutChannels, pitch = Pitch(g);
        int ph = g.OutDims[0] / 2, pw = g.OutDims[1] / 2, pooledPlane = ph * pw;
        if (ph == 0 || pw == 0) return;
        ref byte a0 = ref MemoryMarshal.GetReference(packed);
        ref byte p0 = ref MemoryMarshal.GetReference(planes);
        ref int off = ref MemoryMarshal.GetReference(offsets);
        ref byte y0 = ref MemoryMarshal.GetReference(y);
        var zp = Vector128.Create(WideIntGemm.ZeroTerm<TC>(yZero));
        if (plan is not null)
        {
            for (int m = 0; m < m0; m += 2)
            {
                bool two = m + 1 < m0;
                int init0 = rowInit[m], init1 = rowInit[two ? m + 1 : m];
                float mult0 = mult[m], mult1 = mult[two ? m + 1 : m];
                ref byte ya = ref Unsafe.Add(ref y0, m * pooledPlane);
                ref byte yb = ref Unsafe.Add(ref y0, (two ? m + 1 : m) * pooledPlane);
                for (int r = 0; r < ph; r++)
                    for (int x0 = 0; x0 < 2 * pw; x0 += 16)
                    {
                        int p = 2 * r * pitch + x0, valid = Math.Min(8, pw - x0 / 2);
                        int dst = r * pw + x0 / 2;
                        TilePooledPairs<TC>(plan, m / 2, ref p0, ref off, kq, p, pitch, init0, init1, mult0, mult1, zp, ySigned,
                            ref Unsafe.Add(ref ya, dst), ref Unsafe.Add(ref yb, dst), valid, two);
                    }
            }
            return;
        }
        for (int r = 0; r < ph; r++)
        {
            for (int x0 = 0; x0 < 2 * pw; x0 += 16)
            {
                int p = 2 * r * pitch + x0, valid = Math.Min(8, pw - x0 / 2);
                int dst = r * pw + x0 / 2;
                // channel pairs: rows (0, 1) and (2, 3) of each packed block of four
                for (int m = 0; m < m0; m += 2)
                {
                    ref byte a = ref Unsafe.Add(ref a0, (m / MR) * MR * kq * 4 + (m % MR) * 4);
                    bool two = m + 1 < m0;
                    TilePooled<TC>(ref a, ref p0, ref off, kq, p, pitch, Unsafe.Add(ref MemoryMarshal.GetReference(rowInit), m),
                        Unsafe.Add(ref MemoryMarshal.GetReference(rowInit), two ? m + 1 : m), Unsafe.Add(ref MemoryMarshal.GetReference(mult), m),
                        Unsafe.Add(ref MemoryMarshal.GetReference(mult), two ? m + 1 : m), zp, ySigned,
                        ref Unsafe.Add(ref y0, m * pooledPlane + dst), ref Unsafe.Add(ref y0, (two ? m + 1 : m) * pooledPlane + dst), valid, two);
                }
            }
        }
    }

    /// <summary>
    /// Two channels (packed rows at <paramref name="a"/> and 4 bytes on) × output rows (2r, 2r + 1) × 16 columns from
    /// position p: 8 accumulators, reduced to 8 pooled sums per channel and requantized.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TilePooled<TC>(ref byte a, ref byte planes, ref int off, int kq, int p, int pitch, int init0, int init1, float mult0, float mult1,
        Vector128<int> zp, bool signed, ref byte y0, ref byte y1, int valid, bool two) where TC : struct, WideIntGemm.IClamp
    {
        var c00 = Vector256.Create(init0); var c01 = c00; var c02 = c00; var c03 = c00;
        var c10 = Vector256.Create(init1); var c11 = c10; var c12 = c10; var c13 = c10;
        nint below = (nint)pitch * 4;
        for (int q = 0; q < kq; q++)
        {
            ref byte bq = ref Unsafe.Add(ref planes, (nint)(uint)(Unsafe.Add(ref off, q) + p) * 4);
            var b0 = Vector256.LoadUnsafe(ref bq);                     // row 2r, columns 0-7
            var b1 = Vector256.LoadUnsafe(ref bq, 32);                 // row 2r, columns 8-15
            var b2 = Vector256.LoadUnsafe(ref Unsafe.Add(ref bq, below));      // row 2r + 1
            var b3 = Vector256.LoadUnsafe(ref Unsafe.Add(ref bq, below + 32));
            var w = Broadcast(ref a, 0);
            c00 = Dot(c00, b0, w); c01 = Dot(c01, b1, w); c02 = Dot(c02, b2, w); c03 = Dot(c03, b3, w);
            w = Broadcast(ref a, 4);
            c10 = Dot(c10, b0, w); c11 = Dot(c11, b1, w); c12 = Dot(c12, b2, w); c13 = Dot(c13, b3, w);
            a = ref Unsafe.Add(ref a, MR * 4);
        }
        WideIntGemm.Emit8<TC>(Pool(c00, c01, c02, c03), mult0, zp, signed, ref y0, valid);
        if (two) WideIntGemm.Emit8<TC>(Pool(c10, c11, c12, c13), mult1, zp, signed, ref y1, valid);
    }

    /// <summary>
    /// Where the dot product is emulated (no AVX-VNNI, see <see cref="ByteDot"/>), for <see cref="RunPooled"/>: per
    /// channel pair, its quads reordered so that pairs of quads whose vpmaddubsw results can be added in int16 come
    /// first (for both channels and both halves of a quad, the four weights' magnitudes sum to at most 128, so the two
    /// int16 pair sums of a lane stay within 255·128); such a pair takes three multiplies instead of four.
    /// <see cref="A"/>: per channel pair, 8 bytes per position (the two channels' 4 bytes of its quad);
    /// <see cref="Order"/>: per channel pair, the original quad of each position (its plane offset); <see cref="Pairs"/>:
    /// how many pairs lead. Integer sums do not depend on the order, so the results are unchanged.
    /// </summary>
    internal sealed class PairPlan
    {
        public required byte[] A { get; init; }
        public required int[] Order { get; init; }
        public required int[] Pairs { get; init; }
    }

    /// <summary>Whether <see cref="RunPooled"/> takes a <see cref="PairPlan"/> it is given; a switch for tests and A/B comparisons.</summary>
    internal static bool UsePairs = true;

    /// <summary>Whether the last <see cref="RunPooled"/> on this thread ran by a <see cref="PairPlan"/> (tests).</summary>
    [ThreadStatic] internal static bool LastRunPaired;

    /// <summary>
    /// The <see cref="PairPlan"/> of weights packed by <see cref="PackWeights"/>, or null where the dot product is native
    /// or no pair fits. Quads are paired largest with smallest (by their largest |a| + |b|); a large one that does not
    /// fit the smallest one left stays single.
    /// </summary>
    public static PairPlan? PlanPairs(ConvGeometry g, byte[] packed)
    {
        if (ByteDot.Native) return null;
        int m0 = g.OutChannels, kq = Quads(g), cp = (m0 + 1) / 2;
        var a = new byte[cp * kq * 8];
        var order = new int[cp * kq];
        var pairs = new int[cp];
        var sorted = new int[kq];
        var size = new int[kq];
        var used = new bool[kq];
        var count = new int[130]; // a quad's largest |a| + |b| is at most 128 (256 for weights that fail anyway: clamped)
        int total = 0;
        for (int c = 0; c < cp; c++)
        {
            int m = 2 * c;
            // the quads sorted by their largest half (a counting sort: no generic sort to compile at load)
            Array.Clear(count);
            for (int q = 0; q < kq; q++)
            {
                size[q] = Math.Min(129, Math.Max(Math.Max(Half(packed, g, m, q, 0, 0), Half(packed, g, m, q, 0, 1)),
                                                 Math.Max(Half(packed, g, m, q, 1, 0), Half(packed, g, m, q, 1, 1))));
                count[size[q]]++;
            }
            for (int v = 1; v < count.Length; v++) count[v] += count[v - 1];
            for (int q = kq - 1; q >= 0; q--) sorted[--count[size[q]]] = q;
            Array.Clear(used);
            int pos = 0, lo = 0, hi = kq - 1;
            while (lo < hi)
            {
                int p = sorted[lo], q = sorted[hi];
                if (Half(packed, g, m, p, 0, 0) + Half(packed, g, m, q, 0, 0) <= 128 && Half(packed, g, m, p, 0, 1) + Half(packed, g, m, q, 0, 1) <= 128
                    && Half(packed, g, m, p, 1, 0) + Half(packed, g, m, q, 1, 0) <= 128 && Half(packed, g, m, p, 1, 1) + Half(packed, g, m, q, 1, 1) <= 128)
                {
                    order[c * kq + pos++] = p; order[c * kq + pos++] = q;
                    used[p] = used[q] = true;
                    lo++;
                }
                hi--;
            }
            pairs[c] = pos / 2;
            total += pairs[c];
            for (int q = 0; q < kq; q++)
                if (!used[q]) order[c * kq + pos++] = q;
            int block = m / MR, r = m % MR;
            for (int j = 0; j < kq; j++)
                for (int row = 0; row < 2 && m + row < m0; row++)
                    packed.AsSpan(((block * kq + order[c * kq + j]) * MR + r + row) * 4, 4).CopyTo(a.AsSpan((c * kq + j) * 8 + row * 4, 4));
        }
        return total == 0 ? null : new PairPlan { A = a, Order = order, Pairs = pairs };
    }

    /// <summary>|a| + |b| of half h of quad q of output channel m + row (0 past the last channel), in weights packed by <see cref="PackWeights"/>.</summary>
    private static int Half(byte[] packed, ConvGeometry g, int m, int q, int row, int h)
    {
        if (m + row >= g.OutChannels) return 0;
        int o = ((m / MR * Quads(g) + q) * MR + m % MR + row) * 4 + 2 * h;
        return Math.Abs((int)(sbyte)packed[o]) + Math.Abs((int)(sbyte)packed[o + 1]);
    }

    /// <summary>
    /// <see cref="TilePooled{TC}"/> by a <see cref="PairPlan"/> (channel pair <paramref name="cp"/>): its fitting quad
    /// pairs with one vpmaddwd per pair, then its other quads one at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TilePooledPairs<TC>(PairPlan plan, int cp, ref byte planes, ref int off, int kq, int p, int pitch, int init0, int init1,
        float mult0, float mult1, Vector128<int> zp, bool signed, ref byte y0, ref byte y1, int valid, bool two) where TC : struct, WideIntGemm.IClamp
    {
        var c00 = Vector256.Create(init0); var c01 = c00; var c02 = c00; var c03 = c00;
        var c10 = Vector256.Create(init1); var c11 = c10; var c12 = c10; var c13 = c10;
        nint below = (nint)pitch * 4;
        ref byte a = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(plan.A), cp * kq * 8);
        ref int ord = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(plan.Order), cp * kq);
        int np = plan.Pairs[cp];
        var one = Vector256<short>.One;
        for (int t = 0; t < np; t++)
        {
            ref byte bq = ref Unsafe.Add(ref planes, (nint)(uint)(Unsafe.Add(ref off, Unsafe.Add(ref ord, 2 * t)) + p) * 4);
            ref byte bs = ref Unsafe.Add(ref planes, (nint)(uint)(Unsafe.Add(ref off, Unsafe.Add(ref ord, 2 * t + 1)) + p) * 4);
            var b0 = Vector256.LoadUnsafe(ref bq); var b1 = Vector256.LoadUnsafe(ref bq, 32);
            var b2 = Vector256.LoadUnsafe(ref Unsafe.Add(ref bq, below)); var b3 = Vector256.LoadUnsafe(ref Unsafe.Add(ref bq, below + 32));
            var s0 = Vector256.LoadUnsafe(ref bs); var s1 = Vector256.LoadUnsafe(ref bs, 32);
            var s2 = Vector256.LoadUnsafe(ref Unsafe.Add(ref bs, below)); var s3 = Vector256.LoadUnsafe(ref Unsafe.Add(ref bs, below + 32));
            var w = Broadcast(ref a, 0).AsSByte(); var v = Broadcast(ref a, 8).AsSByte();
            c00 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b0, w) + Avx2.MultiplyAddAdjacent(s0, v), one);
            c01 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b1, w) + Avx2.MultiplyAddAdjacent(s1, v), one);
            c02 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b2, w) + Avx2.MultiplyAddAdjacent(s2, v), one);
            c03 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b3, w) + Avx2.MultiplyAddAdjacent(s3, v), one);
            w = Broadcast(ref a, 4).AsSByte(); v = Broadcast(ref a, 12).AsSByte();
            c10 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b0, w) + Avx2.MultiplyAddAdjacent(s0, v), one);
            c11 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b1, w) + Avx2.MultiplyAddAdjacent(s1, v), one);
            c12 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b2, w) + Avx2.MultiplyAddAdjacent(s2, v), one);
            c13 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b3, w) + Avx2.MultiplyAddAdjacent(s3, v), one);
            a = ref Unsafe.Add(ref a, 16);
        }
        for (int j = 2 * np; j < kq; j++)
        {
            ref byte bq = ref Unsafe.Add(ref planes, (nint)(uint)(Unsafe.Add(ref off, Unsafe.Add(ref ord, j)) + p) * 4);
            var b0 = Vector256.LoadUnsafe(ref bq); var b1 = Vector256.LoadUnsafe(ref bq, 32);
            var b2 = Vector256.LoadUnsafe(ref Unsafe.Add(ref bq, below)); var b3 = Vector256.LoadUnsafe(ref Unsafe.Add(ref bq, below + 32));
            var w = Broadcast(ref a, 0);
            c00 = Dot(c00, b0, w); c01 = Dot(c01, b1, w); c02 = Dot(c02, b2, w); c03 = Dot(c03, b3, w);
            w = Broadcast(ref a, 4);
            c10 = Dot(c10, b0, w); c11 = Dot(c11, b1, w); c12 = Dot(c12, b2, w); c13 = Dot(c13, b3, w);
            a = ref Unsafe.Add(ref a, 8);
        }
        WideIntGemm.Emit8<TC>(Pool(c00, c01, c02, c03), mult0, zp, signed, ref y0, valid);
        if (two) WideIntGemm.Emit8<TC>(Pool(c10, c11, c12, c13), mult1, zp, signed, ref y1, valid);
    }

    /// <summary>
    /// The 2 × 2 maxima of two rows of 16 sums (r0 = columns 0-7 and 8-15 of the upper row, r1 of the lower): lane j
    /// of the result is the maximum of columns 2j, 2j + 1 of both rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Pool(Vector256<int> r0a, Vector256<int> r0b, Vector256<int> r1a, Vector256<int> r1b)
    {
        var lo = Avx2.Max(r0a, r1a).AsSingle();   // columns 0-7
        var hi = Avx2.Max(r0b, r1b).AsSingle();   // columns 8-15
        // per 128-bit lane: even = columns 0, 2 of lo then 0, 2 of hi (8, 10); odd the columns after them
        var even = Avx.Shuffle(lo, hi, 0b10_00_10_00).AsInt32();
        var odd = Avx.Shuffle(lo, hi, 0b11_01_11_01).AsInt32();
        // pooled 0, 1, 4, 5 | 2, 3, 6, 7 → 0 .. 7
        return Avx2.Permute4x64(Avx2.Max(even, odd).AsInt64(), 0b11_01_10_00).AsInt32();
    }

    private readonly ref struct Output
    {
        public readonly Span<byte> Y;
        public readonly int Pitch, Width, Plane, YZero;
        public readonly bool Signed;
        public Output(Span<byte> y, int pitch, int width, int plane, int yZero, bool signed)
        {
            Y = y; Pitch = pitch; Width = width; Plane = plane; YZero = yZero; Signed = signed;
        }
    }

    private interface IVectors { static abstract int Count { get; } }
    private struct V1 : IVectors { public static int Count => 1; }
    private struct V2 : IVectors { public static int Count => 2; }
    private struct V3 : IVectors { public static int Count => 3; }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot(Vector256<int> acc, Vector256<byte> x, Vector256<byte> w) => ByteDot.Add(acc, x, w.AsSByte());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Broadcast(ref byte a, int offset) => Vector256.Create(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref a, offset))).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TC, TV>(ref byte ap, ref byte planes, ref int off, int kq, int p, ref int init, ref float mult, int i0, int rows, in Output o, in Dest d)
        where TC : struct, WideIntGemm.IClamp where TV : struct, IVectors
    {
        int last = rows - 1; // rows past M start from any value: they are never stored
        var c00 = Vector256.Create(init); var c01 = c00; var c02 = c00;
        var c10 = Vector256.Create(Unsafe.Add(ref init, Math.Min(1, last))); var c11 = c10; var c12 = c10;
        var c20 = Vector256.Create(Unsafe.Add(ref init, Math.Min(2, last))); var c21 = c20; var c22 = c20;
        var c30 = Vector256.Create(Unsafe.Add(ref init, Math.Min(3, last))); var c31 = c30; var c32 = c30;
        for (int q = 0; q < kq; q++)
        {
            ref byte bq = ref Unsafe.Add(ref planes, (nint)(uint)(Unsafe.Add(ref off, q) + p) * 4);
            var b0 = Vector256.LoadUnsafe(ref bq);
            var b1 = TV.Count > 1 ? Vector256.LoadUnsafe(ref bq, 32) : default;
            var b2 = TV.Count > 2 ? Vector256.LoadUnsafe(ref bq, 64) : default;
            var a = Broadcast(ref ap, 0);
            c00 = Dot(c00, b0, a); if (TV.Count > 1) c01 = Dot(c01, b1, a); if (TV.Count > 2) c02 = Dot(c02, b2, a);
            a = Broadcast(ref ap, 4);
            c10 = Dot(c10, b0, a); if (TV.Count > 1) c11 = Dot(c11, b1, a); if (TV.Count > 2) c12 = Dot(c12, b2, a);
            a = Broadcast(ref ap, 8);
            c20 = Dot(c20, b0, a); if (TV.Count > 1) c21 = Dot(c21, b1, a); if (TV.Count > 2) c22 = Dot(c22, b2, a);
            a = Broadcast(ref ap, 12);
            c30 = Dot(c30, b0, a); if (TV.Count > 1) c31 = Dot(c31, b1, a); if (TV.Count > 2) c32 = Dot(c32, b2, a);
            ap = ref Unsafe.Add(ref ap, MR * 4);
        }
        ref byte y = ref Unsafe.Add(ref MemoryMarshal.GetReference(o.Y), i0 * o.Plane);
        var zp = Vector128.Create(WideIntGemm.ZeroTerm<TC>(o.YZero));
        bool signed = o.Signed;
        int plane = o.Plane;
        StoreRow<TC, TV>(c00, c01, c02, mult, ref y, d, zp, signed);
        if (rows > 1) StoreRow<TC, TV>(c10, c11, c12, Unsafe.Add(ref mult, 1), ref Unsafe.Add(ref y, plane), d, zp, signed);
        if (rows > 2) StoreRow<TC, TV>(c20, c21, c22, Unsafe.Add(ref mult, 2), ref Unsafe.Add(ref y, 2 * plane), d, zp, signed);
        if (rows > 3) StoreRow<TC, TV>(c30, c31, c32, Unsafe.Add(ref mult, 3), ref Unsafe.Add(ref y, 3 * plane), d, zp, signed);
    }

    /// <summary>Output offsets (in one channel's plane) and valid counts of a tile's three vectors.</summary>
    private readonly record struct Dest(int D0, int D1, int D2, int V0, int V1, int V2);

    // ymm only: on Intel cores a single 512-bit instruction among the vpdpbusd closes port 1's vector unit for a while,
    // which halves their throughput (measured: one zmm broadcast per tile made the 8→16 3×3 layer 20% slower)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow<TC, TV>(Vector256<int> a0, Vector256<int> a1, Vector256<int> a2, float mult, ref byte y, in Dest d, Vector128<int> zp4, bool signed)
        where TC : struct, WideIntGemm.IClamp where TV : struct, IVectors
    {
        if (d.V0 > 0) WideIntGemm.Emit8<TC>(a0, mult, zp4, signed, ref Unsafe.Add(ref y, d.D0), d.V0);
        if (TV.Count > 1 && d.V1 > 0) WideIntGemm.Emit8<TC>(a1, mult, zp4, signed, ref Unsafe.Add(ref y, d.D1), d.V1);
        if (TV.Count > 2 && d.V2 > 0) WideIntGemm.Emit8<TC>(a2, mult, zp4, signed, ref Unsafe.Add(ref y, d.D2), d.V2);
    }
}
