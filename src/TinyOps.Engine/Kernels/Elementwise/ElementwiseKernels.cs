namespace TinyOps.Engine.Kernels.Elementwise;

internal static class ElementwiseKernels
{
    public static void Register(KernelRegistry r)
    {
        _ = r;
    }
}
