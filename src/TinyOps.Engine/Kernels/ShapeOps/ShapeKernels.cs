namespace TinyOps.Engine.Kernels.ShapeOps;

internal static class ShapeKernels
{
    public static void Register(KernelRegistry r)
    {
        _ = r;
    }
}
