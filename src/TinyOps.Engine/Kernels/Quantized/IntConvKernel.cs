using System.Numerics;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// ConvInteger (opset 10) and QLinearConv (opset 10): integer convolution of uint8/int8 x and w with zero points
/// (w per tensor or per output channel), via im2col and <see cref="IntGemm"/> with int32 accumulation.
/// ConvInteger outputs the int32 sums; QLinearConv adds the int32 bias and requantizes with
/// x_scale·w_scale/y_scale (w_scale per tensor or per output channel) to uint8/int8.
/// </summary>
internal sealed class IntConvKernel : Kernel
{
    private readonly bool _qlinear;
    private readonly ConvGeometry _geo;
    // input positions
    private readonly int _x, _xZero, _w, _wZero;

    public IntConvKernel(Node node, int opset, bool qlinear) : base(node, opset)
    {
        _qlinear = qlinear;
        _geo = new ConvGeometry(node);
        if (qlinear) { _x = 0; _xZero = 2; _w = 3; _wZero = 5; }
        else { _x = 0; _w = 1; _xZero = 2; _wZero = 3; }
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
        ctx.SetOutput(0, yType, _geo.OutputShape());
    }

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
        var yt = ctx.Output(0);
        if (_qlinear)
        {
            float xs = ctx.Input(1).ReadOnlySpan<float>()[0];
            float ys = ctx.Input(6).ReadOnlySpan<float>()[0];
            var wsc = ctx.Input(4).ReadOnlySpan<float>();
            mult = ctx.Scratch<float>(g.OutChannels, 3);
            for (int m = 0; m < mult.Length; m++) mult[m] = xs * wsc[wsc.Length == 1 ? 0 : m] / ys;
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
