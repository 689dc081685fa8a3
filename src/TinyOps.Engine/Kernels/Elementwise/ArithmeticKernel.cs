using System.Numerics;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Common;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Elementwise;

/// <summary>Add, Sub, Mul, Div with numpy broadcasting (opset 7+) or legacy broadcast/axis (opset 1-6).</summary>
internal sealed class ArithmeticKernel : Kernel
{
    public enum Op { Add, Sub, Mul, Div }

    private readonly Op _op;
    private readonly LegacyBroadcast _legacy;
    // Add followed by a Relu fused by Runtime.Fusion.ActivationFusion (internal attribute)
    private readonly bool _relu;

    public ArithmeticKernel(Node node, int opset, Op op) : base(node, opset)
    {
        _op = op;
        _legacy = new LegacyBroadcast(node, opset, 6);
        if (node.HasAttribute(Nn.FusedActivation.KindAttribute))
        {
            if (op != Op.Add || node.GetString(Nn.FusedActivation.KindAttribute, "") != "Relu")
                throw Error($"only Add takes a fused activation, and only Relu");
            _relu = true;
        }
    }

    public override void Infer(InferContext ctx)
    {
        var t = ctx.ExpectType(0, DataType.Float32, DataType.Int8, DataType.UInt8, DataType.Int32, DataType.Int64);
        if (ctx.InputType(1) != t)
        {
            ctx.ExpectType(1, DataType.Float32, DataType.Int8, DataType.UInt8, DataType.Int32, DataType.Int64);
            throw ctx.Error($"input types differ: {t.OnnxName()} and {ctx.InputType(1).OnnxName()}");
        }
        if (_relu && t != DataType.Float32 && (Opset < 14 || t == DataType.UInt8))
            throw ctx.Error($"the Relu fused after this Add takes {t.OnnxName()} only from opset 14 (and never uint8); the model imports opset {Opset}");
        ctx.SetOutput(0, t, _legacy.OutputShape(ctx));
    }

    public override void Run(RunContext ctx)
    {
        var a = ctx.Input(0);
        var b = ctx.Input(1);
        var y = ctx.Output(0);
        Span<int> buf = stackalloc int[Broadcast.MaxRank];
        var bShape = _legacy.ShapeB(a.Shape, b.Shape, buf);
        switch (y.Type)
        {
            case DataType.Float32:
                if (_op == Op.Div) BroadcastDriver.Run<float, float, ArithmeticOps.DivFloat>(a.ReadOnlySpan<float>(), a.Shape, b.ReadOnlySpan<float>(), bShape, y.Span<float>(), y.Shape);
                else Typed<float>(a, b, bShape, y);
                break;
            case DataType.Int8:
                if (_op == Op.Div) BroadcastDriver.Run<sbyte, sbyte, ArithmeticOps.DivInt<sbyte>>(a.ReadOnlySpan<sbyte>(), a.Shape, b.ReadOnlySpan<sbyte>(), bShape, y.Span<sbyte>(), y.Shape);
                else Typed<sbyte>(a, b, bShape, y);
                break;
            case DataType.UInt8:
                if (_op == Op.Div) BroadcastDriver.Run<byte, byte, ArithmeticOps.DivInt<byte>>(a.ReadOnlySpan<byte>(), a.Shape, b.ReadOnlySpan<byte>(), bShape, y.Span<byte>(), y.Shape);
                else Typed<byte>(a, b, bShape, y);
                break;
            case DataType.Int32:
                if (_op == Op.Div) BroadcastDriver.Run<int, int, ArithmeticOps.DivInt<int>>(a.ReadOnlySpan<int>(), a.Shape, b.ReadOnlySpan<int>(), bShape, y.Span<int>(), y.Shape);
                else Typed<int>(a, b, bShape, y);
                break;
            case DataType.Int64:
                if (_op == Op.Div) BroadcastDriver.Run<long, long, ArithmeticOps.DivInt<long>>(a.ReadOnlySpan<long>(), a.Shape, b.ReadOnlySpan<long>(), bShape, y.Span<long>(), y.Shape);
                else Typed<long>(a, b, bShape, y);
                break;
            default:
                throw Error($"unexpected type {y.Type.OnnxName()}");
        }
        if (!_relu) return;
        // the fused Relu, exactly as UnaryKernel computes it
        switch (y.Type)
        {
            case DataType.Float32: System.Numerics.Tensors.TensorPrimitives.Max(y.Span<float>(), 0f, y.Span<float>()); break;
            case DataType.Int8: System.Numerics.Tensors.TensorPrimitives.Max(y.Span<sbyte>(), (sbyte)0, y.Span<sbyte>()); break;
            case DataType.Int32: System.Numerics.Tensors.TensorPrimitives.Max(y.Span<int>(), 0, y.Span<int>()); break;
            case DataType.Int64: System.Numerics.Tensors.TensorPrimitives.Max(y.Span<long>(), 0L, y.Span<long>()); break;
        }
    }

    private void Typed<T>(Tensor a, Tensor b, ReadOnlySpan<int> bShape, Tensor y) where T : unmanaged, INumber<T>
    {
        var sa = a.ReadOnlySpan<T>();
        var sb = b.ReadOnlySpan<T>();
        var sy = y.Span<T>();
        switch (_op)
        {
            case Op.Add: BroadcastDriver.Run<T, T, ArithmeticOps.Add<T>>(sa, a.Shape, sb, bShape, sy, y.Shape); break;
            case Op.Sub: BroadcastDriver.Run<T, T, ArithmeticOps.Sub<T>>(sa, a.Shape, sb, bShape, sy, y.Shape); break;
            case Op.Mul: BroadcastDriver.Run<T, T, ArithmeticOps.Mul<T>>(sa, a.Shape, sb, bShape, sy, y.Shape); break;
            default: throw Error($"unexpected operation {_op}");
        }
    }
}
