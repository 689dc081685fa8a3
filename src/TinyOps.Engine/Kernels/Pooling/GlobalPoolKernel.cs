using System.Numerics.Tensors;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Pooling;

/// <summary>GlobalAveragePool and GlobalMaxPool: pools each (N, C) plane over all spatial dimensions to 1.</summary>
internal sealed class GlobalPoolKernel : Kernel
{
    private readonly bool _max;

    public GlobalPoolKernel(Node node, int opset, bool max) : base(node, opset)
    {
        _max = max;
    }

    public override void Infer(InferContext ctx)
    {
        ctx.ExpectType(0, DataType.Float32);
        var x = ctx.InputShape(0);
        if (x.Length < 2) throw ctx.Error($"input has rank {x.Length}; it must be (N, C, spatial...) with rank at least 2");
        var y = new int[x.Length];
        y[0] = x[0];
        y[1] = x[1];
        for (int i = 2; i < y.Length; i++) y[i] = 1;
        if (_max && ShapeUtil.SizeFrom(x, 2) == 0 && x[0] * x[1] > 0)
            throw ctx.Error($"cannot take the maximum over empty spatial dimensions {ShapeUtil.Format(x)}");
        ctx.SetOutput(0, DataType.Float32, y);
    }

    public override void Run(RunContext ctx)
    {
        var xt = ctx.Input(0);
        var x = xt.ReadOnlySpan<float>();
        var y = ctx.Output(0).Span<float>();
        int plane = ShapeUtil.SizeFrom(xt.Shape, 2);
        for (int c = 0; c < y.Length; c++)
        {
            var p = x.Slice(c * plane, plane);
            y[c] = _max ? TensorPrimitives.Max(p) : plane == 0 ? float.NaN : TensorPrimitives.Sum(p) / plane;
        }
    }
}
