namespace TinyOps.Engine.Kernels.Quantized;

internal static class QuantizedKernels
{
    public static void Register(KernelRegistry r)
    {
        _ = r;
    }
}
