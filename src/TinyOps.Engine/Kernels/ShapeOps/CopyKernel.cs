using TinyOps.Engine.Ir;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>Base of operators whose output holds the input's elements unchanged in the same order (a new shape only).</summary>
internal abstract class CopyKernel(Node node, int opset) : Kernel(node, opset)
{
    internal sealed override bool OutputIsInputBytes => true;

    public sealed override void Run(RunContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0);
        x.Bytes.CopyTo(y.Bytes);
    }
}
