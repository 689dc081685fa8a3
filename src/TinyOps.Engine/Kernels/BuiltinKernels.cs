namespace TinyOps.Engine.Kernels;

/// <summary>Registers every kernel group of this build. One line per group; each group lives in its own folder.</summary>
internal static class BuiltinKernels
{
    public static void RegisterAll(KernelRegistry r)
    {
        ControlFlow.ControlFlowKernels.Register(r);
        Elementwise.ElementwiseKernels.Register(r);
        ShapeOps.ShapeKernels.Register(r);
        Nn.NnKernels.Register(r);
        Pooling.PoolingKernels.Register(r);
        Recurrent.RecurrentKernels.Register(r);
        Quantized.QuantizedKernels.Register(r);
    }
}
