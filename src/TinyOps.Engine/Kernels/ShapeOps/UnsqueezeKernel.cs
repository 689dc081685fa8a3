using TinyOps.Engine.Ir;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>Unsqueeze: inserts size-1 axes at the listed output positions ('axes' attribute before opset 13, input from 13).</summary>
internal sealed class UnsqueezeKernel : CopyKernel
{
    private readonly long[]? _axesAttr;

    public UnsqueezeKernel(Node node, int opset) : base(node, opset)
    {
        if (opset < 13) _axesAttr = node.GetInts("axes") ?? throw Error("required attribute 'axes' is missing");
    }

    public override void Infer(InferContext ctx)
    {
        var type = ctx.ExpectType(0, ShapeOpsUtil.AllTypes);
        var s = ctx.InputShape(0);
        long[] axes = _axesAttr ?? ShapeOpsUtil.ReadInts(ctx, 1, "axes");
        int rank = s.Length + axes.Length;
        var insert = new bool[rank];
        foreach (int a in ShapeOpsUtil.NormalizeAxes(ctx, axes, rank, "axis")) insert[a] = true;
        var output = new int[rank];
        for (int i = 0, j = 0; i < rank; i++) output[i] = insert[i] ? 1 : s[j++];
        ctx.SetOutput(0, type, output);
    }
}
