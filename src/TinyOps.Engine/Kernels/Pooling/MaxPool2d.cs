using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TinyOps.Engine.Kernels.Nn;
using TinyOps.Engine.Kernels.Common;

namespace TinyOps.Engine.Kernels.Pooling;

/// <summary>
/// Float 2-D max pooling for any kernel, stride, dilation, padding and ceil mode, vectorized by rows: for each
/// output row the valid input rows of its window are reduced into a padded row buffer (positions outside the input
/// hold -inf), then each output takes the maximum of its taps in that buffer. Windows with no valid tap give -inf,
/// like the reference loop. max(a, b) is <c>a &gt; b ? a : b</c> in the vector and the scalar code alike.
/// </summary>
internal static unsafe class MaxPool2d
{
    /// <summary>Floats of scratch <see cref="Run"/> needs for an output row of <paramref name="out2"/> values.</summary>
    public static int ScratchFloats(int out1, int out2, int k2, int s2, int d2)
    {
        int row = 2 * PaddedWidth(out2, k2, s2, d2) + 16;
        if (s2 != 2 || d2 != 1) return row;
        int wq = PlaneWidth(out2, k2);
        // The whole-plane stride-2 path: rows of 2 * wq vertical maxima, then rows of wq window maxima.
        return Math.Max(row, out1 * 2 * wq + 2 * k2 + 64 + out1 * wq + 32);
    }

    /// <summary>Row width of window maxima on the whole-plane stride-2 path: 2 * wq covers the padded width.</summary>
    private static int PlaneWidth(int out2, int k2) => out2 + (k2 - 1) / 2;

    private static int PaddedWidth(int out2, int k2, int s2, int d2) => (out2 - 1) * s2 + (k2 - 1) * d2 + 1;

    public static void Run(float* x, float* y, int channels, int in1, int in2, int out1, int out2,
        int k1, int k2, int s1, int s2, int d1, int d2, int p1, int p2, float* scratch)
    {
        if (out1 <= 0 || out2 <= 0) return;
        if (s2 == 2 && d2 == 1 && Avx512F.IsSupported && Vector512.IsHardwareAccelerated && !Force256 && !SGemm.ForceScalar)
        {
            RunStride2Planes(x, y, channels, in1, in2, out1, out2, k1, k2, s1, d1, p1, p2, scratch);
            return;
        }
        int wp = PaddedWidth(out2, k2, s2, d2);
        int lo = Math.Min(p2, wp);           // buffer index of input column 0
        int hi = Math.Min(wp, p2 + in2);     // one past the last buffer index holding an input column
        int hw = (out2 - 1) * s2 + 1;        // window maxima needed (one per start position)
        float* row = scratch;
        float* h = scratch + wp + 8;
        bool vec = Vector256.IsHardwareAccelerated && !SGemm.ForceScalar;
        for (int i = 0; i < lo; i++) row[i] = float.NegativeInfinity;
        for (int i = Math.Max(hi, lo); i < wp; i++) row[i] = float.NegativeInfinity;
        long inSize = (long)in1 * in2, outSize = (long)out1 * out2;
        for (int c = 0; c < channels; c++)
        {
            float* xc = x + c * inSize;
            float* yc = y + c * outSize;
            for (int o1 = 0; o1 < out1; o1++)
            {
                int st1 = o1 * s1 - p1;
                PoolGeometry.TapRange(st1, k1, d1, in1, out int a0, out int a1);
                int n = hi - lo;
                if (n > 0)
                {
                    if (a0 == a1) Fill(row + lo, n, float.NegativeInfinity);
                    else
                    {
                        float* src = xc + (long)(st1 + a0 * d1) * in2 - p2 + lo;
                        new ReadOnlySpan<float>(src, n).CopyTo(new Span<float>(row + lo, n));
                        for (int a = a0 + 1; a < a1; a++)
                            MaxInto(row + lo, xc + (long)(st1 + a * d1) * in2 - p2 + lo, n, vec);
                    }
                }
                float* yr = yc + (long)o1 * out2;
                if (s2 == 1)
                {
                    WindowMax(row, yr, out2, k2, d2, vec);
                    continue;
                }
                if (s2 == 2 && vec && Avx2.IsSupported)
                {
                    WindowMaxStride2(row, h, yr, wp, out2, k2, d2);
                    continue;
                }
                WindowMax(row, h, hw, k2, d2, vec);
                for (int o2 = 0; o2 < out2; o2++) yr[o2] = h[o2 * s2];
            }
        }
    }

    private static void Fill(float* p, int n, float v)
    {
        for (int i = 0; i < n; i++) p[i] = v;
    }

    /// <summary>Tests set this to run the Vector256 code where Vector512 is accelerated.</summary>
    internal static bool Force256;

    /// <summary>
    /// Stride 2 and dilation 1 along rows, on Vector512, a plane at a time: every output row's vertical maxima go
    /// into a row of 2 * wq values (-inf outside the input), so output j = oh * wq + ow of the whole plane reads
    /// values 2j .. 2j + k - 1 of that buffer; one flat pass of permutes takes the window maxima of all rows (the
    /// wq - out2 spare outputs a row are dropped when the rows are copied out). No per-row window setup, so small
    /// planes (13 x 13) cost little more than their values.
    /// </summary>

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RunStride2Planes(float* x, float* y, int channels, int in1, int in2, int out1, int out2,
        int k1, int k2, int s1, int d1, int p1, int p2, float* scratch)
    {
        int wq = PlaneWidth(out2, k2), rw = 2 * wq;
        int lo = Math.Min(p2, rw), hi = Math.Min(rw, p2 + in2);
        int n = (out1 * wq + 15) / 16 * 16;
        float* v = scratch;
        float* w = scratch + (long)out1 * rw + 2 * k2 + 64;
        // Reads past the last row stay in the slack; keep it -inf.
        Fill(v + (long)out1 * rw, 2 * k2 + 64, float.NegativeInfinity);
        for (int o1 = 0; o1 < out1; o1++)
        {
            float* row = v + (long)o1 * rw;
            for (int i = 0; i < lo; i++) row[i] = float.NegativeInfinity;
            for (int i = Math.Max(hi, lo); i < rw; i++) row[i] = float.NegativeInfinity;
        }
        long inSize = (long)in1 * in2, outSize = (long)out1 * out2;
        int cnt = hi - lo;
        for (int c = 0; c < channels; c++)
        {
            float* xc = x + c * inSize;
            for (int o1 = 0; o1 < out1; o1++)
            {
                float* row = v + (long)o1 * rw;
                if (cnt <= 0) continue;
                int st1 = o1 * s1 - p1;
                PoolGeometry.TapRange(st1, k1, d1, in1, out int a0, out int a1);
                if (a0 == a1)
                {
                    Fill(row + lo, cnt, float.NegativeInfinity);
                    continue;
                }
                float* src = xc + (long)(st1 + a0 * d1) * in2 - p2 + lo;
                if (a1 - a0 == 3) Max3(row + lo, src, src + (long)d1 * in2, src + 2L * d1 * in2, cnt);
                else
                {
                    new ReadOnlySpan<float>(src, cnt).CopyTo(new Span<float>(row + lo, cnt));
                    for (int a = a0 + 1; a < a1; a++) MaxInto(row + lo, xc + (long)(st1 + a * d1) * in2 - p2 + lo, cnt, true);
                }
            }
            WindowMaxStride2Flat(v, w, n, k2);
            float* yc = y + c * outSize;
            for (int o1 = 0; o1 < out1; o1++)
            {
                float* src = w + (long)o1 * wq;
                float* dst = yc + (long)o1 * out2;
                int i = 0;
                // Vector copies may run into the next output row (written after) but never past the plane.
                for (; i < out2 && (long)o1 * out2 + i + 16 <= outSize; i += 16) Vector512.Store(Vector512.Load(src + i), dst + i);
                for (; i < out2; i++) dst[i] = src[i];
            }
        }
    }

    /// <summary>dst[i] = max(a[i], b[i], c[i]).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Max3(float* dst, float* a, float* b, float* c, int n)
    {
        int i = 0;
        for (; i + 16 <= n; i += 16)
            Vector512.Store(Max(Max(Vector512.Load(a + i), Vector512.Load(b + i)), Vector512.Load(c + i)), dst + i);
        for (; i < n; i++) dst[i] = Max(Max(a[i], b[i]), c[i]);
    }

    /// <summary>o[j] = max over t &lt; k of v[2j + t], for j in [0, n), n a multiple of 16.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void WindowMaxStride2Flat(float* v, float* o, int n, int k)
    {
        var ie = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        var io = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        if (k == 3)
        {
            for (int j = 0; j < n; j += 16)
            {
                float* q = v + 2 * j;
                var a = Vector512.Load(q);
                var b = Vector512.Load(q + 16);
                var m = Max(Avx512F.PermuteVar16x32x2(a, ie, b), Avx512F.PermuteVar16x32x2(a, io, b));
                m = Max(m, Avx512F.PermuteVar16x32x2(Vector512.Load(q + 2), ie, Vector512.Load(q + 18)));
                Vector512.Store(m, o + j);
            }
            return;
        }
        for (int j = 0; j < n; j += 16)
        {
            float* q = v + 2 * j;
            var a = Vector512.Load(q);
            var b = Vector512.Load(q + 16);
            var m = Avx512F.PermuteVar16x32x2(a, ie, b);
            if (k > 1) m = Max(m, Avx512F.PermuteVar16x32x2(a, io, b));
            for (int t = 2; t < k; t += 2)
            {
                a = Vector512.Load(q + t);
                b = Vector512.Load(q + t + 16);
                m = Max(m, Avx512F.PermuteVar16x32x2(a, ie, b));
                if (t + 1 < k) m = Max(m, Avx512F.PermuteVar16x32x2(a, io, b));
            }
            Vector512.Store(m, o + j);
        }
    }

    /// <summary>dst[i] = max(dst[i], src[i]).</summary>
    private static void MaxInto(float* dst, float* src, int n, bool vec)
    {
        int i = 0;
        if (vec && Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
            for (; i + 16 <= n; i += 16)
                Vector512.Store(Avx512F.Max(Vector512.Load(dst + i), Vector512.Load(src + i)), dst + i);
        if (vec)
            for (; i + 8 <= n; i += 8)
                Vector256.Store(Max(Vector256.Load(dst + i), Vector256.Load(src + i)), dst + i);
        for (; i < n; i++) dst[i] = Max(dst[i], src[i]);
    }

    /// <summary>dst[j] = max over b &lt; k of src[j + b*d], for j in [0, n).</summary>
    private static void WindowMax(float* src, float* dst, int n, int k, int d, bool vec)
    {
        int j = 0;
        if (vec)
            for (; j + 8 <= n; j += 8)
            {
                var m = Vector256.Load(src + j);
                for (int b = 1; b < k; b++) m = Max(m, Vector256.Load(src + j + b * d));
                Vector256.Store(m, dst + j);
            }
        for (; j < n; j++)
        {
            float m = src[j];
            for (int b = 1; b < k; b++) m = Max(m, src[j + b * d]);
            dst[j] = m;
        }
    }

    /// <summary>
    /// Stride 2: the row is split into its even and odd positions, so the taps of eight consecutive outputs are one
    /// vector load each: tap b of output o is even[o + b*d/2] when b*d is even, else odd[o + (b*d-1)/2].
    /// </summary>
    private static void WindowMaxStride2(float* row, float* buf, float* y, int wp, int out2, int k, int d)
    {
        int ne = (wp + 1) / 2;
        float* even = buf, odd = buf + ne + 8;
        int q = 0;
        for (; 2 * q + 16 <= wp; q += 8)
        {
            var va = Vector256.Load(row + 2 * q);
            var vb = Vector256.Load(row + 2 * q + 8);
            Vector256.Store(Lanes.Even(va, vb), even + q);
            Vector256.Store(Lanes.Odd(va, vb), odd + q);
        }
        for (; 2 * q < wp; q++)
        {
            even[q] = row[2 * q];
            if (2 * q + 1 < wp) odd[q] = row[2 * q + 1];
        }
        int o = 0;
        for (; o + 8 <= out2; o += 8)
        {
            var m = Vector256.Load(even + o);
            for (int b = 1; b < k; b++)
            {
                int t = b * d;
                m = Max(m, Vector256.Load(((t & 1) == 0 ? even + (t >> 1) : odd + (t >> 1)) + o));
            }
            Vector256.Store(m, y + o);
        }
        for (; o < out2; o++)
        {
            float m = row[2 * o];
            for (int b = 1; b < k; b++) m = Max(m, row[2 * o + b * d]);
            y[o] = m;
        }
    }

    /// <summary>a &gt; b ? a : b without a branch (maxss): on real activations the comparison is a coin toss, and the
    /// mispredicted branches of the scalar row tails cost more than the vector work.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Max(float a, float b) =>
        Sse.IsSupported ? Sse.MaxScalar(Vector128.CreateScalarUnsafe(a), Vector128.CreateScalarUnsafe(b)).ToScalar() : a > b ? a : b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Avx512F.Max(a, b); // a > b ? a : b, as maxps

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Max(Vector256<float> a, Vector256<float> b) =>
        Avx.IsSupported ? Avx.Max(a, b) : Vector256.ConditionalSelect(Vector256.GreaterThan(a, b), a, b); // maxps is a > b ? a : b
}
