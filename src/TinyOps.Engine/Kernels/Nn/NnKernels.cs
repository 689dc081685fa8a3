namespace TinyOps.Engine.Kernels.Nn;

internal static class NnKernels
{
    public static void Register(KernelRegistry r)
    {
        _ = r;
    }
}
