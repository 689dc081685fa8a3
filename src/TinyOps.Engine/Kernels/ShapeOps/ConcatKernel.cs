using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>Concat: joins inputs of equal shape except along 'axis' (default 1 in opset 1, required after; negative from 11).</summary>
internal sealed class ConcatKernel : Kernel
{
    private readonly long _axis;

    public ConcatKernel(Node node, int opset) : base(node, opset)
    {
        _axis = opset < 4 ? node.GetInt("axis", 1) : node.GetIntRequired("axis");
    }

    public override void Infer(InferContext ctx)
    {
        if (ctx.InputCount == 0) throw ctx.Error("needs at least one input");
        var type = ctx.ExpectType(0, ShapeOpsUtil.AllTypes);
        var first = ctx.InputShape(0);
        int r = first.Length;
        if (r == 0) throw ctx.Error("cannot concatenate scalars");
        if (_axis < -r || _axis >= r) throw ctx.Error($"axis {_axis} is out of range for rank {r}");
        int axis = (int)(_axis < 0 ? _axis + r : _axis);
        var output = (int[])first.Clone();
        long total = 0;
        for (int i = 0; i < ctx.InputCount; i++)
        {
            var t = ctx.InputType(i);
            if (t != type) throw ctx.Error($"input {i} has type {t.OnnxName()} but input 0 has {type.OnnxName()}");
            var s = ctx.InputShape(i);
            if (s.Length != r) throw ctx.Error($"input {i} has rank {s.Length} but input 0 has rank {r}");
            for (int d = 0; d < r; d++)
                if (d != axis && s[d] != first[d])
                    throw ctx.Error($"input {i} has shape {ShapeUtil.Format(s)}, which differs from input 0's {ShapeUtil.Format(first)} outside axis {axis}");
            total += s[axis];
        }
        if (total > int.MaxValue) throw ctx.Error("the output is too large");
        output[axis] = (int)total;
        ctx.SetOutput(0, type, output);
    }

    /// <summary>The concatenation axis for an output of this rank.</summary>
    public int Axis(int rank) => (int)(_axis < 0 ? _axis + rank : _axis);

    public override void Run(RunContext ctx)
    {
        var y = ctx.Output(0);
        int r = y.Rank;
        int axis = (int)(_axis < 0 ? _axis + r : _axis);
        int es = y.Type.ElementSize();
        int outer = ShapeUtil.SizeTo(y.Shape, axis);
        int inner = ShapeUtil.SizeFrom(y.Shape, axis + 1) * es;
        int outRow = y.Shape[axis] * inner;
        var dst = y.Bytes;
        int pos = 0;
        for (int i = 0; i < ctx.InputCount; i++)
        {
            var x = ctx.Input(i);
            int block = x.Shape[axis] * inner;
            if (block == 0) continue;
            // planned in place (see Executor.ConcatInPlace): the producer already wrote this block
            if (outer == 1 && ReferenceEquals(x.Buffer, y.Buffer) && x.ByteOffset == y.ByteOffset + pos)
            {
                pos += block;
                continue;
            }
            var src = x.Bytes;
            for (int o = 0; o < outer; o++)
                src.Slice(o * block, block).CopyTo(dst.Slice(o * outRow + pos, block));
            pos += block;
        }
    }
}
