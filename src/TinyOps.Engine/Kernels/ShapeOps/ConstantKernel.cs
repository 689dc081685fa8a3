using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>Constant: a tensor from 'value', 'value_float(s)' or 'value_int(s)'; string and sparse values are not supported.</summary>
internal sealed class ConstantKernel : Kernel
{
    private readonly Tensor _value;

    public ConstantKernel(Node node, int opset) : base(node, opset)
    {
        int count = 0;
        foreach (var name in new[] { "value", "value_float", "value_floats", "value_int", "value_ints", "value_string", "value_strings", "sparse_value" })
            if (node.HasAttribute(name)) count++;
        if (count != 1) throw Error($"exactly one value attribute is required, found {count}");
        if (node.HasAttribute("value_string") || node.HasAttribute("value_strings"))
            throw new UnsupportedTypeException($"{node.DisplayName}: string constants are not supported by this engine (supported: float32, int8, uint8, int32, int64, bool)");
        if (node.HasAttribute("sparse_value"))
            throw new UnsupportedOperatorException($"{node.DisplayName}: sparse constants ('sparse_value') are not supported by this build");
        if (node.HasAttribute("value"))
            _value = node.GetTensor("value") ?? throw Error("attribute 'value' is not a tensor");
        else if (node.HasAttribute("value_float"))
            _value = Tensor.Scalar(node.GetFloat("value_float", 0));
        else if (node.HasAttribute("value_floats"))
        {
            var f = node.GetFloats("value_floats")!;
            _value = Tensor.FromArray(f, f.Length);
        }
        else if (node.HasAttribute("value_int"))
            _value = Tensor.Scalar(node.GetInt("value_int", 0));
        else
        {
            var v = node.GetInts("value_ints")!;
            _value = Tensor.FromArray(v, v.Length);
        }
        if (!_value.Type.IsSupported())
            throw new UnsupportedTypeException($"{node.DisplayName}: the constant has type {_value.Type.OnnxName()}, which this engine does not support");
    }

    public override void Infer(InferContext ctx) => ctx.SetOutput(0, _value.Type, (int[])_value.Shape.Clone());

    public override void Run(RunContext ctx) => _value.Bytes.CopyTo(ctx.Output(0).Bytes);
}
