using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// Dense 2-D convolution over few input channels (a network's stem: RGB or grey images), computed directly along
/// output rows: sixteen outputs of a row are two vectors, four output channels share each input vector load (eight
/// independent accumulators keep both FMA pipes busy), and every kernel tap of every input channel adds a broadcast
/// weight times a vector load. The input is first copied into a
/// zero-padded, stride-phase-split layout (phase p of a row holds padded columns p, p+s, p+2s, ...), so each tap of
/// eight consecutive outputs is one contiguous load, for any stride and dilation, with no border tests. Outputs land
/// in NCHW directly; bias and the fused activation are applied before the store. Output channel groups split
/// across <see cref="WorkerPool"/> threads.
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
        public int C, M, KH, KW, OH, OW, IH, SH, DH, PH, L, RowFloats;
        public FusedActivation Act;
    }

    private static State s_state;

    public static bool Supports(in ConvShape s) =>
        !SGemm.ForceScalar && Vector256.IsHardwareAccelerated && Fma.IsSupported && Avx.IsSupported
        && s.Group == 1 && s.In[0] == 1 && s.Kernel[0] == 1 && s.Out[0] == 1 && s.KernelSize > 1
        && s.InChannels <= MaxChannels && s.Out[2] >= 4;

    private static int RowLength(in ConvShape s)
    {
        int owv = (s.Out[2] + 2 * V - 1) / (2 * V) * (2 * V);
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
            for (int n = 0; n < s.Batch; n++)
            {
                float* xn = px + (long)n * C * IH * IW;
                for (int c = 0; c < C; c++)
                    for (int ih = 0; ih < IH; ih++)
                        SplitRow(xn + ((long)c * IH + ih) * IW, IW, PW, SW, L, ps + ((long)c * IH + ih) * rowFloats);
                var st = new State
                {
                    Planes = ps, Zero = zero, W = pw, Bias = pb, Y = py + (long)n * M * s.OutSize, Taps = pt,
                    C = C, M = M, KH = KH, KW = KW, OH = s.Out[1], OW = s.Out[2], IH = IH, SH = s.Stride[1], DH = s.Dilation[1],
                    PH = s.PadBegin[1], L = L, RowFloats = rowFloats, Act = act,
                };
                int groups = (M + Group - 1) / Group;
                long work = (long)M * s.OutSize * C * KH * KW;
                if (threads > 1 && groups > 1 && work >= 256 * 1024 && WorkerPool.TryEnter())
                {
                    try
                    {
                        s_state = st;
                        WorkerPool.Run(&Part, Math.Min(threads, groups));
                    }
                    finally
                    {
                        WorkerPool.Exit();
                    }
                }
                else Groups(in st, 0, groups);
            }
        }
    }

    private static void Part(int part, int parts)
    {
        int groups = (s_state.M + Group - 1) / Group;
        Groups(in s_state, (int)((long)groups * part / parts), (int)((long)groups * (part + 1) / parts));
    }

    /// <summary>One input row in phase-split form: dst[p * L + q] = x[q * SW + p - PW], zero outside the input.</summary>
    private static void SplitRow(float* x, int IW, int PW, int SW, int L, float* dst)
    {
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

    private static void Groups(in State st, int g0, int g1)
    {
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
