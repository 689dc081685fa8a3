namespace TinyOps.Engine.Kernels.Recurrent;

internal static class RecurrentKernels
{
    public static void Register(KernelRegistry r)
    {
        _ = r;
    }
}
