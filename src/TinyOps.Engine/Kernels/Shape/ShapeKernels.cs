namespace TinyOps.Engine.Kernels.Shape;

internal static class ShapeKernels
{
    public static void Register(KernelRegistry r)
    {
        _ = r;
    }
}
