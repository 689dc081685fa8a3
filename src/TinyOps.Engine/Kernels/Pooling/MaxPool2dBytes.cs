using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Pooling;

/// <summary>Which code <see cref="MaxPool2dBytes"/> runs; tests force the narrower ones.</summary>
internal enum BytePoolPath
{
    /// <summary>The best the machine has: Vector512 with the AVX-512 VBMI byte permutes where there, else <see cref="Vector512"/>.</summary>
    Auto,
    /// <summary>Vector512 (AVX-512BW) without the VBMI permutes, where accelerated, else Vector128.</summary>
    Vector512,
    /// <summary>Vector128 (SSE2 on x86, AdvSimd on Arm) even where Vector512 is accelerated.</summary>
    Vector128,
    /// <summary>The same algorithm with every vector loop skipped: the scalar remainders do all the work.</summary>
    Scalar,
    /// <summary>Not this class at all: MaxPoolKernel's per-window reference loop (what tests compare against).</summary>
    Reference,
}

/// <summary>
/// 2-D max pooling of uint8 / int8 tensors (the quantized MaxPool: max commutes with the monotonic dequantization,
/// so pooling the integers gives exactly the pooled floats re-quantized). Any kernel, stride, dilation, padding and
/// ceil mode; padding and windows with no valid tap hold the type's minimum, like the reference loop.
/// <para>
/// The exact 2x2 / 2 pool (no padding, even sizes: the common CNN case) has its own two-pass route, see
/// <see cref="Pool2x2{T}"/>. Other pools with stride 2 along rows and dilation 1 run on all planes at once: the vertical maxima of every output
/// row of every channel go into one buffer of rows 2 * wq wide (wq = out2 + (k2 - 1) / 2, positions outside the input
/// hold the minimum), so output j of the flattened [channels * out1, wq] result is the maximum of values
/// 2j .. 2j + k2 - 1 of that buffer. One flat pass takes those maxima: a pair of byte vectors loaded at 2j + t is
/// split into its even bytes (tap t) and odd bytes (tap t + 1) by narrowing its 16-bit lanes (the low byte) and the
/// same lanes shifted right by 8 (the high byte). When wq == out2 (even kernels) the pass writes the output directly;
/// otherwise the wq - out2 spare values a row are dropped in a copy. Small planes (14 x 14 bytes) then cost a few
/// vector operations a row instead of a per-row window setup.
/// </para>
/// <para>
/// Other strides go row by row: the valid input rows of the window are reduced into a padded row buffer, then the
/// window maxima of that row are taken for every start position (stride 1: these are the outputs) and the outputs
/// picked at the stride. Vector loops end with one overlapping vector instead of a scalar tail where the row is at
/// least a vector long (max is idempotent, so recomputing a few outputs is harmless).
/// </para>
/// </summary>
internal static unsafe class MaxPool2dBytes
{
    /// <summary>Tests set this to run the narrower or the scalar code.</summary>
    internal static BytePoolPath Forced;

    private const int Slack = 192;

    private static int PlaneWidth(int out2, int k2) => out2 + (k2 - 1) / 2;

    private static int PaddedWidth(int out2, int k2, int s2, int d2) => (out2 - 1) * s2 + (k2 - 1) * d2 + 1;

    private static bool FlatPlanes(int s2, int d2) => s2 == 2 && d2 == 1;

    /// <summary>2x2 windows, stride 2, no padding, and the input exactly twice the output: no window is cut.</summary>
    private static bool Exact2x2(int in1, int in2, int out1, int out2, int k1, int k2, int s1, int s2, int d1, int d2, int p1, int p2) =>
        k1 == 2 && k2 == 2 && s1 == 2 && s2 == 2 && d1 == 1 && d2 == 1 && p1 == 0 && p2 == 0 && in1 == 2 * out1 && in2 == 2 * out2;

    /// <summary>Bytes of scratch <see cref="Run{T}"/> needs.</summary>
    public static int ScratchBytes(int channels, int in1, int in2, int out1, int out2, int k1, int k2, int s1, int s2, int d1, int d2, int p1, int p2)
    {
        if (Exact2x2(in1, in2, out1, out2, k1, k2, s1, s2, d1, d2, p1, p2))
        {
            long h = (long)channels * in1 * out2 + Slack;
            if (h > int.MaxValue / 2) throw new ResourceLimitException($"MaxPool needs {h} bytes of scratch");
            return (int)h;
        }
        if (FlatPlanes(s2, d2))
        {
            long rows = (long)channels * out1, wq = PlaneWidth(out2, k2);
            long v = rows * 2 * wq + 2L * k2 + Slack;
            long w = wq == out2 ? 0 : rows * wq + Slack;
            long total = v + w;
            if (total > int.MaxValue / 2) throw new ResourceLimitException($"MaxPool needs {total} bytes of scratch");
            return (int)total;
        }
        int wp = PaddedWidth(out2, k2, s2, d2);
        return 2 * wp + 2 * Slack;
    }

    /// <summary>
    /// Pools <paramref name="channels"/> planes of x [in1, in2] into y [out1, out2]; T is byte or sbyte.
    /// <paramref name="pairPermutation"/>: 128 bytes from <see cref="PairRowPermutation"/> for this out2 (the caller
    /// keeps them across runs).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static void Run<T>(T* x, T* y, int channels, int in1, int in2, int out1, int out2,
        int k1, int k2, int s1, int s2, int d1, int d2, int p1, int p2, T* scratch, byte* pairPermutation)
        where T : unmanaged, INumber<T>, IMinMaxValue<T>
    {
        if (out1 <= 0 || out2 <= 0 || channels <= 0) return;
        var path = Forced;
        if (path == BytePoolPath.Auto && !(Vector512.IsHardwareAccelerated && Avx512Vbmi.IsSupported)) path = BytePoolPath.Vector512;
        if (path == BytePoolPath.Vector512 && !Vector512.IsHardwareAccelerated) path = BytePoolPath.Vector128;
        if (path == BytePoolPath.Vector128 && !Vector128.IsHardwareAccelerated) path = BytePoolPath.Scalar;
        if (Exact2x2(in1, in2, out1, out2, k1, k2, s1, s2, d1, d2, p1, p2))
        {
            Pool2x2(x, y, channels, in1, in2, out1, out2, scratch, path, pairPermutation);
            return;
        }
        if (FlatPlanes(s2, d2)) Stride2Planes(x, y, channels, in1, in2, out1, out2, k1, k2, s1, d1, p1, p2, scratch, path);
        else Rows(x, y, channels, in1, in2, out1, out2, k1, k2, s1, s2, d1, d2, p1, p2, scratch, path);
    }

    /// <summary>
    /// The exact 2x2 / 2 case. With even rows, the horizontal pairs of the whole tensor are one flat sequence:
    /// h[j] = max(x[2j], x[2j + 1]) gives rows of out2 pair maxima for every input row of every channel (the
    /// narrowing split of 16-bit lanes, as in <see cref="WindowMaxStride2Flat{T}"/>). Output row r is then the maximum
    /// of h rows 2r and 2r + 1, adjacent in memory. With VBMI (out2 at most 64), m = 64 / out2 such row pairs are
    /// 2 * m * out2 &lt;= 128 consecutive bytes: two vpermt2b gather their first and second halves into m * out2
    /// lanes, and one max gives m output rows. Otherwise (and for the last rows) the short rows are written a vector
    /// at a time. Either way vectors go out in increasing order: one that runs past its rows writes values the next
    /// step overwrites, and only where a vector would run past the end of the output does a scalar loop finish.
    /// </summary>
    private static void Pool2x2<T>(T* x, T* y, int channels, int in1, int in2, int out1, int out2, T* h, BytePoolPath path, byte* perm)
        where T : unmanaged, INumber<T>
    {
        long pairs = (long)channels * in1 * out2;
        if (pairs > int.MaxValue) throw new ResourceLimitException("MaxPool input too large");
        WindowMaxStride2Flat(x, h, (int)pairs, 2, path); // k = 2 reads exactly v[0, 2n): no slack needed
        long rows = (long)channels * out1, total = rows * out2;
        long r0 = 0;
        if (path == BytePoolPath.Auto && out2 <= 64 && perm is not null)
        {
            int m = 64 / out2;
            var ia = Vector512.Load(perm);
            var ib = Vector512.Load(perm + 64);
            // reads h[2 r out2, + 128) and writes y[r out2, + 64): both inside while r out2 + 64 <= total
            for (; r0 + m <= rows && r0 * out2 + 64 <= total; r0 += m)
            {
                byte* src = (byte*)(h + 2 * r0 * out2);
                var lo = Vector512.Load(src);
                var hi = Vector512.Load(src + 64);
                var a = Avx512Vbmi.PermuteVar64x8x2(lo, ia, hi).As<byte, T>();
                var b = Avx512Vbmi.PermuteVar64x8x2(lo, ib, hi).As<byte, T>();
                Vector512.Max(a, b).Store(y + r0 * out2);
            }
        }
        int vw = out2 <= 8 ? 8 : 16;
        for (long r = r0; r < rows; r++)
        {
            T* a = h + 2 * r * out2, b = a + out2, o = y + r * out2;
            int i = 0;
            if (path != BytePoolPath.Scalar)
            {
                long room = total - r * out2; // outputs from this row to the end
                if (vw == 8)
                {
                    for (; i < out2 && i + 8 <= room; i += 8)
                    {
                        var m = Vector128.Max(Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<ulong>(a + i)).As<ulong, T>(),
                            Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<ulong>(b + i)).As<ulong, T>());
                        Unsafe.WriteUnaligned(o + i, m.AsUInt64().ToScalar());
                    }
                }
                else
                {
                    for (; i < out2 && i + 16 <= room; i += 16)
                        Vector128.Max(Vector128.Load(a + i), Vector128.Load(b + i)).Store(o + i);
                }
            }
            for (; i < out2; i++) o[i] = Max(a[i], b[i]);
        }
    }

    /// <summary>
    /// The vpermt2b indices of the VBMI step of <see cref="Pool2x2{T}"/> for rows of <paramref name="out2"/> pair
    /// maxima: bytes 0-63 pick the first row of each pair, bytes 64-127 the second (lanes past the m * out2 used
    /// ones pick byte 0; they are overwritten).
    /// </summary>
    public static void PairRowPermutation(int out2, Span<byte> perm)
    {
        perm[..128].Clear();
        if (out2 <= 0 || out2 > 64) return;
        int m = 64 / out2;
        for (int k = 0; k < m * out2; k++)
        {
            int q = k / out2, i = k % out2;
            perm[k] = (byte)(q * 2 * out2 + i);
            perm[64 + k] = (byte)(q * 2 * out2 + out2 + i);
        }
    }

    private static void Stride2Planes<T>(T* x, T* y, int channels, int in1, int in2, int out1, int out2,
        int k1, int k2, int s1, int d1, int p1, int p2, T* scratch, BytePoolPath path)
        where T : unmanaged, INumber<T>, IMinMaxValue<T>
    {
        int wq = PlaneWidth(out2, k2), rw = 2 * wq;
        int lo = Math.Min(p2, rw), hi = Math.Min(rw, p2 + in2), cnt = hi - lo;
        long rows = (long)channels * out1;
        T* v = scratch;
        T* w = scratch + rows * rw + 2L * k2 + Slack;
        T min = T.MinValue;
        // The flat pass reads up to a vector pair plus the kernel past the last row: keep that slack at the minimum.
        new Span<T>(v + rows * rw, 2 * k2 + Slack).Fill(min);
        long inSize = (long)in1 * in2;
        for (int c = 0; c < channels; c++)
        {
            T* xc = x + c * inSize;
            for (int o1 = 0; o1 < out1; o1++)
            {
                T* row = v + ((long)c * out1 + o1) * rw;
                if (lo > 0) new Span<T>(row, lo).Fill(min);
                if (hi < rw) new Span<T>(row + Math.Max(hi, lo), rw - Math.Max(hi, lo)).Fill(min);
                if (cnt <= 0) continue;
                int st1 = o1 * s1 - p1;
                PoolGeometry.TapRange(st1, k1, d1, in1, out int a0, out int a1);
                if (a0 == a1) { new Span<T>(row + lo, cnt).Fill(min); continue; }
                T* src = xc + (long)(st1 + a0 * d1) * in2 - p2 + lo;
                MaxRows(row + lo, src, (long)d1 * in2, a1 - a0, cnt, path);
            }
        }
        long total = rows * wq;
        if (total > int.MaxValue) throw new ResourceLimitException("MaxPool output too large");
        if (wq == out2)
        {
            WindowMaxStride2Flat(v, y, (int)total, k2, path);
            return;
        }
        WindowMaxStride2Flat(v, w, (int)total, k2, path);
        for (long r = 0; r < rows; r++)
            new ReadOnlySpan<T>(w + r * wq, out2).CopyTo(new Span<T>(y + r * out2, out2));
    }

    private static void Rows<T>(T* x, T* y, int channels, int in1, int in2, int out1, int out2,
        int k1, int k2, int s1, int s2, int d1, int d2, int p1, int p2, T* scratch, BytePoolPath path)
        where T : unmanaged, INumber<T>, IMinMaxValue<T>
    {
        int wp = PaddedWidth(out2, k2, s2, d2);
        int lo = Math.Min(p2, wp), hi = Math.Min(wp, p2 + in2), cnt = hi - lo;
        int hw = (out2 - 1) * s2 + 1; // window maxima needed (one per start position)
        T* row = scratch;
        T* h = scratch + wp + Slack;
        T min = T.MinValue;
        new Span<T>(row, wp).Fill(min);
        long inSize = (long)in1 * in2, outSize = (long)out1 * out2;
        for (int c = 0; c < channels; c++)
        {
            T* xc = x + c * inSize;
            for (int o1 = 0; o1 < out1; o1++)
            {
                if (cnt > 0)
                {
                    int st1 = o1 * s1 - p1;
                    PoolGeometry.TapRange(st1, k1, d1, in1, out int a0, out int a1);
                    if (a0 == a1) new Span<T>(row + lo, cnt).Fill(min);
                    else MaxRows(row + lo, xc + (long)(st1 + a0 * d1) * in2 - p2 + lo, (long)d1 * in2, a1 - a0, cnt, path);
                }
                T* yr = y + c * outSize + (long)o1 * out2;
                if (s2 == 1)
                {
                    WindowMax(row, yr, out2, k2, d2, path);
                    continue;
                }
                WindowMax(row, h, hw, k2, d2, path);
                for (int o2 = 0; o2 < out2; o2++) yr[o2] = h[o2 * s2];
            }
        }
    }

    /// <summary>dst[i] = max over t &lt; taps of src[t * stride + i], for i in [0, n).</summary>
    private static void MaxRows<T>(T* dst, T* src, long stride, int taps, int n, BytePoolPath path)
        where T : unmanaged, INumber<T>
    {
        int i = 0;
        if (path <= BytePoolPath.Vector512 && n >= Vector512<T>.Count)
        {
            int vw = Vector512<T>.Count;
            for (; ; i += vw)
            {
                if (i + vw > n) i = n - vw; // last vector overlaps the previous one
                var m = Vector512.Load(src + i);
                for (int t = 1; t < taps; t++) m = Vector512.Max(m, Vector512.Load(src + t * stride + i));
                m.Store(dst + i);
                if (i + vw >= n) return;
            }
        }
        if (path != BytePoolPath.Scalar && n >= Vector128<T>.Count)
        {
            int vw = Vector128<T>.Count;
            for (; ; i += vw)
            {
                if (i + vw > n) i = n - vw;
                var m = Vector128.Load(src + i);
                for (int t = 1; t < taps; t++) m = Vector128.Max(m, Vector128.Load(src + t * stride + i));
                m.Store(dst + i);
                if (i + vw >= n) return;
            }
        }
        if (path != BytePoolPath.Scalar && n >= 8)
        {
            // 8..15 values: two overlapping 8-byte halves of a Vector128.
            for (int q = 0; q < 2; q++, i = n - 8)
            {
                var m = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<ulong>(src + i)).As<ulong, T>();
                for (int t = 1; t < taps; t++)
                    m = Vector128.Max(m, Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<ulong>(src + t * stride + i)).As<ulong, T>());
                Unsafe.WriteUnaligned(dst + i, m.AsUInt64().ToScalar());
            }
            return;
        }
        for (; i < n; i++)
        {
            T m = src[i];
            for (int t = 1; t < taps; t++) m = Max(m, src[t * stride + i]);
            dst[i] = m;
        }
    }

    /// <summary>
    /// o[j] = max over t &lt; k of v[2j + t], for j in [0, n): each vector pair loaded at 2j + t gives tap t in its
    /// even bytes and tap t + 1 in its odd bytes. Reads v[0, 2n + k - 2]: for k = 2 exactly
    /// the 2n values, for larger k a little past them (the caller keeps that slack).
    /// </summary>
    private static void WindowMaxStride2Flat<T>(T* v, T* o, int n, int k, BytePoolPath path)
        where T : unmanaged, INumber<T>
    {
        int j = 0;
        if (path <= BytePoolPath.Vector512 && n >= Vector512<T>.Count)
        {
            int vw = Vector512<T>.Count;
            for (; ; j += vw)
            {
                if (j + vw > n) j = n - vw;
                T* q = v + 2L * j;
                Vector512<T> m = default;
                for (int t = 0; t < k; t += 2)
                {
                    var a = Vector512.Load(q + t).As<T, ushort>();
                    var b = Vector512.Load(q + t + vw).As<T, ushort>();
                    var even = Vector512.Narrow(a, b).As<byte, T>();
                    m = t == 0 ? even : Vector512.Max(m, even);
                    if (t + 1 < k)
                        m = Vector512.Max(m, Vector512.Narrow(Vector512.ShiftRightLogical(a, 8), Vector512.ShiftRightLogical(b, 8)).As<byte, T>());
                }
                m.Store(o + j);
                if (j + vw >= n) return;
            }
        }
        if (path != BytePoolPath.Scalar && n >= Vector128<T>.Count)
        {
            int vw = Vector128<T>.Count;
            for (; ; j += vw)
            {
                if (j + vw > n) j = n - vw;
                T* q = v + 2L * j;
                Vector128<T> m = default;
                for (int t = 0; t < k; t += 2)
                {
                    var a = Vector128.Load(q + t).As<T, ushort>();
                    var b = Vector128.Load(q + t + vw).As<T, ushort>();
                    var even = Vector128.Narrow(a, b).As<byte, T>();
                    m = t == 0 ? even : Vector128.Max(m, even);
                    if (t + 1 < k)
                        m = Vector128.Max(m, Vector128.Narrow(Vector128.ShiftRightLogical(a, 8), Vector128.ShiftRightLogical(b, 8)).As<byte, T>());
                }
                m.Store(o + j);
                if (j + vw >= n) return;
            }
        }
        for (; j < n; j++)
        {
            T* q = v + 2L * j;
            T m = q[0];
            for (int t = 1; t < k; t++) m = Max(m, q[t]);
            o[j] = m;
        }
    }

    /// <summary>dst[j] = max over b &lt; k of src[j + b * d], for j in [0, n).</summary>
    private static void WindowMax<T>(T* src, T* dst, int n, int k, int d, BytePoolPath path)
        where T : unmanaged, INumber<T>
    {
        int j = 0;
        if (path != BytePoolPath.Scalar && n >= Vector128<T>.Count)
        {
            int vw = Vector128<T>.Count;
            for (; ; j += vw)
            {
                if (j + vw > n) j = n - vw;
                var m = Vector128.Load(src + j);
                for (int b = 1; b < k; b++) m = Vector128.Max(m, Vector128.Load(src + j + b * d));
                m.Store(dst + j);
                if (j + vw >= n) return;
            }
        }
        for (; j < n; j++)
        {
            T m = src[j];
            for (int b = 1; b < k; b++) m = Max(m, src[j + b * d]);
            dst[j] = m;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T Max<T>(T a, T b) where T : INumber<T> => a > b ? a : b;
}

/// <summary>
/// One kernel's runs of <see cref="MaxPool2dBytes"/>: the scratch taken from the run's context and the 2x2 pool's byte
/// permutation kept for the output width it was made for (made again only when the width changes). Used by
/// MaxPoolKernel and by a QLinearConv with a fused MaxPool on the routes that pool the bytes they wrote.
/// </summary>
internal sealed class BytePool2d
{
    private readonly byte[] _pairPermutation = new byte[128];
    private int _pairPermutationFor = -1;

    /// <summary><see cref="MaxPool2dBytes.Run{T}"/> of x into y, its scratch in slot <paramref name="scratchSlot"/> of <paramref name="ctx"/>.</summary>
    public unsafe void Run<T>(RunContext ctx, int scratchSlot, ReadOnlySpan<T> x, Span<T> y, int channels, int in1, int in2, int out1, int out2,
        int k1, int k2, int s1, int s2, int d1, int d2, int p1, int p2)
        where T : unmanaged, INumber<T>, IMinMaxValue<T>
    {
        var scratch = ctx.Scratch<byte>(MaxPool2dBytes.ScratchBytes(channels, in1, in2, out1, out2, k1, k2, s1, s2, d1, d2, p1, p2), scratchSlot);
        if (_pairPermutationFor != out2)
        {
            MaxPool2dBytes.PairRowPermutation(out2, _pairPermutation);
            _pairPermutationFor = out2;
        }
        fixed (T* px = x, py = y)
        fixed (byte* ps = scratch, pp = _pairPermutation)
            MaxPool2dBytes.Run(px, py, channels, in1, in2, out1, out2, k1, k2, s1, s2, d1, d2, p1, p2, (T*)ps, pp);
    }
}
