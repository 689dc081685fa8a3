using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Common;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Elementwise;

/// <summary>Equal: element-wise equality with broadcasting (legacy broadcast/axis before opset 7), bool output.</summary>
internal sealed class EqualKernel : Kernel
{
    private readonly LegacyBroadcast _legacy;

    public EqualKernel(Node node, int opset) : base(node, opset)
    {
        _legacy = new LegacyBroadcast(node, opset, 6);
    }

    public override void Infer(InferContext ctx)
    {
        var t = ctx.ExpectType(0, DataType.Float32, DataType.Int8, DataType.UInt8, DataType.Int32, DataType.Int64, DataType.Bool);
        if (ctx.InputType(1) != t)
        {
            ctx.ExpectType(1, DataType.Float32, DataType.Int8, DataType.UInt8, DataType.Int32, DataType.Int64, DataType.Bool);
            throw ctx.Error($"input types differ: {t.OnnxName()} and {ctx.InputType(1).OnnxName()}");
        }
        ctx.SetOutput(0, DataType.Bool, _legacy.OutputShape(ctx));
    }

    public override void Run(RunContext ctx)
    {
        var a = ctx.Input(0);
        var b = ctx.Input(1);
        var y = ctx.Output(0);
        Span<int> buf = stackalloc int[Broadcast.MaxRank];
        var bShape = _legacy.ShapeB(a.Shape, b.Shape, buf);
        var sy = y.Span<bool>();
        switch (a.Type)
        {
            case DataType.Float32: BroadcastDriver.Run<float, bool, ArithmeticOps.Equal<float>>(a.ReadOnlySpan<float>(), a.Shape, b.ReadOnlySpan<float>(), bShape, sy, y.Shape); break;
            case DataType.Int8: BroadcastDriver.Run<sbyte, bool, ArithmeticOps.Equal<sbyte>>(a.ReadOnlySpan<sbyte>(), a.Shape, b.ReadOnlySpan<sbyte>(), bShape, sy, y.Shape); break;
            case DataType.UInt8: BroadcastDriver.Run<byte, bool, ArithmeticOps.Equal<byte>>(a.ReadOnlySpan<byte>(), a.Shape, b.ReadOnlySpan<byte>(), bShape, sy, y.Shape); break;
            case DataType.Bool: BroadcastDriver.Run<byte, bool, ArithmeticOps.Equal<byte>>(a.ReadOnlySpan<byte>(), a.Shape, b.ReadOnlySpan<byte>(), bShape, sy, y.Shape); break;
            case DataType.Int32: BroadcastDriver.Run<int, bool, ArithmeticOps.Equal<int>>(a.ReadOnlySpan<int>(), a.Shape, b.ReadOnlySpan<int>(), bShape, sy, y.Shape); break;
            case DataType.Int64: BroadcastDriver.Run<long, bool, ArithmeticOps.Equal<long>>(a.ReadOnlySpan<long>(), a.Shape, b.ReadOnlySpan<long>(), bShape, sy, y.Shape); break;
            default: throw Error($"unexpected type {a.Type.OnnxName()}");
        }
    }
}
