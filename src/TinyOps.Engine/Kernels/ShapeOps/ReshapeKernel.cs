using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>Reshape: 'shape' attribute (opset 1-4) or shape input (5+); 0 copies a dimension unless allowzero (14+); one -1 is inferred.</summary>
internal sealed class ReshapeKernel : CopyKernel
{
    private readonly long[]? _shapeAttr;
    private readonly bool _allowZero;

    public ReshapeKernel(Node node, int opset) : base(node, opset)
    {
        if (opset < 5)
            _shapeAttr = node.GetInts("shape") ?? throw Error("required attribute 'shape' is missing");
        _allowZero = node.GetInt("allowzero", 0) != 0;
    }

    public override void Infer(InferContext ctx)
    {
        var type = ctx.ExpectType(0, ShapeOpsUtil.AllTypes);
        var input = ctx.InputShape(0);
        long[] shape = _shapeAttr ?? ShapeOpsUtil.ReadInts(ctx, 1, "shape");
        var output = new int[shape.Length];
        int inferred = -1;
        long known = 1;
        bool hasZero = false;
        for (int i = 0; i < shape.Length; i++)
        {
            long v = shape[i];
            if (v == -1)
            {
                if (inferred >= 0) throw ctx.Error($"the shape {Format(shape)} has more than one -1");
                inferred = i;
                continue;
            }
            if (v == 0 && !_allowZero)
            {
                if (i >= input.Length) throw ctx.Error($"the shape {Format(shape)} copies dimension {i} (0), but the input {ShapeUtil.Format(input)} has rank {input.Length}");
                output[i] = input[i];
            }
            else if (v < 0) throw ctx.Error($"the shape {Format(shape)} has an invalid dimension {v}");
            else
            {
                if (v == 0) hasZero = true;
                output[i] = ShapeOpsUtil.ToDim(ctx, v, "shape dimension");
            }
            known *= output[i];
            if (known > ShapeUtil.MaxElements) throw ctx.Error($"the shape {Format(shape)} is too large");
        }
        int total = ShapeUtil.Size(input);
        if (inferred >= 0)
        {
            if (hasZero) throw ctx.Error($"the shape {Format(shape)} has both 0 and -1 while allowzero is set");
            if (known == 0 || total % known != 0)
                throw ctx.Error($"cannot reshape {ShapeUtil.Format(input)} ({total} elements) to {Format(shape)}");
            output[inferred] = (int)(total / known);
        }
        else if (known != total)
            throw ctx.Error($"cannot reshape {ShapeUtil.Format(input)} ({total} elements) to {Format(shape)} ({known} elements)");
        ctx.SetOutput(0, type, output);
    }

    private static string Format(long[] s) => "[" + string.Join(",", s) + "]";
}
