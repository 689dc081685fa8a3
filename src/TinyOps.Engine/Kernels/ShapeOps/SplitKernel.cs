using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>
/// Split along 'axis': sizes from the 'split' attribute (opset 1-12; opset 1 also accepts a second input), the
/// split input (13+), or equal parts (num_outputs from 18, the last part may be smaller).
/// </summary>
internal sealed class SplitKernel : Kernel
{
    private readonly long _axis;
    private readonly long[]? _splitAttr;
    private readonly long _numOutputs;

    public SplitKernel(Node node, int opset) : base(node, opset)
    {
        _axis = node.GetInt("axis", 0);
        if (opset < 13) _splitAttr = node.GetInts("split");
        _numOutputs = opset >= 18 ? node.GetInt("num_outputs", 0) : 0;
        if (node.HasAttribute("num_outputs") && _numOutputs != node.Outputs.Count)
            throw Error($"num_outputs is {_numOutputs} but the node has {node.Outputs.Count} outputs");
    }

    public override void Infer(InferContext ctx)
    {
        var type = ctx.ExpectType(0, ShapeOpsUtil.AllTypes);
        var s = ctx.InputShape(0);
        int r = s.Length;
        if (_axis < -r || _axis >= r) throw ctx.Error($"axis {_axis} is out of range for rank {r}");
        int axis = (int)(_axis < 0 ? _axis + r : _axis);
        int n = ctx.OutputCount;
        int dim = s[axis];
        long[]? split = _splitAttr;
        if (split is null && (Opset >= 13 || Opset == 1) && ctx.HasInput(1)) split = ShapeOpsUtil.ReadInts(ctx, 1, "split");
        var sizes = new int[n];
        if (split is not null)
        {
            if (split.Length != n) throw ctx.Error($"split has {split.Length} entries but the node has {n} outputs");
            long sum = 0;
            for (int i = 0; i < n; i++)
            {
                if (split[i] < 0) throw ctx.Error($"split entry {split[i]} is negative");
                sum += split[i];
                sizes[i] = (int)Math.Min(split[i], int.MaxValue);
            }
            if (sum != dim) throw ctx.Error($"split [{string.Join(",", split)}] sums to {sum} but axis {axis} has size {dim}");
        }
        else if (Opset >= 18)
        {
            int chunk = (dim + n - 1) / n;
            int left = dim;
            for (int i = 0; i < n; i++) { sizes[i] = Math.Min(chunk, left); left -= sizes[i]; }
        }
        else
        {
            if (dim % n != 0) throw ctx.Error($"axis {axis} of size {dim} does not split into {n} equal parts");
            for (int i = 0; i < n; i++) sizes[i] = dim / n;
        }
        for (int i = 0; i < n; i++)
        {
            var o = (int[])s.Clone();
            o[axis] = sizes[i];
            ctx.SetOutput(i, type, o);
        }
    }

    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0);
        int r = x.Rank;
        int axis = (int)(_axis < 0 ? _axis + r : _axis);
        int es = x.Type.ElementSize();
        int outer = ShapeUtil.SizeTo(x.Shape, axis);
        int inner = ShapeUtil.SizeFrom(x.Shape, axis + 1) * es;
        int inRow = x.Shape[axis] * inner;
        var src = x.Bytes;
        int pos = 0;
        for (int i = 0; i < ctx.OutputCount; i++)
        {
            var y = ctx.Output(i);
            int block = y.Shape[axis] * inner;
            if (block > 0)
            {
                var dst = y.Bytes;
                for (int o = 0; o < outer; o++)
                    src.Slice(o * inRow + pos, block).CopyTo(dst.Slice(o * block, block));
            }
            pos += block;
        }
    }
}
