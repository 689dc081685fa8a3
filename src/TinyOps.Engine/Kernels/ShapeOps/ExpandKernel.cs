using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>Expand: broadcasts the input against the shape input (numpy rules in both directions).</summary>
internal sealed class ExpandKernel : Kernel
{
    public ExpandKernel(Node node, int opset) : base(node, opset) { }

    public override void Infer(InferContext ctx)
    {
        var type = ctx.ExpectType(0, ShapeOpsUtil.AllTypes);
        var dims = ShapeOpsUtil.ReadInts(ctx, 1, "shape");
        var shape = new int[dims.Length];
        for (int i = 0; i < dims.Length; i++) shape[i] = ShapeOpsUtil.ToDim(ctx, dims[i], "shape dimension");
        var input = ctx.InputShape(0);
        var output = ShapeUtil.TryBroadcast(input, shape)
            ?? throw ctx.Error($"input shape {ShapeUtil.Format(input)} does not broadcast to {ShapeUtil.Format(shape)}");
        ctx.SetOutput(0, type, output);
    }

    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0);
        if (x.Length == y.Length)
        {
            x.Bytes.CopyTo(y.Bytes);
            return;
        }
        var outShape = y.Shape;
        int r = outShape.Length;
        Span<int> strides = stackalloc int[r];
        ShapeUtil.BroadcastStrides(x.Shape, outShape, strides);
        int total = 0;
        for (int d = 0; d < r; d++) total += outShape[d];
        var maps = ctx.Scratch<int>(Math.Max(1, total), 0);
        int k = 0;
        for (int d = 0; d < r; d++)
            for (int i = 0; i < outShape[d]; i++) maps[k++] = i * strides[d];
        ShapeOpsUtil.MapGather(x, y, outShape, maps, default);
    }
}
