using System.Numerics.Tensors;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Pooling;

/// <summary>
/// Softmax and LogSoftmax. Before opset 13 the input is coerced to 2-D [prod(dims before axis), prod(dims from axis)]
/// (default axis 1); from opset 13 the operation runs along the single axis (default -1).
/// </summary>
internal sealed class SoftmaxKernel : Kernel
{
    private readonly bool _log;
    private readonly long _axis;
    private readonly bool _coerce2D;

    public SoftmaxKernel(Node node, int opset, bool log) : base(node, opset)
    {
        _log = log;
        _coerce2D = opset < 13;
        _axis = node.GetInt("axis", _coerce2D ? 1 : -1);
    }

    public override void Infer(InferContext ctx)
    {
        ctx.ExpectType(0, DataType.Float32);
        var x = ctx.InputShape(0);
        int rank = x.Length;
        if (rank == 0 || _axis < -rank || _axis >= rank)
            throw ctx.Error($"axis {_axis} is out of range for an input of rank {rank}");
        ctx.SetOutputLike(0, 0);
    }

    public override void Run(RunContext ctx)
    {
        var xt = ctx.Input(0);
        var shape = xt.Shape;
        int axis = (int)(_axis < 0 ? _axis + shape.Length : _axis);
        int outer = ShapeUtil.SizeTo(shape, axis);
        int n, inner;
        if (_coerce2D)
        {
            n = ShapeUtil.SizeFrom(shape, axis);
            inner = 1;
        }
        else
        {
            n = shape[axis];
            inner = ShapeUtil.SizeFrom(shape, axis + 1);
        }
        var x = xt.ReadOnlySpan<float>();
        var y = ctx.Output(0).Span<float>();
        if (n == 0 || inner == 0 || outer == 0) return;
        if (inner == 1)
        {
            for (int o = 0; o < outer; o++) Row(x.Slice(o * n, n), y.Slice(o * n, n));
            return;
        }
        // Strided case: work on whole contiguous inner blocks at once.
        var max = ctx.Scratch<float>(inner, 0);
        var sum = ctx.Scratch<float>(inner, 1);
        int block = n * inner;
        for (int o = 0; o < outer; o++)
        {
            var xo = x.Slice(o * block, block);
            var yo = y.Slice(o * block, block);
            xo.Slice(0, inner).CopyTo(max);
            for (int k = 1; k < n; k++) TensorPrimitives.Max(max, xo.Slice(k * inner, inner), max);
            sum.Clear();
            for (int k = 0; k < n; k++)
            {
                var yk = yo.Slice(k * inner, inner);
                TensorPrimitives.Subtract(xo.Slice(k * inner, inner), max, yk);
                TensorPrimitives.Exp(yk, yk);
                TensorPrimitives.Add(sum, yk, sum);
            }
            if (_log)
            {
                // y = x - max - log(sum)
                TensorPrimitives.Log(sum, sum);
                TensorPrimitives.Add(sum, max, sum);
                for (int k = 0; k < n; k++) TensorPrimitives.Subtract(xo.Slice(k * inner, inner), sum, yo.Slice(k * inner, inner));
            }
            else
            {
                for (int k = 0; k < n; k++)
                {
                    var yk = yo.Slice(k * inner, inner);
                    TensorPrimitives.Divide(yk, sum, yk);
                }
            }
        }
    }

    private void Row(ReadOnlySpan<float> x, Span<float> y)
    {
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, y);
        TensorPrimitives.Exp(y, y);
        float sum = TensorPrimitives.Sum(y);
        if (_log) TensorPrimitives.Subtract(x, max + MathF.Log(sum), y);
        else TensorPrimitives.Divide(y, sum, y);
    }
}
