using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// The AVX-512 route of <see cref="IntDepthwise3x3"/>: depthwise 3×3 QLinearConv with vpdpbusd (AVX-VNNI, four
/// unsigned-byte × signed-byte products summed into each int32 lane; emulated where AVX-VNNI is missing, for weights
/// that allow it, see <see cref="ByteDot"/>) straight on the activation bytes, then a single-precision requantization. One channel at a time:
/// <list type="number">
/// <item><b>Weights</b> (packed once, at planning when constant, see <see cref="Pack"/>): each kernel row becomes one
/// dword of signed bytes (w0 − zw, w1 − zw, w2 − zw, 0). A channel with some w − zw outside [−128, 127] (uint8 or
/// asymmetric weights) gets a second set of dwords with the remainders and twice the vpdpbusd; only w − zw = 255
/// (w = 255 with zero point 0, or 127 with −128) cannot be split, and then <see cref="IntDepthwise3x3"/> keeps its
/// int16 route (as it does without the instruction sets).</item>
/// <item><b>Zero points</b>: int8 activations are flipped to uint8 (x ^ 0x80, zero point + 128). With the padding
/// filled with the input zero point, Σ(x − zx)(w − zw) = Σ x·(w − zw) − zx·Σ(w − zw) over all nine taps, so the
/// second term is folded into the channel's bias and the products use raw bytes.</item>
/// <item><b>Padded planes</b>: the channel is copied into a plane of bytes padded with the zero point (each padded
/// row is written whole by masked loads merged into a vector of zero points). Stride 1: rows of Wq = OW + 2 bytes.
/// Stride 2: even and odd padded rows go to two planes with rows of 2·Wq bytes, Wq = OW + 1 (columns stay
/// together). Two planes alternate, so a channel is copied while the one before it is filtered.</item>
/// <item><b>Flat filter</b>: output (oh, ow) is flat index f = oh·Wq + ow (the Wq − OW spare outputs per row are
/// computed and dropped), and kernel row kh of it is the dword at one fixed byte offset: stride 1 f + kh·Wq, stride 2
/// 2f in the even plane (kh 0), the odd plane (kh 1) or 2f + 2·Wq in the even plane (kh 2). A 32-byte load at byte
/// offset q is therefore eight outputs (f = q, q + 4, ... for stride 1; q/2, q/2 + 2, ... for stride 2): a step of 32
/// consecutive outputs takes four loads per kernel row (offsets f0 .. f0 + 3 for stride 1; 2f0, 2f0 + 2, 2f0 + 32,
/// 2f0 + 34 for stride 2), three vpdpbusd per eight outputs and no byte shuffles. Small planes (7×7, 14×14) stay on
/// full vectors.</item>
/// <item><b>Requantization</b>: (sum + bias) to float, ·multiplier, rounded half to even, + y zero point, as
/// <see cref="QuantMath.Requantize"/>, and narrowed with saturating packs. The rounding is the addition of 1.5·2²³
/// (<see cref="MagicRound"/>) when a channel's scaled sums stay below 2²¹, which leaves ports 0 and 1 to vpdpbusd
/// (int8 MobileNetV2 about 2% faster than with vcvtps2dq), else the conversion (the scaled sums clamped to ±2³⁰ first
/// when they could leave the int32 range).</item>
/// <item><b>Output</b>: one byte permute per step both undoes the interleaving of the packs and drops the spare
/// columns; its index vector and the step's position in y come from a table that depends only on the geometry
/// (built at planning with the weights), so rows go straight to y.</item>
/// </list>
/// All integer sums are exact (|Σ x·w| ≤ 9·255·255) and the bias is added with int32 wrapping like the reference, so
/// the results are bit-identical to <see cref="IntDepthwise3x3.Reference"/>.
/// </summary>
internal static unsafe partial class IntDepthwiseVnni
{
    /// <summary>True when this machine has the instruction sets of this route.</summary>
    public static bool IsSupported =>
        ByteDot.WideHardware && Avx512Vbmi.VL.IsSupported;

    /// <summary>Outputs per step.</summary>
    private const int Step = 32;

    /// <summary>Bytes after each plane that vector loads may reach.</summary>
    private const int Slack = 128;

    private static int Wq(ConvGeometry g) => g.Strides[0] == 1 ? g.OutDims[1] + 2 : g.OutDims[1] + 1;

    /// <summary>Steps per channel: OH·Wq flat outputs in steps of 32.</summary>
    private static int Steps(ConvGeometry g) => (g.OutDims[0] * Wq(g) + Step - 1) / Step;

    /// <summary>ints of the output table: a key (stride, OH, OW, steps), steps + 1 offsets into y, 32 index bytes per step.</summary>
    private static int TableInts(ConvGeometry g) => 4 + Steps(g) + 1 + Steps(g) * Step / 4;

    /// <summary>ints per channel in <see cref="Pack"/> output.</summary>
    private const int PerChannel = 8;

    /// <summary>Index of the "usable" flag in <see cref="Pack"/> output for c channels.</summary>
    public static int FlagIndex(int c) => PerChannel * c;

    /// <summary>ints of <see cref="Pack"/> output: eight per channel, a "usable" flag, the output table, then the 512-bit pass's table (<see cref="WideTableInts"/>).</summary>
    public static int PackedInts(ConvGeometry g) => PerChannel * g.InChannels + 1 + TableInts(g) + WideTableInts(g);

    /// <summary>
    /// Packs the weights. Per channel: three row dwords of signed bytes a = clamp(w − zw, −128, 127), Σ(w − zw), three
    /// row dwords of the remainders b = w − zw − a, and 1 when some b is not 0 (then the channel runs both sets, still
    /// exact as long as every b fits a signed byte, i.e. w − zw ≤ 254). After the channels: 1 when that holds for all
    /// of them and, where the dot product is emulated (no VNNI, see <see cref="ByteDot"/>), every row dword's pairs of
    /// bytes fit int16 (the route is usable), else 0; then the output table of the geometry.
    /// </summary>
    public static void Pack(ConvGeometry g, ReadOnlySpan<byte> w, bool wSigned, ReadOnlySpan<int> wZero, Span<int> packed)
    {
        int c = g.InChannels;
        bool usable = true;
        for (int ch = 0; ch < c; ch++)
        {
            int zw = wZero.Length == 1 ? wZero[0] : wZero[ch];
            int sum = 0;
            bool two = false;
            for (int kh = 0; kh < 3; kh++)
            {
                int da = 0, db = 0;
                for (int kw = 0; kw < 3; kw++)
                {
                    byte bt = w[ch * 9 + kh * 3 + kw];
                    int v = (wSigned ? (sbyte)bt : bt) - zw; // −255 .. 255
                    int a = Math.Clamp(v, -128, 127), b = v - a;
                    if (b > 127) usable = false;
                    if (b != 0) two = true;
                    sum += v;
                    da |= (a & 0xFF) << (8 * kw);
                    db |= (b & 0xFF) << (8 * kw);
                }
                packed[PerChannel * ch + kh] = da;
                packed[PerChannel * ch + 4 + kh] = db;
            }
            packed[PerChannel * ch + 3] = sum;
            packed[PerChannel * ch + 7] = two ? 1 : 0;
            // without VNNI the dot product is emulated, exact only when the row dwords' pairs fit int16 (ByteDot)
            if (!ByteDot.PairsFit(packed.Slice(PerChannel * ch, 3)) || !ByteDot.PairsFit(packed.Slice(PerChannel * ch + 4, 3))) usable = false;
        }
        packed[FlagIndex(c)] = usable ? 1 : 0;
        BuildTable(g, packed.Slice(FlagIndex(c) + 1, TableInts(g)));
        BuildWideTable(g, packed.Slice(FlagIndex(c) + 1 + TableInts(g), WideTableInts(g)));
    }

    private static bool TableMatches(ConvGeometry g, ReadOnlySpan<int> t) =>
        t[0] == g.Strides[0] && t[1] == g.OutDims[0] && t[2] == g.OutDims[1] && t[3] == Steps(g);

    /// <summary>
    /// The output table: for step k, the y offset of its first kept output and the permute index that moves its kept
    /// outputs, in order, to the front of the step's 32 packed bytes.
    /// </summary>
    private static void BuildTable(ConvGeometry g, Span<int> t)
    {
        int s = g.Strides[0], oh = g.OutDims[0], ow = g.OutDims[1], wq = Wq(g), steps = Steps(g);
        t[0] = s; t[1] = oh; t[2] = ow; t[3] = steps;
        var offsets = t.Slice(4, steps + 1);
        var index = MemoryMarshal.AsBytes(t.Slice(4 + steps + 1, steps * Step / 4));
        // byte q of the packed step holds output at[q] of the step (see Pack4)
        Span<byte> where = stackalloc byte[Step];
        for (int q = 0; q < Step; q++)
        {
            int lane = q >> 4, j = q & 15;
            int v = (j < 8 ? 0 : 2) + ((j & 7) < 4 ? 0 : 1); // which of the four accumulators
            int k = 4 * lane + (j & 3); // its int32 lane
            int o = s == 1 ? 4 * k + v : (v & 2) * 8 + 2 * k + (v & 1);
            where[o] = (byte)q;
        }
        int done = 0;
        for (int step = 0; step < steps; step++)
        {
            offsets[step] = done;
            int n = 0;
            for (int o = 0; o < Step; o++)
            {
                int f = step * Step + o;
                if (f < oh * wq && f % wq < ow) index[step * Step + n++] = where[o];
            }
            for (int i = n; i < Step; i++) index[step * Step + i] = 0;
            done += n;
        }
        offsets[steps] = done;
    }

    /// <summary>Bytes of the padded plane(s), vector slack included, rounded to 64.</summary>
    private static int PlaneBytes(ConvGeometry g)
    {
        int oh = g.OutDims[0], wq = Wq(g);
        int bytes = g.Strides[0] == 1 ? (oh + 2) * wq + Slack : (oh + 1) * 2 * wq + Slack + oh * 2 * wq + Slack;
        return (bytes + 63) & ~63;
    }

    private static int Align(int bytes) => (bytes + 63) & ~63;

    /// <summary>Scratch bytes <see cref="Run"/> needs: packed weights (when not given), a table, biases, two planes.</summary>
    public static int WorkBytes(ConvGeometry g) =>
        Align(PackedInts(g) * 4) + Align(TableInts(g) * 4) + Align(WideTableInts(g) * 4) + Align(g.InChannels * 4) + 2 * PlaneBytes(g);

    /// <summary>
    /// One image (see <see cref="IntDepthwise3x3.Run"/> for the arguments). <paramref name="packed"/> is from
    /// <see cref="Pack"/> with its fits flag set (its table is rebuilt into <paramref name="work"/> when the geometry
    /// has changed since); <paramref name="mult"/> must be finite.
    /// </summary>
    public static void Run(ConvGeometry g, ReadOnlySpan<byte> x, bool xSigned, int xZero, ReadOnlySpan<int> packed,
        ReadOnlySpan<int> bias, ReadOnlySpan<float> mult, int yZero, Span<byte> y, bool ySigned, Span<byte> work)
    {
        int c = g.InChannels, h = g.InDims[0], wd = g.InDims[1], oh = g.OutDims[0], ow = g.OutDims[1];
        int s = g.Strides[0], padT = g.PadBegin[0], padL = g.PadBegin[1];
        int wq = Wq(g), steps = Steps(g), planeBytes = PlaneBytes(g);
        int zxu = xSigned ? xZero + 128 : xZero;
        byte flip = xSigned ? (byte)0x80 : (byte)0;
        int at = Align(PackedInts(g) * 4);
        ReadOnlySpan<int> table = packed.Slice(FlagIndex(c) + 1);
        if (table.Length < 4 || !TableMatches(g, table))
        {
            var t = MemoryMarshal.Cast<byte, int>(work.Slice(at, TableInts(g) * 4));
            BuildTable(g, t);
            table = t;
        }
        at += Align(TableInts(g) * 4);
        ReadOnlySpan<int> wideTable = packed.Slice(FlagIndex(c) + 1 + TableInts(g));
        if (UsesWide(g) && (wideTable.Length < WideTableInts(g) || !WideTableMatches(g, wideTable)))
        {
            var t = MemoryMarshal.Cast<byte, int>(work.Slice(at, WideTableInts(g) * 4));
            BuildWideTable(g, t);
            wideTable = t;
        }
        at += Align(WideTableInts(g) * 4);
        var biasAdj = MemoryMarshal.Cast<byte, int>(work.Slice(at, c * 4));
        at += Align(c * 4);
        for (int ch = 0; ch < c; ch++)
            biasAdj[ch] = unchecked((bias.IsEmpty ? 0 : bias[ch]) - zxu * packed[PerChannel * ch + 3]);
        var planes = work.Slice(at, 2 * planeBytes);
        planes.Fill((byte)zxu);
        fixed (byte* px = x, pl = planes, py = y)
        fixed (int* pk = packed, pb = biasAdj, pt = table)
        fixed (float* pm = mult)
        {
            var cp = new Copier
            {
                X = px, ChannelBytes = (long)h * wd, Wd = wd, S = s, PadT = padT, PadL = padL, Flip = flip, Zero = (byte)zxu,
                RowBytes = s == 1 ? wq : 2 * wq, OddPlane = (oh + 1) * 2 * wq + Slack,
            };
            int padRows = (oh - 1) * s + 3;
            cp.R0 = Math.Max(0, padT);
            cp.R1 = Math.Min(padRows, padT + h);
            cp.Cnt = Math.Min(wd, cp.RowBytes - padL);
            cp.Prepare();
            var o = new Output { Offsets = pt + 4, Index = (byte*)(pt + 4 + steps + 1), Steps = steps, Signed = ySigned };
            int planeOut = oh * ow;
            cp.Run(0, pl);
            if (UsesWide(g) && AllMagicOneSet(c, pk, pb, pm))
            {
                WideRuns++;
                fixed (int* pw = wideTable)
                    OneSetMagicWide(in cp, c, pl, planeBytes, wq, pk, pb, pm, yZero, py, planeOut, pw + 4, (byte*)(pw + 4 + WideSteps(g) + 1), WideSteps(g), ySigned);
                return;
            }
            int first = 0;
            if (FastChannels && c > 1 && cp.RowBytes <= 32 && planeOut >= Step && AllMagicOneSet(c, pk, pb, pm))
            {
                // every channel the common case: all but the last in one loop without calls (see OneSetMagic1)
                if (s == 1) OneSetMagic1(in cp, c, pl, planeBytes, wq, pk, pb, pm, yZero, py, planeOut, o.Offsets, o.Index, steps, ySigned);
                else OneSetMagic2(in cp, c, pl, planeBytes, wq, pk, pb, pm, yZero, py, planeOut, o.Offsets, o.Index, steps, ySigned);
                first = c - 1;
            }
            for (int ch = first; ch < c; ch++)
            {
                if (ch + 1 < c) cp.Run(ch + 1, pl + ((ch + 1) & 1) * planeBytes);
                if (ch + 2 < c)
                {
                    // the input plane after next, into the cache while this channel is filtered
                    byte* next = px + (ch + 2) * cp.ChannelBytes;
                    for (long i = 0; i < cp.ChannelBytes; i += 64) Sse.Prefetch0(next + i);
                }
                byte* plane = pl + (ch & 1) * planeBytes;
                o.Y = py + (long)ch * planeOut;
                o.Room = (long)(c - ch) * planeOut; // stores may run into later channels, which are written afterwards
                int* wk = pk + PerChannel * ch;
                var w0 = Vector256.Create(wk[0]).AsSByte();
                var w1 = Vector256.Create(wk[1]).AsSByte();
                var w2 = Vector256.Create(wk[2]).AsSByte();
                if (wk[7] != 0)
                {
                    // weights beyond signed bytes: the remainders as a second set, added before requantization
                    o.Two = true;
                    o.W3 = Vector256.Create(wk[4]).AsSByte();
                    o.W4 = Vector256.Create(wk[5]).AsSByte();
                    o.W5 = Vector256.Create(wk[6]).AsSByte();
                }
                else o.Two = false;
                int b = pb[ch];
                var bv = Vector256.Create(b);
                float m = pm[ch];
                // when the scaled sums cannot leave the int32 range, the saturating packs replace the clamp
                long bound = Math.Min(Math.Abs((long)b) + 9 * 255 * 255, 1L << 31);
                bool exact = bound * Math.Abs((double)m) + Math.Abs(yZero) < int.MaxValue / 2;
                byte* odd = plane + cp.OddPlane;
                if (UseMagicRound && bound * Math.Abs((double)m) < QuantMath.MagicLimit)
                {
                    var mr = new MagicRound(m, yZero);
                    if (o.Two) Filter<MagicRound, TwoSets>(s, plane, odd, wq, w0, w1, w2, bv, mr, in o);
                    else Filter<MagicRound, OneSet>(s, plane, odd, wq, w0, w1, w2, bv, mr, in o);
                }
                else if (exact)
                {
                    if (o.Two) Filter<Round, TwoSets>(s, plane, odd, wq, w0, w1, w2, bv, new Round(m, yZero), in o);
                    else Filter<Round, OneSet>(s, plane, odd, wq, w0, w1, w2, bv, new Round(m, yZero), in o);
                }
                else
                {
                    var rq = new ClampRound(m, yZero);
                    if (o.Two) Filter<ClampRound, TwoSets>(s, plane, odd, wq, w0, w1, w2, bv, rq, in o);
                    else Filter<ClampRound, OneSet>(s, plane, odd, wq, w0, w1, w2, bv, rq, in o);
                }
            }
        }
    }

    /// <summary>
    /// Copies the interior rows of one channel into a padded plane. Each padded row is written whole, in 64-byte
    /// chunks, by masked loads that merge the input bytes into a vector of zero points: the last chunk spills zero
    /// points into the rows after it, which are either padding or written later (rows go in address order per plane).
    /// Rows of at most 32 bytes (planes up to 30 wide at stride 1) go in one 32-byte chunk instead: a 512-bit
    /// instruction among the filter's vpdpbusd closes port 1's vector unit, and on small planes the copy is a large
    /// share of the work (MobileNetV2's 14 × 14 layers 20% faster, 7 × 7 6%, alternating the two builds; on larger
    /// planes two or four 32-byte chunks a row lost to one or two of 64).
    /// </summary>
    private struct Copier
    {
        public byte* X;
        public long ChannelBytes;
        public int Wd, S, PadT, PadL, RowBytes, OddPlane, R0, R1, Cnt;
        public byte Flip, Zero;

        // set by Prepare: chunk masks, fill and flip vectors, and the runs of rows per plane (start row, count)
        private Vector512<byte> _m0, _m1, _fill, _flip;
        private Vector256<byte> _narrowMask;
        private int _chunks, _start0, _count0, _start1, _count1;

        public void Prepare()
        {
            _fill = Vector512.Create((byte)(Zero ^ Flip));
            _flip = Vector512.Create(Flip);
            _chunks = (RowBytes + 63) >> 6;
            _m0 = Mask(0);
            _m1 = Mask(64);
            _narrowMask = _m0.GetLower();
            // stride 1: every row in one run; stride 2: the even padded rows, then the odd ones (rows of their own plane)
            _start0 = R0 + (R0 & 1) * (S - 1);
            _count0 = _start0 < R1 ? (R1 - _start0 + S - 1) / S : 0;
            _start1 = R0 + ((R0 & 1) ^ 1);
            _count1 = S == 2 && _start1 < R1 ? (R1 - _start1 + 1) / 2 : 0;
        }

        /// <summary>Stride 1 with rows of at most 32 bytes: the first padded row copied, how many, and the 256-bit mask, fill and flip.</summary>
        public readonly (int Start, int Count, Vector256<byte> Mask, Vector256<byte> Fill, Vector256<byte> Flip) Narrow =>
            (_start0, Cnt > 0 ? _count0 : 0, _narrowMask, _fill.GetLower(), _flip.GetLower());

        /// <summary>Stride 2: the first odd padded row copied and how many (the even ones are <see cref="Narrow"/>'s).</summary>
        public readonly (int Start, int Count) OddRows => (_start1, Cnt > 0 ? _count1 : 0);

        public readonly void Run(int ch, byte* plane)
        {
            if (Cnt <= 0) return;
            byte* xc = X + ch * ChannelBytes - PadL; // padded column j reads input column j − PadL
            if (_chunks <= 2)
            {
                // rows up to 128 bytes (every MobileNet-sized plane)
                RunRows(xc, plane, _start0, _count0);
                if (_count1 > 0) RunRows(xc, plane, _start1, _count1);
                return;
            }
            for (int r = R0; r < R1; r++)
            {
                byte* dst = Row(plane, r), src = xc + (long)(r - PadT) * Wd;
                for (int off = 0; off < RowBytes; off += 64)
                    Vector512.Store(Avx512BW.MaskLoad(src + off, Mask(off), _fill) ^ _flip, dst + off);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private readonly void RunRows(byte* xc, byte* plane, int r, int n)
        {
            byte* dst = Row(plane, r), src = xc + (long)(r - PadT) * Wd;
            long srcStep = (long)S * Wd;
            var fill = _fill;
            var flip = _flip;
            var m0 = _m0;
            if (RowBytes <= 32)
            {
                var (fill32, flip32, m32) = (fill.GetLower(), flip.GetLower(), _narrowMask);
                for (int i = 0; i < n; i++, dst += RowBytes, src += srcStep)
                    Vector256.Store(Avx512BW.VL.MaskLoad(src, m32, fill32) ^ flip32, dst);
            }
            else if (_chunks == 1)
                for (int i = 0; i < n; i++, dst += RowBytes, src += srcStep)
                    Vector512.Store(Avx512BW.MaskLoad(src, m0, fill) ^ flip, dst);
            else
            {
                var m1 = _m1;
                for (int i = 0; i < n; i++, dst += RowBytes, src += srcStep)
                {
                    Vector512.Store(Avx512BW.MaskLoad(src, m0, fill) ^ flip, dst);
                    Vector512.Store(Avx512BW.MaskLoad(src + 64, m1, fill) ^ flip, dst + 64);
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private readonly byte* Row(byte* plane, int r) =>
            S == 1 ? plane + r * RowBytes : plane + ((r & 1) == 0 ? 0 : OddPlane) + (r >> 1) * RowBytes;

        /// <summary>Lanes [a, b) of the chunk at byte <paramref name="off"/> of a padded row are input bytes.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private readonly Vector512<byte> Mask(int off)
        {
            int a = Math.Clamp(PadL - off, 0, 64), b = Math.Clamp(PadL + Cnt - off, 0, 64);
            return Vector512.GreaterThanOrEqual(Iota, Vector512.Create((byte)a)) & Vector512.LessThan(Iota, Vector512.Create((byte)b));
        }
    }

    private static readonly Vector512<byte> Iota = Vector512.Create(
        (byte)0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
        32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63);

    /// <summary>Scaling of eight sums to rounded int32 (y zero point included).</summary>
    private interface IRound
    {
        Vector256<int> Apply(Vector256<int> a);
    }

    /// <summary>When the scaled sums stay well inside int32: (float)sum · multiplier rounded half to even by the conversion, plus the zero point (the packs saturate).</summary>
    private readonly struct Round(float multiplier, int yZero) : IRound
    {
        private readonly Vector256<float> _mul = Vector256.Create(multiplier);
        private readonly Vector256<int> _zp = Vector256.Create(yZero);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<int> Apply(Vector256<int> a) => Avx.ConvertToVector256Int32(Avx.Multiply(Avx.ConvertToVector256Single(a), _mul)) + _zp;
    }

    /// <summary>A/B switch for <see cref="OneSetMagic1"/> (benchmarks only).</summary>
    internal static bool FastChannels = true;

    /// <summary>True when no channel has a second weight set and every channel's scaled sums stay in <see cref="MagicRound"/>'s range.</summary>
    private static bool AllMagicOneSet(int c, int* pk, int* pb, float* pm)
    {
        if (!UseMagicRound) return false;
        long maxB = 0;
        float maxM = 0;
        for (int ch = 0; ch < c; ch++)
        {
            if (pk[PerChannel * ch + 7] != 0) return false;
            maxB = Math.Max(maxB, Math.Abs((long)pb[ch]));
            maxM = Math.Max(maxM, Math.Abs(pm[ch]));
        }
        return Math.Min(maxB + 9 * 255 * 255, 1L << 31) * (double)maxM < QuantMath.MagicLimit;
    }

    /// <summary>
    /// Channels 0 .. c − 2 of <see cref="Run"/> for stride 1 and rows of at most 32 bytes when every channel has one
    /// weight set and rounds by <see cref="MagicRound"/> (<see cref="AllMagicOneSet"/>), channel 0 already copied into
    /// plane 0: the same copy, filter and stores as the general loop, written out so that the loop makes no call (the
    /// JIT would keep its vectors on the stack across one) and its invariants stay in registers. Every channel but the
    /// last stores whole steps (their spill runs into later channels, written afterwards); the caller runs the last one
    /// and copies nothing more, its plane being copied here.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OneSetMagic1(in Copier cp, int c, byte* pl, int planeBytes, int wq, int* pk, int* pb, float* pm, int yZero,
        byte* py, int planeOut, int* offsets, byte* index, int steps, bool signed)
    {
        var (start, count, mask, fill, flip) = cp.Narrow;
        int rowBytes = cp.RowBytes, wd = cp.Wd;
        long channelBytes = cp.ChannelBytes;
        byte* xFirst = cp.X - cp.PadL + (long)(start - cp.PadT) * wd; // channel 0's first copied row
        var magic = Vector256.Create(QuantMath.Magic);
        var zp = Vector256.Create(QuantMath.MagicBits - yZero);
        for (int ch = 0; ch < c - 1; ch++)
        {
            // the next channel's padded plane
            byte* src = xFirst + (ch + 1) * channelBytes, dst = pl + ((ch + 1) & 1) * planeBytes + start * rowBytes;
            for (int i = 0; i < count; i++, dst += rowBytes, src += wd)
                Vector256.Store(Avx512BW.VL.MaskLoad(src, mask, fill) ^ flip, dst);
            if (ch + 2 < c)
            {
                byte* next = cp.X + (ch + 2) * channelBytes;
                for (long i = 0; i < channelBytes; i += 64) Sse.Prefetch0(next + i);
            }
            byte* q0 = pl + (ch & 1) * planeBytes, q1 = q0 + wq, q2 = q1 + wq;
            byte* y = py + (long)ch * planeOut;
            var (w0, w1, w2) = RowDwords(pk + PerChannel * ch);
            var bias = Vector256.Create(pb[ch]);
            var mul = Vector256.Create(pm[ch]);
            for (int step = 0; step < steps; step++, q0 += Step, q1 += Step, q2 += Step)
            {
                var a0 = ByteDot.Add(ByteDot.Add(ByteDot.Add(bias, Vector256.Load(q0), w0), Vector256.Load(q1), w1), Vector256.Load(q2), w2);
                var a1 = ByteDot.Add(ByteDot.Add(ByteDot.Add(bias, Vector256.Load(q0 + 1), w0), Vector256.Load(q1 + 1), w1), Vector256.Load(q2 + 1), w2);
                var a2 = ByteDot.Add(ByteDot.Add(ByteDot.Add(bias, Vector256.Load(q0 + 2), w0), Vector256.Load(q1 + 2), w1), Vector256.Load(q2 + 2), w2);
                var a3 = ByteDot.Add(ByteDot.Add(ByteDot.Add(bias, Vector256.Load(q0 + 3), w0), Vector256.Load(q1 + 3), w1), Vector256.Load(q2 + 3), w2);
                StoreStep(a0, a1, a2, a3, mul, magic, zp, signed, index + step * Step, y + offsets[step]);
            }
        }
    }

    /// <summary>A channel's three kernel-row dwords, each broadcast.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<sbyte>, Vector256<sbyte>, Vector256<sbyte>) RowDwords(int* wk) =>
        (Vector256.Create(wk[0]).AsSByte(), Vector256.Create(wk[1]).AsSByte(), Vector256.Create(wk[2]).AsSByte());

    /// <summary>
    /// The step of <see cref="OneSetMagic1"/> and <see cref="OneSetMagic2"/> after its products: the four sums rounded by
    /// the 1.5·2²³ addition (<see cref="MagicRound"/>, the zero point in <paramref name="zp"/>), narrowed, permuted by the
    /// step's table entry and stored whole.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreStep(Vector256<int> a0, Vector256<int> a1, Vector256<int> a2, Vector256<int> a3, Vector256<float> mul,
        Vector256<float> magic, Vector256<int> zp, bool signed, byte* index, byte* y)
    {
        var r0 = Avx.Add(Avx.Multiply(Avx.ConvertToVector256Single(a0), mul), magic).AsInt32() - zp;
        var r1 = Avx.Add(Avx.Multiply(Avx.ConvertToVector256Single(a1), mul), magic).AsInt32() - zp;
        var r2 = Avx.Add(Avx.Multiply(Avx.ConvertToVector256Single(a2), mul), magic).AsInt32() - zp;
        var r3 = Avx.Add(Avx.Multiply(Avx.ConvertToVector256Single(a3), mul), magic).AsInt32() - zp;
        var p01 = Avx2.PackSignedSaturate(r0, r1);
        var p23 = Avx2.PackSignedSaturate(r2, r3);
        var b = signed ? Avx2.PackSignedSaturate(p01, p23).AsByte() : Avx2.PackUnsignedSaturate(p01, p23);
        Vector256.Store(Avx512Vbmi.VL.PermuteVar32x8(b, Vector256.Load(index)), y);
    }

    /// <summary>
    /// <see cref="OneSetMagic1"/> for stride 2: the even and odd padded rows copied into their two planes, each step's
    /// loads as <see cref="Step2{TR, TS}"/> makes them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OneSetMagic2(in Copier cp, int c, byte* pl, int planeBytes, int wq, int* pk, int* pb, float* pm, int yZero,
        byte* py, int planeOut, int* offsets, byte* index, int steps, bool signed)
    {
        var (start, count, mask, fill, flip) = cp.Narrow;
        var (oddStart, oddCount) = cp.OddRows;
        int rowBytes = cp.RowBytes, wd = cp.Wd, oddPlane = cp.OddPlane;
        long channelBytes = cp.ChannelBytes;
        byte* xEven = cp.X - cp.PadL + (long)(start - cp.PadT) * wd, xOdd = cp.X - cp.PadL + (long)(oddStart - cp.PadT) * wd;
        long evenAt = (start >> 1) * rowBytes, oddAt = oddPlane + (oddStart >> 1) * rowBytes;
        var magic = Vector256.Create(QuantMath.Magic);
        var zp = Vector256.Create(QuantMath.MagicBits - yZero);
        for (int ch = 0; ch < c - 1; ch++)
        {
            // the next channel's two planes: even padded rows, then odd ones
            byte* next = pl + ((ch + 1) & 1) * planeBytes;
            byte* src = xEven + (ch + 1) * channelBytes, dst = next + evenAt;
            for (int i = 0; i < count; i++, dst += rowBytes, src += 2 * wd)
                Vector256.Store(Avx512BW.VL.MaskLoad(src, mask, fill) ^ flip, dst);
            src = xOdd + (ch + 1) * channelBytes;
            dst = next + oddAt;
            for (int i = 0; i < oddCount; i++, dst += rowBytes, src += 2 * wd)
                Vector256.Store(Avx512BW.VL.MaskLoad(src, mask, fill) ^ flip, dst);
            if (ch + 2 < c)
            {
                byte* ahead = cp.X + (ch + 2) * channelBytes;
                for (long i = 0; i < channelBytes; i += 64) Sse.Prefetch0(ahead + i);
            }
            byte* e = pl + (ch & 1) * planeBytes, od = e + oddPlane, e2 = e + 2 * wq;
            byte* y = py + (long)ch * planeOut;
            var (w0, w1, w2) = RowDwords(pk + PerChannel * ch);
            var bias = Vector256.Create(pb[ch]);
            var mul = Vector256.Create(pm[ch]);
            for (int step = 0; step < steps; step++, e += 2 * Step, od += 2 * Step, e2 += 2 * Step)
            {
                var a0 = ByteDot.Add(ByteDot.Add(ByteDot.Add(bias, Vector256.Load(e), w0), Vector256.Load(od), w1), Vector256.Load(e2), w2);
                var a1 = ByteDot.Add(ByteDot.Add(ByteDot.Add(bias, Vector256.Load(e + 2), w0), Vector256.Load(od + 2), w1), Vector256.Load(e2 + 2), w2);
                var a2 = ByteDot.Add(ByteDot.Add(ByteDot.Add(bias, Vector256.Load(e + 32), w0), Vector256.Load(od + 32), w1), Vector256.Load(e2 + 32), w2);
                var a3 = ByteDot.Add(ByteDot.Add(ByteDot.Add(bias, Vector256.Load(e + 34), w0), Vector256.Load(od + 34), w1), Vector256.Load(e2 + 34), w2);
                StoreStep(a0, a1, a2, a3, mul, magic, zp, signed, index + step * Step, y + offsets[step]);
            }
        }
    }

    /// <summary>A/B switch for <see cref="MagicRound"/> (benchmarks only).</summary>
    internal static bool UseMagicRound = true;

    /// <summary>
    /// When the scaled sums stay below <see cref="QuantMath.MagicLimit"/>: rounded by adding <see cref="QuantMath.Magic"/>
    /// instead of a conversion (see there).
    /// </summary>
    private readonly struct MagicRound(float multiplier, int yZero) : IRound
    {
        private readonly Vector256<float> _mul = Vector256.Create(multiplier);
        private readonly Vector256<int> _zp = Vector256.Create(QuantMath.MagicBits - yZero);
        private static readonly Vector256<float> Magic = Vector256.Create(QuantMath.Magic);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<int> Apply(Vector256<int> a) =>
            Avx.Add(Avx.Multiply(Avx.ConvertToVector256Single(a), _mul), Magic).AsInt32() - _zp;
    }

    /// <summary>General case: the scaled sums clamped to ±2³⁰ before the conversion (any such value saturates in the packs).</summary>
    private readonly struct ClampRound(float multiplier, int yZero) : IRound
    {
        private readonly Vector256<float> _mul = Vector256.Create(multiplier);
        private readonly Vector256<int> _zp = Vector256.Create(yZero);
        private static readonly Vector256<float> Lo = Vector256.Create(-1073741824f), Hi = Vector256.Create(1073741824f);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<int> Apply(Vector256<int> a) =>
            Avx.ConvertToVector256Int32(Avx.Min(Avx.Max(Avx.Multiply(Avx.ConvertToVector256Single(a), _mul), Lo), Hi)) + _zp;
    }

    /// <summary>Where the steps of one channel go: the table and the channel's output plane.</summary>
    private struct Output
    {
        public Vector256<sbyte> W3, W4, W5;
        public bool Two;
        public int* Offsets;
        public byte* Index;
        public byte* Y;
        public long Room;
        public int Steps;
        public bool Signed;
    }

    /// <summary>
    /// Four accumulators (step outputs as described in <see cref="BuildTable"/>) to 32 bytes with saturating packs
    /// (int32 → int16 → int8/uint8, lane-interleaved), then the step's permute: its kept outputs first, in order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Pack<TR>(Vector256<int> a0, Vector256<int> a1, Vector256<int> a2, Vector256<int> a3, in TR rq, in Output o, int step)
        where TR : struct, IRound
    {
        var p01 = Avx2.PackSignedSaturate(rq.Apply(a0), rq.Apply(a1));
        var p23 = Avx2.PackSignedSaturate(rq.Apply(a2), rq.Apply(a3));
        var b = o.Signed ? Avx2.PackSignedSaturate(p01, p23).AsByte() : Avx2.PackUnsignedSaturate(p01, p23);
        return Avx512Vbmi.VL.PermuteVar32x8(b, Vector256.Load(o.Index + step * Step));
    }

    /// <summary>Steps whose 32-byte store stays inside y (all but the last one or two of the last channel).</summary>
    private static int FullSteps(in Output o)
    {
        int k = o.Steps;
        while (k > 0 && o.Offsets[k - 1] + Step > o.Room) k--;
        return k;
    }

    /// <summary>The last steps of the last channel: only the kept bytes (nothing may be written past y).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void StoreTail(Vector256<byte> v, in Output o, int step)
    {
        byte* tmp = stackalloc byte[Step];
        Vector256.Store(v, tmp);
        int at = o.Offsets[step], n = o.Offsets[step + 1] - at;
        for (int i = 0; i < n; i++) o.Y[at + i] = tmp[i];
    }

    /// <summary>Type markers: channels with one set of weight dwords, or with the second set of remainders.</summary>
    private struct OneSet;

    private struct TwoSets;

    private static void Filter<TR, TS>(int s, byte* plane, byte* odd, int wq, Vector256<sbyte> w0, Vector256<sbyte> w1, Vector256<sbyte> w2,
        Vector256<int> bias, TR rq, in Output o) where TR : struct, IRound where TS : struct
    {
        if (s == 1) Filter1<TR, TS>(plane, wq, w0, w1, w2, bias, rq, in o);
        else Filter2<TR, TS>(plane, odd, wq, w0, w1, w2, bias, rq, in o);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot(Vector256<int> acc, byte* p, Vector256<sbyte> w) => ByteDot.Add(acc, Vector256.Load(p), w);

    /// <summary>Stride 1: accumulator v, lane k of a step at f0 is output f0 + 4k + v (loads at f0 + v).</summary>
    /// <remarks>
    /// The step is written out here and inlined from <see cref="Step1{TR, TS}"/> in <see cref="Tail1{TR, TS}"/>: with both
    /// loops in one method the JIT ran out of inlining budget in the model and left the vpdpbusd helpers as calls (4x
    /// slower than in isolation). Here the three rows' pointers step along, so no index is sign-extended per load (12
    /// instructions a step; int8 MobileNetV2 0.2-0.7% faster in three `ab` runs).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Filter1<TR, TS>(byte* p, int wq, Vector256<sbyte> w0, Vector256<sbyte> w1, Vector256<sbyte> w2,
        Vector256<int> bias, TR rq, in Output o) where TR : struct, IRound where TS : struct
    {
        byte* p1 = p + wq, p2 = p + 2 * wq;
        int full = FullSteps(in o), step = 0;
        // the three rows' pointers step along (no index extended per load), the table and y read once
        byte* q0 = p, q1 = p1, q2 = p2, y = o.Y, index = o.Index;
        int* offsets = o.Offsets;
        bool signed = o.Signed;
        for (; step < full; step++, q0 += Step, q1 += Step, q2 += Step)
        {
            var a0 = Dot(Dot(Dot(bias, q0, w0), q1, w1), q2, w2);
            var a1 = Dot(Dot(Dot(bias, q0 + 1, w0), q1 + 1, w1), q2 + 1, w2);
            var a2 = Dot(Dot(Dot(bias, q0 + 2, w0), q1 + 2, w1), q2 + 2, w2);
            var a3 = Dot(Dot(Dot(bias, q0 + 3, w0), q1 + 3, w1), q2 + 3, w2);
            if (typeof(TS) == typeof(TwoSets))
            {
                a0 = Dot(Dot(Dot(a0, q0, o.W3), q1, o.W4), q2, o.W5);
                a1 = Dot(Dot(Dot(a1, q0 + 1, o.W3), q1 + 1, o.W4), q2 + 1, o.W5);
                a2 = Dot(Dot(Dot(a2, q0 + 2, o.W3), q1 + 2, o.W4), q2 + 2, o.W5);
                a3 = Dot(Dot(Dot(a3, q0 + 3, o.W3), q1 + 3, o.W4), q2 + 3, o.W5);
            }
            var p01 = Avx2.PackSignedSaturate(rq.Apply(a0), rq.Apply(a1));
            var p23 = Avx2.PackSignedSaturate(rq.Apply(a2), rq.Apply(a3));
            var b = signed ? Avx2.PackSignedSaturate(p01, p23).AsByte() : Avx2.PackUnsignedSaturate(p01, p23);
            Vector256.Store(Avx512Vbmi.VL.PermuteVar32x8(b, Vector256.Load(index + step * Step)), y + offsets[step]);
        }
        if (full < o.Steps) Tail1<TR, TS>(p, p1, p2, full, w0, w1, w2, bias, rq, in o);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Tail1<TR, TS>(byte* p, byte* p1, byte* p2, int step, Vector256<sbyte> w0, Vector256<sbyte> w1, Vector256<sbyte> w2,
        Vector256<int> bias, TR rq, in Output o) where TR : struct, IRound where TS : struct
    {
        for (; step < o.Steps; step++)
            StoreTail(Step1<TR, TS>(p, p1, p2, step * Step, w0, w1, w2, bias, in rq, in o, step), in o, step);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Step1<TR, TS>(byte* p, byte* p1, byte* p2, int f, Vector256<sbyte> w0, Vector256<sbyte> w1, Vector256<sbyte> w2,
        Vector256<int> bias, in TR rq, in Output o, int step) where TR : struct, IRound where TS : struct
    {
        var a0 = Dot(Dot(Dot(bias, p + f, w0), p1 + f, w1), p2 + f, w2);
        var a1 = Dot(Dot(Dot(bias, p + f + 1, w0), p1 + f + 1, w1), p2 + f + 1, w2);
        var a2 = Dot(Dot(Dot(bias, p + f + 2, w0), p1 + f + 2, w1), p2 + f + 2, w2);
        var a3 = Dot(Dot(Dot(bias, p + f + 3, w0), p1 + f + 3, w1), p2 + f + 3, w2);
        if (typeof(TS) == typeof(TwoSets))
        {
            a0 = Dot(Dot(Dot(a0, p + f, o.W3), p1 + f, o.W4), p2 + f, o.W5);
            a1 = Dot(Dot(Dot(a1, p + f + 1, o.W3), p1 + f + 1, o.W4), p2 + f + 1, o.W5);
            a2 = Dot(Dot(Dot(a2, p + f + 2, o.W3), p1 + f + 2, o.W4), p2 + f + 2, o.W5);
            a3 = Dot(Dot(Dot(a3, p + f + 3, o.W3), p1 + f + 3, o.W4), p2 + f + 3, o.W5);
        }
        return Pack(a0, a1, a2, a3, in rq, in o, step);
    }

    /// <summary>
    /// Stride 2: accumulator v, lane k of a step at f0 is output f0 + 16·(v / 2) + 2k + v % 2 (loads at 2f0 + 32·(v / 2)
    /// + 2·(v % 2) in the even plane, the odd plane, and the even plane one row on).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Filter2<TR, TS>(byte* e, byte* od, int wq, Vector256<sbyte> w0, Vector256<sbyte> w1, Vector256<sbyte> w2,
        Vector256<int> bias, TR rq, in Output o) where TR : struct, IRound where TS : struct
    {
        byte* e2 = e + 2 * wq;
        int full = FullSteps(in o), step = 0;
        for (; step < full; step++)
            Vector256.Store(Step2<TR, TS>(e, od, e2, 2 * Step * step, w0, w1, w2, bias, in rq, in o, step), o.Y + o.Offsets[step]);
        if (full < o.Steps) Tail2<TR, TS>(e, od, e2, full, w0, w1, w2, bias, rq, in o);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Tail2<TR, TS>(byte* e, byte* od, byte* e2, int step, Vector256<sbyte> w0, Vector256<sbyte> w1, Vector256<sbyte> w2,
        Vector256<int> bias, TR rq, in Output o) where TR : struct, IRound where TS : struct
    {
        for (; step < o.Steps; step++)
            StoreTail(Step2<TR, TS>(e, od, e2, 2 * Step * step, w0, w1, w2, bias, in rq, in o, step), in o, step);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Step2<TR, TS>(byte* e, byte* od, byte* e2, int q, Vector256<sbyte> w0, Vector256<sbyte> w1, Vector256<sbyte> w2,
        Vector256<int> bias, in TR rq, in Output o, int step) where TR : struct, IRound where TS : struct
    {
        var a0 = Dot(Dot(Dot(bias, e + q, w0), od + q, w1), e2 + q, w2);
        var a1 = Dot(Dot(Dot(bias, e + q + 2, w0), od + q + 2, w1), e2 + q + 2, w2);
        var a2 = Dot(Dot(Dot(bias, e + q + 32, w0), od + q + 32, w1), e2 + q + 32, w2);
        var a3 = Dot(Dot(Dot(bias, e + q + 34, w0), od + q + 34, w1), e2 + q + 34, w2);
        if (typeof(TS) == typeof(TwoSets))
        {
            a0 = Dot(Dot(Dot(a0, e + q, o.W3), od + q, o.W4), e2 + q, o.W5);
            a1 = Dot(Dot(Dot(a1, e + q + 2, o.W3), od + q + 2, o.W4), e2 + q + 2, o.W5);
            a2 = Dot(Dot(Dot(a2, e + q + 32, o.W3), od + q + 32, o.W4), e2 + q + 32, o.W5);
            a3 = Dot(Dot(Dot(a3, e + q + 34, o.W3), od + q + 34, o.W4), e2 + q + 34, o.W5);
        }
        return Pack(a0, a1, a2, a3, in rq, in o, step);
    }
}
