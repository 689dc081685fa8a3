using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>Tile: repeats the input repeats[d] times along each axis d.</summary>
internal sealed class TileKernel : Kernel
{
    public TileKernel(Node node, int opset) : base(node, opset) { }

    public override void Infer(InferContext ctx)
    {
        var type = ctx.ExpectType(0, ShapeOpsUtil.AllTypes);
        var input = ctx.InputShape(0);
        var repeats = ShapeOpsUtil.ReadInts(ctx, 1, "repeats");
        if (repeats.Length != input.Length)
            throw ctx.Error($"repeats has {repeats.Length} entries but the input has rank {input.Length}");
        var output = new int[input.Length];
        for (int d = 0; d < input.Length; d++)
        {
            if (repeats[d] < 0) throw ctx.Error($"repeats[{d}] is negative ({repeats[d]})");
            long n = input[d] * repeats[d];
            if (n > int.MaxValue) throw ctx.Error("the output is too large");
            output[d] = (int)n;
        }
        ctx.SetOutput(0, type, output);
    }

    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0);
        var inShape = x.Shape;
        var outShape = y.Shape;
        int r = outShape.Length;
        int total = 0;
        for (int d = 0; d < r; d++) total += outShape[d];
        var maps = ctx.Scratch<int>(Math.Max(1, total), 0);
        int k = 0, stride = ShapeUtil.Size(inShape);
        for (int d = 0; d < r; d++)
        {
            stride = inShape[d] == 0 ? 0 : stride / inShape[d];
            for (int i = 0; i < outShape[d]; i++) maps[k++] = i % inShape[d] * stride;
        }
        ShapeOpsUtil.MapGather(x, y, outShape, maps, default);
    }
}
