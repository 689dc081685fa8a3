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
    public static void Run(float* src, long srcStride, float** dst) => Run(new Rows(src, srcStride), new Pointers(dst, 16));

    /// <summary>
    /// As <see cref="Run(float*, long, float**)"/> for ragged blocks: input rows at or past <paramref name="rows"/> count
    /// as zeros and each row reads only its first <paramref name="cols"/> floats (masked loads, nothing read past
    /// them); output row j (j below <paramref name="cols"/>) goes to <paramref name="dst"/>[j].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run(float* src, long srcStride, int rows, int cols, float** dst) => Run(new MaskedRows(src, srcStride, rows, cols), new Pointers(dst, cols));

    /// <summary>
    /// Reads <paramref name="rows"/> rows of 16 floats (the rest count as zeros) and writes output row j (all 16) to
    /// <paramref name="dst"/> + j * <paramref name="dstStride"/>, only its first <paramref name="lanes"/> floats
    /// (masked stores, nothing written past them); output rows from <c>outRows</c> on are not written.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run(float* src, long srcStride, int rows, float* dst, long dstStride, int lanes, int outRows = 16) =>
        Run(new MaskedRows(src, srcStride, rows, 16), new Strided(dst, dstStride, lanes, outRows));

    /// <summary>Where the 16 input rows come from.</summary>
    private interface IRows { Vector512<float> Load(int i); }

    /// <summary>Where output row j goes.</summary>
    private interface ISink { void Store(int j, Vector512<float> v); }

    private readonly struct Rows(float* src, long stride) : IRows
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Load(int i) => Vector512.Load(src + i * stride);
    }

    private readonly struct MaskedRows(float* src, long stride, int rows, int cols) : IRows
    {
        private readonly Vector512<float> _mask = LaneMask(cols);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Load(int i) => i >= rows ? Vector512<float>.Zero
            : cols >= 16 ? Vector512.Load(src + i * stride) : Avx512F.MaskLoad(src + i * stride, _mask, Vector512<float>.Zero);
    }

    private readonly struct Pointers(float** dst, int count) : ISink
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store(int j, Vector512<float> v)
        {
            if (j < count) Vector512.Store(v, dst[j]);
        }
    }

    private readonly struct Strided(float* dst, long stride, int lanes, int count) : ISink
    {
        private readonly Vector512<float> _mask = LaneMask(lanes);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store(int j, Vector512<float> v)
        {
            if (j >= count) return;
            if (lanes >= 16) Vector512.Store(v, dst + j * stride);
            else Avx512F.MaskStore(dst + j * stride, _mask, v);
        }
    }

    /// <summary>All bits set in the first <paramref name="n"/> lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LaneMask(int n) =>
        Vector512.LessThan(Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector512.Create(n)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Run<TRows, TSink>(in TRows src, in TSink dst) where TRows : struct, IRows where TSink : struct, ISink
    {
        Vector512<float> t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15;
        {
            var r0 = src.Load(0); var r1 = src.Load(1); var r2 = src.Load(2); var r3 = src.Load(3);
            var r4 = src.Load(4); var r5 = src.Load(5); var r6 = src.Load(6); var r7 = src.Load(7);
            var r8 = src.Load(8); var r9 = src.Load(9); var r10 = src.Load(10); var r11 = src.Load(11);
            var r12 = src.Load(12); var r13 = src.Load(13); var r14 = src.Load(14); var r15 = src.Load(15);
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
        Finish(u0, u4, u8, u12, in dst, 0);
        Finish(u1, u5, u9, u13, in dst, 1);
        Finish(u2, u6, u10, u14, in dst, 2);
        Finish(u3, u7, u11, u15, in dst, 3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Lo(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Hi(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle();

    /// <summary>Columns k, 4 + k, 8 + k, 12 + k from the four row groups' vectors for column offset k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish<TSink>(Vector512<float> g0, Vector512<float> g1, Vector512<float> g2, Vector512<float> g3, in TSink dst, int k)
        where TSink : struct, ISink
    {
        var v = Avx512F.Shuffle4x128(g0, g1, 0x44);  // g0 lanes 0,1 | g1 lanes 0,1
        var vh = Avx512F.Shuffle4x128(g0, g1, 0xEE); // g0 lanes 2,3 | g1 lanes 2,3
        var w = Avx512F.Shuffle4x128(g2, g3, 0x44);
        var wh = Avx512F.Shuffle4x128(g2, g3, 0xEE);
        dst.Store(k, Avx512F.Shuffle4x128(v, w, 0x88));       // lane 0 of each group
        dst.Store(4 + k, Avx512F.Shuffle4x128(v, w, 0xDD));   // lane 1
        dst.Store(8 + k, Avx512F.Shuffle4x128(vh, wh, 0x88)); // lane 2
        dst.Store(12 + k, Avx512F.Shuffle4x128(vh, wh, 0xDD));
    }
}
