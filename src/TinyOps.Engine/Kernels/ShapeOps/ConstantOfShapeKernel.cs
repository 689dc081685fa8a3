using System.Runtime.InteropServices;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>ConstantOfShape: a tensor of the shape given by an int64 input, filled with the one-element 'value' (default float 0).</summary>
internal sealed class ConstantOfShapeKernel : Kernel
{
    private readonly Tensor _value;

    public ConstantOfShapeKernel(Node node, int opset) : base(node, opset)
    {
        _value = node.GetTensor("value") ?? Tensor.Scalar(0f);
        if (!_value.Type.IsSupported())
            throw new UnsupportedTypeException($"{node.DisplayName}: 'value' has type {_value.Type.OnnxName()}, which this engine does not support");
        if (_value.Length != 1) throw Error($"'value' must hold exactly one element, it has shape {ShapeUtil.Format(_value.Shape)}");
    }

    public override void Infer(InferContext ctx)
    {
        var dims = ShapeOpsUtil.ReadInts(ctx, 0, "input");
        var shape = new int[dims.Length];
        for (int i = 0; i < dims.Length; i++) shape[i] = ShapeOpsUtil.ToDim(ctx, dims[i], "dimension");
        ctx.SetOutput(0, _value.Type, shape);
    }

    public override void Run(RunContext ctx)
    {
        var y = ctx.Output(0);
        var v = _value.Bytes;
        switch (v.Length)
        {
            case 1: y.Bytes.Fill(v[0]); break;
            case 4: MemoryMarshal.Cast<byte, int>(y.Bytes).Fill(MemoryMarshal.Read<int>(v)); break;
            default: MemoryMarshal.Cast<byte, long>(y.Bytes).Fill(MemoryMarshal.Read<long>(v)); break;
        }
    }
}
