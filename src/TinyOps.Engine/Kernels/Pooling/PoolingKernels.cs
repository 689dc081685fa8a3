namespace TinyOps.Engine.Kernels.Pooling;

internal static class PoolingKernels
{
    public static void Register(KernelRegistry r)
    {
        _ = r;
    }
}
