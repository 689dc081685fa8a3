using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TinyOps.Engine.Kernels.Common;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// Dense 2-D convolution (one group, kernel larger than 1x1) as an implicit GEMM, without an im2col matrix: the
/// weights are packed once into panels of 16 output channels (two Vector256 per kernel tap and input channel), and
/// the input values are broadcast straight from a zero-padded, channels-last copy of the input, six output pixels at
/// a time, so a 6 x 16 register tile accumulates 12 vectors per step as the packed GEMM does. An offset table maps
/// each step k = (kh, kw, channel) to its place in the padded copy, so consecutive steps read consecutive floats;
/// pixels of a tile may span output rows. Bias and the fused
/// activation are applied to the tile, which is then written back transposed into NCHW. Panels and pixel tiles
/// split across <see cref="WorkerPool"/> threads. Where Vector512 is accelerated and there are at least 32 output
/// channels, panels are 32 channels wide (two Vector512 per step) and tiles 8 pixels, 16 accumulators.
/// </summary>
internal static unsafe class ImplicitGemmConv
{
    /// <summary>Output channels per weight panel (AVX2 path).</summary>
    public const int Panel = 16;
    private const int Pixels = 6;
    /// <summary>Output channels per weight panel and pixels per tile on the Vector512 path.</summary>
    public const int Panel512 = 32;
    private const int Pixels512 = 8;
    /// <summary>Most K steps per block on the Vector512 path: 160 steps of a 32-channel panel are 20 KiB. K is cut into
    /// equal blocks no longer than this, so no short tail block pays the partial-sum round trip for little work.</summary>
    private const int KBlock512 = 160;

    /// <summary>Output channels per weight panel and pixels per tile of the wide Vector512 tile (64 or more output channels).</summary>
    public const int Panel64 = 64;
    private const int Pixels64 = 6;
    /// <summary>Most K steps per block of a 64-channel panel: 128 steps are 32 KiB of weights.</summary>
    private const int KBlock64 = 128;

    /// <summary>Tests set this to run the Vector512 path (in software where AVX-512 is missing) or to keep it off.</summary>
    internal static bool? Force512;

    /// <summary>
    /// Whether 64 or more output channels take 64-channel panels (6 x 64 tiles, 24 accumulators); tests switch it to
    /// cover the 32-channel tiles, and it exists for in-process A/B comparisons with <c>bench/TinyOps.Bench.Kernels ab</c>.
    /// </summary>
    internal static bool Use64 = true;

    /// <summary>16-channel panels (fewer than 32 output channels) take one Vector512 per step, 8 pixels a tile.</summary>
    private static bool Narrow512 => (Force512 ?? Vector512.IsHardwareAccelerated) && Avx512F.IsSupported;

    /// <summary>Weights packed for one panel width.</summary>
    public sealed class PackedWeights
    {
        public required float[] Data { get; init; }
        public required int Panel { get; init; }
        /// <summary>Where the panels start in <see cref="Data"/>: the first float on a 64-byte boundary (the array is pinned).</summary>
        public int Offset { get; init; }
    }

    /// <summary>The panel width <see cref="Run"/> uses for this shape: 32 on the Vector512 path, else 16.</summary>
    public static int PanelFor(in ConvShape s) =>
        !(Force512 ?? Vector512.IsHardwareAccelerated) ? Panel
        : Use64 && s.OutChannels >= Panel64 ? Panel64
        : s.OutChannels >= Panel512 ? Panel512 : Panel;
    /// <summary>Pixel tiles that share one pass over a K block of a weight panel.</summary>
    private const int ChunkTiles = 32;
    /// <summary>K steps per block: 192 steps of a 16-channel panel are 12 KiB of weights, kept in L1 across a chunk.</summary>
    private const int KBlock = 192;
    /// <summary>Shallower convolutions (channels x taps below this, e.g. a 3x3 on one channel) stay on im2col + GEMM.</summary>
    private const int MinDepth = 32;

    private struct State
    {
        public float* X, W, Bias, Y;
        public int* Offsets;
        public int K, M, P, OW, SH, SW, Wp, Panels, Tiles, Chunks, Width;
        public FusedActivation Act;
    }

    private static State s_state;

    /// <summary>True when this path handles the shape: AVX2 and FMA, 2-D or 1-D, one group, a kernel wider than 1x1.</summary>
    public static bool Supports(in ConvShape s) =>
        !SGemm.ForceScalar && Vector256.IsHardwareAccelerated && Fma.IsSupported
        && s.Group == 1 && s.In[0] == 1 && s.Kernel[0] == 1 && s.Out[0] == 1 && s.KernelSize > 1
        && s.OutChannels >= 8 && (long)s.InChannels * s.KernelSize >= MinDepth
        && (long)s.InChannels * PaddedHeight(in s) * PaddedWidth(in s) < int.MaxValue / 2;

    private static int PaddedHeight(in ConvShape s) => (s.Out[1] - 1) * s.Stride[1] + (s.Kernel[1] - 1) * s.Dilation[1] + 1;

    private static int PaddedWidth(in ConvShape s) => (s.Out[2] - 1) * s.Stride[2] + (s.Kernel[2] - 1) * s.Dilation[2] + 1;

    /// <summary>Floats of scratch for the padded copy of one image.</summary>
    public static int PaddedFloats(in ConvShape s) => s.InChannels * PaddedHeight(in s) * PaddedWidth(in s);

    /// <summary>
    /// Packs W [M, C, KH, KW] into panels [ceil(M/width)][K][width] (width from <see cref="PanelFor"/>), zero-padded,
    /// with k = (kh * KW + kw) * C + c (the order in which <see cref="Run"/> walks the channels-last input).
    /// </summary>
    public static PackedWeights Pack(ReadOnlySpan<float> w, in ConvShape s)
    {
        int M = s.OutChannels, C = s.InChannels, taps = s.KernelSize, width = PanelFor(in s);
        int K = C * taps;
        int panels = (M + width - 1) / width;
        // pinned, with room to start the panels on a 64-byte boundary: every weight vector load stays within one cache line
        var p = GC.AllocateArray<float>(Math.Max(1, panels * K * width) + 16, pinned: true);
        int off;
        unsafe { off = (int)((64 - ((nint)Unsafe.AsPointer(ref p[0]) & 63)) & 63) / sizeof(float); }
        for (int m = 0; m < M; m++)
        {
            int pi = m / width, lane = m % width;
            for (int c = 0; c < C; c++)
                for (int t = 0; t < taps; t++)
                    p[off + ((long)pi * K + t * C + c) * width + lane] = w[(m * C + c) * taps + t];
        }
        return new PackedWeights { Data = p, Panel = width, Offset = off };
    }

    /// <summary>Floats of scratch for the bias, padded to whole panels.</summary>
    public static int BiasFloats(in ConvShape s) => (s.OutChannels + Panel64 - 1) / Panel64 * Panel64;

    public static void Run(ReadOnlySpan<float> x, PackedWeights packed, ReadOnlySpan<float> bias, Span<float> y, in ConvShape s,
        in FusedActivation act, int threads, Span<float> padded, Span<int> offsets, Span<float> biasPanels)
    {
        int C = s.InChannels, M = s.OutChannels, KH = s.Kernel[1], KW = s.Kernel[2];
        int IH = s.In[1], IW = s.In[2], OH = s.Out[1], OW = s.Out[2];
        int Hp = PaddedHeight(in s), Wp = PaddedWidth(in s);
        int width = packed.Panel, pixels = width == Panel64 ? Pixels64 : width == Panel512 || Narrow512 ? Pixels512 : Pixels;
        float[] packedW = packed.Data;
        int K = C * KH * KW, P = OH * OW, panels = (M + width - 1) / width;
        if (padded.Length < C * Hp * Wp || offsets.Length < K || biasPanels.Length < panels * width || packedW.Length < packed.Offset + panels * K * width)
            throw new ArgumentException("ImplicitGemmConv: buffers too small for the convolution shape");
        for (int kh = 0, k = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++)
                for (int c = 0; c < C; c++, k++)
                    offsets[k] = (kh * s.Dilation[1] * Wp + kw * s.Dilation[2]) * C + c;
        biasPanels.Slice(0, panels * width).Clear();
        if (!bias.IsEmpty) bias.Slice(0, M).CopyTo(biasPanels);
        fixed (float* px = x, pw = packedW, pb = biasPanels, py = y, pp = padded)
        fixed (int* po = offsets)
        {
            for (int n = 0; n < s.Batch; n++)
            {
                Pad(px + (long)n * C * IH * IW, pp, C, IH, IW, Hp, Wp, s.PadBegin[1], s.PadBegin[2]);
                var st = new State
                {
                    X = pp, W = pw + packed.Offset, Bias = pb, Y = py + (long)n * M * P, Offsets = po,
                    K = K, M = M, P = P, OW = OW, SH = s.Stride[1] * C, SW = s.Stride[2] * C, Wp = Wp,
                    Panels = panels, Tiles = (P + pixels - 1) / pixels, Act = act, Width = width,
                };
                st.Chunks = (st.Tiles + ChunkTiles - 1) / ChunkTiles;
                long work = (long)M * P * K;
                int units = st.Panels * st.Chunks;
                if (threads > 1 && units > 1 && work >= 256 * 1024 && WorkerPool.TryEnter())
                {
                    try
                    {
                        s_state = st;
                        WorkerPool.Run(&Part, Math.Min(threads, units));
                    }
                    finally
                    {
                        WorkerPool.Exit();
                    }
                }
                else Units(in st, 0, units);
            }
        }
    }

    private static void Part(int part, int parts)
    {
        int units = s_state.Panels * s_state.Chunks;
        Units(in s_state, (int)((long)units * part / parts), (int)((long)units * (part + 1) / parts));
    }

    /// <summary>
    /// Copies one image into the zero-padded channels-last layout [Hp][Wp][C]: position (r, q) holds input row
    /// r - PH, column q - PW, zero outside.
    /// </summary>
    private static void Pad(float* x, float* dst, int C, int IH, int IW, int Hp, int Wp, int PH, int PW)
    {
        new Span<float>(dst, C * Hp * Wp).Clear();
        int q0 = Math.Max(0, PW), q1 = Math.Min(Wp, PW + IW);
        long plane = (long)IH * IW;
        float** rows = stackalloc float*[16];
        for (int r = 0; r < Hp; r++)
        {
            int ih = r - PH;
            if ((uint)ih >= (uint)IH) continue;
            float* drow = dst + (long)r * Wp * C;
            int c = 0;
            if (Avx512F.IsSupported && Vector512.IsHardwareAccelerated && q1 - q0 >= 16)
            {
                // 16 channels x 16 columns at a time through an in-register transpose.
                for (; c + 16 <= C; c += 16)
                {
                    float* src = x + c * plane + (long)ih * IW - PW;
                    int q = q0;
                    for (; q + 16 <= q1; q += 16)
                    {
                        float* d = drow + (long)q * C + c;
                        for (int j = 0; j < 16; j++) rows[j] = d + (long)j * C;
                        Transpose16.Run(src + q, plane, rows);
                    }
                    for (; q < q1; q++)
                        for (int ci = 0; ci < 16; ci++) drow[(long)q * C + c + ci] = src[ci * plane + q];
                }
            }
            for (; c < C; c++)
            {
                float* src = x + ((long)c * IH + ih) * IW - PW;
                float* d = drow + c;
                for (int q = q0; q < q1; q++) d[(long)q * C] = src[q];
            }
        }
    }

    private static void Units(in State st, int u0, int u1)
    {
        if (st.Width == Panel64) Units<Tile64x6>(in st, u0, u1);
        else if (st.Width == Panel512) Units<Tile32x8>(in st, u0, u1);
        else if (Narrow512) Units<Tile16x8>(in st, u0, u1);
        else Units<Tile16x6>(in st, u0, u1);
    }

    private static void Units<TTile>(in State st, int u0, int u1) where TTile : struct, ITile
    {
        switch (st.Act.Kind)
        {
            case ActivationKind.None: Units<NoActivation, TTile>(in st, u0, u1); break;
            case ActivationKind.Relu: Units<ReluActivation, TTile>(in st, u0, u1); break;
            case ActivationKind.Clip: Units<ClipActivation, TTile>(in st, u0, u1); break;
            default: Units<AnyActivation, TTile>(in st, u0, u1); break;
        }
    }

    /// <summary>A register tile of the implicit GEMM: its shape, its K step and the kernel that computes it.</summary>
    private interface ITile
    {
        static abstract int Pixels { get; }
        static abstract int Width { get; }
        /// <summary>K steps per block for a depth of <paramref name="K"/>.</summary>
        static abstract int KStep(int K);
        static abstract void Run<TAct>(in State st, int panel, int pix0, float** xb, int k0, int k1, float* acc, float* tile, bool first) where TAct : struct, IActivationOp;
    }

    /// <summary>AVX2: 16 channels x 6 pixels.</summary>
    private struct Tile16x6 : ITile
    {
        public static int Pixels => ImplicitGemmConv.Pixels;
        public static int Width => Panel;
        public static int KStep(int K) => KBlock;
        public static void Run<TAct>(in State st, int panel, int pix0, float** xb, int k0, int k1, float* acc, float* tile, bool first) where TAct : struct, IActivationOp
            => Tile<TAct>(in st, panel, pix0, xb, k0, k1, acc, tile);
    }

    /// <summary>Vector512 with fewer than 32 output channels: 16 channels x 8 pixels.</summary>
    private struct Tile16x8 : ITile
    {
        public static int Pixels => Pixels512;
        public static int Width => Panel;
        public static int KStep(int K) => KBlock;
        public static void Run<TAct>(in State st, int panel, int pix0, float** xb, int k0, int k1, float* acc, float* tile, bool first) where TAct : struct, IActivationOp
            => Tile16x8Kernel<TAct>(in st, panel, pix0, xb, k0, k1, acc, tile);
    }

    /// <summary>Vector512: 32 channels x 8 pixels; K in equal blocks of at most <see cref="KBlock512"/>.</summary>
    private struct Tile32x8 : ITile
    {
        public static int Pixels => Pixels512;
        public static int Width => Panel512;
        public static int KStep(int K)
        {
            int blocks = (K + KBlock512 - 1) / KBlock512;
            return (K + blocks - 1) / blocks;
        }
        public static void Run<TAct>(in State st, int panel, int pix0, float** xb, int k0, int k1, float* acc, float* tile, bool first) where TAct : struct, IActivationOp
            => Tile512<TAct>(in st, panel, pix0, xb, k0, k1, acc, tile);
    }

    /// <summary>
    /// Whether the first 64-channel tile of a K block prefetches the weights that follow (the next block or panel)
    /// into L2; a switch for in-process A/B comparisons with <c>bench/TinyOps.Bench.Kernels ab</c>.
    /// </summary>
    internal static bool PrefetchWeights = true;

    /// <summary>Vector512 with 64 or more output channels: 64 channels x 6 pixels; K in equal blocks of at most <see cref="KBlock64"/>.</summary>
    private struct Tile64x6 : ITile
    {
        public static int Pixels => Pixels64;
        public static int Width => Panel64;
        public static int KStep(int K)
        {
            int blocks = (K + KBlock64 - 1) / KBlock64;
            return (K + blocks - 1) / blocks;
        }
        public static void Run<TAct>(in State st, int panel, int pix0, float** xb, int k0, int k1, float* acc, float* tile, bool first) where TAct : struct, IActivationOp
        {
            // the first tile of a block also prefetches the weights that follow it (the next block or panel) into L2
            if (first && PrefetchWeights) Tile64<TAct, Prefetching>(in st, panel, pix0, xb, k0, k1, acc, tile);
            else Tile64<TAct, NoPrefetch>(in st, panel, pix0, xb, k0, k1, acc, tile);
        }
    }

    /// <summary>
    /// Work units [u0, u1), panel-major: unit u is chunk u % Chunks (up to <see cref="ChunkTiles"/> pixel tiles) of
    /// weight panel u / Chunks. K runs in blocks; between blocks each tile's accumulators wait in a small buffer.
    /// </summary>
    private static void Units<TAct, TTile>(in State st, int u0, int u1) where TAct : struct, IActivationOp where TTile : struct, ITile
    {
        // A finished tile as [pixel][channel] (at most 6 x 64 floats, the 64-channel tile; the others are smaller),
        // then the 8 x 16 floats WriteTile transposes 16 channels of it into; 64-byte aligned for whole-vector
        // stores (the alignment costs at most 15 of the 16 extra floats).
        float* tileRaw = stackalloc float[Math.Max(Pixels64 * Panel64, Pixels512 * Panel512) + 8 * 16 + 16];
        float* tile = (float*)(((nint)tileRaw + 63) & ~(nint)63);
        int px = TTile.Pixels;
        float* partial = stackalloc float[ChunkTiles * px * TTile.Width];
        float** bases = stackalloc float*[ChunkTiles * px];
        int kb = TTile.KStep(st.K);
        for (int u = u0; u < u1; u++)
        {
            int panel = u / st.Chunks, chunk = u - panel * st.Chunks;
            int t0 = chunk * ChunkTiles, nt = Math.Min(ChunkTiles, st.Tiles - t0);
            for (int i = 0; i < nt * px; i++) bases[i] = Base(in st, t0 * px + i);
            for (int k0 = 0; k0 < st.K; k0 += kb)
            {
                int k1 = Math.Min(st.K, k0 + kb);
                for (int t = 0; t < nt; t++)
                    TTile.Run<TAct>(in st, panel, (t0 + t) * px, bases + t * px, k0, k1, partial + t * px * TTile.Width, tile, t == 0);
            }
        }
    }

    /// <summary>Steps [k0, k1) of one 8-pixel tile of a 16-channel panel, one Vector512 accumulator per pixel.</summary>
    private static void Tile16x8Kernel<TAct>(in State st, int panel, int pix0, float** xb, int k0, int k1, float* acc, float* tile) where TAct : struct, IActivationOp
    {
        float* x0 = xb[0], x1 = xb[1], x2 = xb[2], x3 = xb[3], x4 = xb[4], x5 = xb[5], x6 = xb[6], x7 = xb[7];
        float* w = st.W + ((long)panel * st.K + k0) * Panel;
        int* offs = st.Offsets;
        Vector512<float> c0, c1, c2, c3, c4, c5, c6, c7;
        if (k0 == 0) c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = default;
        else
        {
            c0 = Vector512.Load(acc); c1 = Vector512.Load(acc + 16); c2 = Vector512.Load(acc + 32); c3 = Vector512.Load(acc + 48);
            c4 = Vector512.Load(acc + 64); c5 = Vector512.Load(acc + 80); c6 = Vector512.Load(acc + 96); c7 = Vector512.Load(acc + 112);
        }
        // Two k steps at a time into separate sums, so 16 FMA chains are in flight instead of 8.
        Vector512<float> d0 = default, d1 = default, d2 = default, d3 = default, d4 = default, d5 = default, d6 = default, d7 = default;
        int k = k0;
        for (; k + 2 <= k1; k += 2, w += 2 * Panel)
        {
            int o = offs[k], q = offs[k + 1];
            var wv = Vector512.Load(w);
            var wu = Vector512.Load(w + Panel);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(x0[o]), wv, c0);
            d0 = Vector512.FusedMultiplyAdd(Vector512.Create(x0[q]), wu, d0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(x1[o]), wv, c1);
            d1 = Vector512.FusedMultiplyAdd(Vector512.Create(x1[q]), wu, d1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(x2[o]), wv, c2);
            d2 = Vector512.FusedMultiplyAdd(Vector512.Create(x2[q]), wu, d2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(x3[o]), wv, c3);
            d3 = Vector512.FusedMultiplyAdd(Vector512.Create(x3[q]), wu, d3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(x4[o]), wv, c4);
            d4 = Vector512.FusedMultiplyAdd(Vector512.Create(x4[q]), wu, d4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(x5[o]), wv, c5);
            d5 = Vector512.FusedMultiplyAdd(Vector512.Create(x5[q]), wu, d5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(x6[o]), wv, c6);
            d6 = Vector512.FusedMultiplyAdd(Vector512.Create(x6[q]), wu, d6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(x7[o]), wv, c7);
            d7 = Vector512.FusedMultiplyAdd(Vector512.Create(x7[q]), wu, d7);
        }
        if (k < k1)
        {
            int o = offs[k];
            var wv = Vector512.Load(w);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(x0[o]), wv, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(x1[o]), wv, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(x2[o]), wv, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(x3[o]), wv, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(x4[o]), wv, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(x5[o]), wv, c5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(x6[o]), wv, c6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(x7[o]), wv, c7);
        }
        c0 += d0; c1 += d1; c2 += d2; c3 += d3; c4 += d4; c5 += d5; c6 += d6; c7 += d7;
        if (k1 < st.K)
        {
            Vector512.Store(c0, acc); Vector512.Store(c1, acc + 16); Vector512.Store(c2, acc + 32); Vector512.Store(c3, acc + 48);
            Vector512.Store(c4, acc + 64); Vector512.Store(c5, acc + 80); Vector512.Store(c6, acc + 96); Vector512.Store(c7, acc + 112);
            return;
        }
        var b = Vector512.Load(st.Bias + panel * Panel);
        // the tile as [pixel][16 channels], bias added
        Vector512.Store(c0 + b, tile); Vector512.Store(c1 + b, tile + 16); Vector512.Store(c2 + b, tile + 32); Vector512.Store(c3 + b, tile + 48);
        Vector512.Store(c4 + b, tile + 64); Vector512.Store(c5 + b, tile + 80); Vector512.Store(c6 + b, tile + 96); Vector512.Store(c7 + b, tile + 112);
        int m0 = panel * Panel;
        WriteTile<TAct>(in st, tile, Panel, Math.Min(Pixels512, st.P - pix0), m0, Math.Min(Panel, st.M - m0), pix0, tile + Pixels512 * Panel);
    }

    /// <summary>Steps [k0, k1) of one 8-pixel tile of a 32-channel panel.</summary>
    private static void Tile512<TAct>(in State st, int panel, int pix0, float** xb, int k0, int k1, float* acc, float* tile) where TAct : struct, IActivationOp
    {
        float* x0 = xb[0], x1 = xb[1], x2 = xb[2], x3 = xb[3], x4 = xb[4], x5 = xb[5], x6 = xb[6], x7 = xb[7];
        float* w = st.W + ((long)panel * st.K + k0) * Panel512;
        int* offs = st.Offsets;
        Vector512<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        if (k0 == 0)
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = c60 = c61 = c70 = c71 = default;
        }
        else
        {
            c00 = Vector512.Load(acc); c01 = Vector512.Load(acc + 16); c10 = Vector512.Load(acc + 32); c11 = Vector512.Load(acc + 48);
            c20 = Vector512.Load(acc + 64); c21 = Vector512.Load(acc + 80); c30 = Vector512.Load(acc + 96); c31 = Vector512.Load(acc + 112);
            c40 = Vector512.Load(acc + 128); c41 = Vector512.Load(acc + 144); c50 = Vector512.Load(acc + 160); c51 = Vector512.Load(acc + 176);
            c60 = Vector512.Load(acc + 192); c61 = Vector512.Load(acc + 208); c70 = Vector512.Load(acc + 224); c71 = Vector512.Load(acc + 240);
        }
        for (int k = k0; k < k1; k++, w += Panel512)
        {
            int o = offs[k];
            var w0 = Vector512.Load(w);
            var w1 = Vector512.Load(w + 16);
            var v = Vector512.Create(x0[o]);
            c00 = Vector512.FusedMultiplyAdd(v, w0, c00); c01 = Vector512.FusedMultiplyAdd(v, w1, c01);
            v = Vector512.Create(x1[o]);
            c10 = Vector512.FusedMultiplyAdd(v, w0, c10); c11 = Vector512.FusedMultiplyAdd(v, w1, c11);
            v = Vector512.Create(x2[o]);
            c20 = Vector512.FusedMultiplyAdd(v, w0, c20); c21 = Vector512.FusedMultiplyAdd(v, w1, c21);
            v = Vector512.Create(x3[o]);
            c30 = Vector512.FusedMultiplyAdd(v, w0, c30); c31 = Vector512.FusedMultiplyAdd(v, w1, c31);
            v = Vector512.Create(x4[o]);
            c40 = Vector512.FusedMultiplyAdd(v, w0, c40); c41 = Vector512.FusedMultiplyAdd(v, w1, c41);
            v = Vector512.Create(x5[o]);
            c50 = Vector512.FusedMultiplyAdd(v, w0, c50); c51 = Vector512.FusedMultiplyAdd(v, w1, c51);
            v = Vector512.Create(x6[o]);
            c60 = Vector512.FusedMultiplyAdd(v, w0, c60); c61 = Vector512.FusedMultiplyAdd(v, w1, c61);
            v = Vector512.Create(x7[o]);
            c70 = Vector512.FusedMultiplyAdd(v, w0, c70); c71 = Vector512.FusedMultiplyAdd(v, w1, c71);
        }
        if (k1 < st.K)
        {
            Vector512.Store(c00, acc); Vector512.Store(c01, acc + 16); Vector512.Store(c10, acc + 32); Vector512.Store(c11, acc + 48);
            Vector512.Store(c20, acc + 64); Vector512.Store(c21, acc + 80); Vector512.Store(c30, acc + 96); Vector512.Store(c31, acc + 112);
            Vector512.Store(c40, acc + 128); Vector512.Store(c41, acc + 144); Vector512.Store(c50, acc + 160); Vector512.Store(c51, acc + 176);
            Vector512.Store(c60, acc + 192); Vector512.Store(c61, acc + 208); Vector512.Store(c70, acc + 224); Vector512.Store(c71, acc + 240);
            return;
        }
        var b0 = Vector512.Load(st.Bias + panel * Panel512);
        var b1 = Vector512.Load(st.Bias + panel * Panel512 + 16);
        // the tile as [pixel][32 channels], bias added
        Vector512.Store(c00 + b0, tile); Vector512.Store(c01 + b1, tile + 16);
        Vector512.Store(c10 + b0, tile + 32); Vector512.Store(c11 + b1, tile + 48);
        Vector512.Store(c20 + b0, tile + 64); Vector512.Store(c21 + b1, tile + 80);
        Vector512.Store(c30 + b0, tile + 96); Vector512.Store(c31 + b1, tile + 112);
        Vector512.Store(c40 + b0, tile + 128); Vector512.Store(c41 + b1, tile + 144);
        Vector512.Store(c50 + b0, tile + 160); Vector512.Store(c51 + b1, tile + 176);
        Vector512.Store(c60 + b0, tile + 192); Vector512.Store(c61 + b1, tile + 208);
        Vector512.Store(c70 + b0, tile + 224); Vector512.Store(c71 + b1, tile + 240);
        int m0 = panel * Panel512;
        WriteTile<TAct>(in st, tile, Panel512, Math.Min(Pixels512, st.P - pix0), m0, Math.Min(Panel512, st.M - m0), pix0, tile + Pixels512 * Panel512);
    }

    /// <summary>
    /// Steps [k0, k1) of one 6-pixel tile of a 64-channel panel: four weight vectors and six broadcasts feed 24
    /// accumulators a step (10 loads for 24 FMAs, against 10 for 16 in the 32 x 8 tile).
    /// </summary>
    private static void Tile64<TAct, TP>(in State st, int panel, int pix0, float** xb, int k0, int k1, float* acc, float* tile)
        where TAct : struct, IActivationOp where TP : struct, IPrefetch
    {
        long ahead = (long)(k1 - k0) * Panel64;
        float* x0 = xb[0], x1 = xb[1], x2 = xb[2], x3 = xb[3], x4 = xb[4], x5 = xb[5];
        float* w = st.W + ((long)panel * st.K + k0) * Panel64;
        int* offs = st.Offsets;
        Vector512<float> c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33, c40, c41, c42, c43, c50, c51, c52, c53;
        if (k0 == 0)
        {
            c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = c20 = c21 = c22 = c23 = default;
            c30 = c31 = c32 = c33 = c40 = c41 = c42 = c43 = c50 = c51 = c52 = c53 = default;
        }
        else
        {
            c00 = Vector512.Load(acc); c01 = Vector512.Load(acc + 16); c02 = Vector512.Load(acc + 32); c03 = Vector512.Load(acc + 48);
            c10 = Vector512.Load(acc + 64); c11 = Vector512.Load(acc + 80); c12 = Vector512.Load(acc + 96); c13 = Vector512.Load(acc + 112);
            c20 = Vector512.Load(acc + 128); c21 = Vector512.Load(acc + 144); c22 = Vector512.Load(acc + 160); c23 = Vector512.Load(acc + 176);
            c30 = Vector512.Load(acc + 192); c31 = Vector512.Load(acc + 208); c32 = Vector512.Load(acc + 224); c33 = Vector512.Load(acc + 240);
            c40 = Vector512.Load(acc + 256); c41 = Vector512.Load(acc + 272); c42 = Vector512.Load(acc + 288); c43 = Vector512.Load(acc + 304);
            c50 = Vector512.Load(acc + 320); c51 = Vector512.Load(acc + 336); c52 = Vector512.Load(acc + 352); c53 = Vector512.Load(acc + 368);
        }
        for (int k = k0; k < k1; k++, w += Panel64)
        {
            int o = offs[k];
            if (TP.On)
            {
                System.Runtime.Intrinsics.X86.Sse.Prefetch1(w + ahead);
                System.Runtime.Intrinsics.X86.Sse.Prefetch1(w + ahead + 16);
                System.Runtime.Intrinsics.X86.Sse.Prefetch1(w + ahead + 32);
                System.Runtime.Intrinsics.X86.Sse.Prefetch1(w + ahead + 48);
            }
            var w0 = Vector512.Load(w);
            var w1 = Vector512.Load(w + 16);
            var w2 = Vector512.Load(w + 32);
            var w3 = Vector512.Load(w + 48);
            var v = Vector512.Create(x0[o]);
            c00 = Vector512.FusedMultiplyAdd(v, w0, c00); c01 = Vector512.FusedMultiplyAdd(v, w1, c01);
            c02 = Vector512.FusedMultiplyAdd(v, w2, c02); c03 = Vector512.FusedMultiplyAdd(v, w3, c03);
            v = Vector512.Create(x1[o]);
            c10 = Vector512.FusedMultiplyAdd(v, w0, c10); c11 = Vector512.FusedMultiplyAdd(v, w1, c11);
            c12 = Vector512.FusedMultiplyAdd(v, w2, c12); c13 = Vector512.FusedMultiplyAdd(v, w3, c13);
            v = Vector512.Create(x2[o]);
            c20 = Vector512.FusedMultiplyAdd(v, w0, c20); c21 = Vector512.FusedMultiplyAdd(v, w1, c21);
            c22 = Vector512.FusedMultiplyAdd(v, w2, c22); c23 = Vector512.FusedMultiplyAdd(v, w3, c23);
            v = Vector512.Create(x3[o]);
            c30 = Vector512.FusedMultiplyAdd(v, w0, c30); c31 = Vector512.FusedMultiplyAdd(v, w1, c31);
            c32 = Vector512.FusedMultiplyAdd(v, w2, c32); c33 = Vector512.FusedMultiplyAdd(v, w3, c33);
            v = Vector512.Create(x4[o]);
            c40 = Vector512.FusedMultiplyAdd(v, w0, c40); c41 = Vector512.FusedMultiplyAdd(v, w1, c41);
            c42 = Vector512.FusedMultiplyAdd(v, w2, c42); c43 = Vector512.FusedMultiplyAdd(v, w3, c43);
            v = Vector512.Create(x5[o]);
            c50 = Vector512.FusedMultiplyAdd(v, w0, c50); c51 = Vector512.FusedMultiplyAdd(v, w1, c51);
            c52 = Vector512.FusedMultiplyAdd(v, w2, c52); c53 = Vector512.FusedMultiplyAdd(v, w3, c53);
        }
        if (k1 < st.K)
        {
            Vector512.Store(c00, acc); Vector512.Store(c01, acc + 16); Vector512.Store(c02, acc + 32); Vector512.Store(c03, acc + 48);
            Vector512.Store(c10, acc + 64); Vector512.Store(c11, acc + 80); Vector512.Store(c12, acc + 96); Vector512.Store(c13, acc + 112);
            Vector512.Store(c20, acc + 128); Vector512.Store(c21, acc + 144); Vector512.Store(c22, acc + 160); Vector512.Store(c23, acc + 176);
            Vector512.Store(c30, acc + 192); Vector512.Store(c31, acc + 208); Vector512.Store(c32, acc + 224); Vector512.Store(c33, acc + 240);
            Vector512.Store(c40, acc + 256); Vector512.Store(c41, acc + 272); Vector512.Store(c42, acc + 288); Vector512.Store(c43, acc + 304);
            Vector512.Store(c50, acc + 320); Vector512.Store(c51, acc + 336); Vector512.Store(c52, acc + 352); Vector512.Store(c53, acc + 368);
            return;
        }
        float* bp = st.Bias + panel * Panel64;
        var b0 = Vector512.Load(bp); var b1 = Vector512.Load(bp + 16); var b2 = Vector512.Load(bp + 32); var b3 = Vector512.Load(bp + 48);
        // the tile as [pixel][64 channels], bias added
        Vector512.Store(c00 + b0, tile); Vector512.Store(c01 + b1, tile + 16); Vector512.Store(c02 + b2, tile + 32); Vector512.Store(c03 + b3, tile + 48);
        Vector512.Store(c10 + b0, tile + 64); Vector512.Store(c11 + b1, tile + 80); Vector512.Store(c12 + b2, tile + 96); Vector512.Store(c13 + b3, tile + 112);
        Vector512.Store(c20 + b0, tile + 128); Vector512.Store(c21 + b1, tile + 144); Vector512.Store(c22 + b2, tile + 160); Vector512.Store(c23 + b3, tile + 176);
        Vector512.Store(c30 + b0, tile + 192); Vector512.Store(c31 + b1, tile + 208); Vector512.Store(c32 + b2, tile + 224); Vector512.Store(c33 + b3, tile + 240);
        Vector512.Store(c40 + b0, tile + 256); Vector512.Store(c41 + b1, tile + 272); Vector512.Store(c42 + b2, tile + 288); Vector512.Store(c43 + b3, tile + 304);
        Vector512.Store(c50 + b0, tile + 320); Vector512.Store(c51 + b1, tile + 336); Vector512.Store(c52 + b2, tile + 352); Vector512.Store(c53 + b3, tile + 368);
        int m0 = panel * Panel64;
        WriteTile<TAct>(in st, tile, Panel64, Math.Min(Pixels64, st.P - pix0), m0, Math.Min(Panel64, st.M - m0), pix0, tile + Pixels64 * Panel64);
    }

    /// <summary>
    /// Writes a finished tile, held as [pixel][width] sums with the bias added, into the NCHW output: value (i, m)
    /// goes to y[m0 + m, pix0 + i] as act(v + residual). With AVX-512: 16 channels at a time through an 8 x 16
    /// register transpose, each channel's pixels one masked Vector256 (the residual read the same way); else scalar.
    /// <paramref name="scratch"/> holds 128 floats.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteTile<TAct>(in State st, float* tile, int width, int npix, int m0, int mc, int pix0, float* scratch) where TAct : struct, IActivationOp
    {
        ref readonly var act = ref st.Act;
        long P = st.P;
        float* y = st.Y + m0 * P + pix0;
        bool residual = act.HasResidual;
        if (Avx512F.VL.IsSupported)
        {
            var mask = Vector256.LessThan(Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(npix)).AsSingle();
            for (int g = 0; g < mc; g += 16)
            {
                Transpose8x16.Run(tile + g, width, npix, scratch);
                int n = Math.Min(16, mc - g);
                float* yg = y + g * P;
                for (int j = 0; j < n; j++, yg += P)
                {
                    var v = Vector256.Load(scratch + 8 * j);
                    if (residual) v += Avx512F.VL.MaskLoad(act.Residual(yg), mask, Vector256<float>.Zero);
                    Avx512F.VL.MaskStore(yg, mask, TAct.Apply(v, in act));
                }
            }
        }
        else
        {
            for (int m = 0; m < mc; m++, y += P)
                for (int i = 0; i < npix; i++)
                    y[i] = act.Apply(residual ? tile[i * width + m] + *act.Residual(y + i) : tile[i * width + m]);
        }
        if (act.NeedsRowPass)
        {
            float* yr = st.Y + m0 * P + pix0;
            for (int m = 0; m < mc; m++, yr += P) act.Apply(new Span<float>(yr, npix));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* Base(in State st, int p)
    {
        if (p >= st.P) p = st.P - 1;
        int oh = p / st.OW, ow = p - oh * st.OW;
        return st.X + (long)oh * st.SH * st.Wp + (long)ow * st.SW; // SH and SW are already scaled by C
    }

    /// <summary>Steps [k0, k1) of one 6-pixel tile; the first block starts from zero, the last one stores the result.</summary>
    private static void Tile<TAct>(in State st, int panel, int pix0, float** xb, int k0, int k1, float* acc, float* tile) where TAct : struct, IActivationOp
    {
        float* x0 = xb[0], x1 = xb[1], x2 = xb[2], x3 = xb[3], x4 = xb[4], x5 = xb[5];
        float* w = st.W + ((long)panel * st.K + k0) * Panel;
        int* offs = st.Offsets;
        Vector256<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        if (k0 == 0)
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = default;
        }
        else
        {
            c00 = Vector256.Load(acc); c01 = Vector256.Load(acc + 8); c10 = Vector256.Load(acc + 16); c11 = Vector256.Load(acc + 24);
            c20 = Vector256.Load(acc + 32); c21 = Vector256.Load(acc + 40); c30 = Vector256.Load(acc + 48); c31 = Vector256.Load(acc + 56);
            c40 = Vector256.Load(acc + 64); c41 = Vector256.Load(acc + 72); c50 = Vector256.Load(acc + 80); c51 = Vector256.Load(acc + 88);
        }
        for (int k = k0; k < k1; k++, w += Panel)
        {
            int o = offs[k];
            var w0 = Vector256.Load(w);
            var w1 = Vector256.Load(w + 8);
            var v = Vector256.Create(x0[o]);
            c00 = Fma.MultiplyAdd(v, w0, c00); c01 = Fma.MultiplyAdd(v, w1, c01);
            v = Vector256.Create(x1[o]);
            c10 = Fma.MultiplyAdd(v, w0, c10); c11 = Fma.MultiplyAdd(v, w1, c11);
            v = Vector256.Create(x2[o]);
            c20 = Fma.MultiplyAdd(v, w0, c20); c21 = Fma.MultiplyAdd(v, w1, c21);
            v = Vector256.Create(x3[o]);
            c30 = Fma.MultiplyAdd(v, w0, c30); c31 = Fma.MultiplyAdd(v, w1, c31);
            v = Vector256.Create(x4[o]);
            c40 = Fma.MultiplyAdd(v, w0, c40); c41 = Fma.MultiplyAdd(v, w1, c41);
            v = Vector256.Create(x5[o]);
            c50 = Fma.MultiplyAdd(v, w0, c50); c51 = Fma.MultiplyAdd(v, w1, c51);
        }
        if (k1 < st.K)
        {
            Vector256.Store(c00, acc); Vector256.Store(c01, acc + 8); Vector256.Store(c10, acc + 16); Vector256.Store(c11, acc + 24);
            Vector256.Store(c20, acc + 32); Vector256.Store(c21, acc + 40); Vector256.Store(c30, acc + 48); Vector256.Store(c31, acc + 56);
            Vector256.Store(c40, acc + 64); Vector256.Store(c41, acc + 72); Vector256.Store(c50, acc + 80); Vector256.Store(c51, acc + 88);
            return;
        }
        var b0 = Vector256.Load(st.Bias + panel * Panel);
        var b1 = Vector256.Load(st.Bias + panel * Panel + 8);
        // the tile as [pixel][16 channels], bias added
        Vector256.Store(c00 + b0, tile); Vector256.Store(c01 + b1, tile + 8);
        Vector256.Store(c10 + b0, tile + 16); Vector256.Store(c11 + b1, tile + 24);
        Vector256.Store(c20 + b0, tile + 32); Vector256.Store(c21 + b1, tile + 40);
        Vector256.Store(c30 + b0, tile + 48); Vector256.Store(c31 + b1, tile + 56);
        Vector256.Store(c40 + b0, tile + 64); Vector256.Store(c41 + b1, tile + 72);
        Vector256.Store(c50 + b0, tile + 80); Vector256.Store(c51 + b1, tile + 88);
        int m0 = panel * Panel;
        WriteTile<TAct>(in st, tile, Panel, Math.Min(Pixels, st.P - pix0), m0, Math.Min(Panel, st.M - m0), pix0, tile + Pixels * Panel);
    }
}
