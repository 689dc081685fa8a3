namespace TinyOps.Engine.Kernels.ControlFlow;

internal static class ControlFlowKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Register("If", (n, o) => new IfKernel(n, o));
    }
}
