namespace TinyOps.Engine.Kernels.Quantized;

internal static class QuantizedKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Register("QuantizeLinear", (node, opset) => new QuantizeLinearKernel(node, opset), 10);
        r.Register("DequantizeLinear", (node, opset) => DequantizeChainKernel.IsFused(node) ? new DequantizeChainKernel(node, opset) : new DequantizeLinearKernel(node, opset), 10);
        r.Register("DynamicQuantizeLinear", (node, opset) => new DynamicQuantizeLinearKernel(node, opset), 11);
        r.Register("MatMulInteger", (node, opset) => new IntMatMulKernel(node, opset, qlinear: false), 10);
        r.Register("QLinearMatMul", (node, opset) => new IntMatMulKernel(node, opset, qlinear: true), 10);
        r.Register("ConvInteger", (node, opset) => new IntConvKernel(node, opset, qlinear: false), 10);
        r.Register("QLinearConv", (node, opset) => new IntConvKernel(node, opset, qlinear: true), 10);
    }
}
