using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Elementwise;

/// <summary>Identity: copies its input (any supported tensor type).</summary>
internal sealed class IdentityKernel : Kernel
{
    public IdentityKernel(Node node, int opset) : base(node, opset) { }

    public override void Infer(InferContext ctx)
    {
        ctx.ExpectType(0, DataType.Float32, DataType.Int8, DataType.UInt8, DataType.Int32, DataType.Int64, DataType.Bool);
        ctx.SetOutputLike(0, 0);
    }

    internal override bool OutputIsInputBytes => true;

    public override void Run(RunContext ctx) => ctx.Input(0).Bytes.CopyTo(ctx.Output(0).Bytes);
}
