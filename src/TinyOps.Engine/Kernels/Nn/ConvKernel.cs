using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Common;
using TinyOps.Engine.Tensors;
using Tensor = TinyOps.Engine.Tensors.Tensor;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// Conv (opsets 1-22), float32, 1-D to 3-D: Y = act(conv(X, W) + B), act being an activation fused into the node
/// (see <see cref="FusedActivation"/>) or none. Grouped convolutions use im2col into scratch memory (in chunks of
/// output rows) and <see cref="SGemm"/> with the bias and activation in its epilogue; 1x1 unpadded unit-stride
/// convolutions multiply X directly; depthwise convolutions (one input channel per group) use
/// <see cref="DepthwiseConv"/> (1-D/2-D) or a direct loop.
/// </summary>
internal sealed class ConvKernel : Kernel
{
    /// <summary>Upper bound of the im2col buffer, in floats; larger problems are processed in chunks of output rows.</summary>
    internal const int MaxColumnFloats = 1 << 20;

    private readonly ConvAttributes _attrs;
    private readonly FusedActivation _act;
    /// <summary>A residual Add fused into this node (input 3, see <c>Runtime.Fusion.ResidualFusion</c>): y = act(conv + B + R).</summary>
    private readonly bool _residual;
    /// <summary>The residual has the output's shape (planned): it is added in the kernels' row pass; else with broadcasting afterwards.</summary>
    private bool _residualSameShape;
    /// <summary>The weight tensor when it is a constant of the session (known at planning), else null.</summary>
    private Tensor? _constW;
    /// <summary>Per group, <see cref="_constW"/> packed for the GEMM (built on the first run, reused after).</summary>
    private PackedMatrix?[]? _packedW;
    /// <summary><see cref="_constW"/> packed for <see cref="ImplicitGemmConv"/> (built on the first run, reused after).</summary>
    private ImplicitGemmConv.PackedWeights? _implicitW;
    /// <summary><see cref="_constW"/> transposed and packed as the B of a 1x1 convolution computed transposed (see <see cref="UseTransposed"/>).</summary>
    private PackedMatrix? _packedWT;
    /// <summary><see cref="_constW"/> packed for <see cref="SmallMGemm"/> (few output channels over large planes).</summary>
    private float[]? _smallW;

    /// <summary>Whether deep 1x1 convolutions may take the transposed route (<see cref="UseTransposed"/>); a switch for in-process A/B comparisons with <c>bench/TinyOps.Bench.Kernels ab</c>.</summary>
    internal static bool UseTransposed1x1 = true;

    /// <summary>
    /// Fewest input channels for the transposed 1x1 route (below, transposing the result back costs more than the
    /// padding saved); settable for in-process A/B comparisons with <c>bench/TinyOps.Bench.Kernels ab</c>.
    /// </summary>
    internal static int MinTransposedDepth = 256;

    /// <summary>
    /// Whether convolutions may take the implicit GEMM and small-channel routes (TINYOPS_IMPLICIT_GEMM=0 starts with it
    /// off); tests turn it off to cover the im2col + GEMM route, and it exists for in-process A/B comparisons with
    /// <c>bench/TinyOps.Bench.Kernels ab</c>.
    /// </summary>
    internal static bool UseImplicitGemm = Environment.GetEnvironmentVariable("TINYOPS_IMPLICIT_GEMM") != "0";

    public ConvKernel(Node node, int opset) : base(node, opset)
    {
        _attrs = new ConvAttributes(node, transpose: false);
        _act = FusedActivation.FromNode(node);
        _residual = node.GetInt(FusedActivation.ResidualAttribute, 0) != 0;
        if (_residual && node.Inputs.Count < 4) throw Error("a fused residual needs input 3");
    }

    public override void Infer(InferContext ctx)
    {
        ctx.ExpectType(0, DataType.Float32);
        ctx.ExpectType(1, DataType.Float32);
        var shape = _attrs.ForConv(ctx.InputShape(0), ctx.InputShape(1));
        var wv = ctx.InputValue(1);
        if (!ReferenceEquals(wv, _constW))
        {
            _constW = wv;
            _packedW = null;
            _implicitW = null;
            _packedWT = null;
            _smallW = null;
        }
        if (ctx.HasInput(2))
        {
            ctx.ExpectType(2, DataType.Float32);
            var b = ctx.InputShape(2);
            if (b.Length != 1 || b[0] != shape.OutChannels)
                throw ctx.Error($"bias B has shape {ShapeUtil.Format(b)}, expected [{shape.OutChannels}]");
        }
        var outShape = shape.OutputShape();
        if (_residual)
        {
            ctx.ExpectType(3, DataType.Float32);
            var rs = ctx.InputShape(3);
            _residualSameShape = ShapeUtil.SameShape(rs, outShape);
            if (!_residualSameShape)
            {
                // the fused Add's numpy broadcasting (opset 7+)
                outShape = ShapeUtil.TryBroadcast(outShape, rs)
                    ?? throw ctx.Error($"the residual added to this Conv has shape {ShapeUtil.Format(rs)}, which does not broadcast with the output {ShapeUtil.Format(outShape)}");
            }
        }
        ctx.SetOutput(0, DataType.Float32, outShape);
    }

    public override void Run(RunContext ctx)
    {
        if (!_residual)
        {
            Run(ctx, ctx.Output(0).Span<float>(), in _act);
            return;
        }
        var rT = ctx.Input(3);
        var yT = ctx.Output(0);
        if (_residualSameShape && ShapeUtil.SameShape(rT.Shape, yT.Shape))
        {
            unsafe
            {
                // both pinned while the kernels run: their row pass reads the residual at a fixed distance from y
                var y = yT.Span<float>();
                fixed (float* py = y, pr = rT.ReadOnlySpan<float>())
                {
                    var act = _act.WithResidual((nint)((byte*)pr - (byte*)py));
                    Run(ctx, y, in act);
                }
            }
            return;
        }
        // a residual that broadcasts: the convolution (with bias) into scratch, then the Add and the activation
        var xs = ctx.Input(0).Shape;
        var s = _attrs.ForConv(xs, ctx.Input(1).Shape);
        var convShape = s.OutputShape();
        var conv = ctx.Scratch<float>(ShapeUtil.Size(convShape), 7);
        Run(ctx, conv, FusedActivation.None);
        var yOut = yT.Span<float>();
        Elementwise.BroadcastDriver.Run<float, float, Elementwise.ArithmeticOps.Add<float>>(conv, convShape, rT.ReadOnlySpan<float>(), rT.Shape, yOut, yT.Shape);
        _act.Apply(yOut);
    }

    private void Run(RunContext ctx, Span<float> y, in FusedActivation act)
    {
        var xT = ctx.Input(0);
        var wT = ctx.Input(1);
        var bT = ctx.OptionalInput(2);
        var s = _attrs.ForConv(xT.Shape, wT.Shape);
        ReadOnlySpan<float> x = xT.ReadOnlySpan<float>();
        ReadOnlySpan<float> w = wT.ReadOnlySpan<float>();
        ReadOnlySpan<float> bias = bT is null ? default : bT.ReadOnlySpan<float>();

        int outSize = s.OutSize;
        if (outSize == 0 || s.Batch == 0) return;
        int threads = ctx.Threads;

        int cg = s.InChannels / s.Group;
        // depthwise and stem routes take no residual: they store conv + bias, the residual and activation follow in a pass
        var plain = act.HasResidual ? FusedActivation.None : act;
        if (cg == 1 && s.Group > 1)
        {
            if (DepthwiseConv.Supports(in s)) DepthwiseConv.Run(x, w, bias, y, in s, in plain, threads);
            else
            {
                FillBias(y, bias, in s);
                Depthwise(x, w, y, in s);
                plain.Apply(y.Slice(0, s.Batch * s.OutChannels * outSize));
            }
            if (act.HasResidual) AddResidual(y.Slice(0, s.Batch * s.OutChannels * outSize), in act);
            return;
        }
        // the weights are the node's constant initializer: only then are packed copies cached on the kernel
        bool constW = _constW is not null && ReferenceEquals(wT, _constW);
        bool implicitGemm = UseImplicitGemm && ImplicitGemmConv.Supports(in s) && constW;
        if (UseImplicitGemm && SmallChannelConv.Supports(in s))
        {
            SmallChannelConv.Run(x, w, bias, y, in s, in plain, threads,
                ctx.Scratch<float>(SmallChannelConv.ScratchFloats(in s), 0), ctx.Scratch<float>(s.OutChannels, 2), ctx.Scratch<int>(s.Kernel[2], 1));
            if (act.HasResidual) AddResidual(y.Slice(0, s.Batch * s.OutChannels * outSize), in act);
            return;
        }
        if (implicitGemm)
        {
            int kd = s.InChannels * s.KernelSize;
            _implicitW ??= ImplicitGemmConv.Pack(w, in s);
            ImplicitGemmConv.Run(x, _implicitW, bias, y, in s, in act, threads,
                ctx.Scratch<float>(ImplicitGemmConv.PaddedFloats(in s), 0), ctx.Scratch<int>(kd, 1), ctx.Scratch<float>(ImplicitGemmConv.BiasFloats(in s), 2));
            return;
        }
        int mg = s.OutChannels / s.Group;
        int kvol = s.KernelSize;
        int kdim = cg * kvol;
        int inSize = s.InSize;
        bool direct = kvol == 1 && s.Stride[0] == 1 && s.Stride[1] == 1 && s.Stride[2] == 1
            && s.PadBegin[0] == 0 && s.PadBegin[1] == 0 && s.PadBegin[2] == 0 && inSize == outSize;
        int rows = s.Out[0] * s.Out[1];
        int rowLen = s.Out[2];
        int chunkRows = direct ? rows : (int)Math.Clamp(MaxColumnFloats / Math.Max(1L, (long)kdim * rowLen), 1, rows);
        Span<float> col = direct ? default : ctx.Scratch<float>(kdim * chunkRows * rowLen);
        for (int n = 0; n < s.Batch; n++)
            for (int g = 0; g < s.Group; g++)
            {
                var xg = x.Slice((n * s.InChannels + g * cg) * inSize, cg * inSize);
                var wg = w.Slice(g * mg * kdim, mg * kdim);
                var yg = y.Slice((n * s.OutChannels + g * mg) * outSize, mg * outSize);
                var bg = bias.IsEmpty ? default : bias.Slice(g * mg, mg);
                if (direct && s.Group == 1 && constW && SmallMGemm.Supports(mg, outSize))
                {
                    _smallW ??= SmallMGemm.Pack(w, mg, cg);
                    SmallMGemm.Run(_smallW, xg, yg, bg, mg, outSize, cg, in act, threads);
                    continue;
                }
                if (direct && s.Group == 1 && constW && UseTransposed(mg, outSize, cg, threads))
                {
                    MultiplyTransposed(ctx, w, xg, yg, bg, mg, outSize, cg, in act, threads);
                    continue;
                }
                // the packed copy serves only the plain GEMM routes below (the two above pack their own)
                var pw = Packed(wT, g, mg, kdim, s.Group);
                if (direct)
                {
                    SGemm.Multiply(false, false, mg, outSize, cg, 1f, wg, kdim, xg, inSize, 0f, yg, outSize, bg, default, in act, threads, pw);
                    continue;
                }
                for (int r0 = 0; r0 < rows; r0 += chunkRows)
                {
                    int rc = Math.Min(chunkRows, rows - r0);
                    int ncols = rc * rowLen;
                    var c = col.Slice(0, kdim * ncols);
                    Im2Col(xg, c, cg, r0, rc, in s);
                    SGemm.Multiply(false, false, mg, ncols, kdim, 1f, wg, kdim, c, ncols, 0f, yg.Slice(r0 * rowLen), outSize, bg, default, in act, threads, pw);
                }
            }
    }

    /// <summary>
    /// Whether a 1x1 convolution of <paramref name="m"/> output channels over <paramref name="pixels"/> pixels and
    /// <paramref name="k"/> input channels is
    /// computed transposed: pixels as the GEMM's rows (broadcast) and channels as its columns (vectors). The tiles pad
    /// rows to 8 and columns to 32; small planes (7 x 7, 14 x 14) waste far fewer multiplies with the channels as
    /// columns, which outweighs transposing the small result back. AVX-512 tiles only. With threads the pixels are split
    /// in 16-pixel bands, so a plane needs a few bands a thread (14 x 14 has 13): 7 x 7's four bands split 2 + 2 leave
    /// one part with the ragged band, and the plain GEMM's row split (MobileNetV2's last 1x1 layer: 160 row tiles) runs
    /// evener (measured 206 against 141 us on two threads).
    /// </summary>
    private static bool UseTransposed(int m, int pixels, int k, int threads)
    {
        if (threads > 1 && (pixels + 15) / 16 < 4 * threads) return false;
        // the transpose back costs per output, the saved multiplies per output and input channel: deep products only
        if (!UseTransposed1x1 || PackedGemm.Select() != PackedGemm.Path.Avx512 || !System.Runtime.Intrinsics.X86.Avx512F.IsSupported || m < 32 || k < MinTransposedDepth) return false;
        long normal = (long)((m + 7) / 8 * 8) * ((pixels + 31) / 32 * 32);
        long transposed = (long)((pixels + 7) / 8 * 8) * ((m + 31) / 32 * 32);
        return transposed * 10 < normal * 9;
    }

    /// <summary>A 1x1 convolution computed transposed (<see cref="Transposed1x1"/>), the weights packed once as B.</summary>
    private void MultiplyTransposed(RunContext ctx, ReadOnlySpan<float> w, ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> bias,
        int m, int pixels, int k, in FusedActivation act, int threads)
    {
        var path = PackedGemm.Path.Avx512;
        if (_packedWT is null || !_packedWT.Fits(path, k, m)) _packedWT = PackedGemm.PackB(path, k, m, w.Slice(0, m * k), 1, k);
        Transposed1x1.Run(_packedWT, x, y, bias, ctx.Scratch<float>(pixels * m + 16, 3), m, pixels, k, in act, threads);
    }

    /// <summary>y = act(y + residual) for routes that stored conv + bias only (the residual pinned at act's distance from y).</summary>
    private static unsafe void AddResidual(Span<float> y, in FusedActivation act)
    {
        fixed (float* py = y)
        {
            var r = new ReadOnlySpan<float>(act.Residual(py), y.Length);
            TensorPrimitives.Add(y, r, y);
        }
        act.Apply(y);
    }

    /// <summary>The packed weights of group g when W is a session constant (packed once, on the first run), else null.</summary>
    private PackedMatrix? Packed(Tensor wT, int g, int mg, int kdim, int groups)
    {
        if (_constW is null || !ReferenceEquals(wT, _constW) || mg < 4) return null;
        var path = PackedGemm.Select();
        if (_packedW is null || _packedW.Length != groups) _packedW = new PackedMatrix?[groups];
        var p = _packedW[g];
        if (p is null || !p.Fits(path, mg, kdim))
            _packedW[g] = p = SGemm.PackA(false, mg, kdim, wT.ReadOnlySpan<float>().Slice(g * mg * kdim, mg * kdim), kdim);
        return p;
    }

    private static void FillBias(Span<float> y, ReadOnlySpan<float> bias, in ConvShape s)
    {
        int outSize = s.OutSize;
        for (int n = 0; n < s.Batch; n++)
            for (int m = 0; m < s.OutChannels; m++)
            {
                var plane = y.Slice((n * s.OutChannels + m) * outSize, outSize);
                if (bias.IsEmpty) plane.Clear(); else plane.Fill(bias[m]);
            }
    }

    /// <summary>
    /// Fills col [cg * kvol, rc * OW] with the input patches of output rows r0..r0+rc (a row is one (od, oh) pair):
    /// col[(c, kd, kh, kw), (row, ow)] = X[c, od*sd - pd + kd*dd, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw] or 0 outside.
    /// </summary>
    private static unsafe void Im2Col(ReadOnlySpan<float> xg, Span<float> col, int cg, int r0, int rc, in ConvShape s)
    {
        int ID = s.In[0], IH = s.In[1], IW = s.In[2];
        int KD = s.Kernel[0], KH = s.Kernel[1], KW = s.Kernel[2];
        int OH = s.Out[1], OW = s.Out[2];
        int SW = s.Stride[2];
        int inSize = ID * IH * IW;
        int ncols = rc * OW;
        if ((long)cg * KD * KH * KW * ncols > col.Length || (long)cg * inSize > xg.Length)
            throw new ArgumentException("Im2Col: buffers too small for the convolution shape");
        // Valid output columns per kernel column (the same for every row).
        int* los = stackalloc int[KW];
        int* his = stackalloc int[KW];
        for (int kw = 0; kw < KW; kw++)
        {
            ConvAttributes.ValidRange(OW, SW, kw * s.Dilation[2] - s.PadBegin[2], IW, out int lo, out int hi);
            los[kw] = lo;
            his[kw] = hi;
        }
        bool vec = Vector256.IsHardwareAccelerated && !SGemm.ForceScalar;
        fixed (float* px = xg, pc = col)
        {
            float* dst = pc;
            for (int c = 0; c < cg; c++)
            {
                float* xc = px + (long)c * inSize;
                for (int kd = 0; kd < KD; kd++)
                    for (int kh = 0; kh < KH; kh++)
                        for (int kw = 0; kw < KW; kw++, dst += ncols)
                        {
                            int offW = kw * s.Dilation[2] - s.PadBegin[2];
                            int lo = los[kw], hi = his[kw];
                            float* seg = dst;
                            for (int r = r0; r < r0 + rc; r++, seg += OW)
                            {
                                int od = r / OH, oh = r - od * OH;
                                int id = od * s.Stride[0] - s.PadBegin[0] + kd * s.Dilation[0];
                                int ih = oh * s.Stride[1] - s.PadBegin[1] + kh * s.Dilation[1];
                                if ((uint)id >= (uint)ID || (uint)ih >= (uint)IH || lo == hi)
                                {
                                    for (int o = 0; o < OW; o++) seg[o] = 0f;
                                    continue;
                                }
                                float* src = xc + (long)(id * IH + ih) * IW + offW;
                                for (int o = 0; o < lo; o++) seg[o] = 0f;
                                int ow = lo;
                                if (SW == 1)
                                {
                                    if (vec && hi - lo >= 8)
                                    {
                                        for (; ow + 8 <= hi; ow += 8) Vector256.Store(Vector256.Load(src + ow), seg + ow);
                                        // The ragged end as one more vector that overlaps the last one (same values).
                                        if (ow < hi) Vector256.Store(Vector256.Load(src + hi - 8), seg + hi - 8);
                                        ow = hi;
                                    }
                                    for (; ow < hi; ow++) seg[ow] = src[ow];
                                }
                                else
                                {
                                    if (SW == 2 && vec && Avx2.IsSupported)
                                        // Even elements of 16 consecutive inputs.
                                        for (; ow + 8 <= hi; ow += 8)
                                        {
                                            var va = Vector256.Load(src + 2 * ow);
                                            var vb = Vector256.Load(src + 2 * ow + 8);
                                            var e = Lanes.Even(va, vb);
                                            Vector256.Store(e, seg + ow);
                                        }
                                    for (; ow < hi; ow++) seg[ow] = src[(long)ow * SW];
                                }
                                for (int o = hi; o < OW; o++) seg[o] = 0f;
                            }
                        }
            }
        }
    }

    /// <summary>Direct convolution when every group has one input channel (depthwise, with any channel multiplier).</summary>
    private static void Depthwise(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, in ConvShape s)
    {
        int ID = s.In[0], IH = s.In[1], IW = s.In[2];
        int KD = s.Kernel[0], KH = s.Kernel[1], KW = s.Kernel[2];
        int OD = s.Out[0], OH = s.Out[1], OW = s.Out[2];
        int SW = s.Stride[2];
        int inSize = s.InSize, outSize = s.OutSize, kvol = s.KernelSize;
        int mg = s.OutChannels / s.Group;
        for (int n = 0; n < s.Batch; n++)
            for (int m = 0; m < s.OutChannels; m++)
            {
                var xc = x.Slice((n * s.InChannels + m / mg) * inSize, inSize);
                var yc = y.Slice((n * s.OutChannels + m) * outSize, outSize);
                var wk = w.Slice(m * kvol, kvol);
                for (int od = 0; od < OD; od++)
                    for (int oh = 0; oh < OH; oh++)
                    {
                        var yrow = yc.Slice((od * OH + oh) * OW, OW);
                        for (int kd = 0; kd < KD; kd++)
                        {
                            int id = od * s.Stride[0] - s.PadBegin[0] + kd * s.Dilation[0];
                            if ((uint)id >= (uint)ID) continue;
                            for (int kh = 0; kh < KH; kh++)
                            {
                                int ih = oh * s.Stride[1] - s.PadBegin[1] + kh * s.Dilation[1];
                                if ((uint)ih >= (uint)IH) continue;
                                var src = xc.Slice((id * IH + ih) * IW, IW);
                                for (int kw = 0; kw < KW; kw++)
                                {
                                    float wv = wk[(kd * KH + kh) * KW + kw];
                                    int offW = kw * s.Dilation[2] - s.PadBegin[2];
                                    ConvAttributes.ValidRange(OW, SW, offW, IW, out int lo, out int hi);
                                    if (lo == hi) continue;
                                    if (SW == 1)
                                    {
                                        var dst = yrow.Slice(lo, hi - lo);
                                        TensorPrimitives.MultiplyAdd(src.Slice(lo + offW, hi - lo), wv, dst, dst);
                                    }
                                    else
                                        for (int ow = lo; ow < hi; ow++) yrow[ow] += wv * src[ow * SW + offW];
                                }
                            }
                        }
                    }
            }
    }
}
