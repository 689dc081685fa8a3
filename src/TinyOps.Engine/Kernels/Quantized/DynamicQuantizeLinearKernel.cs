using System.Numerics.Tensors;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// DynamicQuantizeLinear (opset 11): computes a uint8 scale and zero point from the data range (extended to
/// include 0) and quantizes x with them. Outputs y (uint8), y_scale (float32 scalar), y_zero_point (uint8 scalar).
/// </summary>
internal sealed class DynamicQuantizeLinearKernel : Kernel
{
    public DynamicQuantizeLinearKernel(Node node, int opset) : base(node, opset) { }

    public override void Infer(InferContext ctx)
    {
        ctx.ExpectType(0, DataType.Float32);
        ctx.SetOutput(0, DataType.UInt8, ctx.InputShape(0));
        ctx.SetOutput(1, DataType.Float32, []);
        ctx.SetOutput(2, DataType.UInt8, []);
    }

    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0).ReadOnlySpan<float>();
        const float qmin = 0f, qmax = 255f;
        float min = 0f, max = 0f;
        if (x.Length > 0)
        {
            min = MathF.Min(0f, TensorPrimitives.Min(x));
            max = MathF.Max(0f, TensorPrimitives.Max(x));
        }
        float scale = (max == min ? 1f : max - min) / (qmax - qmin);
        float initialZp = qmin - min / scale;
        float zpf = MathF.Round(Math.Clamp(initialZp, qmin, qmax));
        int zp = float.IsNaN(zpf) ? 0 : (int)zpf;

        var y = ctx.Output(0).Span<byte>();
        for (int i = 0; i < x.Length; i++) y[i] = (byte)QuantMath.Quantize(x[i] / scale, zp, 0, 255);
        if (ctx.OutputCount > 1) ctx.Output(1).Span<float>()[0] = scale;
        if (ctx.OutputCount > 2) ctx.Output(2).Span<byte>()[0] = (byte)zp;
    }
}
