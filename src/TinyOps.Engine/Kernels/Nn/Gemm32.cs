using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// Single-precision general matrix multiply on row-major matrices: C = act(alpha * op(A) * op(B) + beta * C + bias),
/// where op(A) is M x K and op(B) is K x N. With beta == 0, C is overwritten without being read. Allocation-free
/// after warm-up. Large problems go to <see cref="PackedGemm"/> (optionally split across threads); matrix-vector
/// shaped ones (few rows) to simple vector loops. <see cref="MultiplyReference"/> keeps the plain version for tests.
/// </summary>
internal static class SGemm
{
    /// <summary>Depth of one K panel: keeps the B panel of a micro-tile in L1 while rows of A stream by.</summary>
    private const int KBlock = 256;

    /// <summary>Tests set this to exercise the scalar fallbacks (no Vector256/Vector512 micro-kernels).</summary>
    internal static bool ForceScalar;

    public static void Multiply(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<float> A, int lda, ReadOnlySpan<float> B, int ldb, float beta, Span<float> C, int ldc)
        => Multiply(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, default, default, FusedActivation.None, 1);

    /// <summary>Packs a constant op(A) for the current GEMM path, to pass to <see cref="Multiply"/> on every run.</summary>
    public static PackedMatrix PackA(bool transA, int M, int K, ReadOnlySpan<float> A, int lda)
    {
        if (transA) CheckExtent(A.Length, K, M, lda, "A"); else CheckExtent(A.Length, M, K, lda, "A");
        return PackedGemm.Pack(PackedGemm.Select(), M, K, A, transA ? 1 : lda, transA ? lda : 1);
    }

    /// <summary>
    /// C = act(alpha * op(A) * op(B) + beta * C + rowBias[i] + colBias[j]); an empty bias span means none. With
    /// <paramref name="threads"/> above 1 the work is split across the shared <see cref="GemmThreads"/> pool.
    /// </summary>
    public static unsafe void Multiply(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<float> A, int lda, ReadOnlySpan<float> B, int ldb, float beta, Span<float> C, int ldc,
        ReadOnlySpan<float> rowBias, ReadOnlySpan<float> colBias, in FusedActivation act, int threads, PackedMatrix? packedA = null, PackedMatrix? packedB = null)
    {
        if (M <= 0 || N <= 0) return;
        CheckExtent(C.Length, M, N, ldc, "C");
        if (!rowBias.IsEmpty && rowBias.Length < M) throw new ArgumentException($"SGemm: row bias has {rowBias.Length} values for {M} rows");
        if (!colBias.IsEmpty && colBias.Length < N) throw new ArgumentException($"SGemm: column bias has {colBias.Length} values for {N} columns");
        bool accumulate = beta != 0f;
        if (accumulate && beta != 1f)
            for (int i = 0; i < M; i++)
            {
                var row = C.Slice(i * ldc, N);
                TensorPrimitives.Multiply(row, beta, row);
            }
        bool product = K > 0 && alpha != 0f;
        if (product)
        {
            if (transA) CheckExtent(A.Length, K, M, lda, "A"); else CheckExtent(A.Length, M, K, lda, "A");
            if (transB) CheckExtent(B.Length, N, K, ldb, "B"); else CheckExtent(B.Length, K, N, ldb, "B");
        }
        var path = PackedGemm.Select();
        bool usePacked = packedA is not null && packedA.Fits(path, M, K);
        // Few rows: packing would cost as much as the product; use the vector loops (which read no packed B), then the epilogue.
        bool small = !transA && (M < 4 || (transB && M < 16));
        bool usePackedB = packedB is not null && packedB.Fits(path, K, N) && !small;
        fixed (float* pa = A, pb = B, pc = C, prb = rowBias, pcb = colBias, ppa = usePacked ? packedA!.Data : null, ppb = usePackedB ? packedB!.Data : null)
        {
            var job = new PackedGemm.Job
            {
                M = M, N = N, K = K,
                A = pa, Sai = transA ? 1 : lda, Sak = transA ? lda : 1,
                B = pb, Sbk = transB ? 1 : ldb, Sbn = transB ? ldb : 1,
                C = pc, Ldc = ldc,
                Alpha = alpha,
                Accumulate = accumulate,
                RowBias = rowBias.IsEmpty ? null : prb,
                ColBias = colBias.IsEmpty ? null : pcb,
                Act = act,
                Path = path,
                PackedA = usePacked ? ppa : null,
                PackedB = usePackedB ? ppb : null,
            };
            if (!product)
            {
                PackedGemm.EpilogueOnly(in job, 0, M);
                return;
            }
            if (small)
            {
                if (!accumulate)
                    for (int i = 0; i < M; i++) C.Slice(i * ldc, N).Clear();
                var few = new SmallJob { A = pa, B = pb, C = pc, M = M, N = N, K = K, Lda = lda, Ldb = ldb, Ldc = ldc, Alpha = alpha, TransB = transB };
                // Matrix-vector shapes stream B once: with threads, each part takes a band of its columns. The shared
                // static is written only while this session holds the pool.
                if (threads > 1 && N >= 64 && (long)N * K >= 256 * 1024 && WorkerPool.TryEnter())
                {
                    try
                    {
                        s_small = few;
                        WorkerPool.Run(&SmallPart, Math.Min(threads, N / 32));
                    }
                    finally { WorkerPool.Exit(); }
                }
                else SmallColumns(in few, 0, 1);
                if (job.RowBias != null || job.ColBias != null || act.Kind != ActivationKind.None || act.HasResidual)
                {
                    job.Accumulate = true;
                    PackedGemm.EpilogueOnly(in job, 0, M);
                }
                return;
            }
            if (threads > 1) GemmThreads.Run(in job, threads);
            else PackedGemm.Run(in job, 0, M, 0, N);
        }
    }

    private unsafe struct SmallJob
    {
        public float* A, B, C;
        public int M, N, K, Lda, Ldb, Ldc;
        public float Alpha;
        public bool TransB;
    }

    private static SmallJob s_small;

    private static void SmallPart(int part, int parts) => SmallColumns(in s_small, part, parts);

    /// <summary>Columns [N * part / parts, N * (part + 1) / parts) of the few-row product <paramref name="j"/>.</summary>
    private static unsafe void SmallColumns(in SmallJob j, int part, int parts)
    {
        int n0 = (int)((long)j.N * part / parts), n1 = (int)((long)j.N * (part + 1) / parts);
        if (n1 <= n0) return;
        ref float a = ref *j.A;
        ref float c = ref *(j.C + n0);
        if (j.TransB) MultiplyNT(j.M, n1 - n0, j.K, j.Alpha, ref a, j.Lda, ref *(j.B + (long)n0 * j.Ldb), j.Ldb, ref c, j.Ldc);
        else MultiplyNN(j.M, n1 - n0, j.K, j.Alpha, ref a, j.Lda, 1, ref *(j.B + n0), j.Ldb, ref c, j.Ldc);
    }

    /// <summary>The plain reference GEMM (vector loops, no packing), for tests and as a baseline.</summary>
    public static void MultiplyReference(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<float> A, int lda, ReadOnlySpan<float> B, int ldb, float beta, Span<float> C, int ldc)
    {
        if (M <= 0 || N <= 0) return;
        CheckExtent(C.Length, M, N, ldc, "C");
        for (int i = 0; i < M; i++)
        {
            var row = C.Slice(i * ldc, N);
            if (beta == 0f) row.Clear();
            else if (beta != 1f) TensorPrimitives.Multiply(row, beta, row);
        }
        if (K <= 0 || alpha == 0f) return;
        if (transA) CheckExtent(A.Length, K, M, lda, "A"); else CheckExtent(A.Length, M, K, lda, "A");
        if (transB) CheckExtent(B.Length, N, K, ldb, "B"); else CheckExtent(B.Length, K, N, ldb, "B");

        ref float a = ref MemoryMarshal.GetReference(A);
        ref float b = ref MemoryMarshal.GetReference(B);
        ref float c = ref MemoryMarshal.GetReference(C);
        if (!transB)
        {
            // A(i, k) = a[i * sai + k * sak]; B rows are contiguous along N.
            int sai = transA ? 1 : lda, sak = transA ? lda : 1;
            MultiplyNN(M, N, K, alpha, ref a, sai, sak, ref b, ldb, ref c, ldc);
        }
        else if (!transA)
        {
            MultiplyNT(M, N, K, alpha, ref a, lda, ref b, ldb, ref c, ldc);
        }
        else
        {
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++)
                {
                    float s = 0;
                    for (int k = 0; k < K; k++) s += Unsafe.Add(ref a, k * lda + i) * Unsafe.Add(ref b, j * ldb + k);
                    Unsafe.Add(ref c, i * ldc + j) += alpha * s;
                }
        }
    }

    private static void CheckExtent(int length, int rows, int cols, int ld, string name)
    {
        if ((rows > 1 && cols > ld) || (long)(rows - 1) * ld + cols > length)
            throw new ArgumentException($"SGemm: matrix {name} of {rows}x{cols} with leading dimension {ld} does not fit {length} elements");
    }

    /// <summary>C += alpha * A * B with B contiguous along N: register tiles of 4 rows by 2 vectors, K in panels.</summary>
    private static void MultiplyNN(int M, int N, int K, float alpha, ref float a, int sai, int sak, ref float b, int ldb, ref float c, int ldc)
    {
        int V = Vector<float>.Count;
        int nr = 2 * V;
        // A packed copy of one kc x 2V panel of B (contiguous rows), reused by every row tile of A.
        Span<float> panel = stackalloc float[KBlock * 2 * Vector<float>.Count];
        ref float pb = ref MemoryMarshal.GetReference(panel);
        for (int k0 = 0; k0 < K; k0 += KBlock)
        {
            int kc = Math.Min(KBlock, K - k0);
            ref float ak = ref Unsafe.Add(ref a, k0 * sak);
            ref float bk = ref Unsafe.Add(ref b, k0 * ldb);
            int j = 0;
            for (; j + nr <= N; j += nr)
            {
                ref float bj = ref Unsafe.Add(ref bk, j);
                for (int k = 0; k < kc; k++)
                {
                    Vector.StoreUnsafe(Vector.LoadUnsafe(ref bj, (nuint)(k * ldb)), ref pb, (nuint)(k * nr));
                    Vector.StoreUnsafe(Vector.LoadUnsafe(ref bj, (nuint)(k * ldb + V)), ref pb, (nuint)(k * nr + V));
                }
                int i = 0;
                for (; i + 4 <= M; i += 4) Tile4x2V(kc, alpha, ref Unsafe.Add(ref ak, i * sai), sai, sak, ref pb, nr, ref Unsafe.Add(ref c, i * ldc + j), ldc);
                for (; i < M; i++) Tile1x2V(kc, alpha, ref Unsafe.Add(ref ak, i * sai), sak, ref pb, nr, ref Unsafe.Add(ref c, i * ldc + j));
            }
            for (; j + V <= N; j += V)
            {
                for (int i = 0; i < M; i++)
                {
                    ref float ai = ref Unsafe.Add(ref ak, i * sai);
                    var acc = Vector<float>.Zero;
                    for (int k = 0; k < kc; k++)
                        acc += new Vector<float>(Unsafe.Add(ref ai, k * sak)) * Vector.LoadUnsafe(ref bk, (nuint)(k * ldb + j));
                    ref float ci = ref Unsafe.Add(ref c, i * ldc + j);
                    Vector.StoreUnsafe(Vector.LoadUnsafe(ref ci) + acc * alpha, ref ci);
                }
            }
            for (; j < N; j++)
            {
                for (int i = 0; i < M; i++)
                {
                    ref float ai = ref Unsafe.Add(ref ak, i * sai);
                    float s = 0;
                    for (int k = 0; k < kc; k++) s += Unsafe.Add(ref ai, k * sak) * Unsafe.Add(ref bk, k * ldb + j);
                    Unsafe.Add(ref c, i * ldc + j) += alpha * s;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile4x2V(int kc, float alpha, ref float a, int sai, int sak, ref float b, int ldb, ref float c, int ldc)
    {
        int V = Vector<float>.Count;
        Vector<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector<float> c20 = default, c21 = default, c30 = default, c31 = default;
        ref float a1 = ref Unsafe.Add(ref a, sai);
        ref float a2 = ref Unsafe.Add(ref a, 2 * sai);
        ref float a3 = ref Unsafe.Add(ref a, 3 * sai);
        for (int k = 0; k < kc; k++)
        {
            nuint bo = (nuint)(k * ldb);
            var b0 = Vector.LoadUnsafe(ref b, bo);
            var b1 = Vector.LoadUnsafe(ref b, bo + (nuint)V);
            int ao = k * sak;
            var v = new Vector<float>(Unsafe.Add(ref a, ao));
            c00 += v * b0; c01 += v * b1;
            v = new Vector<float>(Unsafe.Add(ref a1, ao));
            c10 += v * b0; c11 += v * b1;
            v = new Vector<float>(Unsafe.Add(ref a2, ao));
            c20 += v * b0; c21 += v * b1;
            v = new Vector<float>(Unsafe.Add(ref a3, ao));
            c30 += v * b0; c31 += v * b1;
        }
        Accumulate(ref c, V, c00, c01, alpha);
        Accumulate(ref Unsafe.Add(ref c, ldc), V, c10, c11, alpha);
        Accumulate(ref Unsafe.Add(ref c, 2 * ldc), V, c20, c21, alpha);
        Accumulate(ref Unsafe.Add(ref c, 3 * ldc), V, c30, c31, alpha);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile1x2V(int kc, float alpha, ref float a, int sak, ref float b, int ldb, ref float c)
    {
        int V = Vector<float>.Count;
        Vector<float> c0 = default, c1 = default;
        for (int k = 0; k < kc; k++)
        {
            nuint bo = (nuint)(k * ldb);
            var v = new Vector<float>(Unsafe.Add(ref a, k * sak));
            c0 += v * Vector.LoadUnsafe(ref b, bo);
            c1 += v * Vector.LoadUnsafe(ref b, bo + (nuint)V);
        }
        Accumulate(ref c, V, c0, c1, alpha);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate(ref float c, int V, Vector<float> x0, Vector<float> x1, float alpha)
    {
        Vector.StoreUnsafe(Vector.LoadUnsafe(ref c) + x0 * alpha, ref c);
        Vector.StoreUnsafe(Vector.LoadUnsafe(ref c, (nuint)V) + x1 * alpha, ref c, (nuint)V);
    }

    /// <summary>C += alpha * A * B^T: both operands contiguous along K, so each element is a dot product; 4 columns share A loads.</summary>
    private static void MultiplyNT(int M, int N, int K, float alpha, ref float a, int lda, ref float b, int ldb, ref float c, int ldc)
    {
        if (M >= 4 && N >= 4 && !ForceScalar && Vector512.IsHardwareAccelerated)
        {
            // Blocks of 4 rows x 4 columns: each B row is read once per 4 rows of A instead of once per row.
            int m4 = M / 4 * 4;
            MultiplyNT4x4(m4, N, K, alpha, ref a, lda, ref b, ldb, ref c, ldc);
            if (m4 == M) return;
            a = ref Unsafe.Add(ref a, m4 * lda);
            c = ref Unsafe.Add(ref c, m4 * ldc);
            M -= m4;
        }
        int V = Vector<float>.Count;
        for (int i = 0; i < M; i++)
        {
            ref float ai = ref Unsafe.Add(ref a, i * lda);
            ref float ci = ref Unsafe.Add(ref c, i * ldc);
            int j = 0;
            if (UseDotRows8 && !ForceScalar && Vector512.IsHardwareAccelerated && K >= 64)
                j = DotRows8(N, K, alpha, ref ai, ref b, ldb, ref ci);
            for (; j + 4 <= N; j += 4)
            {
                ref float b0 = ref Unsafe.Add(ref b, j * ldb);
                ref float b1 = ref Unsafe.Add(ref b0, ldb);
                ref float b2 = ref Unsafe.Add(ref b0, 2 * ldb);
                ref float b3 = ref Unsafe.Add(ref b0, 3 * ldb);
                Vector<float> s0 = default, s1 = default, s2 = default, s3 = default;
                int k = 0;
                for (; k + V <= K; k += V)
                {
                    var av = Vector.LoadUnsafe(ref ai, (nuint)k);
                    s0 += av * Vector.LoadUnsafe(ref b0, (nuint)k);
                    s1 += av * Vector.LoadUnsafe(ref b1, (nuint)k);
                    s2 += av * Vector.LoadUnsafe(ref b2, (nuint)k);
                    s3 += av * Vector.LoadUnsafe(ref b3, (nuint)k);
                }
                float t0 = Vector.Sum(s0), t1 = Vector.Sum(s1), t2 = Vector.Sum(s2), t3 = Vector.Sum(s3);
                for (; k < K; k++)
                {
                    float x = Unsafe.Add(ref ai, k);
                    t0 += x * Unsafe.Add(ref b0, k);
                    t1 += x * Unsafe.Add(ref b1, k);
                    t2 += x * Unsafe.Add(ref b2, k);
                    t3 += x * Unsafe.Add(ref b3, k);
                }
                Unsafe.Add(ref ci, j) += alpha * t0;
                Unsafe.Add(ref ci, j + 1) += alpha * t1;
                Unsafe.Add(ref ci, j + 2) += alpha * t2;
                Unsafe.Add(ref ci, j + 3) += alpha * t3;
            }
            for (; j < N; j++)
            {
                ref float bj = ref Unsafe.Add(ref b, j * ldb);
                Vector<float> s = default;
                int k = 0;
                for (; k + V <= K; k += V) s += Vector.LoadUnsafe(ref ai, (nuint)k) * Vector.LoadUnsafe(ref bj, (nuint)k);
                float t = Vector.Sum(s);
                for (; k < K; k++) t += Unsafe.Add(ref ai, k) * Unsafe.Add(ref bj, k);
                Unsafe.Add(ref ci, j) += alpha * t;
            }
        }
    }

    /// <summary>
    /// c[j] += alpha · (a · B row j) for the first columns in groups of 8: eight rows of B stream at once (more reads in
    /// flight for a weight matrix that does not fit in cache), 16 floats a step with FMA, one reduction per row at the
    /// end. Returns how many columns it did.
    /// </summary>
    private static int DotRows8(int N, int K, float alpha, ref float a, ref float b, int ldb, ref float c)
    {
        int j = 0;
        for (; j + 8 <= N; j += 8)
        {
            ref float b0 = ref Unsafe.Add(ref b, j * ldb);
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
            int k = 0;
            for (; k + 16 <= K; k += 16)
            {
                var av = Vector512.LoadUnsafe(ref a, (nuint)k);
                s0 = Vector512.FusedMultiplyAdd(av, Vector512.LoadUnsafe(ref b0, (nuint)k), s0);
                s1 = Vector512.FusedMultiplyAdd(av, Vector512.LoadUnsafe(ref b0, (nuint)(ldb + k)), s1);
                s2 = Vector512.FusedMultiplyAdd(av, Vector512.LoadUnsafe(ref b0, (nuint)(2 * ldb + k)), s2);
                s3 = Vector512.FusedMultiplyAdd(av, Vector512.LoadUnsafe(ref b0, (nuint)(3 * ldb + k)), s3);
                s4 = Vector512.FusedMultiplyAdd(av, Vector512.LoadUnsafe(ref b0, (nuint)(4 * ldb + k)), s4);
                s5 = Vector512.FusedMultiplyAdd(av, Vector512.LoadUnsafe(ref b0, (nuint)(5 * ldb + k)), s5);
                s6 = Vector512.FusedMultiplyAdd(av, Vector512.LoadUnsafe(ref b0, (nuint)(6 * ldb + k)), s6);
                s7 = Vector512.FusedMultiplyAdd(av, Vector512.LoadUnsafe(ref b0, (nuint)(7 * ldb + k)), s7);
            }
            float t0 = Vector512.Sum(s0), t1 = Vector512.Sum(s1), t2 = Vector512.Sum(s2), t3 = Vector512.Sum(s3);
            float t4 = Vector512.Sum(s4), t5 = Vector512.Sum(s5), t6 = Vector512.Sum(s6), t7 = Vector512.Sum(s7);
            for (; k < K; k++)
            {
                float x = Unsafe.Add(ref a, k);
                t0 += x * Unsafe.Add(ref b0, k); t1 += x * Unsafe.Add(ref b0, ldb + k);
                t2 += x * Unsafe.Add(ref b0, 2 * ldb + k); t3 += x * Unsafe.Add(ref b0, 3 * ldb + k);
                t4 += x * Unsafe.Add(ref b0, 4 * ldb + k); t5 += x * Unsafe.Add(ref b0, 5 * ldb + k);
                t6 += x * Unsafe.Add(ref b0, 6 * ldb + k); t7 += x * Unsafe.Add(ref b0, 7 * ldb + k);
            }
            Unsafe.Add(ref c, j) += alpha * t0; Unsafe.Add(ref c, j + 1) += alpha * t1;
            Unsafe.Add(ref c, j + 2) += alpha * t2; Unsafe.Add(ref c, j + 3) += alpha * t3;
            Unsafe.Add(ref c, j + 4) += alpha * t4; Unsafe.Add(ref c, j + 5) += alpha * t5;
            Unsafe.Add(ref c, j + 6) += alpha * t6; Unsafe.Add(ref c, j + 7) += alpha * t7;
        }
        return j;
    }

    /// <summary>
    /// Whether the A·Bᵀ rows left after the 4 x 4 blocks take <see cref="DotRows8"/> (Vector512, K ≥ 64). A switch
    /// for in-process A/B comparisons with <c>bench/TinyOps.Bench.Kernels ab</c>.
    /// </summary>
    internal static bool UseDotRows8 = true;

    /// <summary>
    /// C[i, j] += alpha * dot(A row i, B row j) for M a multiple of 4, in 4 x 4 blocks of Vector512 accumulators (16
    /// FMAs per 8 loads); columns past the last block of 4 take one dot product each.
    /// </summary>
    private static void MultiplyNT4x4(int M, int N, int K, float alpha, ref float a, int lda, ref float b, int ldb, ref float c, int ldc)
    {
        int n4 = N / 4 * 4;
        for (int i = 0; i < M; i += 4)
        {
            ref float a0 = ref Unsafe.Add(ref a, i * lda);
            ref float a1 = ref Unsafe.Add(ref a0, lda);
            ref float a2 = ref Unsafe.Add(ref a0, 2 * lda);
            ref float a3 = ref Unsafe.Add(ref a0, 3 * lda);
            for (int j = 0; j < n4; j += 4)
            {
                ref float b0 = ref Unsafe.Add(ref b, j * ldb);
                ref float b1 = ref Unsafe.Add(ref b0, ldb);
                ref float b2 = ref Unsafe.Add(ref b0, 2 * ldb);
                ref float b3 = ref Unsafe.Add(ref b0, 3 * ldb);
                Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default, s10 = default, s11 = default, s12 = default, s13 = default;
                Vector512<float> s20 = default, s21 = default, s22 = default, s23 = default, s30 = default, s31 = default, s32 = default, s33 = default;
                int k = 0;
                for (; k + 16 <= K; k += 16)
                {
                    var w0 = Vector512.LoadUnsafe(ref b0, (nuint)k);
                    var w1 = Vector512.LoadUnsafe(ref b1, (nuint)k);
                    var w2 = Vector512.LoadUnsafe(ref b2, (nuint)k);
                    var w3 = Vector512.LoadUnsafe(ref b3, (nuint)k);
                    var x = Vector512.LoadUnsafe(ref a0, (nuint)k);
                    s00 = Vector512.FusedMultiplyAdd(x, w0, s00); s01 = Vector512.FusedMultiplyAdd(x, w1, s01);
                    s02 = Vector512.FusedMultiplyAdd(x, w2, s02); s03 = Vector512.FusedMultiplyAdd(x, w3, s03);
                    x = Vector512.LoadUnsafe(ref a1, (nuint)k);
                    s10 = Vector512.FusedMultiplyAdd(x, w0, s10); s11 = Vector512.FusedMultiplyAdd(x, w1, s11);
                    s12 = Vector512.FusedMultiplyAdd(x, w2, s12); s13 = Vector512.FusedMultiplyAdd(x, w3, s13);
                    x = Vector512.LoadUnsafe(ref a2, (nuint)k);
                    s20 = Vector512.FusedMultiplyAdd(x, w0, s20); s21 = Vector512.FusedMultiplyAdd(x, w1, s21);
                    s22 = Vector512.FusedMultiplyAdd(x, w2, s22); s23 = Vector512.FusedMultiplyAdd(x, w3, s23);
                    x = Vector512.LoadUnsafe(ref a3, (nuint)k);
                    s30 = Vector512.FusedMultiplyAdd(x, w0, s30); s31 = Vector512.FusedMultiplyAdd(x, w1, s31);
                    s32 = Vector512.FusedMultiplyAdd(x, w2, s32); s33 = Vector512.FusedMultiplyAdd(x, w3, s33);
                }
                Finish4(ref Unsafe.Add(ref c, i * ldc + j), alpha, k, K, ref a0, ref b0, ref b1, ref b2, ref b3, s00, s01, s02, s03);
                Finish4(ref Unsafe.Add(ref c, (i + 1) * ldc + j), alpha, k, K, ref a1, ref b0, ref b1, ref b2, ref b3, s10, s11, s12, s13);
                Finish4(ref Unsafe.Add(ref c, (i + 2) * ldc + j), alpha, k, K, ref a2, ref b0, ref b1, ref b2, ref b3, s20, s21, s22, s23);
                Finish4(ref Unsafe.Add(ref c, (i + 3) * ldc + j), alpha, k, K, ref a3, ref b0, ref b1, ref b2, ref b3, s30, s31, s32, s33);
            }
            for (int r = 0; r < 4; r++)
            {
                ref float ar = ref Unsafe.Add(ref a, (i + r) * lda);
                for (int j = n4; j < N; j++)
                {
                    ref float bj = ref Unsafe.Add(ref b, j * ldb);
                    var s = Vector512<float>.Zero;
                    int k = 0;
                    for (; k + 16 <= K; k += 16) s = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref ar, (nuint)k), Vector512.LoadUnsafe(ref bj, (nuint)k), s);
                    float t = Vector512.Sum(s);
                    for (; k < K; k++) t += Unsafe.Add(ref ar, k) * Unsafe.Add(ref bj, k);
                    Unsafe.Add(ref c, (i + r) * ldc + j) += alpha * t;
                }
            }
        }
    }

    /// <summary>Adds the four sums of one A row against four B rows (plus the k tail) into C[j .. j + 3].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish4(ref float c, float alpha, int k0, int K, ref float ar, ref float b0, ref float b1, ref float b2, ref float b3,
        Vector512<float> s0, Vector512<float> s1, Vector512<float> s2, Vector512<float> s3)
    {
        float t0 = Vector512.Sum(s0), t1 = Vector512.Sum(s1), t2 = Vector512.Sum(s2), t3 = Vector512.Sum(s3);
        for (int k = k0; k < K; k++)
        {
            float x = Unsafe.Add(ref ar, k);
            t0 += x * Unsafe.Add(ref b0, k);
            t1 += x * Unsafe.Add(ref b1, k);
            t2 += x * Unsafe.Add(ref b2, k);
            t3 += x * Unsafe.Add(ref b3, k);
        }
        c += alpha * t0;
        Unsafe.Add(ref c, 1) += alpha * t1;
        Unsafe.Add(ref c, 2) += alpha * t2;
        Unsafe.Add(ref c, 3) += alpha * t3;
    }
}
