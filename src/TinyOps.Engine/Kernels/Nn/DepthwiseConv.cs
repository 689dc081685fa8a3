using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TinyOps.Engine.Kernels.Common;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// Fast depthwise convolution (one input channel per group, any channel multiplier, stride and dilation) for 1-D
/// and 2-D shapes, as a flat filter over whole planes. Each input plane is first copied into SH x SW zero-padded
/// stride-phase planes: phase (pr, pc) holds padded positions (i * SH + pr, j * SW + pc), rows Wq = OW + the widest
/// column reach apart. Then kernel tap (kh, kw) of output (oh, ow) sits at one fixed offset from index oh * Wq + ow
/// of its phase plane, so the whole output plane, taken as OH rows of Wq values (Wq - OW of them spare), is a sum of
/// shifted vector loads times broadcast weights: no per-row setup, no border tests, full vectors even for 7 x 7
/// planes. Bias and the fused activation are applied before the wide result is compacted into NCHW rows. Vector512
/// where accelerated, else Vector256. Planes split across <see cref="WorkerPool"/> threads; work buffers are
/// thread-static and grow-only.
/// </summary>
internal static unsafe class DepthwiseConv
{
    [ThreadStatic] private static float[]? t_buffer;

    /// <summary>Tests set this to run the Vector256 code where Vector512 is accelerated.</summary>
    internal static bool Force256;

    private struct State
    {
        public float* X, W, Bias, Y;
        public ConvShape S;
        public FusedActivation Act;
    }

    private static State s_state;

    /// <summary>True when this path handles the shape (2-D or 1-D, vectors available, kernel not huge).</summary>
    public static bool Supports(in ConvShape s) =>
        !SGemm.ForceScalar && Vector256.IsHardwareAccelerated && Fma.IsSupported
        && s.In[0] == 1 && s.Kernel[0] == 1 && s.Out[0] == 1 && s.KernelSize <= 64
        && s.Group > 1 && s.InChannels == s.Group
        && (long)s.Stride[1] * s.Stride[2] * (s.Out[1] + s.Kernel[1] * s.Dilation[1]) * (s.Out[2] + s.Kernel[2] * s.Dilation[2]) < int.MaxValue / 4;

    public static void Run(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, in ConvShape s, in FusedActivation act, int threads)
    {
        fixed (float* px = x, pw = w, pb = bias, py = y)
        {
            var st = new State { X = px, W = pw, Bias = bias.IsEmpty ? null : pb, Y = py, S = s, Act = act };
            int planes = s.Batch * s.InChannels;
            long work = (long)s.Batch * s.OutChannels * s.OutSize * s.KernelSize;
            if (threads > 1 && planes > 1 && work >= 32 * 1024 && WorkerPool.TryEnter())
            {
                try
                {
                    s_state = st;
                    WorkerPool.Run(&Part, threads, WorkerPool.Chunks(threads, UseBlocked(in s) ? (planes + Block - 1) / Block : planes));
                }
                finally
                {
                    WorkerPool.Exit();
                }
            }
            else Planes(in st, 0, planes);
        }
    }

    private static void Part(int part, int parts)
    {
        // On the blocked path, cut at whole channel blocks so every part keeps full blocks.
        int planes = s_state.S.Batch * s_state.S.InChannels, unit = UseBlocked(in s_state.S) ? Block : 1;
        int blocks = (planes + unit - 1) / unit;
        int b0 = (int)((long)blocks * part / parts), b1 = (int)((long)blocks * (part + 1) / parts);
        Planes(in s_state, Math.Min(planes, b0 * unit), Math.Min(planes, b1 * unit));
    }

    /// <summary>Channels per block on the channels-last path for small planes (one Vector512).</summary>
    private const int Block = 16;

    /// <summary>
    /// Small planes (rows shorter than a vector) with one output per input channel go channels-last: 16 channels
    /// side by side in a Vector512, so each output pixel is one FMA per tap whatever the plane size.
    /// </summary>
    private static bool UseBlocked(in ConvShape s) =>
        Vector512.IsHardwareAccelerated && !Force256 && s.OutChannels == s.InChannels && s.InChannels >= Block && s.Out[2] <= MaxBlockedWidth;

    /// <summary>
    /// Widest output row the channels-last path takes; wider planes keep full vectors along rows. Settable for
    /// in-process A/B comparisons with <c>bench/TinyOps.Bench.Kernels ab</c>.
    /// </summary>
    internal static int MaxBlockedWidth = 16;

    private static void Planes(in State st, int p0, int p1)
    {
        switch (st.Act.Kind)
        {
            case ActivationKind.None: Planes<NoActivation>(in st, p0, p1); break;
            case ActivationKind.Relu: Planes<ReluActivation>(in st, p0, p1); break;
            case ActivationKind.Clip: Planes<ClipActivation>(in st, p0, p1); break;
            default: Planes<AnyActivation>(in st, p0, p1); break;
        }
    }

    /// <summary>Geometry of the phase planes of one input plane.</summary>
    private struct Layout
    {
        public int Hq, Wq, PhaseFloats;
    }

    /// <summary>Processes input planes [p0, p1) (plane = batch * InChannels + channel) and all their output channels.</summary>
    private static void Planes<TAct>(in State st, int p0, int p1) where TAct : struct, IActivationOp
    {
        ref readonly ConvShape s = ref st.S;
        if (InPlaceSupported(in s))
        {
            InPlacePlanes<TAct>(in st, p0, p1);
            return;
        }
        if (InPlaceStride2Supported(in s))
        {
            InPlaceStride2Planes<TAct>(in st, p0, p1);
            return;
        }
        if (!UseBlocked(in s) && RowsSupported(in s))
        {
            for (int p = p0; p < p1; p++) RowsPlane<TAct>(in st, p);
            return;
        }
        int IH = s.In[1], IW = s.In[2], KH = s.Kernel[1], KW = s.Kernel[2];
        int OH = s.Out[1], OW = s.Out[2];
        int SH = s.Stride[1], SW = s.Stride[2], DH = s.Dilation[1], DW = s.Dilation[2];
        int PH = s.PadBegin[1], PW = s.PadBegin[2];
        bool wide = Vector512.IsHardwareAccelerated && !Force256;
        int vw = wide ? 16 : 8;
        int hq = OH + (KH - 1) * DH / SH, wq = OW + (KW - 1) * DW / SW; // wq: the row width of the wide output
        int n = (OH * wq + 2 * vw - 1) / (2 * vw) * (2 * vw); // wide outputs computed, two vectors a step
        // Stride 2 along rows with a 3-wide kernel on Vector512: the columns stay together (rows of 2 * wq padded
        // values, row phases only) and the filter splits even and odd columns with a permute, instead of building
        // column phases. Otherwise: SH x SW phase planes of rows wq; reads reach n - 1 + the largest tap offset,
        // which stays below Hq * Wq + 2 * vw + Wq.
        bool pairs = wide && Avx512F.IsSupported && SW == 2 && DW == 1 && KW == 3;
        int colPhases = pairs ? 1 : SW, phases = SH * colPhases;
        var g = pairs
            ? new Layout { Hq = hq, Wq = 2 * wq, PhaseFloats = hq * 2 * wq + 2 * wq + 128 }
            : new Layout { Hq = hq, Wq = wq, PhaseFloats = hq * wq + wq + 2 * vw + 16 };
        int kvol = KH * KW, mg = s.OutChannels / s.Group;
        int rowPad = SW * wq + 16;
        long need = (long)phases * g.PhaseFloats + n + rowPad + 16;
        if (t_buffer is null || t_buffer.Length < need) t_buffer = GC.AllocateArray<float>((int)Math.Max(need, 1024), pinned: true);
        float* buf = (float*)Unsafe.AsPointer(ref t_buffer[0]);
        float* wideOut = buf + (long)phases * g.PhaseFloats;
        float* rowBuf = wideOut + n;
        // The slack after each phase plane is only read for spare outputs; keep it zero so they stay finite.
        for (int ph = 0; ph < phases; ph++)
            new Span<float>(buf + (long)ph * g.PhaseFloats + g.Hq * g.Wq, g.PhaseFloats - g.Hq * g.Wq).Clear();
        // Filter inputs: one pointer per kernel tap, or with pairs one per kernel row.
        float** taps = stackalloc float*[kvol];
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++)
            {
                int rh = kh * DH, rw = kw * DW;
                taps[kh * KW + kw] = buf + (rh % SH * colPhases + rw % colPhases) * (long)g.PhaseFloats + rh / SH * g.Wq + rw / colPhases;
            }
        if (pairs)
            for (int kh = 0; kh < KH; kh++) taps[kh] = buf + (long)(kh * DH % SH) * g.PhaseFloats + (long)(kh * DH / SH) * g.Wq;

        bool blocked = UseBlocked(in s);
        for (int p = p0; p < p1; p++)
        {
            int b = p / s.InChannels, c = p - b * s.InChannels;
            if (blocked && c % Block == 0 && c + Block <= s.InChannels && p + Block <= p1)
            {
                BlockedChannels<TAct>(in st, b, c);
                p += Block - 1;
                continue;
            }
            BuildPhases(st.X + (long)p * s.InSize, buf, in g, IH, IW, SH, colPhases, PH, PW, rowBuf);
            for (int mi = 0; mi < mg; mi++)
            {
                int m = c * mg + mi;
                float* wk = st.W + (long)m * kvol;
                float bias = st.Bias != null ? st.Bias[m] : 0f;
                if (pairs) FilterPairs<TAct>(taps, KH, wk, bias, wideOut, n, in st.Act);
                else if (kvol == 9)
                {
                    if (wide) Filter9Wide<TAct>(taps, wk, bias, wideOut, n, in st.Act);
                    else Filter9<TAct>(taps, wk, bias, wideOut, n, in st.Act);
                }
                else if (wide) FilterAnyWide<TAct>(taps, kvol, wk, bias, wideOut, n, in st.Act);
                else FilterAny<TAct>(taps, kvol, wk, bias, wideOut, n, in st.Act);
                float* yc = st.Y + ((long)b * s.OutChannels + m) * s.OutSize;
                Compact(wideOut, wq, yc, OH, OW);
                if (st.Act.NeedsRowPass) st.Act.Apply(new Span<float>(yc, OH * OW));
            }
        }
    }

    /// <summary>
    /// Stride 2, kernel width 3: output j of a kernel row r takes r[2j], r[2j + 1], r[2j + 2]; the even and odd
    /// values of two vector loads are one permute each.
    /// </summary>
    private static void FilterPairs<TAct>(float** rows, int KH, float* wk, float bias, float* o, int n, in FusedActivation act) where TAct : struct, IActivationOp
    {
        var ie = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        var io = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        var bv = Vector512.Create(bias);
        if (KH == 3)
        {
            float* r0 = rows[0], r1 = rows[1], r2 = rows[2];
            var w = new Taps9(wk);
            for (int j = 0; j < n; j += 16)
                Vector512.Store(TAct.Apply(Pairs3x3(r0 + 2 * j, r1 + 2 * j, r2 + 2 * j, in w, bv, ie, io), in act), o + j);
            return;
        }
        for (int j = 0; j < n; j += 16)
        {
            var acc = bv;
            for (int kh = 0; kh < KH; kh++)
            {
                float* q = rows[kh] + 2 * j;
                var a = Vector512.Load(q); var b = Vector512.Load(q + 16); var c = Vector512.Load(q + 2); var d = Vector512.Load(q + 18);
                acc = Vector512.FusedMultiplyAdd(Vector512.Create(wk[kh * 3]), Avx512F.PermuteVar16x32x2(a, ie, b), acc);
                acc = Vector512.FusedMultiplyAdd(Vector512.Create(wk[kh * 3 + 1]), Avx512F.PermuteVar16x32x2(a, io, b), acc);
                acc = Vector512.FusedMultiplyAdd(Vector512.Create(wk[kh * 3 + 2]), Avx512F.PermuteVar16x32x2(c, ie, d), acc);
            }
            Vector512.Store(TAct.Apply(acc, in act), o + j);
        }
    }

    /// <summary>Whether the in-place route is taken where it applies; a switch for in-process A/B comparisons with <c>bench/TinyOps.Bench.Kernels ab</c>.</summary>
    internal static bool UseInPlace = true;

    /// <summary>Widest output row the in-place route takes (wider rows stream through the row ring); settable for A/B comparisons.</summary>
    internal static int MaxInPlaceWidth = int.MaxValue;

    /// <summary>3 x 3, stride 1, padding 1 on every side, no dilation, one output per input channel, with AVX-512.</summary>
    private static bool InPlaceSupported(in ConvShape s) =>
        UseInPlace && Avx512F.IsSupported && Vector512.IsHardwareAccelerated && !Force256 && s.Out[2] <= MaxInPlaceWidth
        && s.Kernel[1] == 3 && s.Kernel[2] == 3 && s.Dilation[1] == 1 && s.Dilation[2] == 1
        && s.Stride[1] == 1 && s.Stride[2] == 1 && s.OutChannels == s.InChannels
        && s.PadBegin[1] == 1 && s.PadBegin[2] == 1 && s.Out[1] == s.In[1] && s.Out[2] == s.In[2];

    [ThreadStatic] private static float[]? t_columnMasks;

    /// <summary>
    /// Column masks of the in-place route for planes W wide: for each 16-output step, a Vector512 whose lanes are all
    /// ones where the output has a left neighbour in its row, then one where it has a right one. A lane's column is
    /// f mod W, so the pattern repeats every lcm(16, W) outputs: the table holds that many steps (<paramref name="period"/>,
    /// at most W; 7 for MobileNetV2's 112- to 7-wide planes) and is rebuilt only when W changes.
    /// </summary>
    private static float* ColumnMasks(int W, out int period)
    {
        period = W / Gcd(W, 16);
        int need = period * 32 + 16;
        if (t_columnMasks is null || t_columnMasks.Length < need)
        {
            t_columnMasks = GC.AllocateArray<float>(need, pinned: true);
            t_columnMasksWidth = 0;
        }
        float* m = (float*)(((nint)Unsafe.AsPointer(ref t_columnMasks[0]) + 63) & ~(nint)63);
        if (t_columnMasksWidth != W)
        {
            uint* u = (uint*)m;
            for (int f = 0; f < period * 16; f++)
            {
                int col = f % W, step = f / 16, lane = f % 16;
                u[step * 32 + lane] = col != 0 ? uint.MaxValue : 0;
                u[step * 32 + 16 + lane] = col != W - 1 ? uint.MaxValue : 0;
            }
            t_columnMasksWidth = W;
        }
        return m;
    }

    [ThreadStatic] private static int t_columnMasksWidth;

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);

    /// <summary>
    /// Planes [p0, p1) of a 3 x 3, stride 1, pad 1 filter read and written in place, with no copy: a plane is taken as one
    /// flat run of H * W values, 16 outputs a step, and tap (kh, kw) of output f is the input at f + (kh - 1) * W + kw - 1.
    /// Steps whose reads all fall inside the plane load plainly and sum the taps by kernel column; the left and right
    /// column sums are then cleared (one AND each, masks from <see cref="ColumnMasks"/>) in lanes whose neighbour would
    /// wrap into the next or previous row. Steps touching the first or last row load with zeroing masks (faults
    /// suppressed), so rows outside the plane read as 0 and nothing outside the tensor is touched.
    /// </summary>
    private static void InPlacePlanes<TAct>(in State st, int p0, int p1) where TAct : struct, IActivationOp
    {
        ref readonly ConvShape s = ref st.S;
        int W = s.In[2], HW = s.In[1] * W;
        float* masks = ColumnMasks(W, out int period);
        float* maskEnd = masks + period * 32;
        var lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        var wv = Vector512.Create(W);
        var hwv = Vector512.Create(HW);
        var lastRow = Vector512.Create(HW - W);
        var zero = Vector512<float>.Zero;
        ref readonly var act = ref st.Act;
        int full = HW & ~15;
        // Plain steps: every read in [0, HW): f - W - 1 >= 0 and f + 15 + W + 1 <= HW - 1.
        int lo = W + 1, hi = HW - W - 17;
        for (int p = p0; p < p1; p++)
        {
            int c = p % s.InChannels;
            float* x = st.X + (long)p * HW;
            float* y = st.Y + (long)p * HW;
            var taps = new Taps9(st.W + (long)c * 9);
            var (w0, w1, w2, w3, w4, w5, w6, w7, w8) = (taps.W0, taps.W1, taps.W2, taps.W3, taps.W4, taps.W5, taps.W6, taps.W7, taps.W8);
            var bv = Vector512.Create(st.Bias != null ? st.Bias[c] : 0f);
            float* m = masks;
            for (int f = 0; f < HW; f += 16, m = m + 32 == maskEnd ? masks : m + 32)
            {
                float* r = x + f;
                var mL = Vector512.Load(m);
                var mR = Vector512.Load(m + 16);
                Vector512<float> v;
                if (f >= lo && f <= hi)
                {
                    var left = Vector512.FusedMultiplyAdd(w0, Vector512.Load(r - W - 1), Vector512.FusedMultiplyAdd(w3, Vector512.Load(r - 1), Vector512.Load(r + W - 1) * w6));
                    var mid = Vector512.FusedMultiplyAdd(w1, Vector512.Load(r - W), Vector512.FusedMultiplyAdd(w4, Vector512.Load(r), Vector512.FusedMultiplyAdd(w7, Vector512.Load(r + W), bv)));
                    var right = Vector512.FusedMultiplyAdd(w2, Vector512.Load(r - W + 1), Vector512.FusedMultiplyAdd(w5, Vector512.Load(r + 1), Vector512.Load(r + W + 1) * w8));
                    v = mid + ((left & mL) + (right & mR));
                }
                else
                {
                    var fi = Vector512.Create(f) + lane;
                    var mIn = Vector512.LessThan(fi, hwv).AsSingle();
                    var mT = Vector512.GreaterThanOrEqual(fi, wv).AsSingle() & mIn;
                    var mB = Vector512.LessThan(fi, lastRow).AsSingle();
                    var a0 = Vector512.FusedMultiplyAdd(w0, Avx512F.MaskLoad(r - W - 1, mT & mL, zero), bv);
                    var a1 = Avx512F.MaskLoad(r - 1, mIn & mL, zero) * w3;
                    var a2 = Avx512F.MaskLoad(r + W - 1, mB & mL, zero) * w6;
                    a0 = Vector512.FusedMultiplyAdd(w1, Avx512F.MaskLoad(r - W, mT, zero), a0);
                    a1 = Vector512.FusedMultiplyAdd(w4, Avx512F.MaskLoad(r, mIn, zero), a1);
                    a2 = Vector512.FusedMultiplyAdd(w7, Avx512F.MaskLoad(r + W, mB, zero), a2);
                    a0 = Vector512.FusedMultiplyAdd(w2, Avx512F.MaskLoad(r - W + 1, mT & mR, zero), a0);
                    a1 = Vector512.FusedMultiplyAdd(w5, Avx512F.MaskLoad(r + 1, mIn & mR, zero), a1);
                    a2 = Vector512.FusedMultiplyAdd(w8, Avx512F.MaskLoad(r + W + 1, mB & mR, zero), a2);
                    v = a0 + (a1 + a2);
                }
                v = TAct.Apply(v, in act);
                if (f < full) Vector512.Store(v, y + f);
                else Avx512F.MaskStore(y + f, Transpose16.LaneMask(HW - f), v);
            }
            if (act.NeedsRowPass) act.Apply(new Span<float>(y, HW));
        }
    }

    /// <summary>3 x 3, stride 2, padding 1 before rows and columns (any after), no dilation, one output per input channel, with AVX-512.</summary>
    private static bool InPlaceStride2Supported(in ConvShape s) =>
        UseInPlace && Avx512F.IsSupported && Vector512.IsHardwareAccelerated && !Force256
        && s.Kernel[1] == 3 && s.Kernel[2] == 3 && s.Dilation[1] == 1 && s.Dilation[2] == 1
        && s.Stride[1] == 2 && s.Stride[2] == 2 && s.OutChannels == s.InChannels
        && s.PadBegin[1] == 1 && s.PadBegin[2] == 1;

    /// <summary>
    /// Planes [p0, p1) of a 3 x 3, stride 2 filter with one row and column of padding before, read and written in place.
    /// Output row oh takes input rows 2oh - 1 .. 2oh + 1; 16 outputs of a row take 32 input columns from 2 * ow0, two
    /// loads whose even lanes (one permute) are the centre taps and odd lanes (another) the right taps; the left taps
    /// are the odd lanes moved up one, lane 0 being the last odd lane of the previous 16 (zero at the row start: the
    /// padding). Loads are masked to the row, and to nothing for a row outside the plane, so padding reads as 0 and
    /// nothing outside the tensor is touched.
    /// </summary>
    private static void InPlaceStride2Planes<TAct>(in State st, int p0, int p1) where TAct : struct, IActivationOp
    {
        ref readonly ConvShape s = ref st.S;
        int H = s.In[1], W = s.In[2], OH = s.Out[1], OW = s.Out[2];
        int chunks = (OW + 15) / 16;
        // Per 16-output chunk: the load masks of its two input vectors and the store mask.
        Span<Vector512<float>> masks = stackalloc Vector512<float>[chunks * 3];
        for (int k = 0; k < chunks; k++)
        {
            int cols = W - 32 * k;
            masks[3 * k] = Transpose16.LaneMask(Math.Clamp(cols, 0, 16));
            masks[3 * k + 1] = Transpose16.LaneMask(Math.Clamp(cols - 16, 0, 16));
            masks[3 * k + 2] = Transpose16.LaneMask(Math.Min(16, OW - 16 * k));
        }
        var ie = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        var io = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        var ish = Vector512.Create(31, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14);
        var none = Vector512<float>.Zero;
        var all = Vector512<float>.AllBitsSet;
        ref readonly var act = ref st.Act;
        for (int p = p0; p < p1; p++)
        {
            int c = p % s.InChannels;
            float* x = st.X + (long)p * H * W;
            float* y = st.Y + (long)p * OH * OW;
            var taps = new Taps9(st.W + (long)c * 9);
            var (w0, w1, w2, w3, w4, w5, w6, w7, w8) = (taps.W0, taps.W1, taps.W2, taps.W3, taps.W4, taps.W5, taps.W6, taps.W7, taps.W8);
            var bv = Vector512.Create(st.Bias != null ? st.Bias[c] : 0f);
            for (int oh = 0; oh < OH; oh++)
            {
                int i0 = 2 * oh - 1;
                // a row outside the plane (padding) loads with a mask of nothing from a row inside it
                var v0 = (uint)i0 < (uint)H ? all : none;
                var v1 = (uint)(i0 + 1) < (uint)H ? all : none;
                var v2 = (uint)(i0 + 2) < (uint)H ? all : none;
                float* q0 = x + (long)Math.Clamp(i0, 0, H - 1) * W;
                float* q1 = x + (long)Math.Clamp(i0 + 1, 0, H - 1) * W;
                float* q2 = x + (long)Math.Clamp(i0 + 2, 0, H - 1) * W;
                float* yr = y + (long)oh * OW;
                Vector512<float> prev0 = none, prev1 = none, prev2 = none;
                for (int k = 0; k < chunks; k++)
                {
                    var mA = masks[3 * k];
                    var mB = masks[3 * k + 1];
                    int off = 32 * k;
                    var acc0 = KernelRow2(q0 + off, mA & v0, mB & v0, w0, w1, w2, bv, ref prev0, ie, io, ish);
                    var acc1 = KernelRow2(q1 + off, mA & v1, mB & v1, w3, w4, w5, none, ref prev1, ie, io, ish);
                    var acc2 = KernelRow2(q2 + off, mA & v2, mB & v2, w6, w7, w8, none, ref prev2, ie, io, ish);
                    var v = TAct.Apply(acc0 + (acc1 + acc2), in act);
                    if (16 * k + 16 <= OW) Vector512.Store(v, yr + 16 * k);
                    else Avx512F.MaskStore(yr + 16 * k, masks[3 * k + 2], v);
                }
            }
            if (act.NeedsRowPass) act.Apply(new Span<float>(y, OH * OW));
        }
    }

    /// <summary>
    /// One kernel row of <see cref="InPlaceStride2Planes"/> for 16 outputs: 32 input columns from <paramref name="q"/>
    /// (two masked loads), centre taps (even lanes) times <paramref name="wm"/>, right taps (odd lanes) times
    /// <paramref name="wr"/>, left taps (odd lanes moved up one, lane 0 from <paramref name="prev"/>, the previous 16
    /// outputs' odd lanes, which this call replaces) times <paramref name="wl"/>, added to <paramref name="acc"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> KernelRow2(float* q, Vector512<float> maskA, Vector512<float> maskB, Vector512<float> wl, Vector512<float> wm,
        Vector512<float> wr, Vector512<float> acc, ref Vector512<float> prev, Vector512<int> ie, Vector512<int> io, Vector512<int> ish)
    {
        var a = Avx512F.MaskLoad(q, maskA, Vector512<float>.Zero);
        var b = Avx512F.MaskLoad(q + 16, maskB, Vector512<float>.Zero);
        var odd = Avx512F.PermuteVar16x32x2(a, io, b);
        acc = Vector512.FusedMultiplyAdd(wm, Avx512F.PermuteVar16x32x2(a, ie, b), acc);
        acc = Vector512.FusedMultiplyAdd(wr, odd, acc);
        acc = Vector512.FusedMultiplyAdd(wl, Avx512F.PermuteVar16x32x2(odd, ish, prev), acc);
        prev = odd;
        return acc;
    }

    /// <summary>Whether the row-streaming route is taken where it applies (else the phase-plane route); a switch for in-process A/B comparisons with <c>bench/TinyOps.Bench.Kernels ab</c>.</summary>
    internal static bool UseRows = true;

    /// <summary>Narrowest output row the row-streaming route takes at stride 1 (narrower planes keep the flat filter, which fills whole vectors).</summary>
    private const int MinRowsWidth = 48;

    /// <summary>3 x 3, stride 1 or 2, no dilation, one output per input channel, pads of at most 2, with AVX-512.</summary>
    private static bool RowsSupported(in ConvShape s) =>
        UseRows && Avx512F.IsSupported && Vector512.IsHardwareAccelerated && !Force256 && (s.Out[2] >= MinRowsWidth || s.Stride[2] == 2)
        && s.Kernel[1] == 3 && s.Kernel[2] == 3 && s.Dilation[1] == 1 && s.Dilation[2] == 1
        && s.Stride[1] == s.Stride[2] && (s.Stride[1] == 1 || s.Stride[1] == 2)
        && s.OutChannels == s.InChannels && s.PadBegin[1] <= 2 && s.PadBegin[2] <= 2;

    [ThreadStatic] private static float[]? t_rows;
    [ThreadStatic] private static (int RowLen, int PW, int IW) t_rowsGeometry;

    /// <summary>
    /// One plane, streamed by output rows: each input row is copied once into a zero-padded row of a small ring (L1),
    /// the filter reads the three rows it needs with unaligned loads (stride 2: two loads and a permute per tap
    /// column pair), and the output is written straight into its NCHW row (a masked store for the tail).
    /// </summary>
    private static void RowsPlane<TAct>(in State st, int p) where TAct : struct, IActivationOp
    {
        ref readonly ConvShape s = ref st.S;
        int IH = s.In[1], IW = s.In[2], OH = s.Out[1], OW = s.Out[2], S = s.Stride[1];
        int PH = s.PadBegin[1], PW = s.PadBegin[2];
        int c = p % s.InChannels;
        // padded row: PW zeros, IW values, zeros to the end; reads reach (OW rounded up to 16 - 1) * S + 2 + 16 (stride 2 loads)
        int ow16 = (OW + 15) & ~15;
        int rowLen = ((ow16 - 1) * S + 2 + 32 + 16) & ~15;
        rowLen = Math.Max(rowLen, (PW + IW + 15) & ~15);
        int need = 5 * rowLen + 16;
        if (t_rows is null || t_rows.Length < need)
        {
            t_rows = GC.AllocateArray<float>(need, pinned: true);
            t_rowsGeometry = default;
        }
        float* buf = (float*)(((nint)Unsafe.AsPointer(ref t_rows[0]) + 63) & ~(nint)63);
        float* zero = buf + 4 * rowLen;
        // the padding of the ring rows and the zero row stay zero while the geometry stays: rows only write [PW, PW + IW)
        if (t_rowsGeometry != (rowLen, PW, IW))
        {
            new Span<float>(buf, 5 * rowLen).Clear();
            t_rowsGeometry = (rowLen, PW, IW);
        }
        Span<int> ringRow = stackalloc int[4]; ringRow.Fill(-1);
        float* x = st.X + (long)p * s.InSize;
        float* y = st.Y + (long)p * s.OutSize;
        float* wk = st.W + (long)c * 9;
        float bias = st.Bias != null ? st.Bias[c] : 0f;
        var taps = new Taps9(wk);
        var (w0, w1, w2, w3, w4, w5, w6, w7, w8) = (taps.W0, taps.W1, taps.W2, taps.W3, taps.W4, taps.W5, taps.W6, taps.W7, taps.W8);
        var bv = Vector512.Create(bias);
        ref readonly var act = ref st.Act;
        int tail = OW & 15;
        var tailMask = Transpose16.LaneMask(tail);
        int full = OW - tail;
        var ie = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        var io = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        for (int oy = 0; oy < OH; oy++)
        {
            float* r0 = Row(oy * S - PH, x, IH, IW, PW, buf, rowLen, zero, ringRow);
            float* r1 = Row(oy * S - PH + 1, x, IH, IW, PW, buf, rowLen, zero, ringRow);
            float* r2 = Row(oy * S - PH + 2, x, IH, IW, PW, buf, rowLen, zero, ringRow);
            float* yr = y + (long)oy * OW;
            if (S == 1)
            {
                int ox = 0;
                for (; ox < OW; ox += 16)
                {
                    var a0 = Vector512.FusedMultiplyAdd(w0, Vector512.Load(r0 + ox), bv);
                    var a1 = Vector512.Load(r1 + ox) * w3;
                    var a2 = Vector512.Load(r2 + ox) * w6;
                    a0 = Vector512.FusedMultiplyAdd(w1, Vector512.Load(r0 + ox + 1), a0);
                    a1 = Vector512.FusedMultiplyAdd(w4, Vector512.Load(r1 + ox + 1), a1);
                    a2 = Vector512.FusedMultiplyAdd(w7, Vector512.Load(r2 + ox + 1), a2);
                    a0 = Vector512.FusedMultiplyAdd(w2, Vector512.Load(r0 + ox + 2), a0);
                    a1 = Vector512.FusedMultiplyAdd(w5, Vector512.Load(r1 + ox + 2), a1);
                    a2 = Vector512.FusedMultiplyAdd(w8, Vector512.Load(r2 + ox + 2), a2);
                    var v = TAct.Apply(a0 + (a1 + a2), in act);
                    if (ox < full) Vector512.Store(v, yr + ox);
                    else Avx512F.MaskStore(yr + ox, tailMask, v);
                }
            }
            else
            {
                for (int ox = 0; ox < OW; ox += 16)
                {
                    var v = TAct.Apply(Pairs3x3(r0 + 2 * ox, r1 + 2 * ox, r2 + 2 * ox, in taps, bv, ie, io), in act);
                    if (ox < full) Vector512.Store(v, yr + ox);
                    else Avx512F.MaskStore(yr + ox, tailMask, v);
                }
            }
            if (act.NeedsRowPass) act.Apply(new Span<float>(yr, OW));
        }
    }

    /// <summary>The padded copy of input row iy in the ring (copied on first use), or the zero row outside the input.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* Row(int iy, float* x, int IH, int IW, int PW, float* buf, int rowLen, float* zero, Span<int> ring)
    {
        if ((uint)iy >= (uint)IH) return zero;
        int slot = iy & 3;
        float* d = buf + slot * rowLen;
        if (ring[slot] != iy)
        {
            ring[slot] = iy;
            float* src = x + (long)iy * IW;
            float* dst = d + PW;
            int i = 0;
            for (; i + 16 <= IW; i += 16) Vector512.Store(Vector512.Load(src + i), dst + i);
            for (; i < IW; i++) dst[i] = src[i];
        }
        return d;
    }

    /// <summary>The nine weights of a 3 x 3 filter, each broadcast to a Vector512.</summary>
    private readonly struct Taps9
    {
        public readonly Vector512<float> W0, W1, W2, W3, W4, W5, W6, W7, W8;

        public Taps9(float* wk)
        {
            W0 = Vector512.Create(wk[0]); W1 = Vector512.Create(wk[1]); W2 = Vector512.Create(wk[2]);
            W3 = Vector512.Create(wk[3]); W4 = Vector512.Create(wk[4]); W5 = Vector512.Create(wk[5]);
            W6 = Vector512.Create(wk[6]); W7 = Vector512.Create(wk[7]); W8 = Vector512.Create(wk[8]);
        }
    }

    /// <summary>
    /// 16 outputs of a 3 x 3, stride 2 filter over three padded rows (q_r at twice the first output's column): output
    /// j of kernel row r takes q_r[2j], q_r[2j + 1], q_r[2j + 2], the even and odd values of two vector loads split by
    /// one permute each; one partial sum per kernel row, added at the end.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Pairs3x3(float* q0, float* q1, float* q2, in Taps9 w, Vector512<float> bias, Vector512<int> ie, Vector512<int> io)
    {
        var a = Vector512.Load(q0); var b = Vector512.Load(q0 + 16); var c = Vector512.Load(q0 + 2); var d = Vector512.Load(q0 + 18);
        var acc0 = Vector512.FusedMultiplyAdd(w.W0, Avx512F.PermuteVar16x32x2(a, ie, b), bias);
        acc0 = Vector512.FusedMultiplyAdd(w.W1, Avx512F.PermuteVar16x32x2(a, io, b), acc0);
        acc0 = Vector512.FusedMultiplyAdd(w.W2, Avx512F.PermuteVar16x32x2(c, ie, d), acc0);
        a = Vector512.Load(q1); b = Vector512.Load(q1 + 16); c = Vector512.Load(q1 + 2); d = Vector512.Load(q1 + 18);
        var acc1 = Avx512F.PermuteVar16x32x2(a, ie, b) * w.W3;
        acc1 = Vector512.FusedMultiplyAdd(w.W4, Avx512F.PermuteVar16x32x2(a, io, b), acc1);
        acc1 = Vector512.FusedMultiplyAdd(w.W5, Avx512F.PermuteVar16x32x2(c, ie, d), acc1);
        a = Vector512.Load(q2); b = Vector512.Load(q2 + 16); c = Vector512.Load(q2 + 2); d = Vector512.Load(q2 + 18);
        var acc2 = Avx512F.PermuteVar16x32x2(a, ie, b) * w.W6;
        acc2 = Vector512.FusedMultiplyAdd(w.W7, Avx512F.PermuteVar16x32x2(a, io, b), acc2);
        acc2 = Vector512.FusedMultiplyAdd(w.W8, Avx512F.PermuteVar16x32x2(c, ie, d), acc2);
        return acc0 + (acc1 + acc2);
    }

    [ThreadStatic] private static float[]? t_blocked;

    /// <summary>
    /// Channels [c0, c0 + 16) of image b, channels-last: the planes are transposed into a zero-padded [Hp][Wp][16]
    /// copy, each output pixel sums its taps as whole vectors (one FMA per tap for 16 channels), and the [OH*OW][16]
    /// result is transposed back into the NCHW planes.
    /// </summary>
    private static void BlockedChannels<TAct>(in State st, int b, int c0) where TAct : struct, IActivationOp
    {
        ref readonly ConvShape s = ref st.S;
        int IH = s.In[1], IW = s.In[2], KH = s.Kernel[1], KW = s.Kernel[2];
        int OH = s.Out[1], OW = s.Out[2];
        int SH = s.Stride[1], SW = s.Stride[2], DH = s.Dilation[1], DW = s.Dilation[2];
        int PH = s.PadBegin[1], PW = s.PadBegin[2];
        int Hp = (OH - 1) * SH + (KH - 1) * DH + 1, Wp = (OW - 1) * SW + (KW - 1) * DW + 1;
        int kvol = KH * KW, P = OH * OW;
        long need = ((long)Hp * Wp + P + kvol + 2) * Block;
        if (t_blocked is null || t_blocked.Length < need) t_blocked = GC.AllocateArray<float>((int)Math.Max(need, 1024), pinned: true);
        float* pad = (float*)Unsafe.AsPointer(ref t_blocked[0]);
        float* outT = pad + (long)Hp * Wp * Block;
        float* wT = outT + (long)P * Block;
        float* bT = wT + (long)kvol * Block;
        // Weights [tap][16] and bias for the block.
        for (int ci = 0; ci < Block; ci++)
        {
            float* wk = st.W + (long)(c0 + ci) * kvol;
            for (int t = 0; t < kvol; t++) wT[t * Block + ci] = wk[t];
            bT[ci] = st.Bias != null ? st.Bias[c0 + ci] : 0f;
        }
        // Transpose in: zero the padding the input does not cover, then move 16 pixels x 16 channels at a time
        // through registers (the last ragged group with masked loads); a pixel the window never reaches (rows or
        // columns past Hp, Wp) goes to a spare vector.
        float* xc0 = st.X + ((long)b * s.InChannels + c0) * s.InSize;
        float* spare = bT + Block;
        int rowsIn = Math.Min(IH, Hp - PH), colsIn = Math.Min(IW, Wp - PW);
        ClearBorder(pad, Hp, Wp, PH, PW, rowsIn, colsIn);
        float** dst = stackalloc float*[Block];
        int plane = IH * IW, ih0 = 0, iw0 = 0;
        if (Avx512F.IsSupported)
        {
            for (int f = 0; f < plane; f += Block)
            {
                int n = Math.Min(Block, plane - f);
                for (int j = 0; j < n; j++)
                {
                    int rr = ih0 + PH, qq = iw0 + PW;
                    dst[j] = rr < Hp && qq < Wp ? pad + ((long)rr * Wp + qq) * Block : spare;
                    if (++iw0 == IW) { iw0 = 0; ih0++; }
                }
                Transpose16.Run(xc0 + f, s.InSize, Block, n, dst);
            }
        }
        else
        {
            for (int f = 0; f < plane; f++)
            {
                int rr = ih0 + PH, qq = iw0 + PW;
                if (rr < Hp && qq < Wp)
                {
                    float* d = pad + ((long)rr * Wp + qq) * Block;
                    for (int ci = 0; ci < Block; ci++) d[ci] = xc0[(long)ci * s.InSize + f];
                }
                if (++iw0 == IW) { iw0 = 0; ih0++; }
            }
        }
        var bv = Vector512.Load(bT);
        ref readonly var act = ref st.Act;
        if (kvol == 9)
        {
            var w0 = Vector512.Load(wT); var w1 = Vector512.Load(wT + 16); var w2 = Vector512.Load(wT + 32);
            var w3 = Vector512.Load(wT + 48); var w4 = Vector512.Load(wT + 64); var w5 = Vector512.Load(wT + 80);
            var w6 = Vector512.Load(wT + 96); var w7 = Vector512.Load(wT + 112); var w8 = Vector512.Load(wT + 128);
            long c1 = (long)DW * Block, c2 = 2 * c1, rs = (long)DH * Wp * Block;
            for (int oh = 0; oh < OH; oh++)
            {
                float* row = pad + (long)oh * SH * Wp * Block;
                float* o = outT + (long)oh * OW * Block;
                for (int ow = 0; ow < OW; ow++)
                {
                    float* q = row + (long)ow * SW * Block;
                    var a0 = Vector512.FusedMultiplyAdd(w0, Vector512.Load(q), bv);
                    var a1 = Vector512.Load(q + rs) * w3;
                    var a2 = Vector512.Load(q + 2 * rs) * w6;
                    a0 = Vector512.FusedMultiplyAdd(w1, Vector512.Load(q + c1), a0);
                    a1 = Vector512.FusedMultiplyAdd(w4, Vector512.Load(q + rs + c1), a1);
                    a2 = Vector512.FusedMultiplyAdd(w7, Vector512.Load(q + 2 * rs + c1), a2);
                    a0 = Vector512.FusedMultiplyAdd(w2, Vector512.Load(q + c2), a0);
                    a1 = Vector512.FusedMultiplyAdd(w5, Vector512.Load(q + rs + c2), a1);
                    a2 = Vector512.FusedMultiplyAdd(w8, Vector512.Load(q + 2 * rs + c2), a2);
                    Vector512.Store(TAct.Apply(a0 + (a1 + a2), in act), o + (long)ow * Block);
                }
            }
        }
        else
        {
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++)
                {
                    var a = bv;
                    for (int kh = 0; kh < KH; kh++)
                    {
                        float* q = pad + ((long)(oh * SH + kh * DH) * Wp + ow * SW) * Block;
                        for (int kw = 0; kw < KW; kw++)
                            a = Vector512.FusedMultiplyAdd(Vector512.Load(wT + (kh * KW + kw) * Block), Vector512.Load(q + (long)kw * DW * Block), a);
                    }
                    Vector512.Store(TAct.Apply(a, in act), outT + ((long)oh * OW + ow) * Block);
                }
        }
        // Transpose out: 16 pixels x 16 channels at a time into the NCHW planes (the last ragged group with masked stores).
        float* yc0 = st.Y + ((long)b * s.OutChannels + c0) * s.OutSize;
        if (Avx512F.IsSupported)
            for (int fo = 0; fo < P; fo += Block)
                Transpose16.Run(outT + (long)fo * Block, Block, Math.Min(Block, P - fo), yc0 + fo, s.OutSize, Math.Min(Block, P - fo));
        else
            for (int fo = 0; fo < P; fo++)
                for (int ci = 0; ci < Block; ci++) yc0[(long)ci * s.OutSize + fo] = outT[(long)fo * Block + ci];
        if (act.NeedsRowPass)
            for (int ci = 0; ci < Block; ci++) act.Apply(new Span<float>(yc0 + (long)ci * s.OutSize, P));
    }

    /// <summary>
    /// Zeroes the parts of the channels-last padded copy [Hp][Wp][16] that no input pixel is written to: the rows
    /// above and below the <paramref name="rows"/> input rows, and each input row's columns left and right of its
    /// <paramref name="cols"/> pixels.
    /// </summary>
    private static void ClearBorder(float* pad, int Hp, int Wp, int PH, int PW, int rows, int cols)
    {
        PH = Math.Min(PH, Hp);
        PW = Math.Min(PW, Wp);
        new Span<float>(pad, PH * Wp * Block).Clear();
        int below = Math.Min(Hp, PH + Math.Max(rows, 0));
        new Span<float>(pad + (long)below * Wp * Block, (Hp - below) * Wp * Block).Clear();
        int right = Math.Min(Wp, PW + Math.Max(cols, 0));
        for (int r = PH; r < below; r++)
        {
            float* row = pad + (long)r * Wp * Block;
            new Span<float>(row, PW * Block).Clear();
            new Span<float>(row + (long)right * Block, (Wp - right) * Block).Clear();
        }
    }

    /// <summary>
    /// Writes the phase planes of one input plane: phase (pr, pc) row i, column j holds x[i * SH + pr - PH,
    /// j * SW + pc - PW], zero outside the input. Stride 2 splits each source row straight into its two column
    /// phases (one two-source permute per eight or sixteen values).
    /// </summary>
    private static void BuildPhases(float* x, float* buf, in Layout g, int IH, int IW, int SH, int SW, int PH, int PW, float* rowBuf)
    {
        int Wq = g.Wq, total = SW * Wq;
        int lo = Math.Min(PW, total), cnt = Math.Max(0, Math.Min(IW, total - PW));
        for (int pr = 0; pr < SH; pr++)
            for (int i = 0; i < g.Hq; i++)
            {
                int ih = i * SH + pr - PH;
                float* row0 = buf + (long)(pr * SW) * g.PhaseFloats + (long)i * Wq; // phase (pr, 0); phase pc is pc planes on
                if ((uint)ih >= (uint)IH)
                {
                    for (int pc = 0; pc < SW; pc++) new Span<float>(row0 + (long)pc * g.PhaseFloats, Wq).Clear();
                    continue;
                }
                float* src = x + (long)ih * IW;
                if (SW == 1)
                {
                    for (int q = 0; q < lo; q++) row0[q] = 0f;
                    Copy(src, row0 + lo, cnt);
                    for (int q = lo + cnt; q < Wq; q++) row0[q] = 0f;
                }
                else if (SW == 2) Lanes.Split2(src, IW, PW, Wq, row0, row0 + g.PhaseFloats);
                else
                {
                    for (int q = 0; q < lo; q++) rowBuf[q] = 0f;
                    Copy(src, rowBuf + lo, cnt);
                    for (int q = lo + cnt; q < total; q++) rowBuf[q] = 0f;
                    for (int pc = 0; pc < SW; pc++)
                    {
                        float* d = row0 + (long)pc * g.PhaseFloats;
                        for (int j = 0; j < Wq; j++) d[j] = rowBuf[j * SW + pc];
                    }
                }
            }
    }

    /// <summary>A short copy without a library call (rows here are tens of floats).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Copy(float* src, float* dst, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Load(src + i), dst + i);
        for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(src + i), dst + i);
        for (; i < n; i++) dst[i] = src[i];
    }

    /// <summary>
    /// Copies the first OW of every Wq values into consecutive rows of y. A row's vector stores may run past its end
    /// into the rows after it, which are written later; none runs past the plane.
    /// </summary>
    private static void Compact(float* wide, int Wq, float* y, int OH, int OW)
    {
        long end = (long)OH * OW;
        for (int oh = 0; oh < OH; oh++)
        {
            float* src = wide + (long)oh * Wq;
            long at = (long)oh * OW;
            float* dst = y + at;
            int i = 0;
            for (; i < OW && at + i + 8 <= end; i += 8) Vector256.Store(Vector256.Load(src + i), dst + i);
            for (; i < OW; i++) dst[i] = src[i];
        }
    }

    private static void Filter9Wide<TAct>(float** t, float* wk, float bias, float* o, int n, in FusedActivation act) where TAct : struct, IActivationOp
    {
        float* t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3], t4 = t[4], t5 = t[5], t6 = t[6], t7 = t[7], t8 = t[8];
        var w0 = Vector512.Create(wk[0]); var w1 = Vector512.Create(wk[1]); var w2 = Vector512.Create(wk[2]);
        var w3 = Vector512.Create(wk[3]); var w4 = Vector512.Create(wk[4]); var w5 = Vector512.Create(wk[5]);
        var w6 = Vector512.Create(wk[6]); var w7 = Vector512.Create(wk[7]); var w8 = Vector512.Create(wk[8]);
        var bv = Vector512.Create(bias);
        for (int j = 0; j < n; j += 32)
        {
            // Two outputs vectors, each as three partial sums (one per kernel row): six short chains.
            var a0 = Vector512.FusedMultiplyAdd(w0, Vector512.Load(t0 + j), bv);
            var a1 = Vector512.Load(t3 + j) * w3;
            var a2 = Vector512.Load(t6 + j) * w6;
            var b0 = Vector512.FusedMultiplyAdd(w0, Vector512.Load(t0 + j + 16), bv);
            var b1 = Vector512.Load(t3 + j + 16) * w3;
            var b2 = Vector512.Load(t6 + j + 16) * w6;
            a0 = Vector512.FusedMultiplyAdd(w1, Vector512.Load(t1 + j), a0);
            a1 = Vector512.FusedMultiplyAdd(w4, Vector512.Load(t4 + j), a1);
            a2 = Vector512.FusedMultiplyAdd(w7, Vector512.Load(t7 + j), a2);
            b0 = Vector512.FusedMultiplyAdd(w1, Vector512.Load(t1 + j + 16), b0);
            b1 = Vector512.FusedMultiplyAdd(w4, Vector512.Load(t4 + j + 16), b1);
            b2 = Vector512.FusedMultiplyAdd(w7, Vector512.Load(t7 + j + 16), b2);
            a0 = Vector512.FusedMultiplyAdd(w2, Vector512.Load(t2 + j), a0);
            a1 = Vector512.FusedMultiplyAdd(w5, Vector512.Load(t5 + j), a1);
            a2 = Vector512.FusedMultiplyAdd(w8, Vector512.Load(t8 + j), a2);
            b0 = Vector512.FusedMultiplyAdd(w2, Vector512.Load(t2 + j + 16), b0);
            b1 = Vector512.FusedMultiplyAdd(w5, Vector512.Load(t5 + j + 16), b1);
            b2 = Vector512.FusedMultiplyAdd(w8, Vector512.Load(t8 + j + 16), b2);
            Vector512.Store(TAct.Apply(a0 + (a1 + a2), in act), o + j);
            Vector512.Store(TAct.Apply(b0 + (b1 + b2), in act), o + j + 16);
        }
    }

    private static void Filter9<TAct>(float** t, float* wk, float bias, float* o, int n, in FusedActivation act) where TAct : struct, IActivationOp
    {
        float* t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3], t4 = t[4], t5 = t[5], t6 = t[6], t7 = t[7], t8 = t[8];
        var w0 = Vector256.Create(wk[0]); var w1 = Vector256.Create(wk[1]); var w2 = Vector256.Create(wk[2]);
        var w3 = Vector256.Create(wk[3]); var w4 = Vector256.Create(wk[4]); var w5 = Vector256.Create(wk[5]);
        var w6 = Vector256.Create(wk[6]); var w7 = Vector256.Create(wk[7]); var w8 = Vector256.Create(wk[8]);
        var bv = Vector256.Create(bias);
        for (int j = 0; j < n; j += 16)
        {
            var a0 = Fma.MultiplyAdd(w0, Vector256.Load(t0 + j), bv);
            var a1 = Vector256.Load(t3 + j) * w3;
            var a2 = Vector256.Load(t6 + j) * w6;
            var b0 = Fma.MultiplyAdd(w0, Vector256.Load(t0 + j + 8), bv);
            var b1 = Vector256.Load(t3 + j + 8) * w3;
            var b2 = Vector256.Load(t6 + j + 8) * w6;
            a0 = Fma.MultiplyAdd(w1, Vector256.Load(t1 + j), a0);
            a1 = Fma.MultiplyAdd(w4, Vector256.Load(t4 + j), a1);
            a2 = Fma.MultiplyAdd(w7, Vector256.Load(t7 + j), a2);
            b0 = Fma.MultiplyAdd(w1, Vector256.Load(t1 + j + 8), b0);
            b1 = Fma.MultiplyAdd(w4, Vector256.Load(t4 + j + 8), b1);
            b2 = Fma.MultiplyAdd(w7, Vector256.Load(t7 + j + 8), b2);
            a0 = Fma.MultiplyAdd(w2, Vector256.Load(t2 + j), a0);
            a1 = Fma.MultiplyAdd(w5, Vector256.Load(t5 + j), a1);
            a2 = Fma.MultiplyAdd(w8, Vector256.Load(t8 + j), a2);
            b0 = Fma.MultiplyAdd(w2, Vector256.Load(t2 + j + 8), b0);
            b1 = Fma.MultiplyAdd(w5, Vector256.Load(t5 + j + 8), b1);
            b2 = Fma.MultiplyAdd(w8, Vector256.Load(t8 + j + 8), b2);
            Vector256.Store(TAct.Apply(a0 + (a1 + a2), in act), o + j);
            Vector256.Store(TAct.Apply(b0 + (b1 + b2), in act), o + j + 8);
        }
    }

    private static void FilterAnyWide<TAct>(float** t, int kvol, float* wk, float bias, float* o, int n, in FusedActivation act) where TAct : struct, IActivationOp
    {
        var bv = Vector512.Create(bias);
        for (int j = 0; j < n; j += 32)
        {
            Vector512<float> a = bv, b = Vector512<float>.Zero;
            for (int i = 0; i < kvol; i++)
            {
                var wv = Vector512.Create(wk[i]);
                a = Vector512.FusedMultiplyAdd(wv, Vector512.Load(t[i] + j), a);
                b = Vector512.FusedMultiplyAdd(wv, Vector512.Load(t[i] + j + 16), b);
            }
            Vector512.Store(TAct.Apply(a, in act), o + j);
            Vector512.Store(TAct.Apply(b + bv, in act), o + j + 16);
        }
    }

    private static void FilterAny<TAct>(float** t, int kvol, float* wk, float bias, float* o, int n, in FusedActivation act) where TAct : struct, IActivationOp
    {
        var bv = Vector256.Create(bias);
        for (int j = 0; j < n; j += 16)
        {
            Vector256<float> a = bv, b = Vector256<float>.Zero;
            for (int i = 0; i < kvol; i++)
            {
                var wv = Vector256.Create(wk[i]);
                a = Fma.MultiplyAdd(wv, Vector256.Load(t[i] + j), a);
                b = Fma.MultiplyAdd(wv, Vector256.Load(t[i] + j + 8), b);
            }
            Vector256.Store(TAct.Apply(a, in act), o + j);
            Vector256.Store(TAct.Apply(b + bv, in act), o + j + 8);
        }
    }
}
