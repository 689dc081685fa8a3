using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>Gather: takes slices of data along 'axis' at the given (possibly negative) int32/int64 indices.</summary>
internal sealed class GatherKernel : Kernel
{
    private readonly long _axis;

    public GatherKernel(Node node, int opset) : base(node, opset)
    {
        _axis = node.GetInt("axis", 0);
    }

    public override void Infer(InferContext ctx)
    {
        var type = ctx.ExpectType(0, ShapeOpsUtil.AllTypes);
        ctx.ExpectType(1, ShapeOpsUtil.IndexTypes);
        var s = ctx.InputShape(0);
        var ind = ctx.InputShape(1);
        int r = s.Length;
        if (r == 0) throw ctx.Error("data must have rank 1 or more");
        if (_axis < -r || _axis >= r) throw ctx.Error($"axis {_axis} is out of range for rank {r}");
        int axis = (int)(_axis < 0 ? _axis + r : _axis);
        var output = new int[r - 1 + ind.Length];
        int k = 0;
        for (int d = 0; d < axis; d++) output[k++] = s[d];
        foreach (int v in ind) output[k++] = v;
        for (int d = axis + 1; d < r; d++) output[k++] = s[d];
        ctx.SetOutput(0, type, output);
    }

    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0);
        var indices = ctx.Input(1);
        var y = ctx.Output(0);
        int r = x.Rank;
        int axis = (int)(_axis < 0 ? _axis + r : _axis);
        int es = x.Type.ElementSize();
        int dim = x.Shape[axis];
        int outer = ShapeUtil.SizeTo(x.Shape, axis);
        int block = ShapeUtil.SizeFrom(x.Shape, axis + 1) * es;
        int n = indices.Length;
        var src = x.Bytes;
        var dst = y.Bytes;
        bool i64 = indices.Type == DataType.Int64;
        var ind64 = i64 ? indices.ReadOnlySpan<long>() : default;
        var ind32 = i64 ? default : indices.ReadOnlySpan<int>();
        for (int j = 0; j < n; j++)
        {
            long v = i64 ? ind64[j] : ind32[j];
            if (v < -dim || v >= dim) throw Error($"index {v} is out of range for axis {axis} of size {dim}");
            if (v < 0) v += dim;
            int inOff = (int)v * block;
            for (int o = 0; o < outer; o++)
                src.Slice(o * dim * block + inOff, block).CopyTo(dst.Slice((o * n + j) * block, block));
        }
    }
}
