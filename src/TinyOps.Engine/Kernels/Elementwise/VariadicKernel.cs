using System.Numerics;
using System.Numerics.Tensors;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Common;
using TinyOps.Engine.Tensors;
using Tensor = TinyOps.Engine.Tensors.Tensor;

namespace TinyOps.Engine.Kernels.Elementwise;

/// <summary>
/// Sum, Mean, Max, Min over one or more inputs with numpy broadcasting (opset 8+; earlier opsets require equal
/// shapes, which broadcasting accepts too). Sum and Mean take float32; Max and Min also integer types (opset 12+).
/// </summary>
internal sealed class VariadicKernel : Kernel
{
    public enum Op { Sum, Mean, Max, Min }

    private readonly Op _op;

    public VariadicKernel(Node node, int opset, Op op) : base(node, opset)
    {
        _op = op;
        if (node.Inputs.Count == 0) throw Error("needs at least one input");
    }

    public override void Infer(InferContext ctx)
    {
        int n = ctx.InputCount;
        var t = _op is Op.Sum or Op.Mean
            ? ctx.ExpectType(0, DataType.Float32)
            : ctx.ExpectType(0, DataType.Float32, DataType.Int8, DataType.UInt8, DataType.Int32, DataType.Int64);
        var inputs = new int[n];
        for (int i = 0; i < n; i++)
        {
            inputs[i] = i;
            if (ctx.InputType(i) != t)
            {
                ctx.ExpectType(i, t);
            }
        }
        ctx.SetOutput(0, t, Broadcast.Shape(ctx, inputs));
    }

    public override void Run(RunContext ctx)
    {
        var y = ctx.Output(0);
        switch (y.Type)
        {
            case DataType.Float32: Typed<float>(ctx, y); break;
            case DataType.Int8: Typed<sbyte>(ctx, y); break;
            case DataType.UInt8: Typed<byte>(ctx, y); break;
            case DataType.Int32: Typed<int>(ctx, y); break;
            case DataType.Int64: Typed<long>(ctx, y); break;
            default: throw Error($"unexpected type {y.Type.OnnxName()}");
        }
    }

    private void Typed<T>(RunContext ctx, Tensor y) where T : unmanaged, INumber<T>
    {
        int n = ctx.InputCount;
        var sy = y.Span<T>();
        var first = ctx.Input(0);
        if (n == 1)
        {
            first.ReadOnlySpan<T>().CopyTo(sy);
            return;
        }
        for (int i = 1; i < n; i++)
        {
            var a = i == 1 ? first : y;
            var b = ctx.Input(i);
            var sa = i == 1 ? first.ReadOnlySpan<T>() : sy;
            switch (_op)
            {
                case Op.Sum:
                case Op.Mean:
                    BroadcastDriver.Run<T, T, ArithmeticOps.Add<T>>(sa, a.Shape, b.ReadOnlySpan<T>(), b.Shape, sy, y.Shape);
                    break;
                case Op.Max:
                    BroadcastDriver.Run<T, T, ArithmeticOps.Max<T>>(sa, a.Shape, b.ReadOnlySpan<T>(), b.Shape, sy, y.Shape);
                    break;
                case Op.Min:
                    BroadcastDriver.Run<T, T, ArithmeticOps.Min<T>>(sa, a.Shape, b.ReadOnlySpan<T>(), b.Shape, sy, y.Shape);
                    break;
            }
        }
        if (_op == Op.Mean) TensorPrimitives.Divide(sy, T.CreateTruncating(n), sy);
    }
}
