using System.Numerics;
using System.Runtime.InteropServices;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Pooling;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// ConvInteger (opset 10) and QLinearConv (opset 10): integer convolution of uint8/int8 x and w with zero points
/// (w per tensor or per output channel), via im2col and <see cref="IntGemm"/> with int32 accumulation.
/// ConvInteger outputs the int32 sums; QLinearConv adds the int32 bias and requantizes with
/// x_scale·w_scale/y_scale (w_scale per tensor or per output channel) to uint8/int8.
/// The fast route packs constant weights once (at planning, see <see cref="Infer"/>), packs the im2col matrix per
/// run into scratch and multiplies with <see cref="FastIntGemm"/>; depthwise-like groups (one output channel per
/// group) use <see cref="FastIntGemm.MultiplyRows"/>. The reference route (<see cref="IntGemm"/>) stays for tests.
/// </summary>
internal sealed class IntConvKernel : Kernel
{
    private readonly bool _qlinear;
    private readonly ConvGeometry _geo;

    /// <summary>Node attribute of a QLinearConv that also applies the 2 × 2, stride 2 MaxPool after it (see <c>Runtime.Fusion.QuantizedPoolFusion</c>).</summary>
    public const string PoolAttribute = "__tinyops_maxpool2x2";

    /// <summary>A 2 × 2 / 2 MaxPool (floor mode) fused after this QLinearConv: y is the pooled output.</summary>
    private readonly bool _pool;
    /// <summary>With <see cref="_pool"/> on a route that cannot pool as it stores: the unpooled output, pooled afterwards.</summary>
    private Tensor? _convTarget, _convBuffer;
    private readonly BytePool2d _bytePool = new();
    // input positions
    private readonly int _x, _xZero, _w, _wZero;

    // Weights packed at planning time when they are constant. Keyed by the source buffer, offset and types; Run
    // uses them only when its weight tensor is that same buffer (constant tensors are never rewritten).
    private byte[]? _packedW;
    private int[]? _packedRowSums;
    private byte[]? _packedSrc;
    private int _packedSrcOffset, _packedSrcLength;
    private DataType _packedXType, _packedWType;
    // the signed weights' pairs fit int16 against unsigned activations (vpmaddubsw is exact, see FastIntGemm.PairsFitInt16)
    private bool _packedPairsFit;
    // per-channel constants of the wide path, computed at planning when every quantization parameter is constant
    private WideConstants? _wideConstants;

    /// <summary>What <see cref="RunWide"/> derives from the constant parameters: multipliers, accumulator starts, zero points.</summary>
    private sealed record WideConstants(float[] Mult, int[] RowInit, int[]? Za, int XZero, int YZero);
    // the direct route (IntDirectConv): weights in its quad order, accumulator starts and tap offsets, planned with the wide constants
    private DirectConstants? _direct;

    /// <summary>
    /// What <see cref="RunDirect"/> needs: packed weights and bias − x_zero·Σw per output channel; the quads' cell
    /// offsets depend on the input size too, so they are kept with the size they were computed for.
    /// </summary>
    private sealed class DirectConstants(byte[] packed, int[] rowInit, WideIntGemm.SumRange range, bool poolable)
    {
        public byte[] Packed { get; } = packed;
        public int[] RowInit { get; } = rowInit;
        /// <summary><see cref="IntDirectConv.Range"/> of <see cref="RowInit"/> and the wide constants' multipliers: how the scaled sums are rounded.</summary>
        public WideIntGemm.SumRange Range { get; } = range;
        /// <summary>Every multiplier is above 0, so requantization is monotonic and a fused MaxPool may run on the sums.</summary>
        public bool Poolable { get; } = poolable;
        public int[] Offsets { get; set; } = [];
        /// <summary>Without VNNI: the quad pairs of the fused pool's tiles (<see cref="IntDirectConv.PlanPairs"/>), or null.</summary>
        public IntDirectConv.PairPlan? Pairs { get; init; }
        public int H { get; set; } = -1;
        public int W { get; set; } = -1;
    }
    // depthwise 3×3 QLinearConv: weights packed for IntDepthwise3x3, keyed by the weight and zero-point buffers
    private int[]? _dwPacked;
    private float[]? _dwMult; // with _dwPacked: x_scale·w_scale/y_scale per channel, all finite, when the scales are constant
    private byte[]? _dwSrc, _dwZeroSrc;
    private int _dwSrcOffset, _dwZeroOffset;
    private DataType _dwWType;

    /// <summary>Whether a depthwise run uses the multipliers planned with its weights (settable for in-process A/B comparisons and tests).</summary>
    internal static bool PlanDepthwiseMultipliers = true;

    public IntConvKernel(Node node, int opset, bool qlinear) : base(node, opset)
    {
        _qlinear = qlinear;
        _geo = new ConvGeometry(node);
        if (qlinear) { _x = 0; _xZero = 2; _w = 3; _wZero = 5; }
        else { _x = 0; _w = 1; _xZero = 2; _wZero = 3; }
        _pool = node.GetInt(PoolAttribute, 0) != 0;
        if (_pool && !qlinear) throw Error("only QLinearConv takes a fused MaxPool");
    }

    /// <summary>Where the convolution writes: the node's output, or with a fused pool on a route that cannot pool, the unpooled buffer.</summary>
    private Tensor ConvOut(RunContext ctx) => _convTarget ?? ctx.Output(0);

    /// <summary>The shape of the node's output: the convolution's, pooled 2 × 2 / 2 (floor mode) when a MaxPool is fused.</summary>
    private int[] OutputShape(InferContext? ctx)
    {
        var s = _geo.OutputShape();
        if (!_pool) return s;
        if (s.Length != 4) throw ctx is null ? Error("a fused 2 × 2 MaxPool needs a 2-D convolution") : ctx.Error("a fused 2 × 2 MaxPool needs a 2-D convolution");
        return [s[0], s[1], s[2] / 2, s[3] / 2];
    }

    public override void Infer(InferContext ctx)
    {
        var xType = ctx.ExpectType(_x, DataType.UInt8, DataType.Int8);
        var wType = ctx.ExpectType(_w, DataType.UInt8, DataType.Int8);
        var xs = ctx.InputShape(_x);
        var ws = ctx.InputShape(_w);
        string? err = _geo.Compute(xs, ws);
        if (err is not null) throw ctx.Error(err);
        int m = ws[0];
        if (ctx.HasInput(_xZero))
        {
            if (ctx.InputType(_xZero) != xType) throw ctx.Error($"x_zero_point has type {ctx.InputType(_xZero).OnnxName()} but x has type {xType.OnnxName()}");
            if (ShapeUtil.Size(ctx.InputShape(_xZero)) != 1) throw ctx.Error($"x_zero_point must be a scalar, it has shape {ShapeUtil.Format(ctx.InputShape(_xZero))}");
        }
        if (ctx.HasInput(_wZero))
        {
            if (ctx.InputType(_wZero) != wType) throw ctx.Error($"w_zero_point has type {ctx.InputType(_wZero).OnnxName()} but w has type {wType.OnnxName()}");
            CheckPerChannel(ctx, _wZero, "w_zero_point", m);
        }
        PrepackWeights(ctx, xType, wType);
        if (!_qlinear)
        {
            ctx.SetOutput(0, DataType.Int32, _geo.OutputShape());
            return;
        }
        ctx.ExpectType(1, DataType.Float32);
        ctx.ExpectType(4, DataType.Float32);
        ctx.ExpectType(6, DataType.Float32);
        if (ShapeUtil.Size(ctx.InputShape(1)) != 1) throw ctx.Error($"x_scale must be a scalar, it has shape {ShapeUtil.Format(ctx.InputShape(1))}");
        if (ShapeUtil.Size(ctx.InputShape(6)) != 1) throw ctx.Error($"y_scale must be a scalar, it has shape {ShapeUtil.Format(ctx.InputShape(6))}");
        CheckPerChannel(ctx, 4, "w_scale", m);
        var yType = ctx.ExpectType(7, DataType.UInt8, DataType.Int8);
        if (ShapeUtil.Size(ctx.InputShape(7)) != 1) throw ctx.Error($"y_zero_point must be a scalar, it has shape {ShapeUtil.Format(ctx.InputShape(7))}");
        if (ctx.HasInput(8))
        {
            ctx.ExpectType(8, DataType.Int32);
            var bs = ctx.InputShape(8);
            if (bs.Length != 1 || bs[0] != m) throw ctx.Error($"bias B must have shape [{m}], it has shape {ShapeUtil.Format(bs)}");
        }
        ctx.SetOutput(0, yType, OutputShape(ctx));
    }

    /// <summary>Packs constant weights for the fast route (the input X is not constant, so the node will run many times).</summary>
    private void PrepackWeights(InferContext ctx, DataType xType, DataType wType)
    {
        _packedSrc = null;
        _packedW = null;
        _packedRowSums = null;
        _wideConstants = null;
        _direct = null;
        _dwPacked = null;
        var wv = ctx.InputValue(_w);
        if (wv is null || ctx.InputValue(_x) is not null) return;
        if (UsesRows)
        {
            PrepackDepthwise(ctx, wv, wType);
            return;
        }
        var g = _geo;
        int mg = g.OutChannels / g.Group, kc = g.ColRows;
        FastIntGemm.Plan(wType == DataType.Int8, xType == DataType.Int8, out bool flip, out _, out _);
        int per = FastIntGemm.PackedASize(mg, kc);
        var packed = new byte[per * g.Group];
        var sums = new int[g.OutChannels];
        var wb = wv.Buffer.AsSpan(wv.ByteOffset, wv.Length);
        for (int gi = 0; gi < g.Group; gi++)
            FastIntGemm.PackA(wb.Slice(gi * mg * kc), mg, kc, kc, flip, (wType == DataType.Int8) ^ flip, packed.AsSpan(gi * per, per), sums.AsSpan(gi * mg, mg));
        _packedW = packed;
        _packedRowSums = sums;
        _packedSrc = wv.Buffer;
        _packedSrcOffset = wv.ByteOffset;
        _packedSrcLength = wv.Length;
        _packedXType = xType;
        _packedWType = wType;
        _packedPairsFit = wType == DataType.Int8 && xType == DataType.UInt8 && FastIntGemm.PairsFitInt16(wb, g.OutChannels, kc, kc);
        _wideConstants = null;
        if (!_qlinear) return;
        Tensor? xs = ctx.InputValue(1), ws = ctx.InputValue(4), ys = ctx.InputValue(6), yz = ctx.InputValue(7);
        Tensor? xz = ctx.InputValue(_xZero), wz = ctx.InputValue(_wZero), b = ctx.InputValue(8);
        if (xs is null || ws is null || ys is null || yz is null || (ctx.HasInput(_xZero) && xz is null)
            || (ctx.HasInput(_wZero) && wz is null) || (ctx.HasInput(8) && b is null)) return;
        int m0 = g.OutChannels;
        var mult = new float[m0];
        if (!Multipliers(xs, ws, ys, mult)) return;
        FastIntGemm.Plan(wType == DataType.Int8, xType == DataType.Int8, out _, out _, out int shift);
        int xZero = xz is null ? 0 : QuantMath.ReadInt(xz, 0);
        var za = new int[m0];
        bool anyZa = false;
        for (int m = 0; m < m0; m++) anyZa |= (za[m] = (wz is null ? 0 : QuantMath.ReadInt(wz, wz.Length == 1 ? 0 : m)) + shift) != 0;
        var rowInit = new int[m0];
        RowStarts(b is null ? default : b.ReadOnlySpan<int>(), xZero, sums, rowInit);
        _wideConstants = new WideConstants(mult, rowInit, anyZa ? za : null, xZero, QuantMath.ReadInt(yz, 0));
        if (!anyZa && IntDirectConv.Supports(g, xType == DataType.Int8, wType == DataType.Int8))
        {
            var dp = new byte[IntDirectConv.PackedBytes(g)];
            var dsums = new int[m0];
            IntDirectConv.PackWeights(g, wb, dp, dsums);
            if (!ByteDot.PairsFit(dp)) return; // without VNNI the emulated dot product would saturate: the other routes run
            var dInit = new int[m0];
            RowStarts(b is null ? default : b.ReadOnlySpan<int>(), xZero, dsums, dInit);
            bool positive = true;
            foreach (float mu in mult) positive &= mu > 0f;
            _direct = new DirectConstants(dp, dInit, IntDirectConv.Range(g, dInit, mult), positive) { Pairs = positive ? IntDirectConv.PlanPairs(g, dp) : null };
        }
    }

    /// <summary>mult[m] = x_scale·w_scale[m]/y_scale; false when one is not finite (the routes that need finite ones check it).</summary>
    private static bool Multipliers(Tensor xs, Tensor ws, Tensor ys, Span<float> mult)
    {
        float x = xs.ReadOnlySpan<float>()[0], y = ys.ReadOnlySpan<float>()[0];
        var w = ws.ReadOnlySpan<float>();
        bool finite = true;
        for (int m = 0; m < mult.Length; m++) finite &= float.IsFinite(mult[m] = x * w[w.Length == 1 ? 0 : m] / y);
        return finite;
    }

    /// <summary>Accumulator starts of the wide path: bias − x_zero·Σ_k w' per output channel.</summary>
    private static void RowStarts(ReadOnlySpan<int> bias, int xZero, ReadOnlySpan<int> rowSums, Span<int> rowInit)
    {
        for (int m = 0; m < rowInit.Length; m++) rowInit[m] = (bias.IsEmpty ? 0 : bias[m]) - xZero * rowSums[m];
    }

    /// <summary>
    /// True when a QLinearConv on this thread takes <see cref="WideIntGemm"/> (the choice can change per thread in
    /// tests) with weights whose pairs are <paramref name="pairsFit"/>: without VNNI the wide kernels emulate the dot
    /// product, which is exact only for such weights (<see cref="ByteDot"/>).
    /// </summary>
    private static bool Wide(bool qlinear, bool pairsFit) => WideActive(qlinear) && (ByteDot.Native || pairsFit);

    /// <summary>True when the wide kernels are this thread's path (whatever the weights).</summary>
    private static bool WideActive(bool qlinear) => qlinear && FastIntGemm.Active == IntGemmPath.AvxVnniWide;

    /// <summary>Packs constant depthwise 3×3 weights (and their zero points, which must be constant too) for <see cref="IntDepthwise3x3"/>.</summary>
    private void PrepackDepthwise(InferContext ctx, Tensor wv, DataType wType)
    {
        var wz = ctx.HasInput(_wZero) ? ctx.InputValue(_wZero) : null;
        if (!_qlinear || !IntDepthwise3x3.Supports(_geo) || (ctx.HasInput(_wZero) && wz is null)) return;
        var zeros = new int[wz is null ? 1 : wz.Length];
        QuantMath.ReadInts(wz, 0, zeros);
        var packed = new int[IntDepthwise3x3.PackedInts(_geo)];
        IntDepthwise3x3.PackWeights(_geo, wv.Buffer.AsSpan(wv.ByteOffset, wv.Length), wType == DataType.Int8, zeros, packed);
        _dwPacked = packed;
        // the multipliers too, when the three scales are constant and give finite ones (a run then skips computing
        // and checking one per channel: about 4 us for 960 channels)
        _dwMult = null;
        Tensor? xs = ctx.InputValue(1), ws = ctx.InputValue(4), ys = ctx.InputValue(6);
        if (xs is not null && ws is not null && ys is not null)
        {
            var mult = new float[_geo.OutChannels];
            if (Multipliers(xs, ws, ys, mult)) _dwMult = mult;
        }
        _dwSrc = wv.Buffer;
        _dwSrcOffset = wv.ByteOffset;
        _dwWType = wType;
        _dwZeroSrc = wz?.Buffer;
        _dwZeroOffset = wz?.ByteOffset ?? 0;
    }

    /// <summary>One output channel per group (depthwise): the row-wise routine beats packing a 1-row matrix.</summary>
    private bool UsesRows => _geo.Group > 1 && _geo.OutChannels == _geo.Group;

    private static void CheckPerChannel(InferContext ctx, int input, string name, int m)
    {
        var s = ctx.InputShape(input);
        int n = ShapeUtil.Size(s);
        if (n != 1 && !(s.Length == 1 && n == m))
            throw ctx.Error($"{name} must be a scalar or a 1-D tensor of {m} output channels, it has shape {ShapeUtil.Format(s)}");
    }

    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(_x);
        var w = ctx.Input(_w);
        string? err = _geo.Compute(x.Shape, w.Shape);
        if (err is not null) throw Error(err);
        if (_pool && !TryRunDirectPooled(ctx, x, w))
        {
            // the route stores unpooled outputs: into a buffer of the node's own (kept across runs), then pooled into y
            var yt = ctx.Output(0);
            if (_convBuffer is null || _convBuffer.Type != yt.Type || !_geo.IsOutputShape(_convBuffer.Shape))
                _convBuffer = Tensor.Zeros(yt.Type, _geo.OutputShape());
            _convTarget = _convBuffer;
            try { RunConv(ctx, x, w); }
            finally { _convTarget = null; }
            PoolInto(ctx, _convBuffer, yt);
            return;
        }
        if (!_pool) RunConv(ctx, x, w);
    }

    private void RunConv(RunContext ctx, Tensor x, Tensor w)
    {
        if (!FastIntGemm.UseReference)
        {
            RunFast(ctx, x, w);
            return;
        }
        switch (x.Type, w.Type)
        {
            case (DataType.UInt8, DataType.UInt8): Run<byte, byte>(ctx, x, w); break;
            case (DataType.UInt8, DataType.Int8): Run<byte, sbyte>(ctx, x, w); break;
            case (DataType.Int8, DataType.UInt8): Run<sbyte, byte>(ctx, x, w); break;
            default: Run<sbyte, sbyte>(ctx, x, w); break;
        }
    }

    private void Run<TX, TW>(RunContext ctx, Tensor xt, Tensor wt)
        where TX : unmanaged, INumberBase<TX>
        where TW : unmanaged, INumberBase<TW>
    {
        var g = _geo;
        int groups = g.Group, cg = g.InChannels / groups, mg = g.OutChannels / groups;
        int kc = g.ColRows, outSize = g.OutSize;
        var x = xt.ReadOnlySpan<TX>();
        var w = wt.ReadOnlySpan<TW>();

        Span<int> xZero = stackalloc int[1];
        var xzt = ctx.OptionalInput(_xZero);
        xZero[0] = xzt is null ? 0 : QuantMath.ReadInt(xzt, 0);
        TX pad = QuantMath.FromInt<TX>(xZero[0]);

        var wzt = ctx.OptionalInput(_wZero);
        int wzLen = wzt is null ? 1 : wzt.Length;
        Span<int> wZero = ctx.Scratch<int>(wzLen, 2);
        QuantMath.ReadInts(wzt, 0, wZero);

        Span<TX> col = g.IsPointwise ? default : ctx.Scratch<TX>(kc * outSize, 0);

        // QLinearConv: per-channel multipliers, bias and output parameters
        Span<float> mult = default;
        ReadOnlySpan<int> bias = default;
        Span<int> acc = default;
        int yZero = 0;
        var yt = ConvOut(ctx);
        if (_qlinear)
        {
            mult = ctx.Scratch<float>(g.OutChannels, 3);
            Multipliers(ctx.Input(1), ctx.Input(4), ctx.Input(6), mult);
            yZero = QuantMath.ReadInt(ctx.Input(7), 0);
            var bt = ctx.OptionalInput(8);
            if (bt is not null) bias = bt.ReadOnlySpan<int>();
            acc = ctx.Scratch<int>(mg * outSize, 1);
        }

        for (int n = 0; n < g.Batch; n++)
        {
            for (int gi = 0; gi < groups; gi++)
            {
                var xg = x.Slice((n * g.InChannels + gi * cg) * g.InSize, cg * g.InSize);
                ReadOnlySpan<TX> bMat;
                if (g.IsPointwise) bMat = xg;
                else
                {
                    g.Im2Col(xg, cg, col, pad);
                    bMat = col;
                }
                var aMat = w.Slice(gi * mg * kc, mg * kc);
                ReadOnlySpan<int> aZero = wZero.Length == 1 ? wZero : wZero.Slice(gi * mg, mg);
                int outOffset = (n * g.OutChannels + gi * mg) * outSize;
                if (!_qlinear)
                {
                    var y = yt.Span<int>().Slice(outOffset, mg * outSize);
                    IntGemm.Multiply(mg, outSize, kc, aMat, kc, aZero, bMat, outSize, xZero, y, outSize);
                }
                else
                {
                    IntGemm.Multiply(mg, outSize, kc, aMat, kc, aZero, bMat, outSize, xZero, acc, outSize);
                    if (yt.Type == DataType.UInt8) Requantize(acc, yt.Span<byte>().Slice(outOffset, mg * outSize), gi * mg, mg, outSize, mult, bias, yZero);
                    else Requantize(acc, yt.Span<sbyte>().Slice(outOffset, mg * outSize), gi * mg, mg, outSize, mult, bias, yZero);
                }
            }
        }
    }

    // Fully optimized at once, without tiering: with dynamic PGO about 4 processes in 10 compiled the int8 convolution
    // path into a version 40% slower (2.9 against 4.1 µs for fmnist's 8→16 3×3), so timings were bimodal by process.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private void RunFast(RunContext ctx, Tensor xt, Tensor wt)
    {
        var g = _geo;
        int groups = g.Group, cg = g.InChannels / groups, mg = g.OutChannels / groups;
        int kc = g.ColRows, outSize = g.OutSize;
        bool xSigned = xt.Type == DataType.Int8, wSigned = wt.Type == DataType.Int8;
        var x = xt.Buffer.AsSpan(xt.ByteOffset, xt.Length);
        var w = wt.Buffer.AsSpan(wt.ByteOffset, wt.Length);
        bool rows = UsesRows;
        bool packedMatch = PackedMatch(xt, wt);
        if (DirectRoute(packedMatch, xSigned, wSigned) is { } direct)
        {
            RunDirect(ctx, x, direct.Constants, direct.Wide);
            return;
        }
        if (!rows && packedMatch && _wideConstants is { } wc && Wide(_qlinear, _packedPairsFit))
        {
            FastIntGemm.Plan(wSigned, xSigned, out _, out bool au, out _);
            RunWide(ctx, x, xSigned, wc.XZero, _packedW, au, wc.Mult, wc.RowInit, wc.Za, wc.YZero);
            return;
        }

        var xzt = ctx.OptionalInput(_xZero);
        int xZero = xzt is null ? 0 : QuantMath.ReadInt(xzt, 0);
        Span<int> zb = stackalloc int[1];
        zb[0] = xZero;
        byte pad = (byte)xZero;

        FastIntGemm.Plan(wSigned, xSigned, out bool flip, out bool aUnsigned, out int shift);
        if (rows) { flip = false; shift = 0; }
        var wzt = ctx.OptionalInput(_wZero);
        int wzLen = wzt is null ? 1 : wzt.Length;
        Span<int> wZero = ctx.Scratch<int>(wzLen, 2);
        QuantMath.ReadInts(wzt, 0, wZero);
        for (int i = 0; i < wZero.Length; i++) wZero[i] += shift;

        // packed weights: planned once, or packed now into scratch
        ReadOnlySpan<byte> wPacked = default;
        ReadOnlySpan<int> wRowSums = default;
        bool pairsFit = false;
        int perGroup = FastIntGemm.PackedASize(mg, kc);
        if (!rows)
        {
            if (packedMatch)
            {
                wPacked = _packedW;
                wRowSums = _packedRowSums;
                pairsFit = _packedPairsFit;
            }
            else
            {
                var wp = ctx.Scratch<byte>(perGroup * groups, 6);
                var rs = ctx.Scratch<int>(g.OutChannels, 7);
                for (int gi = 0; gi < groups; gi++)
                    FastIntGemm.PackA(w.Slice(gi * mg * kc), mg, kc, kc, flip, wSigned ^ flip, wp.Slice(gi * perGroup, perGroup), rs.Slice(gi * mg, mg));
                wPacked = wp;
                wRowSums = rs;
            }
        }

        if (rows && _qlinear && IntDepthwise3x3.Supports(g))
        {
            RunDepthwise(ctx, x, xSigned, xZero, wt, w, wSigned, wZero);
            return;
        }

        // the wide path with parameters that are not all constant: the per-channel constants now, into scratch
        // (non-finite multipliers go on to the route below, which defines those cases)
        int m0 = g.OutChannels;
        var block = !rows && Wide(_qlinear, pairsFit) ? ctx.Scratch<int>(3 * m0, 3) : default;
        var mults = MemoryMarshal.Cast<int, float>(block.Slice(0, block.IsEmpty ? 0 : m0));
        if (!block.IsEmpty && Multipliers(ctx.Input(1), ctx.Input(4), ctx.Input(6), mults))
        {
            var bt = ctx.OptionalInput(8);
            var rowInit = block.Slice(m0, m0);
            RowStarts(bt is null ? default : bt.ReadOnlySpan<int>(), xZero, wRowSums, rowInit);
            bool anyZa = false;
            foreach (int z in wZero) anyZa |= z != 0;
            Span<int> za = default;
            if (anyZa)
            {
                za = block.Slice(2 * m0, m0);
                for (int m = 0; m < m0; m++) za[m] = wZero[wZero.Length == 1 ? 0 : m];
            }
            RunWide(ctx, x, xSigned, xZero, wPacked, aUnsigned, mults, rowInit, za, QuantMath.ReadInt(ctx.Input(7), 0));
            return;
        }

        Span<byte> col = g.IsPointwise ? default : ctx.Scratch<byte>(kc * outSize, 0);
        Span<byte> bPacked = rows ? default : ctx.Scratch<byte>(FastIntGemm.PackedBSize(kc, outSize), 4);
        Span<int> colWork = rows ? default : ctx.Scratch<int>(outSize + FastIntGemm.WorkInts(outSize), 5);
        Span<int> colSums = rows ? default : colWork.Slice(0, outSize);
        Span<int> work = rows ? default : colWork.Slice(outSize);

        Span<float> mult = default;
        ReadOnlySpan<int> bias = default;
        Span<int> acc = default;
        int yZero = 0;
        var yt = ConvOut(ctx);
        if (_qlinear)
        {
            mult = ctx.Scratch<float>(g.OutChannels, 3);
            Multipliers(ctx.Input(1), ctx.Input(4), ctx.Input(6), mult);
            yZero = QuantMath.ReadInt(ctx.Input(7), 0);
            var bt = ctx.OptionalInput(8);
            if (bt is not null) bias = bt.ReadOnlySpan<int>();
            if (rows) acc = ctx.Scratch<int>(mg * outSize, 1);
        }

        for (int n = 0; n < g.Batch; n++)
        {
            for (int gi = 0; gi < groups; gi++)
            {
                var xg = x.Slice((n * g.InChannels + gi * cg) * g.InSize, cg * g.InSize);
                ReadOnlySpan<byte> bMat;
                if (g.IsPointwise) bMat = xg;
                else
                {
                    g.Im2Col<byte>(xg, cg, col, pad);
                    bMat = col;
                }
                int outOffset = (n * g.OutChannels + gi * mg) * outSize;
                Span<int> c = _qlinear ? acc : yt.Span<int>().Slice(outOffset, mg * outSize);
                ReadOnlySpan<int> za = wZero.Length == 1 ? wZero : wZero.Slice(gi * mg, mg);
                if (rows)
                {
                    FastIntGemm.MultiplyRows(mg, outSize, kc, w.Slice(gi * mg * kc, mg * kc), kc, wSigned, za, bMat, outSize, xSigned, zb, c, outSize);
                }
                else
                {
                    FastIntGemm.PackB(bMat, kc, outSize, outSize, xSigned, bPacked, colSums);
                    var ap = wPacked.Slice(gi * perGroup, perGroup);
                    var rs = wRowSums.Slice(gi * mg, mg);
                    if (_qlinear)
                    {
                        // requantized tile by tile, straight into y
                        var yb = yt.Buffer.AsSpan(yt.ByteOffset + outOffset, mg * outSize);
                        FastIntGemm.MultiplyRequantize(mg, outSize, kc, ap, rs, za, aUnsigned, bPacked, colSums, zb, work,
                            mult.Slice(gi * mg, mg), bias.IsEmpty ? default : bias.Slice(gi * mg, mg), yZero, yb, yt.Type == DataType.Int8, outSize, pairsFit);
                        continue;
                    }
                    FastIntGemm.Multiply(mg, outSize, kc, ap, rs, za, aUnsigned, bPacked, colSums, zb, work, c, outSize, pairsFit);
                }
                if (!_qlinear) continue;
                for (int m = 0; m < mg; m++)
                {
                    int ch = gi * mg + m;
                    int b = bias.IsEmpty ? 0 : bias[ch];
                    var arow = acc.Slice(m * outSize, outSize);
                    int o = outOffset + m * outSize;
                    if (yt.Type == DataType.UInt8) IntRequantize.Row(arow, b, mult[ch], yZero, yt.Span<byte>().Slice(o, outSize));
                    else IntRequantize.Row(arow, b, mult[ch], yZero, yt.Span<sbyte>().Slice(o, outSize));
                }
            }
        }
    }

    /// <summary>
    /// QLinearConv through <see cref="WideIntGemm"/>: per image and group, B is the input (1×1, stride 1, no padding)
    /// or its im2col matrix, packed in 24-column panels; the products are requantized straight into y.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private void RunWide(RunContext ctx, ReadOnlySpan<byte> x, bool xSigned, int xZero, ReadOnlySpan<byte> wPacked, bool aUnsigned,
        ReadOnlySpan<float> mult, ReadOnlySpan<int> rowInit, ReadOnlySpan<int> za, int yZero)
    {
        var g = _geo;
        int groups = g.Group, cg = g.InChannels / groups, mg = g.OutChannels / groups;
        int kc = g.ColRows, outSize = g.OutSize;
        int perGroup = FastIntGemm.PackedASize(mg, kc);
        bool anyZa = !za.IsEmpty;
        // B: the input itself (1×1), the input's stride-phase planes (2-D, stride 1 or 2), else an im2col matrix;
        // with phase planes the GEMM has OH·Width columns and its rows are compacted into y afterwards
        bool planes = IntPhasePlanes.Supports(g);
        int cols = planes ? IntPhasePlanes.Columns(g) : outSize;
        // ints: column sums and adjustments (za ≠ 0 only), plane row offsets
        var ints = ctx.Scratch<int>(anyZa ? 2 * cols : 0, 1);
        var colSums = anyZa ? ints.Slice(0, cols) : default;
        var colAdj = anyZa ? ints.Slice(cols, cols) : default;
        ReadOnlySpan<int> rowOffsets = planes ? PlaneOffsets(g, cg) : default;
        var yt = ConvOut(ctx);
        bool ySigned = yt.Type == DataType.Int8;
        var y = yt.Buffer.AsSpan(yt.ByteOffset, yt.Length);
        Span<byte> col = g.IsPointwise ? default : ctx.Scratch<byte>(planes ? IntPhasePlanes.PlanesBytes(g, cg) : kc * outSize, 0);
        // with every za 0, a 1×1 convolution hands its input over as it is, packed a panel at a time as the product
        // reaches it (WideIntGemm.MultiplyRequantizePanels), and so do phase planes of a short product held in registers
        // (the stem); other phase planes and im2col matrices are packed whole (27 scattered rows pack faster in one pass)
        bool panels = !anyZa && WideIntGemm.PackPanels && (g.IsPointwise || (planes && WideIntGemm.TakesUnpacked(mg, kc, false)));
        // the 512-bit pass stores the phase planes' rows compacted, straight into y
        bool direct = planes && panels && WideIntGemm.CompactRows && WideIntGemm.CompactsRows(mg, kc);
        Span<byte> wideY = planes && !direct ? ctx.Scratch<byte>(mg * cols, 5) : default;
        var bPacked = ctx.Scratch<byte>(panels ? WideIntGemm.PanelBytes(kc) : WideIntGemm.PackedBSize(kc, cols), 4);
        byte pad = (byte)xZero;
        for (int n = 0; n < g.Batch; n++)
        {
            for (int gi = 0; gi < groups; gi++)
            {
                var xg = x.Slice((n * g.InChannels + gi * cg) * g.InSize, cg * g.InSize);
                int outOffset = (n * g.OutChannels + gi * mg) * outSize;
                var yg = y.Slice(outOffset, mg * outSize);
                if (planes) IntPhasePlanes.Build(g, xg, cg, pad, col);
                var yOut = planes && !direct ? wideY : yg;
                if (panels)
                {
                    var pe = direct
                        ? new WideIntGemm.Epilogue(rowInit.Slice(gi * mg, mg), mult.Slice(gi * mg, mg), default, default, yZero, ySigned, yg, outSize)
                            { RowWidth = IntPhasePlanes.Width(g), RowKeep = g.OutDims[1] }
                        : new WideIntGemm.Epilogue(rowInit.Slice(gi * mg, mg), mult.Slice(gi * mg, mg), default, default, yZero, ySigned, yOut, cols);
                    WideIntGemm.MultiplyRequantizePanels(mg, cols, kc, wPacked.Slice(gi * perGroup, perGroup), aUnsigned, planes ? col : xg, rowOffsets, cols, bPacked, pe);
                }
                else
                {
                    if (g.IsPointwise) WideIntGemm.PackB(xg, kc, outSize, outSize, xSigned, bPacked, colSums);
                    else if (planes) WideIntGemm.PackRows(col, rowOffsets, kc, cols, xSigned, bPacked, colSums);
                    else
                    {
                        g.Im2Col<byte>(xg, cg, col, pad);
                        WideIntGemm.PackB(col, kc, outSize, outSize, xSigned, bPacked, colSums);
                    }
                    if (anyZa) for (int j = 0; j < cols; j++) colAdj[j] = colSums[j] - kc * xZero;
                    var e = new WideIntGemm.Epilogue(rowInit.Slice(gi * mg, mg), mult.Slice(gi * mg, mg), anyZa ? za.Slice(gi * mg, mg) : default,
                        colAdj, yZero, ySigned, yOut, cols);
                    WideIntGemm.MultiplyRequantize(mg, cols, kc, wPacked.Slice(gi * perGroup, perGroup), aUnsigned, bPacked, e);
                }
                if (planes && !direct) IntPhasePlanes.Compact(g, wideY, mg, yg);
            }
        }
    }

    /// <summary>
    /// The fused 2 × 2 MaxPool on the direct route, when it applies (wide path, constant parameters, weights packed for
    /// it, every multiplier above 0 so requantization is monotonic); false when another route must run.
    /// </summary>
    private bool TryRunDirectPooled(RunContext ctx, Tensor xt, Tensor wt)
    {
        if (FastIntGemm.UseReference) return false;
        if (DirectRoute(PackedMatch(xt, wt), xt.Type == DataType.Int8, wt.Type == DataType.Int8) is not { } direct || !direct.Constants.Poolable) return false;
        RunDirect(ctx, xt.Buffer.AsSpan(xt.ByteOffset, xt.Length), direct.Constants, direct.Wide, pooled: true);
        return true;
    }

    /// <summary>The weights packed at planning are those of <paramref name="wt"/>, for these input and weight types.</summary>
    private bool PackedMatch(Tensor xt, Tensor wt) =>
        _packedW is not null && ReferenceEquals(_packedSrc, wt.Buffer) && _packedSrcOffset == wt.ByteOffset
        && _packedSrcLength == wt.Length && _packedXType == xt.Type && _packedWType == wt.Type;

    /// <summary>
    /// The constants of the direct route (<see cref="IntDirectConv"/>) when this run takes it: the wide path with
    /// constant parameters (not the rows route), weights packed for these tensors (<paramref name="packedMatch"/>) and
    /// a geometry and types the route supports; null when another route runs. <see cref="RunFast"/> and the fused
    /// pool (<see cref="TryRunDirectPooled"/>) both decide with it.
    /// </summary>
    private (DirectConstants Constants, WideConstants Wide)? DirectRoute(bool packedMatch, bool xSigned, bool wSigned)
    {
        // _direct exists only for weights the dot product serves exactly (see PrepackWeights)
        if (UsesRows || !packedMatch || _wideConstants is not { } wc || !WideActive(_qlinear) || _direct is not { } dc) return null;
        return IntDirectConv.Supports(_geo, xSigned, wSigned) ? (dc, wc) : null;
    }

    /// <summary>2 × 2 / 2 MaxPool (floor mode) of the unpooled convolution into y.</summary>
    private void PoolInto(RunContext ctx, Tensor conv, Tensor y)
    {
        int n = conv.Shape[0], c = conv.Shape[1], h = conv.Shape[2], w = conv.Shape[3];
        int oh = h / 2, ow = w / 2;
        int channels = n * c;
        // scratch slot 0: the convolution is done with it
        if (y.Type == DataType.Int8)
            _bytePool.Run(ctx, 0, conv.ReadOnlySpan<sbyte>(), y.Span<sbyte>(), channels, h, w, oh, ow, 2, 2, 2, 2, 1, 1, 0, 0);
        else
            _bytePool.Run(ctx, 0, conv.ReadOnlySpan<byte>(), y.Span<byte>(), channels, h, w, oh, ow, 2, 2, 2, 2, 1, 1, 0, 0);
    }

    /// <summary>QLinearConv through <see cref="IntDirectConv"/>: per image, the quad planes, then the products requantized into y (pooled 2 × 2 / 2 first with <paramref name="pooled"/>).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private void RunDirect(RunContext ctx, ReadOnlySpan<byte> x, DirectConstants dc, WideConstants wc, bool pooled = false)
    {
        var g = _geo;
        if (dc.H != g.InDims[0] || dc.W != g.InDims[1])
        {
            var offsets = new int[IntDirectConv.Quads(g)];
            IntDirectConv.Offsets(g, offsets);
            (dc.Offsets, dc.H, dc.W) = (offsets, g.InDims[0], g.InDims[1]);
        }
        var planes = ctx.Scratch<byte>(IntDirectConv.PlanesBytes(g), 0);
        var yt = ConvOut(ctx);
        var y = yt.Buffer.AsSpan(yt.ByteOffset, yt.Length);
        int inImage = g.InChannels * g.InSize;
        int outImage = g.OutChannels * (pooled ? g.OutDims[0] / 2 * (g.OutDims[1] / 2) : g.OutSize);
        for (int n = 0; n < g.Batch; n++)
        {
            IntDirectConv.BuildPlanes(g, x.Slice(n * inImage, inImage), (byte)wc.XZero, planes);
            var yn = y.Slice(n * outImage, outImage);
            if (pooled) IntDirectConv.RunPooled(g, planes, dc.Offsets, dc.Packed, dc.RowInit, wc.Mult, dc.Range, wc.YZero, yt.Type == DataType.Int8, yn, dc.Pairs);
            else IntDirectConv.Run(g, planes, dc.Offsets, dc.Packed, dc.RowInit, wc.Mult, dc.Range, wc.YZero, yt.Type == DataType.Int8, yn);
        }
    }

    // IntPhasePlanes row offsets, kept for the input size they were computed for
    private int[]? _planeOffsets;
    private int _planeOffsetsH = -1, _planeOffsetsW = -1;

    private int[] PlaneOffsets(ConvGeometry g, int channels)
    {
        if (_planeOffsets is null || _planeOffsets.Length != g.ColRows || _planeOffsetsH != g.InDims[0] || _planeOffsetsW != g.InDims[1])
        {
            var offsets = new int[g.ColRows];
            IntPhasePlanes.RowOffsets(g, channels, offsets);
            _planeOffsets = offsets;
            (_planeOffsetsH, _planeOffsetsW) = (g.InDims[0], g.InDims[1]);
        }
        return _planeOffsets;
    }

    /// <summary>Depthwise 3×3 QLinearConv through <see cref="IntDepthwise3x3"/> (direct, no im2col).</summary>
    private void RunDepthwise(RunContext ctx, ReadOnlySpan<byte> x, bool xSigned, int xZero, Tensor wt, ReadOnlySpan<byte> w, bool wSigned, ReadOnlySpan<int> wZero)
    {
        var g = _geo;
        var wzt = ctx.OptionalInput(_wZero);
        bool planned = _dwPacked is not null && ReferenceEquals(_dwSrc, wt.Buffer) && _dwSrcOffset == wt.ByteOffset && _dwWType == wt.Type
            && ReferenceEquals(_dwZeroSrc, wzt?.Buffer) && _dwZeroOffset == (wzt?.ByteOffset ?? 0);
        ReadOnlySpan<int> packed = planned ? _dwPacked : default;
        ReadOnlySpan<float> mult;
        bool plannedMult = planned && _dwMult is not null && PlanDepthwiseMultipliers;
        if (plannedMult) mult = _dwMult;
        else
        {
            var m1 = ctx.Scratch<float>(g.OutChannels, 3);
            Multipliers(ctx.Input(1), ctx.Input(4), ctx.Input(6), m1);
            mult = m1;
        }
        int yZero = QuantMath.ReadInt(ctx.Input(7), 0);
        var bt = ctx.OptionalInput(8);
        ReadOnlySpan<int> bias = bt is null ? default : bt.ReadOnlySpan<int>();
        var yt = ConvOut(ctx);
        var y = yt.Buffer.AsSpan(yt.ByteOffset, yt.Length);
        var work = ctx.Scratch<byte>(IntDepthwise3x3.WorkBytes(g), 0);
        int inImage = g.InChannels * g.InSize, outImage = g.OutChannels * g.OutSize;
        for (int n = 0; n < g.Batch; n++)
            IntDepthwise3x3.Run(g, x.Slice(n * inImage, inImage), xSigned, xZero, w, wSigned, wZero, bias, mult, yZero,
                y.Slice(n * outImage, outImage), yt.Type == DataType.Int8, packed, work, multFinite: plannedMult);
    }

    private static void Requantize<TY>(ReadOnlySpan<int> acc, Span<TY> y, int firstChannel, int channels, int size,
        ReadOnlySpan<float> mult, ReadOnlySpan<int> bias, int yZero) where TY : unmanaged, INumberBase<TY>
    {
        var (min, max) = QuantMath.Range<TY>();
        for (int m = 0; m < channels; m++)
        {
            int ch = firstChannel + m;
            float mu = mult[ch];
            int b = bias.IsEmpty ? 0 : bias[ch];
            var a = acc.Slice(m * size, size);
            var yr = y.Slice(m * size, size);
            for (int i = 0; i < size; i++) yr[i] = QuantMath.FromInt<TY>(QuantMath.Requantize(a[i] + b, mu, yZero, min, max));
        }
    }
}
