using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TinyOps.Engine.Kernels.Common;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// Packed, cache-blocked SGEMM (the Goto/BLIS loop structure): B is packed in KC x NC blocks of NR-wide panels,
/// A in MC x KC blocks of MR-tall panels, and an MR x NR register tile accumulates each block. The micro-kernel
/// uses Vector512 (8 x 32 tile) or Vector256 (6 x 16) when the hardware accelerates it, else a scalar 4 x 4 one.
/// Bias (per row or per column) and a <see cref="FusedActivation"/> are applied when a tile's last K block is
/// stored. Pack buffers are pinned, thread-static and grow-only: no allocation after a thread's first call.
/// </summary>
internal static unsafe class PackedGemm
{
    /// <summary>Largest K block: a 16- or 32-wide B panel of this depth stays in L1 while the row tiles stream by.</summary>
    private const int MaxKC = 256;
    private const int NC = 1024;

    /// <summary>The K block size for depth K: at most <see cref="MaxKC"/>, the blocks as even as possible.</summary>
    public static int BlockK(int K)
    {
        if (K <= MaxKC) return Math.Max(K, 1);
        int blocks = (K + MaxKC - 1) / MaxKC;
        return (K + blocks - 1) / blocks;
    }

    /// <summary>What one GEMM call computes: C = act(alpha * op(A) op(B) + beta * C + rowBias[i] + colBias[j]).</summary>
    internal struct Job
    {
        public int M, N, K;
        public float* A; public int Sai, Sak;
        public float* B; public int Sbk, Sbn;
        public float* C; public int Ldc;
        public float Alpha;
        /// <summary>True when C holds a term to add (beta already applied).</summary>
        public bool Accumulate;
        public float* RowBias;
        public float* ColBias;
        public FusedActivation Act;
        /// <summary>The micro-kernel every part of this job uses (chosen once per call).</summary>
        public Path Path;
        /// <summary>A already packed by <see cref="Pack"/> for this path, or null.</summary>
        public float* PackedA;
        /// <summary>B already packed by <see cref="PackB(Path, int, int, ReadOnlySpan{float}, int, int)"/> for this path, or null.</summary>
        public float* PackedB;
    }

    /// <summary>
    /// Packs op(B) (K x N, strides sbk/sbn) for <paramref name="path"/> once, for B that does not change between calls
    /// (the weights of a transposed product): for each K block of <see cref="BlockK"/>, every NR-column panel of N in
    /// turn, kc x NR floats each, zero-padded; block pc starts at pc * N rounded up to NR.
    /// </summary>
    public static PackedMatrix PackB(Path path, int K, int N, ReadOnlySpan<float> B, int sbk, int sbn)
    {
        var (_, NR) = Tile(path);
        int npad = (N + NR - 1) / NR * NR;
        var data = GC.AllocateUninitializedArray<float>(Math.Max(1, npad * K), pinned: true);
        fixed (float* pb = B, pd = data)
        {
            var job = new Job { B = pb, Sbk = sbk, Sbn = sbn };
            int KC = BlockK(K);
            for (int pc = 0; pc < K; pc += KC)
                PackB(in job, pc, Math.Min(KC, K - pc), 0, N, NR, pd + (long)pc * npad);
        }
        return new PackedMatrix { Data = data, Path = path, Rows = K, Cols = N };
    }

    /// <summary>Packs op(A) (M x K, strides sai/sak) for <paramref name="path"/> into the layout <see cref="Run"/> reads.</summary>
    public static PackedMatrix Pack(Path path, int M, int K, ReadOnlySpan<float> A, int sai, int sak)
    {
        var (MR, _) = Tile(path);
        int mpad = (M + MR - 1) / MR * MR;
        var data = GC.AllocateUninitializedArray<float>(Math.Max(1, mpad * K), pinned: true);
        fixed (float* pa = A, pd = data)
        {
            var job = new Job { A = pa, Sai = sai, Sak = sak };
            int KC = BlockK(K);
            for (int pc = 0; pc < K; pc += KC)
                PackA(in job, 0, M, pc, Math.Min(KC, K - pc), MR, pd + (long)pc * mpad);
        }
        return new PackedMatrix { Data = data, Path = path, Rows = M, Cols = K };
    }

    [ThreadStatic] private static float[]? t_packA;
    [ThreadStatic] private static float[]? t_packB;

    internal enum Path { Avx512, Avx2, Scalar }

    /// <summary>Tests set this to run one path whatever the hardware (Vector512 code runs in software without AVX-512).</summary>
    internal static Path? ForcePath;

    public static Path Select() =>
        ForcePath is { } forced ? forced
        : SGemm.ForceScalar ? Path.Scalar
        : Vector512.IsHardwareAccelerated ? Path.Avx512
        : Vector256.IsHardwareAccelerated && Fma.IsSupported ? Path.Avx2
        : Path.Scalar;

    /// <summary>The register tile of a path.</summary>
    public static (int MR, int NR) Tile(Path path) => path switch { Path.Avx512 => (8, 32), Path.Avx2 => (6, 16), _ => (4, 4) };

    private static float* Buffer(ref float[]? buf, int floats)
    {
        if (buf is null || buf.Length < floats) buf = GC.AllocateUninitializedArray<float>(floats, pinned: true);
        return (float*)Unsafe.AsPointer(ref buf[0]);
    }

    /// <summary>Runs rows [m0, m1) and columns [n0, n1) of the job on this thread.</summary>
    public static void Run(in Job job, int m0, int m1, int n0, int n1)
    {
        if (m1 <= m0 || n1 <= n0) return;
        switch (job.Act.Kind)
        {
            case ActivationKind.None: Run<NoActivation>(in job, m0, m1, n0, n1); break;
            case ActivationKind.Relu: Run<ReluActivation>(in job, m0, m1, n0, n1); break;
            case ActivationKind.Clip: Run<ClipActivation>(in job, m0, m1, n0, n1); break;
            default: Run<AnyActivation>(in job, m0, m1, n0, n1); break;
        }
    }

    private static void Run<TAct>(in Job job, int m0, int m1, int n0, int n1) where TAct : struct, IActivationOp
    {
        var path = job.Path;
        var (MR, NR) = Tile(path);
        int MC = MR * 16;
        int K = job.K;
        int KC = BlockK(K);
        int mpad = (job.M + MR - 1) / MR * MR;
        float* pa = Buffer(ref t_packA, MC * KC);
        float* pb = Buffer(ref t_packB, KC * NC);
        float* tile = stackalloc float[8 * 32];
        for (int jc = n0; jc < n1; jc += NC)
        {
            int nc = Math.Min(NC, n1 - jc);
            for (int pc = 0; pc < K; pc += KC)
            {
                int kc = Math.Min(KC, K - pc);
                bool accumulate = pc > 0 || job.Accumulate;
                bool last = pc + kc == K;
                float* bblock = pb;
                if (job.PackedB != null) bblock = job.PackedB + (long)pc * ((job.N + NR - 1) / NR * NR) + (long)jc * kc;
                else PackB(in job, pc, kc, jc, nc, NR, pb);
                for (int ic = m0; ic < m1; ic += MC)
                {
                    int mc = Math.Min(MC, m1 - ic);
                    float* ablock = pa;
                    if (job.PackedA != null) ablock = job.PackedA + (long)pc * mpad + (long)ic * kc;
                    else PackA(in job, ic, mc, pc, kc, MR, pa);
                    for (int jr = 0; jr < nc; jr += NR)
                    {
                        int nr = Math.Min(NR, nc - jr);
                        float* bp = bblock + jr * kc;
                        int ir = 0;
                        if (nr == NR && path != Path.Scalar && mc >= MR)
                        {
                            // Every full row tile of this panel in one call: the B panel stays in L1 across them.
                            int tiles = mc / MR;
                            int i0 = ic, j0 = jc + jr;
                            float* c = job.C + (long)i0 * job.Ldc + j0;
                            // prepacked A (weights, often not in cache): on the first panel each tile prefetches the next
                            // tile's A, which follows it in memory
                            if (path == Path.Avx512) Kernel8x32<TAct>(kc, ablock, bp, c, job.Ldc, true, in job, accumulate, last, i0, j0, tiles,
                                PrefetchA && jr == 0 && job.PackedA != null);
                            else Kernel6x16<TAct>(kc, ablock, bp, c, job.Ldc, true, in job, accumulate, last, i0, j0, tiles);
                            ir = tiles * MR;
                            if (last && job.Act.NeedsRowPass)
                                for (int r = 0; r < ir; r++) job.Act.Apply(new Span<float>(c + (long)r * job.Ldc, nr));
                        }
                        for (; ir < mc; ir += MR)
                        {
                            int mr = Math.Min(MR, mc - ir);
                            float* ap = ablock + ir * kc;
                            int i0 = ic + ir, j0 = jc + jr;
                            float* c = job.C + (long)i0 * job.Ldc + j0;
                            bool full = mr == MR && nr == NR;
                            switch (path)
                            {
                                case Path.Avx512:
                                    Kernel8x32<TAct>(kc, ap, bp, full ? c : tile, full ? job.Ldc : 32, full, in job, accumulate, last, i0, j0, 1, false);
                                    break;
                                case Path.Avx2:
                                    Kernel6x16<TAct>(kc, ap, bp, full ? c : tile, full ? job.Ldc : 16, full, in job, accumulate, last, i0, j0, 1);
                                    break;
                                default:
                                    Kernel4x4(kc, ap, bp, tile);
                                    full = false;
                                    break;
                            }
                            if (!full)
                            {
                                if (path != Path.Scalar && Avx.IsSupported) StoreTileVector<TAct>(tile, NR, mr, nr, c, in job, accumulate, last, i0, j0);
                                else StoreTile(tile, NR, mr, nr, c, in job, accumulate, last, i0, j0);
                            }
                            if (last && job.Act.NeedsRowPass)
                                for (int r = 0; r < mr; r++) job.Act.Apply(new Span<float>(c + (long)r * job.Ldc, nr));
                        }
                    }
                }
            }
        }
    }

    /// <summary>Packs rows [i0, i0+mc) by columns [p0, p0+kc) of op(A) into MR-row panels, each kc x MR, zero-padded.</summary>
    private static void PackA(in Job job, int i0, int mc, int p0, int kc, int MR, float* dst)
    {
        int sai = job.Sai, sak = job.Sak;
        for (int ir = 0; ir < mc; ir += MR)
        {
            int rows = Math.Min(MR, mc - ir);
            float* panel = dst + ir * kc;
            if (sak == 1)
            {
                for (int r = 0; r < rows; r++)
                {
                    float* src = job.A + (long)(i0 + ir + r) * sai + p0;
                    float* d = panel + r;
                    for (int k = 0; k < kc; k++) d[k * MR] = src[k];
                }
            }
            else if (sai == 1 && rows == MR && MR == 8 && Vector256.IsHardwareAccelerated)
            {
                // op(A) = A^T with rows of A contiguous: the 8 values of a step are one vector
                float* src = job.A + (long)p0 * sak + i0 + ir;
                for (int k = 0; k < kc; k++, src += sak) Vector256.Store(Vector256.Load(src), panel + k * 8);
            }
            else
            {
                for (int k = 0; k < kc; k++)
                {
                    float* src = job.A + (long)(p0 + k) * sak + (long)(i0 + ir) * sai;
                    float* d = panel + k * MR;
                    for (int r = 0; r < rows; r++) d[r] = src[(long)r * sai];
                }
            }
            if (rows < MR)
                for (int k = 0; k < kc; k++)
                    for (int r = rows; r < MR; r++) panel[k * MR + r] = 0f;
        }
    }

    /// <summary>Packs rows [p0, p0+kc) by columns [j0, j0+nc) of op(B) into NR-column panels, each kc x NR, zero-padded.</summary>
    private static void PackB(in Job job, int p0, int kc, int j0, int nc, int NR, float* dst)
    {
        int sbk = job.Sbk, sbn = job.Sbn;
        if (sbn == 1 && NR == 16 && Vector256.IsHardwareAccelerated && nc >= 16)
        {
            // Row by row: each source row is read sequentially (prefetch-friendly), its 16-wide pieces go to the
            // panels at the same k.
            int full = nc / 16 * 16;
            for (int k = 0; k < kc; k++)
            {
                float* src = job.B + (long)(p0 + k) * sbk + j0;
                float* d = dst + k * 16;
                for (int jr = 0; jr < full; jr += 16, d += 16 * kc)
                {
                    Vector256.Store(Vector256.Load(src + jr), d);
                    Vector256.Store(Vector256.Load(src + jr + 8), d + 8);
                }
            }
            if (full == nc) return;
            dst += full * kc;
            j0 += full;
            nc -= full;
        }
        for (int jr = 0; jr < nc; jr += NR)
        {
            int cols = Math.Min(NR, nc - jr);
            float* panel = dst + jr * kc;
            if (sbn == 1)
            {
                float* src = job.B + (long)p0 * sbk + j0 + jr;
                if (cols == NR && NR == 32 && Vector512.IsHardwareAccelerated)
                {
                    for (int k = 0; k < kc; k++, src += sbk)
                    {
                        Vector512.Store(Vector512.Load(src), panel + k * 32);
                        Vector512.Store(Vector512.Load(src + 16), panel + k * 32 + 16);
                    }
                }
                else if (cols == NR && NR == 16 && Vector256.IsHardwareAccelerated)
                {
                    for (int k = 0; k < kc; k++, src += sbk)
                    {
                        Vector256.Store(Vector256.Load(src), panel + k * 16);
                        Vector256.Store(Vector256.Load(src + 8), panel + k * 16 + 8);
                    }
                }
                else
                {
                    for (int k = 0; k < kc; k++, src += sbk)
                    {
                        float* d = panel + k * NR;
                        int c = 0;
                        for (; c < cols; c++) d[c] = src[c];
                        for (; c < NR; c++) d[c] = 0f;
                    }
                }
            }
            else
            {
                for (int c = 0; c < cols; c++)
                {
                    float* src = job.B + (long)(j0 + jr + c) * sbn + (long)p0 * sbk;
                    float* d = panel + c;
                    for (int k = 0; k < kc; k++) d[k * NR] = src[(long)k * sbk];
                }
                if (cols < NR)
                    for (int k = 0; k < kc; k++)
                        for (int c = cols; c < NR; c++) panel[k * NR + c] = 0f;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Finish<TAct>(Vector512<float> acc, float* c, in Job job, bool accumulate, bool last, float rb, float* cb) where TAct : struct, IActivationOp
    {
        var v = acc * job.Alpha;
        if (accumulate) v += Vector512.Load(c);
        if (last)
        {
            v += Vector512.Create(rb);
            if (cb != null) v += Vector512.Load(cb);
            if (job.Act.HasResidual) v += Vector512.Load(job.Act.Residual(c));
            v = TAct.Apply(v, in job.Act);
        }
        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row512<TAct>(Vector512<float> x0, Vector512<float> x1, float* c, in Job job, bool accumulate, bool last, int i, int j0) where TAct : struct, IActivationOp
    {
        float rb = last && job.RowBias != null ? job.RowBias[i] : 0f;
        float* cb = last && job.ColBias != null ? job.ColBias + j0 : null;
        Vector512.Store(Finish<TAct>(x0, c, in job, accumulate, last, rb, cb), c);
        Vector512.Store(Finish<TAct>(x1, c + 16, in job, accumulate, last, rb, cb == null ? null : cb + 16), c + 16);
    }

    /// <summary>Stores a finished row (bias already added): activation, then two vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Out512<TAct>(Vector512<float> x0, Vector512<float> x1, float* c, in FusedActivation act) where TAct : struct, IActivationOp
    {
        if (act.HasResidual)
        {
            x0 += Vector512.Load(act.Residual(c));
            x1 += Vector512.Load(act.Residual(c + 16));
        }
        Vector512.Store(TAct.Apply(x0, in act), c);
        Vector512.Store(TAct.Apply(x1, in act), c + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Raw512(Vector512<float> x0, Vector512<float> x1, float* c, bool accumulate)
    {
        if (accumulate)
        {
            x0 += Vector512.Load(c);
            x1 += Vector512.Load(c + 16);
        }
        Vector512.Store(x0, c);
        Vector512.Store(x1, c + 16);
    }

    /// <summary>
    /// 8 x 32 tile with 512-bit vectors: 16 accumulators. When not direct, raw sums go to the 8 x 32 tile buffer.
    /// Written with <see cref="Vector512"/> operations (FMA on AVX-512 hardware, software elsewhere, which lets
    /// tests check this path on any machine).
    /// </summary>
    private static void Kernel8x32<TAct>(int kc, float* a, float* b, float* c, int ldc, bool direct, in Job job, bool accumulate, bool last, int i0, int j0, int tiles, bool prefetch) where TAct : struct, IActivationOp
    {
        // tiles > 1 (direct only): consecutive row tiles of one B panel; A panels follow each other in the packed block.
        for (int t = 0; t < tiles; t++, a += 8 * kc, c += (long)8 * ldc, i0 += 8)
        {
            if (prefetch) Kernel8x32Tile<TAct, Prefetching>(kc, a, b, c, ldc, direct, in job, accumulate, last, i0, j0);
            else Kernel8x32Tile<TAct, NoPrefetch>(kc, a, b, c, ldc, direct, in job, accumulate, last, i0, j0);
        }
    }

    /// <summary>
    /// Whether the AVX-512 tiles of a prepacked A (weights) prefetch the next tile's A on a block's first panel; a
    /// switch for in-process A/B comparisons with <c>bench/TinyOps.Bench.Kernels ab</c>.
    /// </summary>
    internal static bool PrefetchA = true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Kernel8x32Tile<TAct, TP>(int kc, float* a, float* b, float* c, int ldc, bool direct, in Job job, bool accumulate, bool last, int i0, int j0)
        where TAct : struct, IActivationOp where TP : struct, IPrefetch
    {
        long ahead = 8L * kc; // the next tile's A panel
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (int k = 0; k < kc; k++, a += 8, b += 32)
        {
            if (TP.On && (k & 1) == 0) Sse.Prefetch1(a + ahead); // 8 floats a step: one line every two steps
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var v = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(v, b0, c00); c01 = Vector512.FusedMultiplyAdd(v, b1, c01);
            v = Vector512.Create(a[1]);
            c10 = Vector512.FusedMultiplyAdd(v, b0, c10); c11 = Vector512.FusedMultiplyAdd(v, b1, c11);
            v = Vector512.Create(a[2]);
            c20 = Vector512.FusedMultiplyAdd(v, b0, c20); c21 = Vector512.FusedMultiplyAdd(v, b1, c21);
            v = Vector512.Create(a[3]);
            c30 = Vector512.FusedMultiplyAdd(v, b0, c30); c31 = Vector512.FusedMultiplyAdd(v, b1, c31);
            v = Vector512.Create(a[4]);
            c40 = Vector512.FusedMultiplyAdd(v, b0, c40); c41 = Vector512.FusedMultiplyAdd(v, b1, c41);
            v = Vector512.Create(a[5]);
            c50 = Vector512.FusedMultiplyAdd(v, b0, c50); c51 = Vector512.FusedMultiplyAdd(v, b1, c51);
            v = Vector512.Create(a[6]);
            c60 = Vector512.FusedMultiplyAdd(v, b0, c60); c61 = Vector512.FusedMultiplyAdd(v, b1, c61);
            v = Vector512.Create(a[7]);
            c70 = Vector512.FusedMultiplyAdd(v, b0, c70); c71 = Vector512.FusedMultiplyAdd(v, b1, c71);
        }
        if (!direct)
        {
            Raw512(c00, c01, c, false); Raw512(c10, c11, c + 32, false); Raw512(c20, c21, c + 64, false); Raw512(c30, c31, c + 96, false);
            Raw512(c40, c41, c + 128, false); Raw512(c50, c51, c + 160, false); Raw512(c60, c61, c + 192, false); Raw512(c70, c71, c + 224, false);
            return;
        }
        if (job.Alpha == 1f && job.ColBias == null && (!last || !accumulate))
        {
            if (!last)
            {
                // A K block before the last: plain sums (added to C after the first block).
                Raw512(c00, c01, c, accumulate); Raw512(c10, c11, c + ldc, accumulate);
                Raw512(c20, c21, c + 2 * ldc, accumulate); Raw512(c30, c31, c + 3 * ldc, accumulate);
                Raw512(c40, c41, c + 4 * ldc, accumulate); Raw512(c50, c51, c + 5 * ldc, accumulate);
                Raw512(c60, c61, c + 6 * ldc, accumulate); Raw512(c70, c71, c + 7 * ldc, accumulate);
                return;
            }
            // The whole product in one K block (the common convolution case): bias, activation, store.
            if (job.RowBias != null)
            {
                float* rb = job.RowBias + i0;
                var r = Vector512.Create(rb[0]); c00 += r; c01 += r;
                r = Vector512.Create(rb[1]); c10 += r; c11 += r;
                r = Vector512.Create(rb[2]); c20 += r; c21 += r;
                r = Vector512.Create(rb[3]); c30 += r; c31 += r;
                r = Vector512.Create(rb[4]); c40 += r; c41 += r;
                r = Vector512.Create(rb[5]); c50 += r; c51 += r;
                r = Vector512.Create(rb[6]); c60 += r; c61 += r;
                r = Vector512.Create(rb[7]); c70 += r; c71 += r;
            }
            Out512<TAct>(c00, c01, c, in job.Act); Out512<TAct>(c10, c11, c + ldc, in job.Act);
            Out512<TAct>(c20, c21, c + 2 * ldc, in job.Act); Out512<TAct>(c30, c31, c + 3 * ldc, in job.Act);
            Out512<TAct>(c40, c41, c + 4 * ldc, in job.Act); Out512<TAct>(c50, c51, c + 5 * ldc, in job.Act);
            Out512<TAct>(c60, c61, c + 6 * ldc, in job.Act); Out512<TAct>(c70, c71, c + 7 * ldc, in job.Act);
            return;
        }
        Row512<TAct>(c00, c01, c, in job, accumulate, last, i0, j0);
        Row512<TAct>(c10, c11, c + ldc, in job, accumulate, last, i0 + 1, j0);
        Row512<TAct>(c20, c21, c + 2 * ldc, in job, accumulate, last, i0 + 2, j0);
        Row512<TAct>(c30, c31, c + 3 * ldc, in job, accumulate, last, i0 + 3, j0);
        Row512<TAct>(c40, c41, c + 4 * ldc, in job, accumulate, last, i0 + 4, j0);
        Row512<TAct>(c50, c51, c + 5 * ldc, in job, accumulate, last, i0 + 5, j0);
        Row512<TAct>(c60, c61, c + 6 * ldc, in job, accumulate, last, i0 + 6, j0);
        Row512<TAct>(c70, c71, c + 7 * ldc, in job, accumulate, last, i0 + 7, j0);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Finish<TAct>(Vector256<float> acc, float* c, in Job job, bool accumulate, bool last, float rb, float* cb) where TAct : struct, IActivationOp
    {
        var v = acc * job.Alpha;
        if (accumulate) v += Vector256.Load(c);
        if (last)
        {
            v += Vector256.Create(rb);
            if (cb != null) v += Vector256.Load(cb);
            if (job.Act.HasResidual) v += Vector256.Load(job.Act.Residual(c));
            v = TAct.Apply(v, in job.Act);
        }
        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row256<TAct>(Vector256<float> x0, Vector256<float> x1, float* c, in Job job, bool accumulate, bool last, int i, int j0) where TAct : struct, IActivationOp
    {
        float rb = last && job.RowBias != null ? job.RowBias[i] : 0f;
        float* cb = last && job.ColBias != null ? job.ColBias + j0 : null;
        Vector256.Store(Finish<TAct>(x0, c, in job, accumulate, last, rb, cb), c);
        Vector256.Store(Finish<TAct>(x1, c + 8, in job, accumulate, last, rb, cb == null ? null : cb + 8), c + 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Out256<TAct>(Vector256<float> x0, Vector256<float> x1, float* c, in FusedActivation act) where TAct : struct, IActivationOp
    {
        if (act.HasResidual)
        {
            x0 += Vector256.Load(act.Residual(c));
            x1 += Vector256.Load(act.Residual(c + 8));
        }
        Vector256.Store(TAct.Apply(x0, in act), c);
        Vector256.Store(TAct.Apply(x1, in act), c + 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Raw256(Vector256<float> x0, Vector256<float> x1, float* c, bool accumulate)
    {
        if (accumulate)
        {
            x0 += Vector256.Load(c);
            x1 += Vector256.Load(c + 8);
        }
        Vector256.Store(x0, c);
        Vector256.Store(x1, c + 8);
    }

    /// <summary>6 x 16 tile with AVX2 and FMA: 12 accumulators. When not direct, raw sums go to the 6 x 16 tile buffer.</summary>
    private static void Kernel6x16<TAct>(int kc, float* a, float* b, float* c, int ldc, bool direct, in Job job, bool accumulate, bool last, int i0, int j0, int tiles) where TAct : struct, IActivationOp
    {
        // tiles > 1 (direct only): consecutive row tiles of one B panel; A panels follow each other in the packed block.
        for (int t = 0; t < tiles; t++, a += 6 * kc, c += (long)6 * ldc, i0 += 6)
            Kernel6x16Tile<TAct>(kc, a, b, c, ldc, direct, in job, accumulate, last, i0, j0);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Kernel6x16Tile<TAct>(int kc, float* a, float* b, float* c, int ldc, bool direct, in Job job, bool accumulate, bool last, int i0, int j0) where TAct : struct, IActivationOp
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int k = 0; k < kc; k++, a += 6, b += 16)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var v = Vector256.Create(a[0]);
            c00 = Fma.MultiplyAdd(v, b0, c00); c01 = Fma.MultiplyAdd(v, b1, c01);
            v = Vector256.Create(a[1]);
            c10 = Fma.MultiplyAdd(v, b0, c10); c11 = Fma.MultiplyAdd(v, b1, c11);
            v = Vector256.Create(a[2]);
            c20 = Fma.MultiplyAdd(v, b0, c20); c21 = Fma.MultiplyAdd(v, b1, c21);
            v = Vector256.Create(a[3]);
            c30 = Fma.MultiplyAdd(v, b0, c30); c31 = Fma.MultiplyAdd(v, b1, c31);
            v = Vector256.Create(a[4]);
            c40 = Fma.MultiplyAdd(v, b0, c40); c41 = Fma.MultiplyAdd(v, b1, c41);
            v = Vector256.Create(a[5]);
            c50 = Fma.MultiplyAdd(v, b0, c50); c51 = Fma.MultiplyAdd(v, b1, c51);
        }
        if (!direct)
        {
            Raw256(c00, c01, c, false); Raw256(c10, c11, c + 16, false); Raw256(c20, c21, c + 32, false);
            Raw256(c30, c31, c + 48, false); Raw256(c40, c41, c + 64, false); Raw256(c50, c51, c + 80, false);
            return;
        }
        if (job.Alpha == 1f && job.ColBias == null && (!last || !accumulate))
        {
            if (!last)
            {
                Raw256(c00, c01, c, accumulate); Raw256(c10, c11, c + ldc, accumulate); Raw256(c20, c21, c + 2 * ldc, accumulate);
                Raw256(c30, c31, c + 3 * ldc, accumulate); Raw256(c40, c41, c + 4 * ldc, accumulate); Raw256(c50, c51, c + 5 * ldc, accumulate);
                return;
            }
            if (job.RowBias != null)
            {
                float* rb = job.RowBias + i0;
                var r = Vector256.Create(rb[0]); c00 += r; c01 += r;
                r = Vector256.Create(rb[1]); c10 += r; c11 += r;
                r = Vector256.Create(rb[2]); c20 += r; c21 += r;
                r = Vector256.Create(rb[3]); c30 += r; c31 += r;
                r = Vector256.Create(rb[4]); c40 += r; c41 += r;
                r = Vector256.Create(rb[5]); c50 += r; c51 += r;
            }
            Out256<TAct>(c00, c01, c, in job.Act); Out256<TAct>(c10, c11, c + ldc, in job.Act); Out256<TAct>(c20, c21, c + 2 * ldc, in job.Act);
            Out256<TAct>(c30, c31, c + 3 * ldc, in job.Act); Out256<TAct>(c40, c41, c + 4 * ldc, in job.Act); Out256<TAct>(c50, c51, c + 5 * ldc, in job.Act);
            return;
        }
        Row256<TAct>(c00, c01, c, in job, accumulate, last, i0, j0);
        Row256<TAct>(c10, c11, c + ldc, in job, accumulate, last, i0 + 1, j0);
        Row256<TAct>(c20, c21, c + 2 * ldc, in job, accumulate, last, i0 + 2, j0);
        Row256<TAct>(c30, c31, c + 3 * ldc, in job, accumulate, last, i0 + 3, j0);
        Row256<TAct>(c40, c41, c + 4 * ldc, in job, accumulate, last, i0 + 4, j0);
        Row256<TAct>(c50, c51, c + 5 * ldc, in job, accumulate, last, i0 + 5, j0);
    }

    /// <summary>Scalar 4 x 4 tile into the tile buffer (row stride 4).</summary>
    private static void Kernel4x4(int kc, float* a, float* b, float* t)
    {
        float s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
        float s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
        for (int k = 0; k < kc; k++, a += 4, b += 4)
        {
            float b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
            float a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
            s00 += a0 * b0; s01 += a0 * b1; s02 += a0 * b2; s03 += a0 * b3;
            s10 += a1 * b0; s11 += a1 * b1; s12 += a1 * b2; s13 += a1 * b3;
            s20 += a2 * b0; s21 += a2 * b1; s22 += a2 * b2; s23 += a2 * b3;
            s30 += a3 * b0; s31 += a3 * b1; s32 += a3 * b2; s33 += a3 * b3;
        }
        t[0] = s00; t[1] = s01; t[2] = s02; t[3] = s03;
        t[4] = s10; t[5] = s11; t[6] = s12; t[7] = s13;
        t[8] = s20; t[9] = s21; t[10] = s22; t[11] = s23;
        t[12] = s30; t[13] = s31; t[14] = s32; t[15] = s33;
    }

    /// <summary>Lane masks for a run of n (0..8) valid floats: row n of this table, 8 ints each.</summary>
    private static readonly int[] s_masks = BuildMasks();

    private static int[] BuildMasks()
    {
        var m = new int[9 * 8];
        for (int n = 0; n <= 8; n++)
            for (int i = 0; i < n; i++) m[n * 8 + i] = -1;
        return m;
    }

    /// <summary><see cref="StoreTile"/> in 8-float pieces with AVX masked loads and stores for the ragged edge.</summary>
    private static void StoreTileVector<TAct>(float* tile, int ld, int mr, int nr, float* c, in Job job, bool accumulate, bool last, int i0, int j0) where TAct : struct, IActivationOp
    {
        fixed (int* masks = s_masks)
        {
            for (int r = 0; r < mr; r++)
            {
                float* t = tile + r * ld;
                float* cr = c + (long)r * job.Ldc;
                var rb = Vector256.Create(last && job.RowBias != null ? job.RowBias[i0 + r] : 0f);
                for (int j = 0; j < nr; j += 8)
                {
                    int n = Math.Min(8, nr - j);
                    var mask = Vector256.Load(masks + n * 8).AsSingle();
                    var v = Vector256.Load(t + j);
                    if (job.Alpha != 1f) v *= job.Alpha;
                    if (accumulate) v += Avx.MaskLoad(cr + j, mask);
                    if (last)
                    {
                        v += rb;
                        if (job.ColBias != null) v += Avx.MaskLoad(job.ColBias + j0 + j, mask);
                        if (job.Act.HasResidual) v += Avx.MaskLoad(job.Act.Residual(cr + j), mask);
                        v = TAct.Apply(v, in job.Act);
                    }
                    Avx.MaskStore(cr + j, mask, v);
                }
            }
        }
    }

    /// <summary>Writes the valid mr x nr part of a raw tile (row stride ld) to C with the epilogue, scalar.</summary>
    private static void StoreTile(float* tile, int ld, int mr, int nr, float* c, in Job job, bool accumulate, bool last, int i0, int j0)
    {
        for (int r = 0; r < mr; r++)
        {
            float* t = tile + r * ld;
            float* cr = c + (long)r * job.Ldc;
            float rb = last && job.RowBias != null ? job.RowBias[i0 + r] : 0f;
            for (int j = 0; j < nr; j++)
            {
                float v = t[j] * job.Alpha;
                if (accumulate) v += cr[j];
                if (last)
                {
                    v += rb;
                    if (job.ColBias != null) v += job.ColBias[j0 + j];
                    if (job.Act.HasResidual) v += *job.Act.Residual(cr + j);
                    v = job.Act.Apply(v);
                }
                cr[j] = v;
            }
        }
    }

    /// <summary>Applies beta, biases and the activation to C when there is no product to add (K == 0 or alpha == 0).</summary>
    public static void EpilogueOnly(in Job job, int m0, int m1)
    {
        for (int i = m0; i < m1; i++)
        {
            var row = new Span<float>(job.C + (long)i * job.Ldc, job.N);
            if (!job.Accumulate) row.Clear();
            if (job.RowBias != null) TensorPrimitives.Add(row, job.RowBias[i], row);
            if (job.ColBias != null) TensorPrimitives.Add(row, new ReadOnlySpan<float>(job.ColBias, job.N), row);
            if (job.Act.HasResidual) TensorPrimitives.Add(row, new ReadOnlySpan<float>(job.Act.Residual(job.C + (long)i * job.Ldc), job.N), row);
            job.Act.Apply(row);
        }
    }
}
