using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Common;

/// <summary>
/// An 8 x 16 float transpose in Vector512 registers (24 shuffles for 128 values): 32-bit and 64-bit interleaves make
/// 4 x 4 blocks within each 128-bit lane, one two-source permute per output puts two of them side by side. Callers
/// check <see cref="Avx512F.IsSupported"/>.
/// </summary>
internal static unsafe class Transpose8x16
{
    private static readonly Vector512<int> LowLanes = Vector512.Create(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    private static readonly Vector512<int> HighLanes = Vector512.Create(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);

    /// <summary>
    /// Reads <paramref name="rows"/> (at most 8) rows of 16 floats (row i at <paramref name="src"/> + i *
    /// <paramref name="srcStride"/>; missing rows count as zeros) and writes the 16 columns as rows of 8 floats:
    /// column j to <paramref name="dst"/> + 8 j.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run(float* src, long srcStride, int rows, float* dst)
    {
        var r0 = Vector512.Load(src);
        var r1 = rows > 1 ? Vector512.Load(src + srcStride) : default;
        var r2 = rows > 2 ? Vector512.Load(src + 2 * srcStride) : default;
        var r3 = rows > 3 ? Vector512.Load(src + 3 * srcStride) : default;
        var r4 = rows > 4 ? Vector512.Load(src + 4 * srcStride) : default;
        var r5 = rows > 5 ? Vector512.Load(src + 5 * srcStride) : default;
        var r6 = rows > 6 ? Vector512.Load(src + 6 * srcStride) : default;
        var r7 = rows > 7 ? Vector512.Load(src + 7 * srcStride) : default;
        // per 128-bit lane L: t0 = r0[4L], r1[4L], r0[4L+1], r1[4L+1]; t1 = the same for 4L+2, 4L+3
        var t0 = Avx512F.UnpackLow(r0, r1).AsDouble(); var t1 = Avx512F.UnpackHigh(r0, r1).AsDouble();
        var t2 = Avx512F.UnpackLow(r2, r3).AsDouble(); var t3 = Avx512F.UnpackHigh(r2, r3).AsDouble();
        var t4 = Avx512F.UnpackLow(r4, r5).AsDouble(); var t5 = Avx512F.UnpackHigh(r4, r5).AsDouble();
        var t6 = Avx512F.UnpackLow(r6, r7).AsDouble(); var t7 = Avx512F.UnpackHigh(r6, r7).AsDouble();
        // u0 lane L: column 4L of rows 0-3; u1: column 4L+1; u2: 4L+2; u3: 4L+3; u4-u7 the same for rows 4-7
        var u0 = Avx512F.UnpackLow(t0, t2).AsSingle(); var u1 = Avx512F.UnpackHigh(t0, t2).AsSingle();
        var u2 = Avx512F.UnpackLow(t1, t3).AsSingle(); var u3 = Avx512F.UnpackHigh(t1, t3).AsSingle();
        var u4 = Avx512F.UnpackLow(t4, t6).AsSingle(); var u5 = Avx512F.UnpackHigh(t4, t6).AsSingle();
        var u6 = Avx512F.UnpackLow(t5, t7).AsSingle(); var u7 = Avx512F.UnpackHigh(t5, t7).AsSingle();
        // output q (q < 4): columns q and q + 8 (lanes 0 and 2); output 4 + q: columns 4 + q and 12 + q (lanes 1 and 3)
        var lo = LowLanes; var hi = HighLanes;
        Store(Avx512F.PermuteVar16x32x2(u0, lo, u4), dst, 0);
        Store(Avx512F.PermuteVar16x32x2(u1, lo, u5), dst, 1);
        Store(Avx512F.PermuteVar16x32x2(u2, lo, u6), dst, 2);
        Store(Avx512F.PermuteVar16x32x2(u3, lo, u7), dst, 3);
        Store(Avx512F.PermuteVar16x32x2(u0, hi, u4), dst, 4);
        Store(Avx512F.PermuteVar16x32x2(u1, hi, u5), dst, 5);
        Store(Avx512F.PermuteVar16x32x2(u2, hi, u6), dst, 6);
        Store(Avx512F.PermuteVar16x32x2(u3, hi, u7), dst, 7);
    }

    /// <summary>Columns j (low half) and j + 8 (high half) to their rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector512<float> v, float* dst, int j)
    {
        Vector256.Store(v.GetLower(), dst + 8 * j);
        Vector256.Store(v.GetUpper(), dst + 8 * (j + 8));
    }
}
