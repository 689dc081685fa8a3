using System.Numerics;
using System.Runtime.InteropServices;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// DequantizeLinear (opsets 10, 13, 19, 21+): y = (x - x_zero_point) * x_scale, per tensor, per axis (13+) or
/// blocked (21+). x is uint8, int8 or int32 (int32 has no zero point other than 0); y is float32.
/// </summary>
internal sealed class DequantizeLinearKernel : Kernel
{
    private readonly long _axis;
    private readonly long _blockSize;

    public DequantizeLinearKernel(Node node, int opset) : base(node, opset)
    {
        _axis = opset >= 13 ? node.GetInt("axis", 1) : 1;
        _blockSize = opset >= 21 ? node.GetInt("block_size", 0) : 0;
        if (_blockSize < 0) throw Error($"block_size must be 0 or positive, it is {_blockSize}");
        if (opset >= 23)
        {
            var od = (DataType)node.GetInt("output_dtype", 0);
            if (od != DataType.Undefined && od != DataType.Float32)
            {
                if (!od.IsSupported()) throw new UnsupportedTypeException($"{node.DisplayName}: output_dtype {od.OnnxName()} is not supported by this engine");
                throw Error($"output_dtype {od.OnnxName()} must be a floating-point type matching x_scale");
            }
        }
    }

    public override void Infer(InferContext ctx)
    {
        var xType = ctx.ExpectType(0, DataType.UInt8, DataType.Int8, DataType.Int32);
        ctx.ExpectType(1, DataType.Float32);
        if (ctx.HasInput(2))
        {
            var zt = ctx.InputType(2);
            if (zt != xType)
            {
                if (!zt.IsSupported()) ctx.ExpectType(2, xType);
                throw ctx.Error($"x_zero_point has type {zt.OnnxName()} but x has type {xType.OnnxName()}");
            }
            if (ShapeUtil.Size(ctx.InputShape(2)) != ShapeUtil.Size(ctx.InputShape(1)))
                throw ctx.Error($"x_zero_point shape {ShapeUtil.Format(ctx.InputShape(2))} differs from x_scale shape {ShapeUtil.Format(ctx.InputShape(1))}");
        }
        QuantLayout.Create(ctx.InputShape(0), ctx.InputShape(1), _axis, _blockSize, Opset >= 13, out string? err);
        if (err is not null) throw ctx.Error(err);
        ctx.SetOutput(0, DataType.Float32, ctx.InputShape(0));
    }

    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0);
        var scale = ctx.Input(1);
        var zp = ctx.OptionalInput(2);
        var y = ctx.Output(0).Span<float>();
        var layout = QuantLayout.Create(x.Shape, scale.Shape, _axis, _blockSize, Opset >= 13, out string? err);
        if (err is not null) throw Error(err);
        var s = scale.ReadOnlySpan<float>();
        switch (x.Type)
        {
            case DataType.UInt8: Dequantize(x.ReadOnlySpan<byte>(), s, zp is null ? default : zp.ReadOnlySpan<byte>(), y, layout); break;
            case DataType.Int8: Dequantize(x.ReadOnlySpan<sbyte>(), s, zp is null ? default : zp.ReadOnlySpan<sbyte>(), y, layout); break;
            default: Dequantize(x.ReadOnlySpan<int>(), s, zp is null ? default : zp.ReadOnlySpan<int>(), y, layout); break;
        }
    }

    private static void Dequantize<T>(ReadOnlySpan<T> x, ReadOnlySpan<float> s, ReadOnlySpan<T> z, Span<float> y, in QuantLayout l)
        where T : unmanaged, INumberBase<T>
    {
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
                    float zpv = hasZ ? float.CreateTruncating(z[pBase]) : 0f;
                    if (typeof(T) == typeof(byte) || typeof(T) == typeof(sbyte))
                    {
                        int done = QuantizeVector.Dequantize(MemoryMarshal.AsBytes(x.Slice(p, l.Inner)), typeof(T) == typeof(sbyte), (int)zpv, sc, y.Slice(p, l.Inner));
                        p += done;
                        for (int i = done; i < l.Inner; i++, p++) y[p] = (float.CreateTruncating(x[p]) - zpv) * sc;
                        continue;
                    }
                    for (int i = 0; i < l.Inner; i++, p++) y[p] = (float.CreateTruncating(x[p]) - zpv) * sc;
                }
                else
                {
                    for (int i = 0; i < l.Inner; i++, p++)
                    {
                        int pi = pBase + i;
                        float zpv = hasZ ? float.CreateTruncating(z[pi]) : 0f;
                        y[p] = (float.CreateTruncating(x[p]) - zpv) * s[pi];
                    }
                }
            }
        }
    }
}
