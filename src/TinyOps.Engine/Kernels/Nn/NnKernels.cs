namespace TinyOps.Engine.Kernels.Nn;

internal static class NnKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Register("Conv", (node, opset) => new ConvKernel(node, opset));
        r.Register("ConvTranspose", (node, opset) => new ConvTransposeKernel(node, opset));
        r.Register("Gemm", (node, opset) => new GemmKernel(node, opset));
        r.Register("MatMul", (node, opset) => new MatMulKernel(node, opset));
        r.Register("BatchNormalization", (node, opset) => new BatchNormalizationKernel(node, opset));
        MicrosoftFusedKernels.Register(r);
    }
}
