using TinyOps.Engine.Ir;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>Squeeze: removes the listed size-1 axes ('axes' attribute before opset 13, optional input from 13), or all size-1 axes when none are listed.</summary>
internal sealed class SqueezeKernel : CopyKernel
{
    private readonly long[]? _axesAttr;

    public SqueezeKernel(Node node, int opset) : base(node, opset)
    {
        if (opset < 13) _axesAttr = node.GetInts("axes");
    }

    public override void Infer(InferContext ctx)
    {
        var type = ctx.ExpectType(0, ShapeOpsUtil.AllTypes);
        var s = ctx.InputShape(0);
        long[]? axes = Opset < 13 ? _axesAttr : ctx.HasInput(1) ? ShapeOpsUtil.ReadInts(ctx, 1, "axes") : null;
        var remove = new bool[s.Length];
        if (axes is null || axes.Length == 0)
        {
            for (int i = 0; i < s.Length; i++) remove[i] = s[i] == 1;
        }
        else
        {
            foreach (int a in ShapeOpsUtil.NormalizeAxes(ctx, axes, s.Length, "axis"))
            {
                if (s[a] != 1) throw ctx.Error($"cannot squeeze axis {a} of size {s[a]} (input shape {Tensors.ShapeUtil.Format(s)})");
                remove[a] = true;
            }
        }
        var output = new List<int>(s.Length);
        for (int i = 0; i < s.Length; i++) if (!remove[i]) output.Add(s[i]);
        ctx.SetOutput(0, type, output.ToArray());
    }
}
