using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>Flatten: the dimensions before 'axis' and from 'axis' on each become one (negative axis from opset 11).</summary>
internal sealed class FlattenKernel : CopyKernel
{
    private readonly long _axis;

    public FlattenKernel(Node node, int opset) : base(node, opset)
    {
        _axis = node.GetInt("axis", 1);
    }

    public override void Infer(InferContext ctx)
    {
        var type = ctx.ExpectType(0, ShapeOpsUtil.AllTypes);
        var s = ctx.InputShape(0);
        int r = s.Length;
        if (_axis < -r || _axis > r) throw ctx.Error($"axis {_axis} is out of range for rank {r}");
        int axis = (int)(_axis < 0 ? _axis + r : _axis);
        ctx.SetOutput(0, type, [ShapeUtil.SizeTo(s, axis), ShapeUtil.SizeFrom(s, axis)]);
    }
}
