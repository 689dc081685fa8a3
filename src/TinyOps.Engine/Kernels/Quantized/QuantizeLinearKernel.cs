using System.Numerics;
using System.Runtime.InteropServices;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// QuantizeLinear (opsets 10, 13, 19, 21+): y = saturate(round_half_even(x / y_scale) + y_zero_point), per tensor,
/// per axis (13+) or blocked (21+). x is float32 (or int32 at opset 10/13); y is uint8 or int8.
/// </summary>
internal sealed class QuantizeLinearKernel : Kernel
{
    private readonly long _axis;
    private readonly long _blockSize;
    private readonly DataType _outputDtype;

    public QuantizeLinearKernel(Node node, int opset) : base(node, opset)
    {
        _axis = opset >= 13 ? node.GetInt("axis", 1) : 1;
        _blockSize = opset >= 21 ? node.GetInt("block_size", 0) : 0;
        if (_blockSize < 0) throw Error($"block_size must be 0 or positive, it is {_blockSize}");
        long od = opset >= 21 ? node.GetInt("output_dtype", 0) : 0;
        _outputDtype = (DataType)od;
        if (opset >= 25)
        {
            var precision = (DataType)node.GetInt("precision", 0);
            if (precision is not (DataType.Undefined or DataType.Float32))
                throw new UnsupportedTypeException($"{node.DisplayName}: precision {precision.OnnxName()} is not supported by this engine (only float32 division)");
        }
        if (opset >= 19)
        {
            long sat = node.GetInt("saturate", 1);
            if (sat is not (0 or 1)) throw Error($"saturate must be 0 or 1, it is {sat}");
        }
    }

    public override void Infer(InferContext ctx)
    {
        ctx.ExpectType(0, DataType.Float32, DataType.Int32);
        ctx.ExpectType(1, DataType.Float32);
        DataType yType;
        if (ctx.HasInput(2))
        {
            yType = ctx.ExpectType(2, DataType.UInt8, DataType.Int8);
            if (_outputDtype != DataType.Undefined && _outputDtype != yType)
                throw ctx.Error($"output_dtype {_outputDtype.OnnxName()} differs from the zero point's type {yType.OnnxName()}");
            if (!ShapeUtil.SameShape(ctx.InputShape(2), ctx.InputShape(1)) && ShapeUtil.Size(ctx.InputShape(2)) != ShapeUtil.Size(ctx.InputShape(1)))
                throw ctx.Error($"y_zero_point shape {ShapeUtil.Format(ctx.InputShape(2))} differs from y_scale shape {ShapeUtil.Format(ctx.InputShape(1))}");
        }
        else
        {
            yType = _outputDtype == DataType.Undefined ? DataType.UInt8 : _outputDtype;
            if (yType is not (DataType.UInt8 or DataType.Int8))
            {
                if (!yType.IsSupported() || !Enum.IsDefined(yType))
                    throw new UnsupportedTypeException($"{Node.DisplayName}: output type {yType.OnnxName()} is not supported by this engine");
                throw ctx.Error($"output_dtype {yType.OnnxName()} is not a quantized type (uint8, int8)");
            }
        }
        QuantLayout.Create(ctx.InputShape(0), ctx.InputShape(1), _axis, _blockSize, Opset >= 13, out string? err);
        if (err is not null) throw ctx.Error(err);
        ctx.SetOutput(0, yType, ctx.InputShape(0));
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0);
        var scale = ctx.Input(1);
        var zp = ctx.OptionalInput(2);
        var y = ctx.Output(0);
        var layout = QuantLayout.Create(x.Shape, scale.Shape, _axis, _blockSize, Opset >= 13, out string? err);
        if (err is not null) throw Error(err);
        var s = scale.ReadOnlySpan<float>();
        if (y.Type == DataType.UInt8) Dispatch<byte>(x, s, zp, y.Span<byte>(), layout);
        else Dispatch<sbyte>(x, s, zp, y.Span<sbyte>(), layout);
    }

    private static void Dispatch<TOut>(Tensor x, ReadOnlySpan<float> s, Tensor? zp, Span<TOut> y, in QuantLayout layout)
        where TOut : unmanaged, INumberBase<TOut>
    {
        ReadOnlySpan<TOut> z = zp is null ? default : zp.ReadOnlySpan<TOut>();
        if (x.Type == DataType.Float32) Quantize(x.ReadOnlySpan<float>(), s, z, y, layout);
        else Quantize(x.ReadOnlySpan<int>(), s, z, y, layout);
    }

    private static void Quantize<TIn, TOut>(ReadOnlySpan<TIn> x, ReadOnlySpan<float> s, ReadOnlySpan<TOut> z, Span<TOut> y, in QuantLayout l)
        where TIn : unmanaged, INumberBase<TIn>
        where TOut : unmanaged, INumberBase<TOut>
    {
        var (min, max) = QuantMath.Range<TOut>();
        bool hasZ = !z.IsEmpty;
        int p = 0;
        for (int o = 0; o < l.Outer; o++)
        {
            for (int d = 0; d < l.Axis; d++)
            {
                int pBase = o * l.OuterStride + d / l.Block * l.AxisStride;
                if (l.InnerStride == 0)
                {
                    float sc = s[pBase];
                    int zpv = hasZ ? QuantMath.ToInt(z[pBase]) : 0;
                    if (typeof(TIn) == typeof(float) && (typeof(TOut) == typeof(byte) || typeof(TOut) == typeof(sbyte)))
                    {
                        int done = QuantizeVector.Quantize(MemoryMarshal.Cast<TIn, float>(x.Slice(p, l.Inner)), sc, zpv,
                            MemoryMarshal.AsBytes(y.Slice(p, l.Inner)), typeof(TOut) == typeof(sbyte));
                        p += done;
                        for (int i = done; i < l.Inner; i++, p++)
                            y[p] = QuantMath.FromInt<TOut>(QuantMath.Quantize(float.CreateTruncating(x[p]) / sc, zpv, min, max));
                        continue;
                    }
                    for (int i = 0; i < l.Inner; i++, p++)
                        y[p] = QuantMath.FromInt<TOut>(QuantMath.Quantize(float.CreateTruncating(x[p]) / sc, zpv, min, max));
                }
                else
                {
                    for (int i = 0; i < l.Inner; i++, p++)
                    {
                        int pi = pBase + i;
                        int zpv = hasZ ? QuantMath.ToInt(z[pi]) : 0;
                        y[p] = QuantMath.FromInt<TOut>(QuantMath.Quantize(float.CreateTruncating(x[p]) / s[pi], zpv, min, max));
                    }
                }
            }
        }
    }
}
