using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Common;

/// <summary>
/// A 16 x 16 float transpose in Vector512 registers: 32-bit and 64-bit interleaves make 4 x 4 blocks within each
/// 128-bit lane, two rounds of 128-bit lane shuffles put the blocks in place (64 shuffles for 256 values). Callers
/// check <see cref="Avx512F.IsSupported"/>.
/// </summary>
internal static unsafe class Transpose16
{
    /// <summary>
    /// Reads 16 rows of 16 floats (row i at <paramref name="src"/> + i * <paramref name="srcStride"/>) and writes
    /// their transpose: output row j (element j of every input row) to <paramref name="dst"/>[j].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run(float* src, long srcStride, float** dst)
    {
        Vector512<float> t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15;
        {
            var r0 = Vector512.Load(src); var r1 = Vector512.Load(src + srcStride);
            var r2 = Vector512.Load(src + 2 * srcStride); var r3 = Vector512.Load(src + 3 * srcStride);
            var r4 = Vector512.Load(src + 4 * srcStride); var r5 = Vector512.Load(src + 5 * srcStride);
            var r6 = Vector512.Load(src + 6 * srcStride); var r7 = Vector512.Load(src + 7 * srcStride);
            var r8 = Vector512.Load(src + 8 * srcStride); var r9 = Vector512.Load(src + 9 * srcStride);
            var r10 = Vector512.Load(src + 10 * srcStride); var r11 = Vector512.Load(src + 11 * srcStride);
            var r12 = Vector512.Load(src + 12 * srcStride); var r13 = Vector512.Load(src + 13 * srcStride);
            var r14 = Vector512.Load(src + 14 * srcStride); var r15 = Vector512.Load(src + 15 * srcStride);
            // 32-bit interleave of row pairs.
            t0 = Avx512F.UnpackLow(r0, r1); t1 = Avx512F.UnpackHigh(r0, r1);
            t2 = Avx512F.UnpackLow(r2, r3); t3 = Avx512F.UnpackHigh(r2, r3);
            t4 = Avx512F.UnpackLow(r4, r5); t5 = Avx512F.UnpackHigh(r4, r5);
            t6 = Avx512F.UnpackLow(r6, r7); t7 = Avx512F.UnpackHigh(r6, r7);
            t8 = Avx512F.UnpackLow(r8, r9); t9 = Avx512F.UnpackHigh(r8, r9);
            t10 = Avx512F.UnpackLow(r10, r11); t11 = Avx512F.UnpackHigh(r10, r11);
            t12 = Avx512F.UnpackLow(r12, r13); t13 = Avx512F.UnpackHigh(r12, r13);
            t14 = Avx512F.UnpackLow(r14, r15); t15 = Avx512F.UnpackHigh(r14, r15);
        }
        // 64-bit interleave: u(4g + k) holds, in 128-bit lane L, column 4L + k of rows 4g .. 4g + 3.
        var u0 = Lo(t0, t2); var u1 = Hi(t0, t2); var u2 = Lo(t1, t3); var u3 = Hi(t1, t3);
        var u4 = Lo(t4, t6); var u5 = Hi(t4, t6); var u6 = Lo(t5, t7); var u7 = Hi(t5, t7);
        var u8 = Lo(t8, t10); var u9 = Hi(t8, t10); var u10 = Lo(t9, t11); var u11 = Hi(t9, t11);
        var u12 = Lo(t12, t14); var u13 = Hi(t12, t14); var u14 = Lo(t13, t15); var u15 = Hi(t13, t15);
        Finish(u0, u4, u8, u12, dst, 0);
        Finish(u1, u5, u9, u13, dst, 1);
        Finish(u2, u6, u10, u14, dst, 2);
        Finish(u3, u7, u11, u15, dst, 3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Lo(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Hi(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle();

    /// <summary>Columns k, 4 + k, 8 + k, 12 + k from the four row groups' vectors for column offset k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish(Vector512<float> g0, Vector512<float> g1, Vector512<float> g2, Vector512<float> g3, float** dst, int k)
    {
        var v = Avx512F.Shuffle4x128(g0, g1, 0x44);  // g0 lanes 0,1 | g1 lanes 0,1
        var vh = Avx512F.Shuffle4x128(g0, g1, 0xEE); // g0 lanes 2,3 | g1 lanes 2,3
        var w = Avx512F.Shuffle4x128(g2, g3, 0x44);
        var wh = Avx512F.Shuffle4x128(g2, g3, 0xEE);
        Vector512.Store(Avx512F.Shuffle4x128(v, w, 0x88), dst[k]);       // lane 0 of each group
        Vector512.Store(Avx512F.Shuffle4x128(v, w, 0xDD), dst[4 + k]);   // lane 1
        Vector512.Store(Avx512F.Shuffle4x128(vh, wh, 0x88), dst[8 + k]); // lane 2
        Vector512.Store(Avx512F.Shuffle4x128(vh, wh, 0xDD), dst[12 + k]);
    }
}
