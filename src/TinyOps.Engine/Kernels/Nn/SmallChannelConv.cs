using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TinyOps.Engine.Kernels.Common;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// Dense 2-D convolution over few input channels (a network's stem: RGB or grey images), computed directly along
/// output rows: sixteen outputs of a row are two vectors, four output channels share each input vector load (eight
/// independent accumulators keep both FMA pipes busy), and every kernel tap of every input channel adds a broadcast
/// weight times a vector load. The input is first copied into a
/// zero-padded, stride-phase-split layout (phase p of a row holds padded columns p, p+s, p+2s, ...), so each tap of
/// eight consecutive outputs is one contiguous load, for any stride and dilation, with no border tests. Outputs land
/// in NCHW directly; bias and the fused activation are applied before the store. With <see cref="WorkerPool"/>
/// threads the split copy is shared by rows, then the outputs by bands of rows (Vector512) or by channel groups.
/// </summary>
internal static unsafe class SmallChannelConv
{
    private const int V = 8;
    /// <summary>Output channels that share one pass over the input taps.</summary>
    private const int Group = 4;
    /// <summary>Most input channels this path takes; deeper convolutions go to the implicit GEMM or im2col.</summary>
    public const int MaxChannels = 4;

    private struct State
    {
        public float* Planes, Zero, W, Bias, Y;
        public int* Taps;
        public int C, M, KH, KW, OH, OW, IH, SH, DH, PH, L, RowFloats, GroupSize;
        public float* Packed;
        public FusedActivation Act;
        /// <summary>The image being split into <see cref="Planes"/>: its rows (C x IH of IW floats), padding and stride along them.</summary>
        public float* X;
        public int IW, PW, SW;
    }

    private static State s_state;

    /// <summary>Output channels per group on the Vector512 path (8 channels x 2 vectors = 16 accumulators).</summary>
    private const int Group512 = 8;

    /// <summary>Tests set this to run the Vector256 code where Vector512 is accelerated.</summary>
    internal static bool Force256;

    [ThreadStatic] private static float[]? t_packed;

    /// <summary>Whether this route is taken where it applies (else stems take the implicit GEMM); a switch for in-process A/B comparisons with <c>bench/TinyOps.Bench.Kernels ab</c>.</summary>
    internal static bool Enabled = true;

    public static bool Supports(in ConvShape s) =>
        Enabled && !SGemm.ForceScalar && Vector256.IsHardwareAccelerated && Fma.IsSupported && Avx.IsSupported
        && s.Group == 1 && s.In[0] == 1 && s.Kernel[0] == 1 && s.Out[0] == 1 && s.KernelSize > 1
        && s.InChannels <= MaxChannels && s.Out[2] >= 4;

    private static int RowLength(in ConvShape s)
    {
        int owv = (s.Out[2] + 4 * V - 1) / (4 * V) * (4 * V); // whole 32-output steps of the Vector512 path
        return owv + ((s.Kernel[2] - 1) * s.Dilation[2]) / s.Stride[2] + 1;
    }

    /// <summary>Floats of scratch for the phase-split copy of one image and its zero row.</summary>
    public static int ScratchFloats(in ConvShape s)
    {
        int rowFloats = s.Stride[2] * RowLength(in s);
        return (s.InChannels * s.In[1] + 1) * rowFloats + V;
    }

    public static void Run(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, in ConvShape s,
        in FusedActivation act, int threads, Span<float> scratch, Span<float> biasBuf, Span<int> taps)
    {
        int C = s.InChannels, M = s.OutChannels, IH = s.In[1], IW = s.In[2], KH = s.Kernel[1], KW = s.Kernel[2];
        int SW = s.Stride[2], DW = s.Dilation[2], PW = s.PadBegin[2];
        int L = RowLength(in s), rowFloats = SW * L;
        if (scratch.Length < ScratchFloats(in s) || biasBuf.Length < M || taps.Length < KW)
            throw new ArgumentException("SmallChannelConv: buffers too small for the convolution shape");
        for (int kw = 0; kw < KW; kw++)
        {
            int off = kw * DW;
            taps[kw] = off % SW * L + off / SW;
        }
        if (bias.IsEmpty) biasBuf.Slice(0, M).Clear(); else bias.Slice(0, M).CopyTo(biasBuf);
        fixed (float* px = x, pw = w, pb = biasBuf, py = y, ps = scratch)
        fixed (int* pt = taps)
        {
            float* zero = ps + (long)C * IH * rowFloats;
            new Span<float>(zero, rowFloats).Clear();
            bool wide = Vector512.IsHardwareAccelerated && !Force256;
            int gs = wide ? Group512 : Group;
            float* packed = wide ? PackGroups(pw, M, C * KH * KW) : null; // once per run, shared by the images of the batch
            for (int n = 0; n < s.Batch; n++)
            {
                var st = new State
                {
                    Planes = ps, Zero = zero, W = pw, Bias = pb, Y = py + (long)n * M * s.OutSize, Taps = pt,
                    C = C, M = M, KH = KH, KW = KW, OH = s.Out[1], OW = s.Out[2], IH = IH, SH = s.Stride[1], DH = s.Dilation[1],
                    PH = s.PadBegin[1], L = L, RowFloats = rowFloats, Act = act, GroupSize = gs, Packed = packed,
                    X = px + (long)n * C * IH * IW, IW = IW, PW = PW, SW = SW,
                };
                int groups = (M + gs - 1) / gs;
                long work = (long)M * s.OutSize * C * KH * KW;
                if (threads > 1 && groups > 1 && work >= 256 * 1024 && WorkerPool.TryEnter())
                {
                    try
                    {
                        s_state = st;
                        // the split copy too (a 224 x 224 RGB stem: a fifth of the layer's single-thread time)
                        int rows = C * IH;
                        WorkerPool.Run(&SplitPart, threads, WorkerPool.Chunks(threads, rows));
                        WorkerPool.Run(&Part, threads, WorkerPool.Chunks(threads, gs == Group512 ? st.OH : groups));
                    }
                    finally
                    {
                        WorkerPool.Exit();
                    }
                }
                else
                {
                    SplitRows(in st, 0, C * IH);
                    Groups(in st, 0, groups);
                }
            }
        }
    }

    private static void Part(int part, int parts)
    {
        int groups = (s_state.M + s_state.GroupSize - 1) / s_state.GroupSize;
        if (s_state.GroupSize == Group512)
        {
            // Vector512: every part takes all channel groups over a band of output rows (measured faster here than
            // splitting the groups, which had each thread at under half speed).
            int oh = s_state.OH;
            Groups(in s_state, 0, groups, (int)((long)oh * part / parts), (int)((long)oh * (part + 1) / parts));
            return;
        }
        Groups(in s_state, (int)((long)groups * part / parts), (int)((long)groups * (part + 1) / parts));
    }

    /// <summary>Weights [M][K] as groups of 8 channels [M / 8][K][8], missing channels zero (pinned, grow-only).</summary>
    private static float* PackGroups(float* w, int M, int K)
    {
        int groups = (M + Group512 - 1) / Group512;
        int need = groups * K * Group512;
        if (t_packed is null || t_packed.Length < need) t_packed = GC.AllocateArray<float>(Math.Max(need, 256), pinned: true);
        float* p = (float*)Unsafe.AsPointer(ref t_packed[0]);
        for (int g = 0; g < groups; g++)
            for (int k = 0; k < K; k++)
                for (int i = 0; i < Group512; i++)
                {
                    int m = g * Group512 + i;
                    p[((long)g * K + k) * Group512 + i] = m < M ? w[(long)m * K + k] : 0f;
                }
        return p;
    }

    /// <summary>Part <paramref name="part"/> of <paramref name="parts"/> of the split copy: an equal share of the image's rows.</summary>
    private static void SplitPart(int part, int parts)
    {
        int rows = s_state.C * s_state.IH;
        SplitRows(in s_state, (int)((long)rows * part / parts), (int)((long)rows * (part + 1) / parts));
    }

    /// <summary>Rows [r0, r1) of the image (counted over channels then rows) into their phase-split planes.</summary>
    private static void SplitRows(in State st, int r0, int r1)
    {
        for (int r = r0; r < r1; r++)
            SplitRow(st.X + (long)r * st.IW, st.IW, st.PW, st.SW, st.L, st.Planes + (long)r * st.RowFloats);
    }

    /// <summary>One input row in phase-split form: dst[p * L + q] = x[q * SW + p - PW], zero outside the input.</summary>
    private static void SplitRow(float* x, int IW, int PW, int SW, int L, float* dst)
    {
        if (SW == 1)
        {
            int lo = Math.Min(PW, L), n = Math.Max(0, Math.Min(IW, L - PW));
            for (int q = 0; q < lo; q++) dst[q] = 0f;
            new ReadOnlySpan<float>(x, n).CopyTo(new Span<float>(dst + lo, n));
            for (int q = lo + n; q < L; q++) dst[q] = 0f;
            return;
        }
        if (SW == 2 && Avx2.IsSupported)
        {
            Lanes.Split2(x, IW, PW, L, dst, dst + L);
            return;
        }
        for (int p = 0; p < SW; p++)
        {
            float* d = dst + p * L;
            for (int q = 0; q < L; q++)
            {
                int ix = q * SW + p - PW;
                d[q] = (uint)ix < (uint)IW ? x[ix] : 0f;
            }
        }
    }

    private static void Groups(in State st, int g0, int g1, int oh0 = 0, int oh1 = -1)
    {
        if (st.GroupSize == Group512)
        {
            if (oh1 < 0) oh1 = st.OH;
            switch (st.Act.Kind)
            {
                case ActivationKind.None: Groups512<NoActivation>(in st, g0, g1, oh0, oh1); break;
                case ActivationKind.Relu: Groups512<ReluActivation>(in st, g0, g1, oh0, oh1); break;
                case ActivationKind.Clip: Groups512<ClipActivation>(in st, g0, g1, oh0, oh1); break;
                default: Groups512<AnyActivation>(in st, g0, g1, oh0, oh1); break;
            }
            return;
        }
        switch (st.Act.Kind)
        {
            case ActivationKind.None: Groups<NoActivation>(in st, g0, g1); break;
            case ActivationKind.Relu: Groups<ReluActivation>(in st, g0, g1); break;
            case ActivationKind.Clip: Groups<ClipActivation>(in st, g0, g1); break;
            default: Groups<AnyActivation>(in st, g0, g1); break;
        }
    }

    private static void Groups<TAct>(in State st, int g0, int g1) where TAct : struct, IActivationOp
    {
        int taps = st.KH * st.KW, wstride = st.C * taps, outSize = st.OH * st.OW;
        float** rows = stackalloc float*[st.C * st.KH];
        int* tapOff = st.Taps;
        for (int g = g0; g < g1; g++)
        {
            int m0 = g * Group, mc = Math.Min(Group, st.M - m0);
            // Missing channels of the last group reuse the last real one; only real channels are stored.
            float* w0 = st.W + (long)m0 * wstride;
            float* w1 = st.W + (long)(m0 + Math.Min(1, mc - 1)) * wstride;
            float* w2 = st.W + (long)(m0 + Math.Min(2, mc - 1)) * wstride;
            float* w3 = st.W + (long)(m0 + Math.Min(3, mc - 1)) * wstride;
            var b0 = Vector256.Create(st.Bias[m0]);
            var b1 = Vector256.Create(st.Bias[m0 + Math.Min(1, mc - 1)]);
            var b2 = Vector256.Create(st.Bias[m0 + Math.Min(2, mc - 1)]);
            var b3 = Vector256.Create(st.Bias[m0 + Math.Min(3, mc - 1)]);
            for (int oh = 0; oh < st.OH; oh++)
            {
                for (int c = 0; c < st.C; c++)
                    for (int kh = 0; kh < st.KH; kh++)
                    {
                        int ih = oh * st.SH - st.PH + kh * st.DH;
                        rows[c * st.KH + kh] = (uint)ih < (uint)st.IH ? st.Planes + ((long)c * st.IH + ih) * st.RowFloats : st.Zero;
                    }
                float* y0 = st.Y + (long)m0 * outSize + (long)oh * st.OW;
                for (int ow = 0; ow < st.OW; ow += 2 * V)
                {
                    Vector256<float> a0 = b0, a1 = b1, a2 = b2, a3 = b3, e0 = b0, e1 = b1, e2 = b2, e3 = b3;
                    for (int r = 0; r < st.C * st.KH; r++)
                    {
                        float* row = rows[r] + ow;
                        int wo = r * st.KW;
                        for (int kw = 0; kw < st.KW; kw++)
                        {
                            float* src = row + tapOff[kw];
                            var v = Vector256.Load(src);
                            var u = Vector256.Load(src + V);
                            var c = Vector256.Create(w0[wo + kw]);
                            a0 = Fma.MultiplyAdd(c, v, a0); e0 = Fma.MultiplyAdd(c, u, e0);
                            c = Vector256.Create(w1[wo + kw]);
                            a1 = Fma.MultiplyAdd(c, v, a1); e1 = Fma.MultiplyAdd(c, u, e1);
                            c = Vector256.Create(w2[wo + kw]);
                            a2 = Fma.MultiplyAdd(c, v, a2); e2 = Fma.MultiplyAdd(c, u, e2);
                            c = Vector256.Create(w3[wo + kw]);
                            a3 = Fma.MultiplyAdd(c, v, a3); e3 = Fma.MultiplyAdd(c, u, e3);
                        }
                    }
                    int n0 = Math.Min(V, st.OW - ow), n1 = Math.Min(V, st.OW - ow - V);
                    StorePair<TAct>(a0, e0, y0 + ow, n0, n1, in st.Act);
                    if (mc > 1) StorePair<TAct>(a1, e1, y0 + outSize + ow, n0, n1, in st.Act);
                    if (mc > 2) StorePair<TAct>(a2, e2, y0 + 2L * outSize + ow, n0, n1, in st.Act);
                    if (mc > 3) StorePair<TAct>(a3, e3, y0 + 3L * outSize + ow, n0, n1, in st.Act);
                }
                if (st.Act.NeedsRowPass)
                    for (int j = 0; j < mc; j++) st.Act.Apply(new Span<float>(y0 + (long)j * outSize, st.OW));
            }
        }
    }

    /// <summary>
    /// Vector512: 32 outputs of a row (two vectors) for 8 output channels, 16 accumulators; the weights of a tap
    /// for the 8 channels sit side by side in the packed copy, so each is one broadcast load.
    /// </summary>
    private static void Groups512<TAct>(in State st, int g0, int g1, int oh0, int oh1) where TAct : struct, IActivationOp
    {
        int taps = st.KH * st.KW, K = st.C * taps, outSize = st.OH * st.OW;
        float** rows = stackalloc float*[st.C * st.KH];
        float* tmp = stackalloc float[16];
        int* tapOff = st.Taps;
        ref readonly var act = ref st.Act;
        for (int g = g0; g < g1; g++)
        {
            int m0 = g * Group512, mc = Math.Min(Group512, st.M - m0);
            float* wg = st.Packed + (long)g * K * Group512;
            for (int oh = oh0; oh < oh1; oh++)
            {
                for (int c = 0; c < st.C; c++)
                    for (int kh = 0; kh < st.KH; kh++)
                    {
                        int ih = oh * st.SH - st.PH + kh * st.DH;
                        rows[c * st.KH + kh] = (uint)ih < (uint)st.IH ? st.Planes + ((long)c * st.IH + ih) * st.RowFloats : st.Zero;
                    }
                float* y0 = st.Y + (long)m0 * outSize + (long)oh * st.OW;
                for (int ow = 0; ow < st.OW; ow += 32)
                {
                    if (st.OW - ow <= 16)
                    {
                        // The row's last 16 or fewer outputs: one vector, so no half-empty second one is computed.
                        Tail16<TAct>(in st, rows, wg, ow, y0 + ow, outSize, m0, mc, tmp);
                        break;
                    }
                    Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                    Vector512<float> e0 = default, e1 = default, e2 = default, e3 = default, e4 = default, e5 = default, e6 = default, e7 = default;
                    float* wk = wg;
                    for (int r = 0; r < st.C * st.KH; r++)
                    {
                        float* row = rows[r] + ow;
                        for (int kw = 0; kw < st.KW; kw++, wk += Group512)
                        {
                            float* src = row + tapOff[kw];
                            var v = Vector512.Load(src);
                            var u = Vector512.Load(src + 16);
                            var c = Vector512.Create(wk[0]);
                            a0 = Vector512.FusedMultiplyAdd(c, v, a0); e0 = Vector512.FusedMultiplyAdd(c, u, e0);
                            c = Vector512.Create(wk[1]);
                            a1 = Vector512.FusedMultiplyAdd(c, v, a1); e1 = Vector512.FusedMultiplyAdd(c, u, e1);
                            c = Vector512.Create(wk[2]);
                            a2 = Vector512.FusedMultiplyAdd(c, v, a2); e2 = Vector512.FusedMultiplyAdd(c, u, e2);
                            c = Vector512.Create(wk[3]);
                            a3 = Vector512.FusedMultiplyAdd(c, v, a3); e3 = Vector512.FusedMultiplyAdd(c, u, e3);
                            c = Vector512.Create(wk[4]);
                            a4 = Vector512.FusedMultiplyAdd(c, v, a4); e4 = Vector512.FusedMultiplyAdd(c, u, e4);
                            c = Vector512.Create(wk[5]);
                            a5 = Vector512.FusedMultiplyAdd(c, v, a5); e5 = Vector512.FusedMultiplyAdd(c, u, e5);
                            c = Vector512.Create(wk[6]);
                            a6 = Vector512.FusedMultiplyAdd(c, v, a6); e6 = Vector512.FusedMultiplyAdd(c, u, e6);
                            c = Vector512.Create(wk[7]);
                            a7 = Vector512.FusedMultiplyAdd(c, v, a7); e7 = Vector512.FusedMultiplyAdd(c, u, e7);
                        }
                    }
                    int n0 = Math.Min(16, st.OW - ow), n1 = Math.Min(16, st.OW - ow - 16);
                    float* yo = y0 + ow;
                    Store512<TAct>(a0, e0, st.Bias[m0], yo, n0, n1, in act, tmp);
                    if (mc > 1) Store512<TAct>(a1, e1, st.Bias[m0 + 1], yo + outSize, n0, n1, in act, tmp);
                    if (mc > 2) Store512<TAct>(a2, e2, st.Bias[m0 + 2], yo + 2L * outSize, n0, n1, in act, tmp);
                    if (mc > 3) Store512<TAct>(a3, e3, st.Bias[m0 + 3], yo + 3L * outSize, n0, n1, in act, tmp);
                    if (mc > 4) Store512<TAct>(a4, e4, st.Bias[m0 + 4], yo + 4L * outSize, n0, n1, in act, tmp);
                    if (mc > 5) Store512<TAct>(a5, e5, st.Bias[m0 + 5], yo + 5L * outSize, n0, n1, in act, tmp);
                    if (mc > 6) Store512<TAct>(a6, e6, st.Bias[m0 + 6], yo + 6L * outSize, n0, n1, in act, tmp);
                    if (mc > 7) Store512<TAct>(a7, e7, st.Bias[m0 + 7], yo + 7L * outSize, n0, n1, in act, tmp);
                }
                if (st.Act.NeedsRowPass)
                    for (int j = 0; j < mc; j++) st.Act.Apply(new Span<float>(y0 + (long)j * outSize, st.OW));
            }
        }
    }

    /// <summary>Outputs [ow, OW) of a row (at most 16) for the 8 channels of group weights <paramref name="wg"/>.</summary>
    private static void Tail16<TAct>(in State st, float** rows, float* wg, int ow, float* yo, int outSize, int m0, int mc, float* tmp) where TAct : struct, IActivationOp
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        float* wk = wg;
        int* tapOff = st.Taps;
        for (int r = 0; r < st.C * st.KH; r++)
        {
            float* row = rows[r] + ow;
            for (int kw = 0; kw < st.KW; kw++, wk += Group512)
            {
                var v = Vector512.Load(row + tapOff[kw]);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Create(wk[0]), v, a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Create(wk[1]), v, a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Create(wk[2]), v, a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Create(wk[3]), v, a3);
                a4 = Vector512.FusedMultiplyAdd(Vector512.Create(wk[4]), v, a4);
                a5 = Vector512.FusedMultiplyAdd(Vector512.Create(wk[5]), v, a5);
                a6 = Vector512.FusedMultiplyAdd(Vector512.Create(wk[6]), v, a6);
                a7 = Vector512.FusedMultiplyAdd(Vector512.Create(wk[7]), v, a7);
            }
        }
        int n = st.OW - ow;
        ref readonly var act = ref st.Act;
        Put(TAct.Apply(a0 + Vector512.Create(st.Bias[m0]), in act), yo, n, tmp);
        if (mc > 1) Put(TAct.Apply(a1 + Vector512.Create(st.Bias[m0 + 1]), in act), yo + outSize, n, tmp);
        if (mc > 2) Put(TAct.Apply(a2 + Vector512.Create(st.Bias[m0 + 2]), in act), yo + 2L * outSize, n, tmp);
        if (mc > 3) Put(TAct.Apply(a3 + Vector512.Create(st.Bias[m0 + 3]), in act), yo + 3L * outSize, n, tmp);
        if (mc > 4) Put(TAct.Apply(a4 + Vector512.Create(st.Bias[m0 + 4]), in act), yo + 4L * outSize, n, tmp);
        if (mc > 5) Put(TAct.Apply(a5 + Vector512.Create(st.Bias[m0 + 5]), in act), yo + 5L * outSize, n, tmp);
        if (mc > 6) Put(TAct.Apply(a6 + Vector512.Create(st.Bias[m0 + 6]), in act), yo + 6L * outSize, n, tmp);
        if (mc > 7) Put(TAct.Apply(a7 + Vector512.Create(st.Bias[m0 + 7]), in act), yo + 7L * outSize, n, tmp);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512<TAct>(Vector512<float> v, Vector512<float> u, float bias, float* y, int n0, int n1, in FusedActivation act, float* tmp) where TAct : struct, IActivationOp
    {
        var b = Vector512.Create(bias);
        Put(TAct.Apply(v + b, in act), y, n0, tmp);
        if (n1 > 0) Put(TAct.Apply(u + b, in act), y + 16, n1, tmp);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(Vector512<float> v, float* y, int n, float* tmp)
    {
        if (n == 16) Vector512.Store(v, y);
        else if (Avx512F.IsSupported)
            Avx512F.MaskStore(y, Vector512.LessThan(Vector512.Create(0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector512.Create((float)n)), v);
        else
        {
            Vector512.Store(v, tmp);
            for (int i = 0; i < n; i++) y[i] = tmp[i];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePair<TAct>(Vector256<float> v, Vector256<float> u, float* y, int n0, int n1, in FusedActivation act) where TAct : struct, IActivationOp
    {
        StoreOut<TAct>(v, y, n0, in act);
        if (n1 > 0) StoreOut<TAct>(u, y + V, n1, in act);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreOut<TAct>(Vector256<float> v, float* y, int n, in FusedActivation act) where TAct : struct, IActivationOp
    {
        v = TAct.Apply(v, in act);
        if (n == V) Vector256.Store(v, y);
        else Avx.MaskStore(y, Vector256.LessThan(Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(n)).AsSingle(), v);
    }
}
