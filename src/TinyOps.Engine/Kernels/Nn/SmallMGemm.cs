using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TinyOps.Engine.Kernels.Common;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// 1x1 convolutions with few output channels (at most <see cref="MaxRows"/>) over large planes, such as MobileNet's
/// projections: Y[m, n] = act(Σ_k W[m, k] · X[k, n] + bias[m] (+ residual)). With so few rows the packed GEMM copies
/// all of X to use each copy only once or twice, so this kernel reads X where it lies instead: every 16 columns of
/// a row of X are one Vector512, multiplied into the accumulators of all rows at once (up to 24, one register each),
/// the weights broadcast from a copy packed once as [k][rows]. X is read exactly once, Y written once, with masked
/// loads and stores for a ragged last block. AVX-512 only; the columns split across <see cref="WorkerPool"/> threads.
/// </summary>
internal static unsafe class SmallMGemm
{
    /// <summary>Most output channels this kernel takes: up to 24 in one pass (24 accumulators of one vector each), up to 48 in two.</summary>
    public const int MaxRows = 48;

    /// <summary>Whether this route is taken where it applies (else the packed GEMM); a switch for in-process A/B comparisons with <c>bench/TinyOps.Bench.Kernels ab</c>.</summary>
    internal static bool Enabled = true;

    /// <summary>Fewest columns (pixels) for which reading X in place pays; smaller planes keep the packed GEMM.</summary>
    public const int MinColumns = 512;

    /// <summary>
    /// Floats ahead in each row of X that the kernel prefetches (many rows are read at once: more streams than the
    /// hardware prefetcher follows); 0 prefetches nothing. Settable for in-process A/B comparisons with
    /// <c>bench/TinyOps.Bench.Kernels ab</c>, which is why the inner loop reads a plain static rather than a constant.
    /// </summary>
    internal static int PrefetchDistance = 32;

    public static bool Supports(int m, int n) =>
        Enabled && m >= 1 && m <= MaxRows && n >= MinColumns && Avx512F.IsSupported && Vector512.IsHardwareAccelerated;

    /// <summary>Output channels per pass: all of them up to 24, else half (each pass reads X once).</summary>
    private static int BlockRows(int m) => m <= 24 ? m : (m + 1) / 2;

    /// <summary>Rows of one pass's packed weights: its channel count rounded up to 8, 16 or 24.</summary>
    private static int PackedRows(int rows) => (rows + 7) / 8 * 8;

    /// <summary>Floats of the packed weights for m channels and depth k.</summary>
    public static int PackedFloats(int m, int k)
    {
        int rb = BlockRows(m);
        return (m + rb - 1) / rb * PackedRows(rb) * k;
    }

    /// <summary>Packs W [m, k] (row stride k) per pass of <see cref="BlockRows"/> channels as [k][PackedRows], zero-padded.</summary>
    public static float[] Pack(ReadOnlySpan<float> w, int m, int k)
    {
        int rb = BlockRows(m), rows = PackedRows(rb);
        var p = new float[PackedFloats(m, k)];
        for (int r = 0; r < m; r++)
        {
            int block = r / rb, lane = r % rb;
            for (int i = 0; i < k; i++) p[(block * k + i) * rows + lane] = w[r * k + i];
        }
        return p;
    }

    private struct Job
    {
        public float* W, X, Y, Bias;
        /// <summary>Channels of this pass, and the floats per step of its packed weights (8, 16 or 24).</summary>
        public int M, Stride, N, K;
        public FusedActivation Act;
    }

    private static Job s_job;

    /// <summary>Y (m x n, row stride n) from packed weights, X (k x n, row stride n) and an optional bias per row.</summary>
    public static void Run(ReadOnlySpan<float> packed, ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> bias, int m, int n, int k,
        in FusedActivation act, int threads)
    {
        if (packed.Length < PackedFloats(m, k) || x.Length < (long)k * n || y.Length < (long)m * n || (!bias.IsEmpty && bias.Length < m))
            throw new ArgumentException("SmallMGemm: buffers too small for the shape");
        int rb = BlockRows(m);
        for (int r0 = 0; r0 < m; r0 += rb)
        {
            int rows = Math.Min(rb, m - r0);
            Pass(packed.Slice(r0 / rb * PackedRows(rb) * k), PackedRows(rb), x, y.Slice(r0 * n), bias.IsEmpty ? default : bias.Slice(r0), rows, n, k, in act, threads);
        }
    }

    private static void Pass(ReadOnlySpan<float> packed, int stride, ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> bias, int m, int n, int k,
        in FusedActivation act, int threads)
    {
        fixed (float* pw = packed, px = x, py = y, pb = bias)
        {
            var job = new Job { W = pw, X = px, Y = py, Bias = bias.IsEmpty ? null : pb, M = m, Stride = stride, N = n, K = k, Act = act };
            int blocks = (n + 15) / 16;
            if (threads > 1 && blocks >= 2 * threads && WorkerPool.TryEnter())
            {
                try
                {
                    s_job = job;
                    WorkerPool.Run(&Part, threads, WorkerPool.Chunks(threads, blocks));
                }
                finally { WorkerPool.Exit(); }
            }
            else Columns(in job, 0, n);
        }
    }

    private static void Part(int part, int parts)
    {
        int blocks = (s_job.N + 15) / 16;
        int b0 = (int)((long)blocks * part / parts), b1 = (int)((long)blocks * (part + 1) / parts);
        Columns(in s_job, b0 * 16, Math.Min(s_job.N, b1 * 16));
    }

    private static void Columns(in Job job, int j0, int j1)
    {
        switch (job.Act.Kind)
        {
            case ActivationKind.None: Columns<NoActivation>(in job, j0, j1); break;
            case ActivationKind.Relu: Columns<ReluActivation>(in job, j0, j1); break;
            case ActivationKind.Clip: Columns<ClipActivation>(in job, j0, j1); break;
            default: Columns<AnyActivation>(in job, j0, j1); break;
        }
    }

    private static void Columns<TAct>(in Job job, int j0, int j1) where TAct : struct, IActivationOp
    {
        int rows = job.Stride;
        if (rows == 8) Columns<TAct, R8>(in job, j0, j1);
        else if (rows == 16) Columns<TAct, R16>(in job, j0, j1);
        else Columns<TAct, R24>(in job, j0, j1);
        if (job.Act.NeedsRowPass)
            for (int r = 0; r < job.M; r++) job.Act.Apply(new Span<float>(job.Y + (long)r * job.N + j0, j1 - j0));
    }

    private interface IRows { static abstract int Count { get; } }
    private struct R8 : IRows { public static int Count => 8; }
    private struct R16 : IRows { public static int Count => 16; }
    private struct R24 : IRows { public static int Count => 24; }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Columns<TAct, TR>(in Job job, int j0, int j1) where TAct : struct, IActivationOp where TR : struct, IRows
    {
        long n = job.N;
        int K = job.K;
        for (int j = j0; j < j1; j += 16)
        {
            int cols = Math.Min(16, j1 - j);
            var mask = cols == 16 ? Vector512<float>.AllBitsSet : Transpose16.LaneMask(cols);
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            Vector512<float> a8 = default, a9 = default, a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
            Vector512<float> a16 = default, a17 = default, a18 = default, a19 = default, a20 = default, a21 = default, a22 = default, a23 = default;
            float* w = job.W;
            float* xk = job.X + j;
            for (int k = 0; k < K; k++, xk += n, w += TR.Count)
            {
                var b = cols == 16 ? Vector512.Load(xk) : Avx512F.MaskLoad(xk, mask, Vector512<float>.Zero);
                if (PrefetchDistance > 0) Sse.Prefetch0(xk + PrefetchDistance);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Create(w[0]), b, a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Create(w[1]), b, a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Create(w[2]), b, a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Create(w[3]), b, a3);
                a4 = Vector512.FusedMultiplyAdd(Vector512.Create(w[4]), b, a4);
                a5 = Vector512.FusedMultiplyAdd(Vector512.Create(w[5]), b, a5);
                a6 = Vector512.FusedMultiplyAdd(Vector512.Create(w[6]), b, a6);
                a7 = Vector512.FusedMultiplyAdd(Vector512.Create(w[7]), b, a7);
                if (TR.Count > 8)
                {
                    a8 = Vector512.FusedMultiplyAdd(Vector512.Create(w[8]), b, a8);
                    a9 = Vector512.FusedMultiplyAdd(Vector512.Create(w[9]), b, a9);
                    a10 = Vector512.FusedMultiplyAdd(Vector512.Create(w[10]), b, a10);
                    a11 = Vector512.FusedMultiplyAdd(Vector512.Create(w[11]), b, a11);
                    a12 = Vector512.FusedMultiplyAdd(Vector512.Create(w[12]), b, a12);
                    a13 = Vector512.FusedMultiplyAdd(Vector512.Create(w[13]), b, a13);
                    a14 = Vector512.FusedMultiplyAdd(Vector512.Create(w[14]), b, a14);
                    a15 = Vector512.FusedMultiplyAdd(Vector512.Create(w[15]), b, a15);
                }
                if (TR.Count > 16)
                {
                    a16 = Vector512.FusedMultiplyAdd(Vector512.Create(w[16]), b, a16);
                    a17 = Vector512.FusedMultiplyAdd(Vector512.Create(w[17]), b, a17);
                    a18 = Vector512.FusedMultiplyAdd(Vector512.Create(w[18]), b, a18);
                    a19 = Vector512.FusedMultiplyAdd(Vector512.Create(w[19]), b, a19);
                    a20 = Vector512.FusedMultiplyAdd(Vector512.Create(w[20]), b, a20);
                    a21 = Vector512.FusedMultiplyAdd(Vector512.Create(w[21]), b, a21);
                    a22 = Vector512.FusedMultiplyAdd(Vector512.Create(w[22]), b, a22);
                    a23 = Vector512.FusedMultiplyAdd(Vector512.Create(w[23]), b, a23);
                }
            }
            float* y = job.Y + j;
            Store<TAct>(a0, 0, y, in job, mask, cols); Store<TAct>(a1, 1, y, in job, mask, cols);
            Store<TAct>(a2, 2, y, in job, mask, cols); Store<TAct>(a3, 3, y, in job, mask, cols);
            Store<TAct>(a4, 4, y, in job, mask, cols); Store<TAct>(a5, 5, y, in job, mask, cols);
            Store<TAct>(a6, 6, y, in job, mask, cols); Store<TAct>(a7, 7, y, in job, mask, cols);
            if (TR.Count > 8)
            {
                Store<TAct>(a8, 8, y, in job, mask, cols); Store<TAct>(a9, 9, y, in job, mask, cols);
                Store<TAct>(a10, 10, y, in job, mask, cols); Store<TAct>(a11, 11, y, in job, mask, cols);
                Store<TAct>(a12, 12, y, in job, mask, cols); Store<TAct>(a13, 13, y, in job, mask, cols);
                Store<TAct>(a14, 14, y, in job, mask, cols); Store<TAct>(a15, 15, y, in job, mask, cols);
            }
            if (TR.Count > 16)
            {
                Store<TAct>(a16, 16, y, in job, mask, cols); Store<TAct>(a17, 17, y, in job, mask, cols);
                Store<TAct>(a18, 18, y, in job, mask, cols); Store<TAct>(a19, 19, y, in job, mask, cols);
                Store<TAct>(a20, 20, y, in job, mask, cols); Store<TAct>(a21, 21, y, in job, mask, cols);
                Store<TAct>(a22, 22, y, in job, mask, cols); Store<TAct>(a23, 23, y, in job, mask, cols);
            }
        }
    }

    /// <summary>Row r of a finished block: bias, residual, activation, then a full or masked store (rows past M are padding).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<TAct>(Vector512<float> v, int r, float* y, in Job job, Vector512<float> mask, int cols) where TAct : struct, IActivationOp
    {
        if (r >= job.M) return;
        float* yr = y + (long)r * job.N;
        if (job.Bias != null) v += Vector512.Create(job.Bias[r]);
        if (job.Act.HasResidual) v += cols == 16 ? Vector512.Load(job.Act.Residual(yr)) : Avx512F.MaskLoad(job.Act.Residual(yr), mask, Vector512<float>.Zero);
        v = TAct.Apply(v, in job.Act);
        if (cols == 16) Vector512.Store(v, yr);
        else Avx512F.MaskStore(yr, mask, v);
    }
}
