using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TinyOps.Engine.Kernels.Common;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// Fast depthwise convolution (one input channel per group, any channel multiplier) for 1-D and 2-D shapes with
/// Vector256. Each input plane is first copied into a zero-padded, stride-phase-split layout (for stride s, phase
/// p holds padded columns p, p+s, p+2s, ...), so every kernel tap of a run of outputs is one contiguous vector
/// load and borders need no tests. Bias and the fused activation are applied before the store. Channels split
/// across <see cref="WorkerPool"/> threads. Work buffers are thread-static and grow-only.
/// </summary>
internal static unsafe class DepthwiseConv
{
    private const int V = 8;

    [ThreadStatic] private static float[]? t_plane;

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
        && s.Group > 1 && s.InChannels == s.Group;

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
                    WorkerPool.Run(&Part, Math.Min(threads, planes));
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
        int planes = s_state.S.Batch * s_state.S.InChannels;
        Planes(in s_state, (int)((long)planes * part / parts), (int)((long)planes * (part + 1) / parts));
    }

    /// <summary>Processes input planes [p0, p1) (plane = batch * InChannels + channel) and all their output channels.</summary>
    private static void Planes(in State st, int p0, int p1)
    {
        ref readonly ConvShape s = ref st.S;
        int IH = s.In[1], IW = s.In[2], KH = s.Kernel[1], KW = s.Kernel[2];
        int OH = s.Out[1], OW = s.Out[2];
        int SH = s.Stride[1], SW = s.Stride[2], DH = s.Dilation[1], DW = s.Dilation[2];
        int PH = s.PadBegin[1], PW = s.PadBegin[2];
        bool wide = Vector512.IsHardwareAccelerated && OW >= 24 && KH == 3 && KW == 3;
        int vw = wide ? 16 : V;
        int owv = (OW + vw - 1) / vw * vw;
        int maxQ = (KW - 1) * DW / SW + 1;
        int L = owv + maxQ;                 // length of one phase row
        int rb = SW * L;                    // floats per input row in the plane
        int padLen = SW * L + 2 * 16 + 16;  // the padded source row (before phase split)
        int kvol = KH * KW;
        int mg = s.OutChannels / s.Group;
        int inSize = s.InSize, outSize = s.OutSize;
        long need = (long)(IH + 1) * rb + padLen + V;
        if (t_plane is null || t_plane.Length < need) t_plane = GC.AllocateUninitializedArray<float>((int)Math.Max(need, 1024), pinned: true);
        float* plane = (float*)Unsafe.AsPointer(ref t_plane[0]);
        float* zero = plane + (long)IH * rb;
        float* pad = zero + rb;
        new Span<float>(zero, rb).Clear();
        int* tap = stackalloc int[KW];
        for (int kw = 0; kw < KW; kw++)
        {
            int off = kw * DW;
            tap[kw] = off % SW * L + off / SW;
        }
        float** rows = stackalloc float*[KH];
        float* tmp = stackalloc float[16];
        var wv = stackalloc Vector256<float>[kvol];

        for (int p = p0; p < p1; p++)
        {
            int n = p / s.InChannels, c = p - n * s.InChannels;
            float* xc = st.X + (long)p * inSize;
            for (int ih = 0; ih < IH; ih++) BuildRow(xc + (long)ih * IW, IW, PW, SW, L, plane + (long)ih * rb, pad, padLen);
            for (int mi = 0; mi < mg; mi++)
            {
                int m = c * mg + mi;
                float* wk = st.W + (long)m * kvol;
                for (int i = 0; i < kvol; i++) wv[i] = Vector256.Create(wk[i]);
                var bv = Vector256.Create(st.Bias != null ? st.Bias[m] : 0f);
                float* yc = st.Y + ((long)n * s.OutChannels + m) * outSize;
                for (int oh = 0; oh < OH; oh++)
                {
                    for (int kh = 0; kh < KH; kh++)
                    {
                        int ih = oh * SH - PH + kh * DH;
                        rows[kh] = (uint)ih < (uint)IH ? plane + (long)ih * rb : zero;
                    }
                    float* yrow = yc + (long)oh * OW;
                    if (wide)
                        Row3x3Wide(rows, tap, wk, st.Bias != null ? st.Bias[m] : 0f, yrow, OW, in st.Act, tmp);
                    else if (KH == 3 && KW == 3)
                        Row3x3(rows, tap, wv, bv, yrow, OW, in st.Act, tmp);
                    else
                        RowAny(rows, tap, wv, bv, KH, KW, yrow, OW, in st.Act, tmp);
                    if (st.Act.NeedsRowPass) st.Act.Apply(new Span<float>(yrow, OW));
                }
            }
        }
    }

    /// <summary>Writes one input row in phase-split form: dst[p * L + q] = x[q * SW + p - PW], zero outside.</summary>
    private static void BuildRow(float* x, int IW, int PW, int SW, int L, float* dst, float* pad, int padLen)
    {
        if (SW == 1)
        {
            // One phase: the padded row itself.
            int lo = Math.Min(PW, L);
            int n = Math.Max(0, Math.Min(IW, L - PW));
            for (int i = 0; i < lo; i++) dst[i] = 0f;
            Copy(x, dst + lo, n);
            for (int i = lo + n; i < L; i++) dst[i] = 0f;
            return;
        }
        // Padded row first (length SW * L), then split by phase.
        int total = SW * L;
        int a = Math.Min(PW, total);
        int cnt = Math.Max(0, Math.Min(IW, total - PW));
        for (int i = 0; i < a; i++) pad[i] = 0f;
        Copy(x, pad + a, cnt);
        // The phase split below reads pad[0, total) only.
        for (int i = a + cnt; i < total; i++) pad[i] = 0f;
        int q0 = 0;
        if (SW == 2 && Avx2.IsSupported)
        {
            // 16 padded values -> 8 even and 8 odd.
            for (; q0 + 8 <= L; q0 += 8)
            {
                var va = Vector256.Load(pad + 2 * q0);
                var vb = Vector256.Load(pad + 2 * q0 + 8);
                var e = Lanes.Even(va, vb);
                var o = Lanes.Odd(va, vb);
                Vector256.Store(e, dst + q0);
                Vector256.Store(o, dst + L + q0);
            }
        }
        for (int ph = 0; ph < SW; ph++)
        {
            float* d = dst + ph * L;
            for (int q = q0; q < L; q++) d[q] = pad[q * SW + ph];
        }
    }

    /// <summary>A short copy without a library call (rows here are tens of floats).</summary>
    private static void Copy(float* src, float* dst, int n)
    {
        int i = 0;
        for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(src + i), dst + i);
        for (; i < n; i++) dst[i] = src[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector256<float> acc, float* yrow, int ow, int OW, float* tmp)
    {
        if (ow + V <= OW) Vector256.Store(acc, yrow + ow);
        else
        {
            Vector256.Store(acc, tmp);
            for (int i = 0; ow + i < OW; i++) yrow[ow + i] = tmp[i];
        }
    }

    private static void Row3x3(float** rows, int* tap, Vector256<float>* wv, Vector256<float> bias, float* yrow, int OW, in FusedActivation act, float* tmp)
    {
        float* r0 = rows[0], r1 = rows[1], r2 = rows[2];
        int t0 = tap[0], t1 = tap[1], t2 = tap[2];
        Vector256<float> w0 = wv[0], w1 = wv[1], w2 = wv[2], w3 = wv[3], w4 = wv[4], w5 = wv[5], w6 = wv[6], w7 = wv[7], w8 = wv[8];
        for (int ow = 0; ow < OW; ow += V)
        {
            // One partial sum per kernel row: three short FMA chains instead of one nine long.
            var a0 = Fma.MultiplyAdd(w0, Vector256.Load(r0 + t0 + ow), bias);
            var a1 = Vector256.Load(r1 + t0 + ow) * w3;
            var a2 = Vector256.Load(r2 + t0 + ow) * w6;
            a0 = Fma.MultiplyAdd(w1, Vector256.Load(r0 + t1 + ow), a0);
            a1 = Fma.MultiplyAdd(w4, Vector256.Load(r1 + t1 + ow), a1);
            a2 = Fma.MultiplyAdd(w7, Vector256.Load(r2 + t1 + ow), a2);
            a0 = Fma.MultiplyAdd(w2, Vector256.Load(r0 + t2 + ow), a0);
            a1 = Fma.MultiplyAdd(w5, Vector256.Load(r1 + t2 + ow), a1);
            a2 = Fma.MultiplyAdd(w8, Vector256.Load(r2 + t2 + ow), a2);
            Store(act.Apply(a0 + (a1 + a2)), yrow, ow, OW, tmp);
        }
    }

    private static void Row3x3Wide(float** rows, int* tap, float* wk, float bias, float* yrow, int OW, in FusedActivation act, float* tmp)
    {
        float* r0 = rows[0], r1 = rows[1], r2 = rows[2];
        int t0 = tap[0], t1 = tap[1], t2 = tap[2];
        var w0 = Vector512.Create(wk[0]); var w1 = Vector512.Create(wk[1]); var w2 = Vector512.Create(wk[2]);
        var w3 = Vector512.Create(wk[3]); var w4 = Vector512.Create(wk[4]); var w5 = Vector512.Create(wk[5]);
        var w6 = Vector512.Create(wk[6]); var w7 = Vector512.Create(wk[7]); var w8 = Vector512.Create(wk[8]);
        var bv = Vector512.Create(bias);
        for (int ow = 0; ow < OW; ow += 16)
        {
            var acc = bv;
            acc = Avx512F.FusedMultiplyAdd(w0, Vector512.Load(r0 + t0 + ow), acc);
            acc = Avx512F.FusedMultiplyAdd(w1, Vector512.Load(r0 + t1 + ow), acc);
            acc = Avx512F.FusedMultiplyAdd(w2, Vector512.Load(r0 + t2 + ow), acc);
            acc = Avx512F.FusedMultiplyAdd(w3, Vector512.Load(r1 + t0 + ow), acc);
            acc = Avx512F.FusedMultiplyAdd(w4, Vector512.Load(r1 + t1 + ow), acc);
            acc = Avx512F.FusedMultiplyAdd(w5, Vector512.Load(r1 + t2 + ow), acc);
            acc = Avx512F.FusedMultiplyAdd(w6, Vector512.Load(r2 + t0 + ow), acc);
            acc = Avx512F.FusedMultiplyAdd(w7, Vector512.Load(r2 + t1 + ow), acc);
            acc = Avx512F.FusedMultiplyAdd(w8, Vector512.Load(r2 + t2 + ow), acc);
            acc = act.Apply(acc);
            if (ow + 16 <= OW) Vector512.Store(acc, yrow + ow);
            else
            {
                Vector512.Store(acc, tmp);
                for (int i = 0; ow + i < OW; i++) yrow[ow + i] = tmp[i];
            }
        }
    }

    private static void RowAny(float** rows, int* tap, Vector256<float>* wv, Vector256<float> bias, int KH, int KW, float* yrow, int OW, in FusedActivation act, float* tmp)
    {
        for (int ow = 0; ow < OW; ow += V)
        {
            var acc = bias;
            for (int kh = 0; kh < KH; kh++)
            {
                float* r = rows[kh] + ow;
                Vector256<float>* wk = wv + kh * KW;
                for (int kw = 0; kw < KW; kw++) acc = Fma.MultiplyAdd(wk[kw], Vector256.Load(r + tap[kw]), acc);
            }
            Store(act.Apply(acc), yrow, ow, OW, tmp);
        }
    }
}
