using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using System.Runtime.InteropServices;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Elementwise;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// DequantizeLinear → Add(constant) → [Relu] → [QuantizeLinear] as one node (built by
/// <c>Runtime.Fusion.DequantizeChainFusion</c>; inputs x, x_scale, x_zero_point, bias, y_scale, y_zero_point with
/// the optional ones empty). Per-tensor parameters only. The steps run over a float buffer with the routines of the
/// separate kernels, so the result is identical to theirs: the dequantization of <see cref="DequantizeLinearKernel"/>
/// ((x - zero_point) * scale, vectorized by <see cref="QuantizeVector.Dequantize"/>), the Add of
/// <see cref="ArithmeticKernel"/> (IEEE addition; a bias that repeats along the trailing dimensions is added row by
/// row, any other broadcast goes through <see cref="BroadcastDriver"/> as Add does), Relu as
/// <see cref="UnaryKernel"/> does it (<see cref="TensorPrimitives.Max(ReadOnlySpan{float}, float, Span{float})"/>),
/// and the quantization of <see cref="QuantizeLinearKernel"/> (<see cref="QuantizeVector.Quantize"/>, then
/// <see cref="QuantMath.Quantize"/> for the rest). Without the QuantizeLinear step the float result is the output.
/// </summary>
internal sealed class DequantizeChainKernel : Kernel
{
    /// <summary>
    /// Node attribute naming the fused steps: Add, AddRelu, AddQuantize or AddReluQuantize, each optionally prefixed
    /// with Q when the other addend's DequantizeLinear is fused too, and QAddQuantize and QAddReluQuantize with RQ when
    /// the sum runs by ratio multipliers (<see cref="Runtime.SessionOptions.ExactQuantizedAdds"/>; internal, never
    /// written to files).
    /// </summary>
    public const string StepsAttribute = "__tinyops_dequantize_chain";

    private readonly bool _relu;
    private readonly bool _quantize;
    /// <summary>The other addend is quantized (its DequantizeLinear fused: inputs 6 and 7 are its scale and zero point).</summary>
    private readonly bool _quantizedB;
    /// <summary>Both addends quantized and the sum quantized: computed by ratio multipliers (<see cref="AddByRatios"/>).</summary>
    private readonly bool _ratios;

    public DequantizeChainKernel(Node node, int opset) : base(node, opset)
    {
        string steps = node.GetString(StepsAttribute, "");
        _ratios = steps.StartsWith("RQ", StringComparison.Ordinal);
        if (_ratios) steps = steps[1..];
        _quantizedB = steps.StartsWith('Q');
        (_relu, _quantize) = (_quantizedB ? steps[1..] : steps) switch
        {
            "Add" => (false, false),
            "AddRelu" => (true, false),
            "AddQuantize" => (false, true),
            "AddReluQuantize" => (true, true),
            _ => throw Error($"unknown fused steps '{steps}'"),
        };
        if (_ratios && !_quantize) throw Error($"unknown fused steps '{node.GetString(StepsAttribute, "")}'");
        if (node.Inputs.Count != (_quantizedB ? 8 : 6)) throw Error($"a fused dequantize chain takes {(_quantizedB ? 8 : 6)} inputs");
    }

    public static bool IsFused(Node node) => node.HasAttribute(StepsAttribute);

    public override void Infer(InferContext ctx)
    {
        var xType = ctx.ExpectType(0, DataType.UInt8, DataType.Int8, DataType.Int32);
        ctx.ExpectType(1, DataType.Float32);
        if (ShapeUtil.Size(ctx.InputShape(1)) != 1) throw ctx.Error("x_scale must have one element");
        if (ctx.HasInput(2))
        {
            if (ctx.InputType(2) != xType) throw ctx.Error($"x_zero_point has type {ctx.InputType(2).OnnxName()} but x has type {xType.OnnxName()}");
            if (ShapeUtil.Size(ctx.InputShape(2)) != 1) throw ctx.Error("x_zero_point must have one element");
        }
        if (_quantizedB)
        {
            var bType = ctx.ExpectType(3, DataType.UInt8, DataType.Int8, DataType.Int32);
            ctx.ExpectType(6, DataType.Float32);
            if (ShapeUtil.Size(ctx.InputShape(6)) != 1) throw ctx.Error("the other addend's scale must have one element");
            if (ctx.HasInput(7))
            {
                if (ctx.InputType(7) != bType) throw ctx.Error($"the other addend's zero point has type {ctx.InputType(7).OnnxName()} but it has type {bType.OnnxName()}");
                if (ShapeUtil.Size(ctx.InputShape(7)) != 1) throw ctx.Error("the other addend's zero point must have one element");
            }
        }
        else ctx.ExpectType(3, DataType.Float32);
        var shape = ShapeUtil.TryBroadcast(ctx.InputShape(0), ctx.InputShape(3))
            ?? throw ctx.Error($"input shapes {ShapeUtil.Format(ctx.InputShape(0))} and {ShapeUtil.Format(ctx.InputShape(3))} do not broadcast");
        if (!_quantize)
        {
            ctx.SetOutput(0, DataType.Float32, shape);
            return;
        }
        ctx.ExpectType(4, DataType.Float32);
        if (ShapeUtil.Size(ctx.InputShape(4)) != 1) throw ctx.Error("y_scale must have one element");
        var yType = DataType.UInt8;
        if (ctx.HasInput(5))
        {
            yType = ctx.ExpectType(5, DataType.UInt8, DataType.Int8);
            if (ShapeUtil.Size(ctx.InputShape(5)) != 1) throw ctx.Error("y_zero_point must have one element");
        }
        ctx.SetOutput(0, yType, shape);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0);
        var bias = ctx.Input(3);
        var y = ctx.Output(0);
        int n = y.Length;
        float xs = ctx.Input(1).ReadOnlySpan<float>()[0];
        var xz = ctx.OptionalInput(2);
        if (_quantize && x.Length == n && bias.Length == n && x.Type != DataType.Int32 && (!_quantizedB || bias.Type != DataType.Int32))
        {
            // same shapes (a residual sum): one pass from the bytes to the bytes
            RunOnePass(ctx, x, xs, xz, bias, y);
            return;
        }
        Span<float> f = _quantize ? ctx.Scratch<float>(n, 0) : y.Span<float>();
        ReadOnlySpan<float> b;
        if (_quantizedB)
        {
            // the other addend dequantized apart, exactly as its own DequantizeLinear would
            var bf = ctx.Scratch<float>(bias.Length, 2);
            Dequantize(bias, ctx.Input(6).ReadOnlySpan<float>()[0], ctx.OptionalInput(7), bf);
            b = bf;
        }
        else b = bias.ReadOnlySpan<float>();
        if (x.Length == n && Periodic(x.Shape, bias.Shape))
        {
            Dequantize(x, xs, xz, f);
            int period = b.Length;
            if (period == 1) TensorPrimitives.Add(f, b[0], f);
            else for (int r = 0; r < n; r += period) TensorPrimitives.Add(f.Slice(r, period), b, f.Slice(r, period));
        }
        else
        {
            // a broadcast that is not a repeat of the bias: dequantize apart, then Add's own broadcasting loop
            var d = ctx.Scratch<float>(x.Length, 1);
            Dequantize(x, xs, xz, d);
            BroadcastDriver.Run<float, float, ArithmeticOps.Add<float>>(d, x.Shape, b, bias.Shape, f, y.Shape);
        }
        if (_relu) TensorPrimitives.Max(f, 0f, f);
        if (!_quantize) return;
        float ys = ctx.Input(4).ReadOnlySpan<float>()[0];
        var yz = ctx.OptionalInput(5);
        if (y.Type == DataType.UInt8) Quantize(f, ys, yz is null ? 0 : QuantMath.ReadInt(yz, 0), y.Span<byte>(), byte.MinValue, byte.MaxValue, signed: false);
        else Quantize(f, ys, QuantMath.ReadInt(yz!, 0), MemoryMarshal.AsBytes(y.Span<sbyte>()), sbyte.MinValue, sbyte.MaxValue, signed: true);
    }

    /// <summary>
    /// y = Q(relu(DQ(x) + b)) elementwise (b float, or DQ(b) with the fused DequantizeLinear's parameters): the vector
    /// pass of <see cref="QuantizeVector.AddQuantize"/>, then the separate kernels' scalar formulas for the rest.
    /// </summary>
    private void RunOnePass(RunContext ctx, Tensor x, float xs, Tensor? xz, Tensor bias, Tensor y)
    {
        bool xSigned = x.Type == DataType.Int8, ySigned = y.Type == DataType.Int8;
        int za = xz is null ? 0 : QuantMath.ReadInt(xz, 0);
        float ys = ctx.Input(4).ReadOnlySpan<float>()[0];
        var yzt = ctx.OptionalInput(5);
        int zy = yzt is null ? 0 : QuantMath.ReadInt(yzt, 0);
        var a = x.Buffer.AsSpan(x.ByteOffset, x.Length);
        var yb = y.Buffer.AsSpan(y.ByteOffset, y.Length);
        ReadOnlySpan<byte> bq = default;
        ReadOnlySpan<float> bf = default;
        bool bSigned = false;
        int zb = 0;
        float sb = 0f;
        if (_quantizedB)
        {
            bq = bias.Buffer.AsSpan(bias.ByteOffset, bias.Length);
            bSigned = bias.Type == DataType.Int8;
            sb = ctx.Input(6).ReadOnlySpan<float>()[0];
            var bz = ctx.OptionalInput(7);
            zb = bz is null ? 0 : QuantMath.ReadInt(bz, 0);
        }
        else bf = bias.ReadOnlySpan<float>();
        if (_ratios && AddByRatios(a, xSigned, za, xs, bq, bSigned, zb, sb, ys, zy, yb, ySigned)) return;
        int done = QuantizeVector.AddQuantize(a, xSigned, za, xs, bq, bSigned, zb, sb, bf, _relu, ys, zy, yb, ySigned);
        float zaf = za, zbf = zb;
        int min = ySigned ? sbyte.MinValue : byte.MinValue, max = ySigned ? sbyte.MaxValue : byte.MaxValue;
        for (int i = done; i < a.Length; i++)
        {
            float fa = ((xSigned ? (sbyte)a[i] : a[i]) - zaf) * xs;
            float fb = _quantizedB ? ((bSigned ? (sbyte)bq[i] : bq[i]) - zbf) * sb : bf[i];
            float s = fa + fb;
            if (_relu) s = MathF.Max(s, 0f);
            yb[i] = (byte)QuantMath.Quantize(s / ys, zy, min, max);
        }
    }

    /// <summary>
    /// y = saturate(round_half_even((a − za)·ra + (b − zb)·rb, relu first when fused) + zy) with ra = sa / sy and
    /// rb = sb / sy worked out once in float: the float sum is fma(a − za, ra, (b − zb)·rb), vectorized by
    /// <see cref="QuantizeVector.AddQuantizeByRatios"/> and finished by <see cref="RatioSum"/> with the same operations.
    /// False (nothing written) when the ratios are not finite or a sum could reach 2²¹, where the vector rounding would
    /// not hold: the caller then takes the exact route.
    /// </summary>
    private bool AddByRatios(ReadOnlySpan<byte> a, bool aSigned, int za, float sa, ReadOnlySpan<byte> b, bool bSigned, int zb, float sb,
        float sy, int zy, Span<byte> y, bool ySigned)
    {
        float ra = sa / sy, rb = sb / sy;
        if (!float.IsFinite(ra) || !float.IsFinite(rb) || 511.0 * (Math.Abs((double)ra) + Math.Abs((double)rb)) >= QuantMath.MagicLimit) return false;
        int done = QuantizeVector.AddQuantizeByRatios(a, aSigned, za, b, bSigned, zb, ra, rb, _relu, zy, y, ySigned);
        int min = ySigned ? sbyte.MinValue : byte.MinValue, max = ySigned ? sbyte.MaxValue : byte.MaxValue;
        for (int i = done; i < a.Length; i++)
        {
            int xa = (aSigned ? (sbyte)a[i] : a[i]) - za, xb = (bSigned ? (sbyte)b[i] : b[i]) - zb;
            y[i] = (byte)Math.Clamp(RatioSum(xa, ra, xb, rb, _relu) + zy, min, max);
        }
        return true;
    }

    /// <summary>round_half_even(fma(xa, ra, xb·rb)), after a Relu when <paramref name="relu"/>: the per-element formula of <see cref="AddByRatios"/>.</summary>
    internal static int RatioSum(int xa, float ra, int xb, float rb, bool relu)
    {
        float v = MathF.FusedMultiplyAdd(xa, ra, xb * rb);
        if (relu) v = MathF.Max(v, 0f);
        return (int)MathF.Round(v, MidpointRounding.ToEven);
    }

    /// <summary>True when the bias, without its leading unit dimensions, is x's trailing dimensions (or one value).</summary>
    private static bool Periodic(ReadOnlySpan<int> x, ReadOnlySpan<int> b)
    {
        int lead = 0;
        while (lead < b.Length && b[lead] == 1) lead++;
        var tail = b[lead..];
        if (tail.Length > x.Length) return false;
        // leading unit dims of the bias beyond x's rank would grow the output's rank
        if (b.Length > x.Length) return false;
        return tail.SequenceEqual(x[(x.Length - tail.Length)..]);
    }

    /// <summary>(x - zero_point) * scale exactly as <see cref="DequantizeLinearKernel"/> computes it per tensor.</summary>
    private static void Dequantize(Tensor x, float sc, Tensor? zp, Span<float> y) => Dequantize(x, 0, x.Length, sc, zp, y);

    /// <summary>As <see cref="Dequantize(Tensor, float, Tensor?, Span{float})"/> for the <paramref name="count"/> elements of x from <paramref name="start"/>, into y's first ones.</summary>
    internal static void Dequantize(Tensor x, int start, int count, float sc, Tensor? zp, Span<float> y)
    {
        y = y[..count];
        switch (x.Type)
        {
            case DataType.UInt8:
            case DataType.Int8:
            {
                bool signed = x.Type == DataType.Int8;
                var bytes = (signed ? MemoryMarshal.AsBytes(x.ReadOnlySpan<sbyte>()) : x.ReadOnlySpan<byte>()).Slice(start, count);
                int z = zp is null ? 0 : QuantMath.ReadInt(zp, 0);
                float zpv = z;
                int done = QuantizeVector.Dequantize(bytes, signed, z, sc, y);
                if (signed) for (int i = done; i < bytes.Length; i++) y[i] = ((sbyte)bytes[i] - zpv) * sc;
                else for (int i = done; i < bytes.Length; i++) y[i] = (bytes[i] - zpv) * sc;
                break;
            }
            default:
            {
                var v = x.ReadOnlySpan<int>().Slice(start, count);
                float zpv = zp is null ? 0f : QuantMath.ReadInt(zp, 0);
                for (int i = 0; i < v.Length; i++) y[i] = ((float)v[i] - zpv) * sc;
                break;
            }
        }
    }

    /// <summary>saturate(round_half_even(f / scale) + zero_point) exactly as <see cref="QuantizeLinearKernel"/> computes it per tensor.</summary>
    private static void Quantize(ReadOnlySpan<float> f, float sc, int zp, Span<byte> y, int min, int max, bool signed)
    {
        int done = QuantizeVector.Quantize(f, sc, zp, y, signed);
        for (int i = done; i < f.Length; i++) y[i] = (byte)QuantMath.Quantize(f[i] / sc, zp, min, max);
    }
}
